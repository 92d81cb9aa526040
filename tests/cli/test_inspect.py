"""`mu2 inspect`: the real CLI on the real CT samples, text and JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mu2.cli.main import main

MU2 = Path(sys.executable).parent / "mu2"


def run_cli(args: list[str]) -> int:
    try:
        return main(args)
    except SystemExit as done:  # typer exits with SystemExit(0) on success
        return int(done.code or 0)


def test_inspect_nifti_text(capsys, real_ct_path):
    assert run_cli(["inspect", str(real_ct_path)]) == 0
    out = capsys.readouterr()
    assert "122 x 101 x 112" in out.out
    assert "spacing:      3 x 3 x 3 mm" in out.out
    assert "RAS (canonical); source RAS" in out.out
    assert "CT (values look like Hounsfield units)" in out.out
    assert "min -1207" in out.out and "max 3382" in out.out
    assert out.err == ""


def test_inspect_dicom_json(capsys, data_dir):
    folder = data_dir / "real-ct" / "example_ct_dicom"
    assert run_cli(["inspect", str(folder), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["shape"] == [512, 512, 20]
    assert info["spacing_mm"] == pytest.approx([0.9765625, 0.9765625, 2.0])
    assert info["orientation"] == {"canonical": "RAS", "source": "LPS"}
    assert info["modality"] == "CT"
    assert info["hu"]["min"] == -1024.0  # intercept applied once
    assert -1030 < info["hu"]["p1"] < -950
    assert set(info["hu"]) == {"min", "p1", "p50", "p99", "max"}
    assert info["series"]["n_slices"] == 20


def test_inspect_dicom_text(capsys, data_dir):
    assert run_cli(["inspect", str(data_dir / "real-ct" / "example_ct_dicom")]) == 0
    out = capsys.readouterr().out
    assert "512 x 512 x 20" in out and "0.977 x 0.977 x 2 mm" in out
    assert "source LPS" in out and "CT (DICOM Modality tag)" in out


def test_inspect_mr_warns_on_stderr(capsys, data_dir):
    path = data_dir / "real-ct" / "example_mr_sm.nii.gz"
    assert run_cli(["inspect", str(path), "--json"]) == 0
    out = capsys.readouterr()
    info = json.loads(out.out)
    assert info["orientation"]["source"] == "LPS"
    assert info["modality_guess"].startswith("not CT")
    assert len(info["warnings"]) == 1
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mu2: warning:") and str(path) in lines[0]


def test_console_script_inspect(real_ct_path):
    proc = subprocess.run(
        [str(MU2), "inspect", str(real_ct_path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["shape"] == [122, 101, 112]
