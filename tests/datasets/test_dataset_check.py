"""``mu2 data check``: readable images, non-empty answers, no case in two splits."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mu2.cli.main import main
from mu2.data.check import check_dataset
from mu2.data.schema import write_jsonl
from mu2.errors import Mu2Error


def _vol(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.random.default_rng(seed).normal(0, 50, (8, 8, 4)).astype(np.int16)
    a[0] = -1000
    nib.save(nib.Nifti1Image(a, np.eye(4)), str(path))


def _row(case: str, answer: str = "Normal.", image: str | None = None) -> dict:
    return {
        "id": f"{case}-abdomen",
        "case_id": case,
        "image": image or f"images/{case}.nii.gz",
        "question": "Describe the abdomen.",
        "answer": answer,
        "region": "abdomen",
    }


@pytest.fixture
def splits(tmp_path) -> Path:
    for i in range(4):
        _vol(tmp_path / "images" / f"c{i}.nii.gz", seed=i)
    write_jsonl([_row("c0"), _row("c1")], tmp_path / "train.jsonl")
    write_jsonl([_row("c2")], tmp_path / "val.jsonl")
    write_jsonl([_row("c3")], tmp_path / "test.jsonl")
    return tmp_path


def test_clean_splits_pass_with_a_summary(splits) -> None:
    res = check_dataset(splits / "val.jsonl")
    assert res.ok, res.problems
    assert (res.rows, res.cases, res.images) == (4, 4, 4)
    assert res.summary().startswith("OK: 3 file(s), 4 rows, 4 cases")


def test_every_kind_of_problem_is_listed(splits) -> None:
    shutil.copy(splits / "images" / "c0.nii.gz", splits / "images" / "copy.nii.gz")  # same scan
    (splits / "images" / "text.nii.gz").write_text("not a volume")
    write_jsonl(
        [
            _row("c2"),
            _row("c1"),
            _row("c5", answer="  "),
            _row("c6", image="images/none.nii.gz"),
            _row("c7", image="images/text.nii.gz"),
            _row("c8", image="images/copy.nii.gz"),
            _row("c2"),
        ],
        splits / "val.jsonl",
    )
    problems = "\n".join(check_dataset(splits / "train.jsonl").problems)
    assert "val: row 'c5-abdomen' has an empty answer" in problems
    assert "val: row id 'c2-abdomen' appears twice" in problems
    assert "case 'c1' is in several splits: train, val" in problems
    assert "row 'c6-abdomen': image unreadable" in problems and "none.nii.gz" in problems
    assert "row 'c7-abdomen': image unreadable" in problems
    assert "the same volume content is in several splits: c0 (train), c8 (val)" in problems


def test_a_file_outside_the_split_names_is_checked_alone(splits) -> None:
    shutil.copy(splits / "train.jsonl", splits / "extra.jsonl")
    res = check_dataset(splits / "extra.jsonl")
    assert res.ok and [f.name for f in res.files] == ["extra.jsonl"]


def test_bad_input_is_a_user_error_naming_file_and_line(splits, capsys) -> None:
    with open(splits / "test.jsonl", "a") as f:
        f.write('{"id": "broken"\n')
    with pytest.raises(Mu2Error, match="line 2: not valid JSON"):
        check_dataset(splits / "train.jsonl")
    assert main(["data", "check", str(splits / "train.jsonl"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "test.jsonl: line 2: not valid JSON" in err and "Traceback" not in err
    assert main(["data", "check", str(splits / "missing.jsonl")]) == 2
    assert "JSONL file not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    "line, what",
    [
        ('{"id": "broken"', "not valid JSON"),
        ('{"id": "c9", "image": "images/c0.nii.gz", "question": "Q?", "answer": 3}', "answer"),
        ('["not", "an", "object"]', "line 2"),
    ],
    ids=["syntax", "type", "not-an-object"],
)
def test_every_row_problem_comes_with_a_fix(splits, capsys, line, what) -> None:
    with open(splits / "test.jsonl", "a") as f:
        f.write(line + "\n")
    assert main(["data", "check", str(splits / "train.jsonl"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "test.jsonl" in err and what in err and "fix:" in err


def test_every_listed_problem_has_a_fix(splits) -> None:
    write_jsonl([_row("c2"), _row("c2"), _row("c1"), _row("c5", answer=" ")], splits / "val.jsonl")
    problems = check_dataset(splits / "train.jsonl").problems
    assert len(problems) >= 4  # duplicate id, case in two splits (row and case), empty answer
    assert all("fix:" in p for p in problems), problems


def test_an_empty_split_file_is_an_error(splits, capsys) -> None:
    (splits / "val.jsonl").write_text("\n")
    assert main(["data", "check", str(splits / "train.jsonl"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "val.jsonl" in err and "no rows" in err and "fix:" in err
