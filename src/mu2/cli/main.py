"""Entry point of the ``mu2`` console script.

Each sub-command group lives in its own module with a ``register(app)`` function; this
file only wires them together and turns :class:`mu2.errors.Mu2Error` into one line on
stderr and exit code 2 (never a traceback).
"""

from __future__ import annotations

import importlib
import os
import sys

# Before torch loads: with the default active OpenMP waiting, torch's threads spin against
# each other on a busy 2-core machine and steps slow down several-fold (measured).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import typer

from mu2.errors import Mu2Error

# Modules under mu2.cli that add commands; each defines ``register(app: typer.Typer)``.
COMMAND_MODULES = (
    "inspect",
    "data",
    "model",
    "train",
    "prefs",
    "evaluate",
    "report",
    "demo",
    "serve",
    "bench",
    "diagnose",
)


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="mu2",
        help="mu2: radiology reports from 3-D CT (mu^2 Tokenizer, MICCAI 2025).",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _root() -> None:
        """mu2: radiology reports from 3-D CT (mu^2 Tokenizer, MICCAI 2025)."""

    @app.command("version")
    def version() -> None:
        """Print the mu2 version."""
        from mu2 import __version__

        print(__version__)

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"mu2.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"mu2.cli.{name}":
                continue  # command group not part of this build
            raise
        module.register(app)
    return app


def main(argv: list[str] | None = None) -> int:
    app = build_app()
    # Standalone mode: typer handles usage errors itself (exit 2) and exits via SystemExit;
    # only our own user errors arrive here as exceptions.
    try:
        app(args=argv, prog_name="mu2")
    except Mu2Error as err:
        print(f"mu2: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mu2: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
