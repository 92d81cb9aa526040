"""``mu2 config list`` / ``mu2 config show NAME``: the YAML configs shipped with mu2.

Every ``--config`` accepts these names (``--config paper`` under ``mu2 train sft``, or
``sft/paper`` anywhere); ``show`` prints one to copy and edit.
"""

from __future__ import annotations

import typer


def _summary(text: str) -> str:
    """The first comment line of a config, its one-line description."""
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="The YAML configs shipped with mu2.", no_args_is_help=True)
    app.add_typer(group, name="config")

    @group.command("list")
    def list_() -> None:
        """Name and first line of every shipped config (use the name with --config)."""
        from mu2.config_files import list_configs

        shipped = list_configs()
        width = max((len(k) for k in shipped), default=0)
        for name, path in shipped.items():
            print(f"{name:<{width}}  {_summary(path.read_text())}")

    @group.command("show")
    def show(
        name: str = typer.Argument(..., help="A config name from `mu2 config list`."),
        path_only: bool = typer.Option(False, "--path", help="Print the file's path only."),
    ) -> None:
        """Print a shipped config (redirect it to a file to edit your own copy)."""
        from mu2.config_files import resolve_config

        path = resolve_config(name)
        print(path if path_only else path.read_text(), end="\n" if path_only else "")
