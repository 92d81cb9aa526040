"""``mu2 rehearse --out DIR``: run the paper recipe end to end at CPU size, print a table."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("rehearse")
    def rehearse_command(
        out: Path = typer.Option(..., "--out", help="New folder for everything it writes."),
        configs: Path = typer.Option(
            Path("configs"), "--configs", help="The repository's configs/ folder."
        ),
        config: Path = typer.Option(
            None, "--config", "-c", help="Sizes (default: CONFIGS/rehearse/cpu.yaml)."
        ),
        overrides: list[str] = typer.Argument(None, help="Overrides key=value."),
    ) -> None:
        """Paper recipe on real formats at tiny sizes: convert, check, SFT (also 2 processes),
        preference pairs (hf: judge), DPO, eval, report. Exit 1 if a stage fails."""
        from mu2.config import load_config
        from mu2.rehearse import RehearseConfig, rehearse

        path = config or configs / "rehearse" / "cpu.yaml"
        cfg = load_config(RehearseConfig, path if path.is_file() else None, overrides or [])
        ok, table = rehearse(out, configs, cfg)
        print(table)
        if not ok:
            raise typer.Exit(1)
