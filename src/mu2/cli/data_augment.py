"""``mu2 data augment``: expand a unified JSONL with report rewrites and QA pairs."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from mu2.data.expansion.augment import PAPER_REWRITES_PER_REPORT, TextAugmentConfig, augment_file
from mu2.errors import Mu2Error

# Where the LLM cache goes without --cache-dir: next to the output, so a rerun finds it.
DEFAULT_CACHE_NAME = ".mu2-llm-cache"
LLM_SPEC_HELP = "'rules' (offline, default) or 'openai:URL' (an OpenAI-compatible server)"


def make_backend(
    spec: str,
    *,
    model: str,
    concurrency: int,
    cache_dir: Path,
    temperature: float,
    seed: int,
    max_retries: int,
    timeout_s: float,
    api_key: str | None,
):
    """The backend named by ``--llm``: ``rules`` or ``openai:URL``."""
    if spec == "rules":
        from mu2.data.expansion.rewrite_rules import RulesBackend

        return RulesBackend()
    kind, _, url = spec.partition(":")
    if kind != "openai" or not url:
        raise Mu2Error(
            f"--llm '{spec}' is not a backend",
            fix=f"use {LLM_SPEC_HELP}, e.g. --llm openai:http://localhost:8000",
        )
    from mu2.data.expansion.llm_client import ChatClient, ChatConfig
    from mu2.data.expansion.rewrite_llm import LLMBackend

    cfg = ChatConfig(
        url=url,
        model=model,
        temperature=temperature,
        seed=seed,
        max_retries=max_retries,
        timeout_s=timeout_s,
    )
    return LLMBackend(ChatClient(cfg, cache_dir=cache_dir, api_key=api_key), concurrency)


def add_augment_command(data_app: typer.Typer) -> None:
    """Add ``augment`` to the ``mu2 data`` command group."""

    @data_app.command("augment")
    def augment(
        in_path: Path = typer.Argument(..., metavar="IN.jsonl", help="Unified JSONL to expand."),
        out: Path = typer.Option(..., "--out", help="Output JSONL: original + augmented rows."),
        rewrites: int = typer.Option(
            PAPER_REWRITES_PER_REPORT, help="Paraphrases per report (reference code: 4)."
        ),
        qa: int = typer.Option(3, help="Question-answer pairs per report (at most)."),
        llm: str = typer.Option("rules", help=LLM_SPEC_HELP + "."),
        llm_model: str = typer.Option("gpt-4o-mini", help="Model name the server knows."),
        temperature: float = typer.Option(0.7, help="Sampling temperature of the LLM."),
        concurrency: int = typer.Option(4, help="LLM requests in flight at once."),
        cache_dir: Path | None = typer.Option(
            None, help=f"LLM response cache folder (default: {DEFAULT_CACHE_NAME} next to --out)."
        ),
        seed: int = typer.Option(0, help="Seed of every random draw."),
        min_length: int = typer.Option(20, help="Drop rewrites shorter than this (characters)."),
        max_retries: int = typer.Option(3, help="Retries of a failed LLM request."),
        timeout: float = typer.Option(120.0, help="Seconds to wait for one LLM answer."),
        api_key_env: str = typer.Option(
            "OPENAI_API_KEY", help="Environment variable holding the API key (if any)."
        ),
        progress: bool = typer.Option(True, help="Show a progress bar."),
    ) -> None:
        """Add report rewrites and QA pairs, each checked to keep the source's findings."""
        cfg = TextAugmentConfig(rewrites=rewrites, qa=qa, seed=seed, min_length=min_length)
        backend = make_backend(
            llm,
            model=llm_model,
            concurrency=concurrency,
            cache_dir=cache_dir or out.parent / DEFAULT_CACHE_NAME,
            temperature=temperature,
            seed=seed,
            max_retries=max_retries,
            timeout_s=timeout,
            api_key=os.environ.get(api_key_env) or None,
        )
        summary = augment_file(in_path, out, backend, cfg, progress=progress)
        for line in summary.lines():
            print(line)
        print(f"wrote {out}")
