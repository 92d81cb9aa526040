"""``mu2 train clip``: stage 0, contrastive image-report pretraining of the vision tower.

    mu2 train clip --config configs/clip/tiny.yaml [key=value ...]

Writes ``<output_dir>/final/vision.safetensors`` (for an SFT config's
``model.vision_path``) with ``probe.json`` / ``probe.md`` beside it. Registered on the
``train`` group by :func:`add_clip_command`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from mu2.cli.overrides import merge, set_option
from mu2.cli.overrides import positional as overrides_arg

OVERRIDES_HELP = "Config overrides, e.g. max_steps=200 model.findings_weight=0 (dotted keys)."


def add_clip_command(train_app: typer.Typer, load_stage_config: Callable[..., Any]) -> None:
    """Add ``clip`` to the ``mu2 train`` sub-app; ``load_stage_config`` is ``mu2 train``'s
    (passed in, so this module does not import the one that imports it)."""

    @train_app.command("clip", context_settings={"help_option_names": ["-h", "--help"]})
    def clip(
        config: Path | None = typer.Option(
            None, "--config", "-c", help="YAML config (configs/clip/); default: built-in tiny."
        ),
        overrides: list[str] = overrides_arg(OVERRIDES_HELP),
        set_: list[str] = set_option(),
        print_config: bool = typer.Option(
            False, "--print-config", help="Print the resolved config and exit."
        ),
        verbose: bool = typer.Option(False, "--verbose", "-v"),
    ) -> None:
        """Stage 0: vision pretraining (image-report InfoNCE + findings head), then a probe."""
        from mu2.pretrain.config import ClipConfig

        cfg = load_stage_config(ClipConfig, config, merge(overrides, set_), print_config, verbose)
        if cfg is None:
            return
        from mu2.pretrain.clip import VISION_FILE
        from mu2.pretrain.probe import PROBE_MD
        from mu2.pretrain.recipe import run_clip

        final = run_clip(cfg)
        if final is None:
            return
        print(
            f"vision tower: {final / VISION_FILE}  (SFT: model.vision_path={final / VISION_FILE})"
        )
        probe = final / PROBE_MD
        if probe.is_file():
            print(probe.read_text(), end="")

    _ = clip
