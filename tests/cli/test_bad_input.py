"""Every bad input through `mu2 inspect`: exit 2, one line on stderr, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mu2.cli.main import main
from mu2.io.testing import make_bad_inputs

MU2 = Path(sys.executable).parent / "mu2"
CASES = [
    "truncated_nii_gz",
    "zero_byte",
    "text_as_nii_gz",
    "image_2d",
    "volume_4d",
    "nan_voxels",
    "inf_voxels",
    "dicom_no_images",
    "over_memory_cap",
    "nonexistent",
    "unknown_extension",
    "non_ct_dicom",
]


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    return make_bad_inputs(tmp_path_factory.mktemp("bad_cli"))


def test_cases_cover_the_helper(bad_inputs):
    assert set(bad_inputs) == set(CASES)


@pytest.mark.parametrize("name", CASES)
def test_bad_input_exit_2_one_line(capfd, bad_inputs, name):
    path = bad_inputs[name]
    try:
        code = main(["inspect", str(path)])
    except SystemExit as done:
        code = done.code
    out = capfd.readouterr()
    assert code == 2
    lines = out.err.strip().splitlines()
    assert len(lines) == 1, out.err
    assert lines[0].startswith("mu2: error: ") and str(path) in lines[0] and "fix:" in lines[0]
    assert "Traceback" not in out.err + out.out
    assert out.out == ""


def test_console_script_bad_inputs(bad_inputs):
    """The installed `mu2` script, as a user runs it."""
    path = bad_inputs["truncated_nii_gz"]
    proc = subprocess.run(
        [str(MU2), "inspect", str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert str(path) in proc.stderr


def test_non_ct_dicom_allowed_with_flag(capfd, bad_inputs):
    try:
        code = main(["inspect", str(bad_inputs["non_ct_dicom"]), "--allow-non-ct"])
    except SystemExit as done:
        code = done.code
    out = capfd.readouterr()
    assert code == 0
    assert "MR (DICOM Modality tag)" in out.out


def test_memory_cap_flag(capfd, real_ct_path):
    try:
        code = main(["inspect", str(real_ct_path), "--max-voxels", "1000"])
    except SystemExit as done:
        code = done.code
    assert code == 2 and "memory cap" in capfd.readouterr().err
