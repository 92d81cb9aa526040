"""Shared fixtures: paths to the real CT samples shipped in tests/data."""

from __future__ import annotations

import os
from pathlib import Path

# Before torch loads (see mu2.cli.main): passive OpenMP waiting on small shared machines.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def real_ct_path() -> Path:
    """Abdomen/pelvis CT (TotalSegmentator test file, Apache-2.0): 122 x 101 x 112, 3 mm, RAS."""
    return DATA / "real-ct" / "example_ct.nii.gz"
