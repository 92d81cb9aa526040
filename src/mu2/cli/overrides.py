"""One override syntax on every command: ``key=value`` positional (as torchtune and Hydra
take them), with ``--set key=value`` accepted as an alias (repeatable)."""

from __future__ import annotations

import typer

HELP = "Config overrides key=value (dotted keys), e.g. optim.lr=1e-4."


def positional(help: str = HELP):
    return typer.Argument(None, metavar="KEY=VALUE", help=help, show_default=False)


def set_option():
    return typer.Option([], "--set", help="Alias of a positional KEY=VALUE (repeatable).")


def merge(positional_values: list[str] | None, set_values: list[str] | None) -> list[str]:
    """Positional overrides first, then --set ones (a later one wins on the same key)."""
    return [*(positional_values or []), *(set_values or [])]
