"""``mu2 train <stage>``: the training recipes, one sub-command per stage.

    mu2 train clip --config configs/clip/tiny.yaml [key=value ...]   (mu2.cli.train_clip)
    mu2 train lm --config configs/lm/tiny.yaml [key=value ...]     (tiny LLM text pretraining)
    mu2 train sft --config configs/sft/tiny.yaml [key=value ...]
    mu2 train dpo --config configs/dpo/tiny.yaml [key=value ...]

Multi-process: ``accelerate launch --config_file configs/accelerate/<name>.yaml -m
mu2.cli.main train sft --config ...`` (see docs/training.md).

To add a stage, write an ``_add_<stage>(sub)`` function that registers one command on
``sub`` and list it in ``STAGES``; the recipe itself lives in ``mu2.train``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from mu2.cli.logs import NOISY_LOGGERS
from mu2.config import load_config, to_dict

OVERRIDES_HELP = "Config overrides, e.g. optim.lr=1e-4 max_steps=200 (dotted keys)."
_EXTRA = {"help_option_names": ["-h", "--help"]}


def configure_logging(verbose: bool = False) -> None:
    """Library loggers to stderr (INFO, or DEBUG with --verbose); quiet third-party noise."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname).1s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _is_main() -> bool:
    """Print once, not once per process, after a multi-process run."""
    from accelerate import PartialState

    return PartialState().is_main_process


def _config_option() -> Path | None:
    return typer.Option(
        None, "--config", "-c", help="YAML config (configs/); default: built-in tiny."
    )


def load_stage_config(
    cls: type, config: Path | None, overrides: list[str] | None, print_config: bool, verbose: bool
) -> Any | None:
    """The stage's config from YAML + overrides; with ``--print-config`` print it and return
    None, else set up logging and return it (what every ``mu2 train`` command does first)."""
    cfg = load_config(cls, config, overrides or [])
    if print_config:
        print(json.dumps(to_dict(cfg), indent=2))
        return None
    configure_logging(verbose)
    return cfg


def _add_sft(sub: typer.Typer) -> None:
    @sub.command("sft", context_settings=_EXTRA)
    def sft(
        config: Path | None = _config_option(),
        overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP),
        print_config: bool = typer.Option(
            False, "--print-config", help="Print the resolved config and exit."
        ),
        verbose: bool = typer.Option(False, "--verbose", "-v"),
    ) -> None:
        """Stage 1: supervised fine-tuning (next-token loss on the report)."""
        from mu2.train.config import SFTConfig

        cfg = load_stage_config(SFTConfig, config, overrides, print_config, verbose)
        if cfg is None:
            return
        from mu2.train.sft import run_sft

        final = run_sft(cfg)
        if final is not None and _is_main():
            print(f"SFT model: {final}")

    _ = sft


def _add_dpo(sub: typer.Typer) -> None:
    @sub.command("dpo", context_settings=_EXTRA)
    def dpo(
        config: Path | None = _config_option(),
        overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP),
        print_config: bool = typer.Option(
            False, "--print-config", help="Print the resolved config and exit."
        ),
        verbose: bool = typer.Option(False, "--verbose", "-v"),
    ) -> None:
        """Stage 2: DPO on GREEN-ranked preference pairs (from `mu2 prefs build`)."""
        from mu2.train.config import DPOConfig

        cfg = load_stage_config(DPOConfig, config, overrides, print_config, verbose)
        if cfg is None:
            return
        from mu2.train.dpo import run_dpo

        final = run_dpo(cfg)
        if final is not None and _is_main():
            print(f"DPO model: {final}")

    _ = dpo


def _add_lm(sub: typer.Typer) -> None:
    @sub.command("lm", context_settings=_EXTRA)
    def lm(
        config: Path | None = _config_option(),
        overrides: list[str] = typer.Argument(None, help=OVERRIDES_HELP),
        print_config: bool = typer.Option(
            False, "--print-config", help="Print the resolved config and exit."
        ),
        verbose: bool = typer.Option(False, "--verbose", "-v"),
    ) -> None:
        """Text pretraining of the random-init tiny LLM (findings written in its context)."""
        from mu2.train.config import LMConfig

        cfg = load_stage_config(LMConfig, config, overrides, print_config, verbose)
        if cfg is None:
            return
        from mu2.train.aids.context_lm import run_lm_pretrain

        print(f"LM model: {run_lm_pretrain(cfg)}")

    _ = lm


def _add_clip(sub: typer.Typer) -> None:
    """Stage 0 lives in its own module (mu2.cli.train_clip); absent from a build, no command."""
    try:
        from mu2.cli.train_clip import add_clip_command
    except ModuleNotFoundError as err:
        if err.name == "mu2.cli.train_clip":
            return
        raise
    add_clip_command(sub)


STAGES: list[Callable[[typer.Typer], None]] = [_add_clip, _add_lm, _add_sft, _add_dpo]


def register(app: typer.Typer) -> None:
    sub = typer.Typer(
        name="train",
        help="Train mu2: clip (stage 0), lm (tiny LLM text pretraining), sft (stage 1), dpo (stage 2).",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )
    for add in STAGES:
        add(sub)
    app.add_typer(sub, name="train")
