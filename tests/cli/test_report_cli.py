"""`mu2 report` through the real CLI entry point: outputs, batch mode, bad input -> exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from mu2.io.testing import make_bad_inputs

from .conftest import run


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real, untrained tiny mu2 model saved like a trained one."""
    from mu2.model import build

    out = tmp_path_factory.mktemp("report_cli_model")
    texts = ["Describe the findings of the abdomen in this CT.", "The liver is normal."]
    build("tiny", preset="mu2", train_texts=texts, seed=0).save_pretrained(out)
    return out


def test_every_bad_input_is_exit_2_one_line(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = make_bad_inputs(tmp_path)
    assert len(cases) >= 10
    for name, path in cases.items():
        code, out, err = run(["report", str(path), "--model", str(model_dir)], capsys)
        lines = err.strip().splitlines()
        assert code == 2, (name, code, err)
        assert len(lines) == 1, (name, err)
        assert lines[0].startswith("mu2: error:"), (name, err)
        assert "Traceback" not in err and out == ""


def test_missing_model_tells_how_to_fix(
    real_ct_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MU2_HOME", str(tmp_path / "home"))
    code, _, err = run(["report", str(real_ct_path)], capsys)
    assert code == 2
    assert err.strip().splitlines() == [
        f"mu2: error: no model at {tmp_path / 'home' / 'models' / 'demo'}: "
        "run `mu2 demo` or pass --model DIR"
    ]


@pytest.mark.parametrize(
    "args, words",
    [
        ([], "give a SCAN or --input-list"),
        (["SCAN", "--temperature", "0.7"], "--temperature only applies with --sample"),
        (["SCAN", "--region", "head"], "unknown --region 'head'"),
        (["SCAN", "--heatmap-nifti", "h.png"], "--heatmap-nifti must end in .nii"),
        (["--input-list", "x.txt"], "--input-list needs --out"),
        (["SCAN", "--sample", "--top-p", "1.5"], "top_p must lie in (0, 1]"),
        (["SCAN", "--question", "  "], "empty --question"),
        (["SCAN", "--question", "Any cyst?", "--region", "all"], "--region all"),
        (["SCAN", "--kv-cache", "paged"], "unknown KV cache 'paged'"),
        (["--input-list", "x.txt", "--out", "o", "--batch-size", "0"], "--batch-size must be"),
    ],
)
def test_option_errors_are_one_line(
    args: list[str],
    words: str,
    real_ct_path: Path,
    model_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [
        "report",
        *[str(real_ct_path) if a == "SCAN" else a for a in args],
        "--model",
        str(model_dir),
    ]
    code, _, err = run(argv, capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and words in err


def test_report_json_heatmaps_and_fhir(
    model_dir: Path, real_ct_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h_nii, h_png, fhir = tmp_path / "h.nii.gz", tmp_path / "h.png", tmp_path / "r.json"
    argv = [
        "report",
        str(real_ct_path),
        "--model",
        str(model_dir),
        "--json",
        "--max-new-tokens",
        "4",
    ]
    argv += ["--heatmap-nifti", str(h_nii), "--heatmap", str(h_png), "--fhir", str(fhir)]
    argv += ["--patient", "Patient/example"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert {"report", "sections", "findings", "timings", "model", "input"} <= set(doc)
    assert doc["timings"]["load"] > 0 and doc["timings"]["encode"] > 0
    assert doc["outputs"] == {
        "heatmap_nifti": str(h_nii),
        "heatmap_png": str(h_png),
        "fhir": str(fhir),
    }
    src, heat = nib.load(str(real_ct_path)), nib.load(str(h_nii))
    assert heat.shape == src.shape
    np.testing.assert_allclose(heat.affine, src.affine, atol=1e-5)
    assert h_png.stat().st_size > 20_000
    report = DiagnosticReport.model_validate(json.loads(fhir.read_text()))
    assert report.subject.reference == "Patient/example"
    assert report.presentedForm[0].data.decode("utf-8") == doc["report"]


def test_text_output(
    model_dir: Path, real_ct_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["report", str(real_ct_path), "--model", str(model_dir), "--region", "all"]
    code, _, err = run([*argv, "--max-new-tokens", "2"], capsys)
    # this abdomen-pelvis CT does not cover the chest: refused in one line unless --force
    assert code == 2 and "does not cover the chest" in err and "--force" in err
    code, out, _ = run(
        [*argv, "--force", "--max-new-tokens", "2", "--sample", "--seed", "1"], capsys
    )
    assert code == 0
    assert "CHEST:" in out and "ABDOMEN:" in out and "PELVIS:" in out
    assert "structured findings:" in out and "time: startup" in out and "model_load" in out
    assert "warning: model card missing" in out and "warning: asked because of --force" in out


def test_batch_mode_lists_failures_and_exits_1(
    model_dir: Path, real_ct_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"")
    lst = tmp_path / "cases.txt"
    lst.write_text(f"{real_ct_path}\nbad.nii.gz\n")
    out_dir = tmp_path / "out"
    argv = ["report", "--input-list", str(lst), "--out", str(out_dir), "--model", str(model_dir)]
    code, out, err = run([*argv, "--region", "abdomen", "--max-new-tokens", "2"], capsys)
    assert code == 1
    assert (out_dir / "example_ct.json").is_file()
    assert (
        json.loads((out_dir / "example_ct.json").read_text())["sections"][0]["region"] == "abdomen"
    )
    assert "1 scan(s) failed" in err and str(bad) in err and "empty" in err
    failures = json.loads((out_dir / "failures.json").read_text())
    assert [f["scan"] for f in failures] == [str(bad)] and "empty" in failures[0]["error"]
    assert "wrote 1 report(s)" in out


@pytest.mark.slow
def test_acceptance_command_in_a_fresh_process(
    model_dir: Path, real_ct_path: Path, tmp_path: Path
) -> None:
    """The issue's acceptance line, as a user types it (demo model found via $MU2_HOME)."""
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / "demo").symlink_to(model_dir, target_is_directory=True)
    mu2 = Path(sys.executable).with_name("mu2")
    cmd = [
        str(mu2),
        "report",
        str(real_ct_path),
        "--json",
        "--heatmap-nifti",
        "h.nii.gz",
        "--fhir",
        "r.json",
    ]
    env = {**os.environ, "MU2_HOME": str(home)}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["input"]["shape"] == [122, 101, 112]
    heat = nib.load(str(tmp_path / "h.nii.gz"))
    np.testing.assert_allclose(heat.affine, nib.load(str(real_ct_path)).affine, atol=1e-5)
    # no warnings or progress bars around the report, but the one line that the model has no
    # card (a test model; the outputs say so too)
    others = [line for line in proc.stderr.splitlines() if "no model_card.json" not in line]
    assert others == [], proc.stderr
