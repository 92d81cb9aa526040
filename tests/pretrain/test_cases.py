"""Stage-0 items: one per scan, its reports in region order, its findings, the label space."""

import json

import pytest
import torch

from mu2.errors import Mu2Error
from mu2.findings.catalogue import Finding
from mu2.pretrain.cases import LabelSpace, read_cases, write_cases

CYST = {"organ": "kidney", "finding": "renal_cyst", "side": "bilateral", "size_mm": 20.0}
SPLEEN = {"organ": "spleen", "finding": "splenomegaly"}
EFFUSION = {"organ": "pleura", "finding": "pleural_effusion", "side": "left", "severity": "mild"}


def _rows():
    base = {"image": "images/a.nii.gz", "case_id": "a", "dataset": "synth"}
    return [
        {**base, "id": "a-abd", "question": "Q", "answer": "Bilateral renal cysts. Splenomegaly.",
         "findings": [CYST, SPLEEN], "region": "abdomen", "task": "report"},
        {**base, "id": "a-chest", "question": "Q", "answer": "Small left pleural effusion.",
         "findings": [EFFUSION], "region": "chest", "task": "report"},
        {**base, "id": "a-vqa", "question": "Is there a renal cyst?", "answer": "Yes.",
         "findings": [CYST, SPLEEN], "region": "abdomen", "task": "vqa"},
        {"id": "b-abd", "case_id": "b", "image": "images/b.nii.gz", "question": "Q",
         "answer": "Normal abdomen.", "findings": [], "region": "abdomen", "task": "report"},
    ]  # fmt: skip


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_one_case_per_scan_reports_in_region_order(tmp_path):
    cases = read_cases(_write(tmp_path / "train.jsonl", _rows()))
    assert [c.case_id for c in cases] == ["a", "b"]
    a = cases[0]
    assert a.text == "Small left pleural effusion. Bilateral renal cysts. Splenomegaly."
    assert a.regions == ["chest", "abdomen"]
    assert sorted(f.finding for f in a.findings) == [
        "pleural_effusion",
        "renal_cyst",
        "splenomegaly",
    ]
    assert a.image == str((tmp_path / "images" / "a.nii.gz").resolve())
    assert cases[1].findings == []
    assert [c.case_id for c in read_cases(tmp_path / "train.jsonl", limit=1)] == ["a"]


def test_written_cases_keep_fields(tmp_path):
    cases = read_cases(_write(tmp_path / "train.jsonl", _rows()))
    path = write_cases(cases, tmp_path / "out" / "cases.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows[0]["id"] == "a" and rows[0]["text"] == cases[0].text
    assert len(rows[0]["findings"]) == 3 and rows[0]["regions"] == ["chest", "abdomen"]


def test_rows_of_one_case_with_two_images_are_an_error(tmp_path):
    rows = _rows()
    rows[1]["image"] = "images/other.nii.gz"
    with pytest.raises(Mu2Error, match="different images"):
        read_cases(_write(tmp_path / "train.jsonl", rows))


def test_no_report_rows_is_an_error(tmp_path):
    rows = [r for r in _rows() if r["task"] == "vqa"]
    with pytest.raises(Mu2Error, match="no report rows"):
        read_cases(_write(tmp_path / "train.jsonl", rows))


def test_label_space_kinds_then_sides_and_bilateral_sets_both(tmp_path):
    cases = read_cases(_write(tmp_path / "train.jsonl", _rows()))
    labels = LabelSpace.from_cases(cases)
    assert labels.names == [
        "splenomegaly", "renal_cyst", "renal_cyst:left", "renal_cyst:right",
        "pleural_effusion", "pleural_effusion:left",
    ]  # fmt: skip
    assert labels.kinds == ["splenomegaly", "renal_cyst", "pleural_effusion"]
    target = labels.encode(cases[0].findings)
    assert target.tolist() == [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    right_only = labels.encode([Finding("kidney", "renal_cyst", side="right", size_mm=10.0)])
    assert right_only.tolist() == [0.0, 1.0, 0.0, 1.0, 0.0, 0.0]
    # kinds outside the space are ignored; dict findings (JSONL) work too
    assert torch.equal(
        labels.encode([{"organ": "liver", "finding": "hepatomegaly"}]), torch.zeros(6)
    )
    assert LabelSpace.from_cases(cases, sides=False).names == [
        "splenomegaly", "renal_cyst", "pleural_effusion",
    ]  # fmt: skip
