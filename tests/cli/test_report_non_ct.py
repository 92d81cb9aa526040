"""`mu2 report` on volumes that are not CT: refused in one line (exit 2) unless
--allow-non-ct, and then every output (text, JSON, FHIR, PNG title) says so.

Inputs: the repository's real MR volume and real organ label map, and a blank and an
impossible-valued volume written on the real CT's grid.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from fhir.resources.diagnosticreport import DiagnosticReport as DiagnosticReportR5
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from PIL import Image

from .conftest import run

# name -> what the one-line refusal says the volume looks like
LOOKS_LIKE = {
    "mr": "looks like MR",
    "label_map": "looks like a label map",
    "blank": "it is blank",
    "impossible": "outside any CT scale",
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real, untrained tiny mu2 model saved like a trained one (no model card)."""
    from mu2.model import build

    out = tmp_path_factory.mktemp("non_ct_model")
    texts = ["Describe the findings of the abdomen in this CT.", "The liver is normal."]
    build("tiny", preset="mu2", train_texts=texts, seed=0).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Path]:
    real = data_dir / "real-ct"
    out = tmp_path_factory.mktemp("non_ct")
    ct = nib.load(real / "example_ct_sm.nii.gz")
    files = {"mr": real / "example_mr_sm.nii.gz", "label_map": real / "example_seg.nii.gz"}
    for name, value in (("blank", 0.0), ("impossible", 1e31)):
        data = np.zeros(ct.shape, np.float32)
        if name == "impossible":
            data[:] = np.asarray(ct.dataobj, np.float32)
            data[60, 50, 15] = value  # one voxel no scanner can write
        files[name] = out / f"{name}.nii.gz"
        nib.save(nib.Nifti1Image(data, ct.affine), files[name])
    return files


@pytest.mark.parametrize("name", list(LOOKS_LIKE))
def test_non_ct_is_refused_in_one_line(
    name: str, inputs: dict[str, Path], model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = inputs[name]
    code, out, err = run(["report", str(path), "--model", str(model_dir)], capsys)
    lines = [x for x in err.strip().splitlines() if not x.startswith("mu2: warning:")]
    assert code == 2, err
    assert len(lines) == 1 and out == "" and "Traceback" not in err, err
    line = lines[0]
    assert line.startswith(f"mu2: error: {path}: not a CT"), line  # which file, what
    assert LOOKS_LIKE[name] in line and "--allow-non-ct" in line  # what it looks like, fix


@pytest.mark.parametrize("name", ["mr", "label_map", "blank"])
def test_allow_non_ct_warns_in_every_output(
    name: str,
    inputs: dict[str, Path],
    model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = inputs[name]
    fhir, png = tmp_path / "fhir.json", tmp_path / "heat.png"
    base = ["report", str(path), "--model", str(model_dir), "--allow-non-ct"]
    base += ["--region", "abdomen", "--force", "--max-new-tokens", "2"]
    code, out, err = run([*base, "--json", "--fhir", str(fhir), "--heatmap", str(png)], capsys)
    assert code == 0, err
    doc = json.loads(out)
    warning = next(w for w in doc["warnings"] if "not a CT" in w)
    assert str(path) in warning and LOOKS_LIKE[name] in warning and "--allow-non-ct" in warning
    report = json.loads(fhir.read_text())
    for model in (DiagnosticReport, DiagnosticReportR5):
        model.model_validate(report)
    assert warning in report["conclusion"]
    assert warning in " ".join(Image.open(png).text["Title"].split())  # the PNG title
    code, out, err = run(base, capsys)  # the text output
    assert code == 0 and f"warning: {warning}" in out
