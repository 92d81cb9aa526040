"""``mu2 eval`` (all metrics over a prediction file) and ``mu2 green`` (one pair)."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from mu2.errors import Mu2Error


def _text_arg(value: str, flag: str) -> str:
    """A report given inline, or read from a file when written as ``@PATH``."""
    if not value.startswith("@"):
        return value
    path = Path(value[1:])
    if not path.is_file():
        raise Mu2Error(
            f"{flag}: file not found", path=str(path), fix=f"{flag} TEXT or {flag} @FILE"
        )
    return path.read_text(encoding="utf-8")


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_command(
        pred: Path = typer.Option(
            ...,
            "--pred",
            help="Prediction JSONL: id, prediction, reference [, region, dataset, findings, "
            "task, qtype]; task=vqa rows are scored by VQA accuracy per qtype instead.",
        ),
        metrics: str = typer.Option(
            None,
            "--metrics",
            help="Comma list of bleu,rouge,meteor,bertscore,green, or a preset: offline (all, "
            "offline models; default) | paper (roberta-large BERTScore, GREEN model judge).",
        ),
        green_backend: str = typer.Option(
            None, "--green-backend", help="rules (offline judge, default) | hf:PATH | openai:URL."
        ),
        green_model: str = typer.Option(None, "--green-model", help="openai: served model name."),
        green_tokenizer: str = typer.Option(
            None, "--green-tokenizer", help="openai: judge tokenizer folder (sends token ids)."
        ),
        green_batch_size: int = typer.Option(None, "--green-batch-size", help="Judge batch (8)."),
        by: str = typer.Option(None, "--by", help="Also score per region or per dataset."),
        out: Path = typer.Option(
            None, "--out", help="Output folder (default: PRED_eval/ beside PRED)."
        ),
        bootstrap: int = typer.Option(
            None, "--bootstrap", help="Bootstrap resamples (1000; 0: none)."
        ),
        seed: int = typer.Option(None, "--seed", help="Bootstrap seed (0)."),
        bertscore_model: str = typer.Option(
            None,
            "--bertscore-model",
            help="Local BERTScore backbone folder (default all-MiniLM-L6-v2).",
        ),
        bertscore_layer: int = typer.Option(
            None, "--bertscore-layer", help="Its layer (roberta-large: 17)."
        ),
        device: str = typer.Option(
            None, "--device", help="cpu, cuda, cuda:1 (default: cuda if present)."
        ),
        name: str = typer.Option(
            None, "--name", help="Row label in the table (default: PRED's stem)."
        ),
        config: Path = typer.Option(
            None, "--config", "-c", help="Optional YAML with EvalConfig fields."
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    ) -> None:
        """Score a prediction file: BLEU-1/4, ROUGE, METEOR, BERTScore, GREEN, with 95% CIs."""
        from mu2.config import load_config
        from mu2.extras import require

        require("eval", "mu2 evaluate")
        from mu2.metrics import EvalConfig, evaluate, read_predictions

        logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s")
        flags = {
            "metrics": metrics,
            "green_backend": green_backend,
            "green_model": green_model,
            "green_tokenizer": green_tokenizer,
            "green_batch_size": green_batch_size,
            "by": by,
            "bootstrap": bootstrap,
            "seed": seed,
            "bertscore_model": bertscore_model,
            "bertscore_layer": bertscore_layer,
            "device": device,
            "name": name or pred.stem,
        }
        overrides = [f"{k}={v}" for k, v in flags.items() if v is not None]
        cfg = load_config(EvalConfig, config, overrides)
        rows = read_predictions(pred)
        out_dir = out or pred.with_name(pred.stem + "_eval")
        result = evaluate(rows, config=cfg, out_dir=out_dir, progress=not quiet)
        print(result.table_markdown())
        if result.green is not None:
            shares = ", ".join(f"({c}) {v:.2f}" for c, v in result.green.zero_error_share.items())
            print(f"GREEN sd {result.green.sd:.3f}; reports without significant error: {shares}")
            print(f"GREEN judge: {result.green.judge}")
        print(f"wrote {out_dir}/ (metrics.json, metrics.csv, table.md, per_case.jsonl)")

    @app.command("green")
    def green_command(
        ref: str = typer.Option(..., "--ref", help="Reference report text, or @FILE."),
        cand: str = typer.Option(..., "--cand", help="Candidate report text, or @FILE."),
        backend: str = typer.Option("rules", "--backend", help="rules | hf:PATH | openai:URL."),
        green_model: str = typer.Option(None, "--green-model", help="openai: served model name."),
        green_tokenizer: str = typer.Option(
            None, "--green-tokenizer", help="openai: judge tokenizer folder (sends token ids)."
        ),
        device: str = typer.Option(None, "--device", help="hf: cpu or cuda."),
        show_prompt: bool = typer.Option(False, "--show-prompt", help="Also print the prompt."),
    ) -> None:
        """Score one candidate report against a reference; print the judge's answer and GREEN."""
        from mu2.metrics.green import make_judge, make_prompt, parse_answer

        reference, candidate = _text_arg(ref, "--ref"), _text_arg(cand, "--cand")
        kind = backend.split(":", 1)[0]
        options: dict[str, object] = {}
        if kind == "hf":
            options = {"device": device, "progress": False}
        elif kind == "openai":
            options = {"model": green_model, "tokenizer": green_tokenizer, "progress": False}
        judge = make_judge(backend, **options)
        if show_prompt:
            print(make_prompt(reference, candidate))
        (answer,) = judge.answers([(reference, candidate)])
        parsed = parse_answer(answer)
        print(answer.rstrip())
        print()
        errors = ", ".join(f"({c}) {n}" for c, n in parsed.significant.items())
        print(f"matched findings: {parsed.matched}; clinically significant errors: {errors}")
        print(f"GREEN = {parsed.score:.4f}   [{judge.label}]")
