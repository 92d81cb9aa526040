"""Adapters, each on small files written in the data set's own layout."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mu2.cli.main import main
from mu2.data.adapters import (
    convert_abdomenatlas,
    convert_amos_mm,
    convert_ct_rate,
    convert_m3d_cap,
    convert_unified,
    looks_like_hu,
)
from mu2.data.check import check_dataset
from mu2.data.schema import read_jsonl, write_jsonl
from mu2.data.volume_io import load_record_image
from mu2.errors import Mu2Error


def _hu_phantom(seed: int = 0) -> np.ndarray:
    """(16, 16, 6) HU: air around a soft-tissue body with fat."""
    rng = np.random.default_rng(seed)
    a = np.full((16, 16, 6), -1000.0)
    a[3:13, 3:13] = -100.0
    a[5:11, 5:11] = 45.0
    return (a + rng.normal(0, 5, a.shape)).round().astype(np.int16)


def _nifti(path: Path, data: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.diag([0.8, 0.8, 2.0, 1.0])), str(path))
    return path


def _csv(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def test_amos_mm_one_row_per_region_plus_qa(tmp_path) -> None:
    root = tmp_path / "amos"
    _nifti(root / "imagesTr" / "amos_0001.nii.gz", _hu_phantom())
    item = {
        "image": "imagesTr/amos_0001.nii.gz",
        "labels": {
            "report": {
                "findings": {
                    "chest": "No pleural effusion.",
                    "abdomen": "Splenomegaly.",
                    "pelvis": "",
                },
                "impression": "Splenomegaly.",
            },
            "qa": [
                {
                    "question": "Is the spleen enlarged?",
                    "options": {"A": "yes", "B": "no"},
                    "answer": "A",
                },
                {"bad": 1},
            ],
        },
    }
    (root / "dataset.json").write_text(json.dumps({"training": [item], "validation": []}))
    out = tmp_path / "conv" / "amos.jsonl"
    conv = convert_amos_mm(root / "dataset.json", out)
    regions = [(r.region, r.task) for r in conv.records]
    assert regions == [("chest", "report"), ("abdomen", "report"), (None, "vqa")]
    assert conv.records[1].answer == "Splenomegaly." and conv.records[1].case_id == "amos_0001"
    assert (
        conv.records[2].answer == "A. yes" and "Choices: A. yes B. no" in conv.records[2].question
    )
    assert len(conv.skipped) == 1
    write_jsonl(conv.records, out)
    assert check_dataset(out).ok
    with pytest.raises(Mu2Error, match="no list 'test'"):
        convert_amos_mm(root / "dataset.json", out, split="test")


def test_ct_rate_detects_raw_and_hu_volumes_and_rescales_once(tmp_path) -> None:
    root = tmp_path / "dataset"
    hu = _hu_phantom(1)
    _nifti(
        root / "train" / "train_1" / "train_1_a" / "train_1_a_1.nii.gz",
        (hu + 1024).astype(np.int16),
    )
    _nifti(root / "train_fixed" / "train_2" / "train_2_a" / "train_2_a_1.nii.gz", hu)
    _nifti(root / "train" / "train_3" / "train_3_a" / "train_3_a_1.nii.gz", hu)  # v1 name, HU data
    names = ["train_1_a_1.nii.gz", "train_2_a_1.nii.gz", "train_3_a_1.nii.gz"]
    _csv(
        root / "radiology_text_reports" / "train_reports.csv",
        [
            {"VolumeName": n, "Findings_EN": f"Report {i}.", "Impressions_EN": "Fine."}
            for i, n in enumerate(names)
        ],
    )
    _csv(
        root / "metadata" / "train_metadata.csv",
        [
            {
                "VolumeName": n,
                "XYSpacing": "[0.8, 0.8]",
                "ZSpacing": "2.0",
                "RescaleSlope": "1",
                "RescaleIntercept": "-1024",
            }
            for n in names
        ],
    )
    out = tmp_path / "ctrate.jsonl"
    conv = convert_ct_rate(root, out)
    meta = {r.id: r.meta for r in conv.records}
    assert (
        meta["train_1_a_1"]["hu_already"] is False and meta["train_1_a_1"]["hu_check"] == "values"
    )
    assert (
        meta["train_2_a_1"]["hu_already"] is True and meta["train_2_a_1"]["hu_check"] == "v2 layout"
    )
    assert meta["train_3_a_1"]["hu_already"] is True  # already HU: not rescaled a second time
    assert meta["train_1_a_1"]["spacing"] == [0.8, 0.8, 2.0]
    assert {r.region for r in conv.records} == {"chest"}
    write_jsonl(conv.records, out)
    arrays = [load_record_image(r, out).array for r in conv.records]
    for a in arrays:  # every volume ends up in the same HU, whichever way it was stored
        np.testing.assert_allclose(a, arrays[1])
    # the checker sees the same content three times, but in one file: no problem
    assert check_dataset(out).ok
    forced = convert_ct_rate(root, out, hu="no")
    assert forced.records[1].meta["hu_already"] is True  # the v2 layout wins over --hu
    assert forced.records[2].meta["hu_already"] is False


def test_looks_like_hu_decides_by_which_reading_is_ct() -> None:
    hu = _hu_phantom(2)
    assert looks_like_hu(hu, 1.0, -1024.0)
    assert not looks_like_hu(hu + 1024, 1.0, -1024.0)
    assert looks_like_hu(hu + 1024, 1.0, 0.0)  # nothing to rescale


def test_ct_rate_missing_volumes_fail_unless_skipped(tmp_path) -> None:
    root = tmp_path / "dataset"
    _csv(root / "reports.csv", [{"VolumeName": "valid_9_a_1.nii.gz", "Findings_EN": "x."}])
    _csv(
        root / "metadata.csv",
        [{"VolumeName": "valid_9_a_1.nii.gz", "RescaleSlope": "1", "RescaleIntercept": "0"}],
    )
    with pytest.raises(Mu2Error, match="1 volume"):
        convert_ct_rate(root, tmp_path / "o.jsonl")
    assert convert_ct_rate(root, tmp_path / "o.jsonl", skip_missing=True).skipped


def test_abdomenatlas_bdmap_folders_and_report_csv(tmp_path) -> None:
    root = tmp_path / "AbdomenAtlas"
    for i in (1, 2):
        _nifti(root / f"BDMAP_{i:08d}" / "ct.nii.gz", _hu_phantom(i))
    _csv(
        root / "AbdomenAtlas3.0.csv",
        [
            {
                "BDMAP ID": "BDMAP_00000001",
                "structured report": "s",
                "narrative report": "Liver cyst.",
            },
            {"BDMAP ID": "BDMAP_00000002", "structured report": "s", "narrative report": ""},
        ],
    )
    out = tmp_path / "aa.jsonl"
    conv = convert_abdomenatlas(root, out)
    assert [(r.case_id, r.answer, r.region) for r in conv.records] == [
        ("BDMAP_00000001", "Liver cyst.", "abdomen")
    ]
    assert conv.skipped == ["BDMAP_00000002: empty report"]
    other = convert_abdomenatlas(root, out, report_column="structured report")
    assert len(other.records) == 2
    with pytest.raises(Mu2Error, match="no column 'report text'"):
        convert_abdomenatlas(root, out, report_column="report text")


def test_m3d_cap_json_and_folder_give_unit_scaled_rows(tmp_path) -> None:
    root = tmp_path / "M3D_Cap_npy"
    arr = np.random.default_rng(0).random((1, 32, 16, 16)).astype(np.float32)
    for case, series in (
        ("000006", "Axial_C__portal_venous"),
        ("000006", "Coronal"),
        ("000007", "Axial"),
    ):
        (root / "ct_case" / case).mkdir(parents=True, exist_ok=True)
        np.save(root / "ct_case" / case / f"{series}.npy", arr)
        (root / "ct_case" / case / "text.txt").write_text(f"Findings of case {case}.")
    split = {
        "train": [{"image": "ct_case/000006/Coronal.npy", "text": "ct_case/000006/text.txt"}],
        "validation": [{"image": "ct_case/000007/Axial.npy", "text": "ct_case/000007/text.txt"}],
    }
    (root / "M3D_Cap.json").write_text(json.dumps(split))
    out = tmp_path / "m3d.jsonl"
    conv = convert_m3d_cap(root / "M3D_Cap.json", out, split="train")
    assert [r.id for r in conv.records] == ["000006/Coronal"]
    folder = convert_m3d_cap(root, out)
    assert sorted(r.case_id for r in folder.records) == ["000006", "000006", "000007"]
    write_jsonl(folder.records, out)
    img = load_record_image(folder.records[0], out)
    assert img.intensity == "unit" and img.array.shape == (16, 16, 32)  # (1, D, H, W) -> (W, H, D)
    np.testing.assert_array_equal(img.array, arr[0].transpose(2, 1, 0))
    assert check_dataset(out).ok


def test_unified_rows_are_validated_and_rebased(tmp_path) -> None:
    src = tmp_path / "a" / "train.jsonl"
    _nifti(tmp_path / "a" / "images" / "c.nii.gz", _hu_phantom())
    write_jsonl([{"id": "c", "image": "images/c.nii.gz", "question": "q", "answer": "a"}], src)
    out = tmp_path / "b" / "deep" / "rows.jsonl"
    conv = convert_unified(src, out)
    assert conv.records[0].image == "../../a/images/c.nii.gz"
    write_jsonl(conv.records, out)
    assert check_dataset(out).ok
    src.write_text('{"id": "c"}\n')
    with pytest.raises(Mu2Error, match="line 1: missing key"):
        convert_unified(src, out)


def test_cli_convert(tmp_path, capsys) -> None:
    root = tmp_path / "AbdomenAtlas"
    _nifti(root / "BDMAP_00000001" / "ct.nii.gz", _hu_phantom())
    _csv(root / "reports.csv", [{"BDMAP_ID": "BDMAP_00000001", "report": "Normal."}])
    out = tmp_path / "o.jsonl"
    with pytest.raises(SystemExit) as done:
        main(["data", "convert", "--format", "abdomenatlas", str(root), "--out", str(out)])
    assert done.value.code == 0 and "wrote 1 rows (1 cases)" in capsys.readouterr().out
    assert read_jsonl(out)[0].image == "AbdomenAtlas/BDMAP_00000001/ct.nii.gz"
    assert main(["data", "convert", "--format", "mimic", str(root), "--out", str(out)]) == 2
    assert "unknown --format 'mimic'" in capsys.readouterr().err
