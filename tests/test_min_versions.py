"""The declared minimum versions (pyproject.toml floors) install together and pass the quick
tests (scripts/check_min_versions.py; slow: a fresh virtual environment from PyPI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.release
def test_minimum_versions_pass_the_quick_tests(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "check_min_versions.py"),
            "--venv",
            str(tmp_path / "v"),
        ],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-3000:]
    assert "minimum-versions check: rc=0" in out.stdout
