"""``mu2 prefs build``: GREEN-ranked preference pairs from an SFT model, for DPO.

    mu2 prefs build --model runs/sft-tiny/final --data runs/synth/train.jsonl \\
        --out runs/prefs/pairs.jsonl [--n 8 --temperature 1.0 --top-p 0.9 --seed 0 \\
        --green-backend rules --min-length 5 --min-margin 0 --tie-break none]

Several processes split the cases: ``accelerate launch ... -m mu2.cli.main prefs build ...``
or ``torchrun --nproc_per_node N -m mu2.cli.main prefs build ...``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from mu2.cli.overrides import merge, set_option
from mu2.cli.overrides import positional as overrides_arg
from mu2.cli.train import configure_logging
from mu2.config import load_config
from mu2.errors import Mu2Error


def register(app: typer.Typer) -> None:
    sub = typer.Typer(
        name="prefs",
        help="Preference pairs for DPO.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )

    @sub.command("build", context_settings={"help_option_names": ["-h", "--help"]})
    def build(
        model: str = typer.Option(None, "--model", help="Saved SFT model folder."),
        data: str = typer.Option(None, "--data", help="Unified training JSONL."),
        out: str = typer.Option(
            None, "--out", help="Output pairs JSONL (image paths relative to its folder)."
        ),
        n: int = typer.Option(None, "--n", help="Samples per case (default 8)."),
        temperature: float = typer.Option(
            None, "--temperature", help="Sampling temperature (default 1.0)."
        ),
        top_p: float = typer.Option(None, "--top-p", help="Nucleus sampling mass (default 0.9)."),
        seed: int = typer.Option(
            None, "--seed", help="Seed; each case's samples depend on it and the case id."
        ),
        green_backend: str = typer.Option(
            None, "--green-backend", help="rules (offline judge, default) | hf:PATH | openai:URL."
        ),
        min_length: int = typer.Option(
            None, "--min-length", help="Samples with fewer words are degenerate."
        ),
        min_margin: float = typer.Option(
            None, "--min-margin", help="Least GREEN difference chosen - rejected (default 0)."
        ),
        tie_break: str = typer.Option(
            None, "--tie-break", help="none (GREEN alone, default) | errors (equal GREEN: fewer "
            "significant errors ranks higher)."
        ),
        limit: int = typer.Option(None, "--limit", help="Only the first N cases."),
        config: Path = typer.Option(None, "--config", "-c", help="Optional YAML (configs/prefs/)."),
        overrides: list[str] = overrides_arg(),
        set_: list[str] = set_option(),
        verbose: bool = typer.Option(False, "--verbose", "-v"),
    ) -> None:
        """Sample n reports per case, score them with GREEN, keep (best, worst) as (chosen, rejected)."""
        from mu2.extras import require
        from mu2.train.config import PrefsConfig

        require("train", "mu2 prefs build")

        flags = {
            "model": model, "data": data, "out": out, "n": n, "temperature": temperature,
            "top_p": top_p, "seed": seed, "green_backend": green_backend,
            "min_length": min_length, "limit": limit, "min_margin": min_margin,
            "tie_break": tie_break,
        }  # fmt: skip
        cfg = load_config(PrefsConfig, config, merge(overrides, set_))
        try:  # flags win over the YAML; replace() re-runs the config's validation
            cfg = dataclasses.replace(cfg, **{k: v for k, v in flags.items() if v is not None})
        except ValueError as err:
            raise Mu2Error(f"invalid prefs options: {err}") from None
        configure_logging(verbose)
        from mu2.train.prefs import build_pairs

        summary = build_pairs(cfg)
        if summary.is_main:
            print(summary.describe())

    _ = build
    app.add_typer(sub, name="prefs")
