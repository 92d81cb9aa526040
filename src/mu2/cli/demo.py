"""``mu2 demo``: the main job on the embedded default, in one command.

    mu2 demo [--fast] [--force] [--out DIR] [--home DIR] [--ablate-stage0] [--set key=value]

Makes the synthetic benchmark, pretrains the vision tower (stage 0), trains the tiny mu2
model by SFT and DPO on GREEN-ranked pairs, evaluates it on the test split (all metrics,
offline judge labelled), saves it where `mu2 report` finds it, writes example reports
with heat maps and prints where everything is. A second run reuses finished stages.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer

from mu2.cli.logs import configure_logging
from mu2.cli.overrides import merge
from mu2.cli.overrides import positional as overrides_arg


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        fast: bool = typer.Option(
            False,
            "--fast",
            help="configs/demo/fast.yaml: tiny data and few steps, checks every stage.",
        ),
        force: bool = typer.Option(False, "--force", help="Redo every stage (no reuse)."),
        out: Path | None = typer.Option(
            None, "--out", help="Output folder (default: $MU2_HOME/demo/<profile>)."
        ),
        home: Path | None = typer.Option(
            None,
            "--home",
            help="mu2 home for the saved model (default: $MU2_HOME or ~/.cache/mu2).",
        ),
        ablate_stage0: bool = typer.Option(
            False, "--ablate-stage0", help="Also train SFT without stage 0 and compare per finding."
        ),
        overrides: list[str] = typer.Option(
            [],
            "--set",
            help="Alias of a positional KEY=VALUE, e.g. --set sft.max_steps=200.",
        ),
        positional: list[str] = overrides_arg(
            "Overrides: a stage's recipe key (sft.max_steps=200, appended to the stage's set "
            "list in configs/demo/<profile>.yaml) or a demo knob (eval.bootstrap=200)."
        ),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="Library logs (INFO)."),
    ) -> None:
        """Synthetic data -> stage 0 -> SFT -> DPO -> evaluation -> saved model -> example reports."""
        from mu2.extras import require

        require("train", "mu2 demo")
        require("eval", "mu2 demo")
        from mu2.demo.config import make_demo_config

        extra = merge(positional, overrides) + (["ablate_stage0=true"] if ablate_stage0 else [])
        cfg = make_demo_config("fast" if fast else "full", extra)
        configure_logging(verbose)
        from mu2.demo.pipeline import run_demo

        def echo(line: str) -> None:
            print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)

        echo(f"mu2 demo, {cfg.profile} profile")
        result = run_demo(cfg, out=out, home=home, force=force, echo=echo)
        sys.stderr.flush()
        print()
        print(result.summary, end="", flush=True)
