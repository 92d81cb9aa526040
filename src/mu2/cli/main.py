"""Entry point of the ``mu2`` console script.

Each sub-command group lives in its own module with a ``register(app)`` function; this
file only wires them together and turns :class:`mu2.errors.Mu2Error` into one line on
stderr and exit code 2 (never a traceback). Any other exception is a last resort: one
line too, exit 1 (an internal error), and the traceback only with ``mu2 --verbose`` (or
``MU2_TRACEBACK=1``).
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback

# Before torch loads: with the default active OpenMP waiting, torch's threads spin against
# each other on a busy 2-core machine and steps slow down several-fold (measured).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import typer

from mu2.errors import Mu2Error

# Modules under mu2.cli that add commands; each defines ``register(app: typer.Typer)``.
COMMAND_MODULES = (
    "inspect",
    "config",
    "data",
    "model",
    "train",
    "prefs",
    "evaluate",
    "report",
    "demo",
    "serve",
    "bench",
    "rehearse",
    "diagnose",
)


TRACEBACK_ENV = "MU2_TRACEBACK"


def _want_traceback(argv: list[str]) -> bool:
    return os.environ.get(TRACEBACK_ENV, "") not in ("", "0") or "--verbose" in argv


def _last_resort(err: BaseException, argv: list[str]) -> int:
    """One line for an exception no command turned into a Mu2Error; the traceback on demand.

    Out-of-memory and file-system errors are about the user's machine or paths (exit 2);
    anything else is a bug in mu2 (exit 1).
    """
    if _want_traceback(argv):
        traceback.print_exc()
    reason = (str(err).strip().splitlines() or [""])[0][:200]
    hint = "run `mu2 --verbose ...` for the traceback"
    if isinstance(err, MemoryError):
        print(
            "mu2: error: out of memory -- fix: free memory, or pass a smaller (cropped or "
            f"resampled) scan; {hint}",
            file=sys.stderr,
        )
        return 2
    if isinstance(err, OSError) and err.filename:
        print(
            f"mu2: error: {err.filename}: {err.strerror or reason} -- fix: check the path, its "
            f"permissions and the free disk space; {hint}",
            file=sys.stderr,
        )
        return 2
    print(
        f"mu2: internal error: {type(err).__name__}: {reason} -- {hint} and report it",
        file=sys.stderr,
    )
    return 1


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="mu2",
        help="mu2: radiology reports from 3-D CT (mu^2 Tokenizer, MICCAI 2025).",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        # inherited by every sub-command: -h works everywhere
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback()
    def _root(
        verbose: bool = typer.Option(
            False, "--verbose", help="Print the traceback of an unexpected error."
        ),
    ) -> None:
        """mu2: radiology reports from 3-D CT (mu^2 Tokenizer, MICCAI 2025)."""
        if verbose:
            os.environ[TRACEBACK_ENV] = "1"

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
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        app = build_app()
    except Exception as err:  # noqa: BLE001 - the last resort must catch everything
        return _last_resort(err, args)
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
    except Exception as err:  # noqa: BLE001 - the last resort must catch everything
        return _last_resort(err, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
