"""`mu2 report` on the real abdomen-pelvis CT with a model whose card says what the demo
model's says: trained on synthetic phantoms of the chest and abdomen only.

The card is written by `mu2 model card --data` from real synthetic training rows (the demo's
data generator), as for any model saved before cards existed; the model is a real, untrained
tiny mu2 model, so the tests check what is asked and what every output carries, not text
quality.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from fhir.resources.diagnosticreport import DiagnosticReport as DiagnosticReportR5
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from mu2.cli.main import main

from .conftest import run

SYNTHETIC = "trained on synthetic phantoms only"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mu2.data.synthetic.synth import synthesize
    from mu2.data.synthetic.synth_config import make_config
    from mu2.model import build

    data = tmp_path_factory.mktemp("card_synth")
    synthesize(data, 6, 0, make_config("tiny", "tiny"), workers=1, progress=False)
    out = tmp_path_factory.mktemp("card_model")
    texts = ["Describe the findings of the abdomen in this CT.", "The liver is normal."]
    build("tiny", preset="mu2", train_texts=texts, seed=0).save_pretrained(out)
    try:
        code = main(["model", "card", str(out), "--data", str(data / "train.jsonl")])
    except SystemExit as exc:
        code = exc.code
    assert code in (0, None)
    return out


def test_card_lists_what_the_rows_hold(model_dir: Path) -> None:
    card = json.loads((model_dir / "model_card.json").read_text())
    assert card["regions"] == ["chest", "abdomen"]  # the synthetic set has no pelvis
    assert card["synthetic_only"] is True and card["training_data"][0]["dataset"] == "synth"


def test_report_on_the_abdomen_pelvis_ct(
    model_dir: Path, real_ct_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fhir = tmp_path / "fhir.json"
    argv = ["report", str(real_ct_path), "--model", str(model_dir), "--max-new-tokens", "8"]
    code, out, err = run([*argv, "--json", "--fhir", str(fhir)], capsys)
    assert code == 0, err
    doc = json.loads(out)
    # the scan covers abdomen and pelvis, the card chest and abdomen: the abdomen is asked
    assert doc["coverage"]["regions"] == ["abdomen", "pelvis"]
    assert [s["region"] for s in doc["sections"]] == ["abdomen"]
    assert doc["model"]["card"]["regions"] == ["chest", "abdomen"]
    card_warning = next(w for w in doc["warnings"] if SYNTHETIC in w)
    assert any("pelvis" in w and "not asked" in w for w in doc["warnings"])
    assert SYNTHETIC in doc["model"]["note"]
    keys = Counter((f["organ"], f["finding"], f["side"]) for f in doc["findings"])
    assert all(n == 1 for n in keys.values())  # one finding per organ/kind/side

    report = json.loads(fhir.read_text())
    DiagnosticReport.model_validate(report)
    DiagnosticReportR5.model_validate(report)
    device = next(c for c in report["contained"] if c["resourceType"] == "Device")
    Device.model_validate(device)
    assert any(SYNTHETIC in n["text"] for n in device["note"])
    assert report["extension"][0]["valueReference"]["reference"] == f"#{device['id']}"
    assert card_warning in report["conclusion"]

    code, out, _ = run(argv, capsys)  # the text output
    assert code == 0 and f"warning: {card_warning}" in out and "ABDOMEN:" in out
    assert "PELVIS:" not in out and "CHEST:" not in out


def test_region_outside_the_card_is_refused_unless_forced(
    model_dir: Path, real_ct_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["report", str(real_ct_path), "--model", str(model_dir), "--region", "pelvis"]
    code, out, err = run([*argv, "--max-new-tokens", "2"], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) == 1, err
    assert lines[0].startswith(
        f"mu2: error: {real_ct_path}: the model was not trained on the pelvis"
    )
    assert "--force" in lines[0]
    code, out, err = run([*argv, "--force", "--max-new-tokens", "2", "--json"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert [s["region"] for s in doc["sections"]] == ["pelvis"]
    assert any(w.startswith("asked because of --force") for w in doc["warnings"])
