"""Shared helpers of the CLI tests."""

from __future__ import annotations

import pytest

from mu2.cli.main import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run `mu2 ARGV` in-process; (exit code, stdout, stderr)."""
    try:
        code = main(argv)
    except SystemExit as exc:  # typer's standalone mode exits on success and usage errors
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err
