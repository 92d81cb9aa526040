"""Batch reports: one JSON per case, failures collected without stopping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mu2.errors import Mu2Error
from mu2.generate.batch import _unique_names, case_name, read_input_list, run_batch
from mu2.generate.pipeline import ReportGenerator


def test_read_input_list(tmp_path: Path) -> None:
    lst = tmp_path / "cases.txt"
    lst.write_text("# scans\n\na.nii.gz\n  /abs/b.nii  \n")
    assert read_input_list(lst) == [tmp_path / "a.nii.gz", Path("/abs/b.nii")]
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(Mu2Error, match="names no scans"):
        read_input_list(tmp_path / "empty.txt")
    with pytest.raises(Mu2Error, match="not found"):
        read_input_list(tmp_path / "missing.txt")


def test_case_names() -> None:
    assert case_name(Path("x/case_1.nii.gz")) == "case_1"
    assert case_name(Path("x/case_1.npy")) == "case_1"
    assert case_name(Path("x/dicom_folder")) == "dicom_folder"


def test_batch_keeps_going(generator: ReportGenerator, real_ct_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken.nii.gz"
    bad.write_text("not a volume")
    scans = [real_ct_path, bad, tmp_path / "missing.nii.gz", real_ct_path]
    res = run_batch(
        generator, scans, tmp_path / "out", progress=False, region="abdomen", max_new_tokens=2
    )
    assert [s for s, _ in res.written] == [real_ct_path, real_ct_path]
    names = sorted(p.name for _, p in res.written)
    assert names == ["example_ct.json", "example_ct_2.json"]  # same stem twice: no overwrite
    assert [s for s, _ in res.failed] == [bad, tmp_path / "missing.nii.gz"]
    assert all("\n" not in msg and str(s) in msg for s, msg in res.failed)
    doc = json.loads(res.written[0][1].read_text())
    assert doc["scan"] == str(real_ct_path)
    assert doc["sections"][0]["region"] == "abdomen"
    assert set(doc["timings"]) >= {"load", "prepare", "encode", "generate"}
    assert not res.ok
    failures = json.loads((tmp_path / "out" / "failures.json").read_text())
    assert [f["scan"] for f in failures] == [str(bad), str(tmp_path / "missing.nii.gz")]
    assert [f["error"] for f in failures] == [msg for _, msg in res.failed]


def test_a_scan_named_failures_does_not_overwrite_the_list() -> None:
    assert _unique_names([Path("failures.nii.gz"), Path("a/failures.npy")]) == [
        "failures_2",
        "failures_3",
    ]
