"""The unified JSONL: round trip, validation errors naming file and line, image paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mu2.data.schema import Record, read_jsonl, relative_image, resolve_image, write_jsonl
from mu2.errors import Mu2Error

ROW = {
    "id": "a-abdomen",
    "case_id": "a",
    "image": "images/a.nii.gz",
    "question": "Q?",
    "answer": "No ascites.",
    "findings": [{"organ": "spleen", "finding": "splenomegaly"}],
    "region": "abdomen",
    "task": "report",
    "dataset": "synth",
}


def test_round_trip_keeps_unknown_keys_and_key_order(tmp_path) -> None:
    rows = [
        Record(id="x", image="i.nii.gz", question="q", answer="a"),
        {**ROW, "augmented": "rewrite", "source_id": "x"},
    ]
    p = write_jsonl(rows, tmp_path / "d.jsonl")
    back = read_jsonl(p)
    assert back[0].case_id == "x" and back[0].task == "report" and back[0].region is None
    assert back[1].extra == {"augmented": "rewrite", "source_id": "x"}
    assert back[1].finding_objects()[0].finding == "splenomegaly"
    write_jsonl(back, tmp_path / "again.jsonl")
    assert (tmp_path / "again.jsonl").read_bytes() == p.read_bytes()
    assert list(json.loads(p.read_text().splitlines()[1])) == [*ROW, "augmented", "source_id"]


def test_reference_code_rows_and_preference_rows_are_accepted(tmp_path) -> None:
    p = tmp_path / "ref.jsonl"
    p.write_text(
        json.dumps({"id": "1", "image": "/abs/ct.nii.gz", "question": "q", "answer": "a"})
        + "\n\n"
        + json.dumps(
            {"id": "2", "image": "ct.nii.gz", "question": "q", "chosen": "good", "rejected": "bad"}
        )
        + "\n"
    )
    a, b = read_jsonl(p)
    assert resolve_image(a, p) == Path("/abs/ct.nii.gz")
    assert resolve_image(b, p) == tmp_path / "ct.nii.gz"
    assert b.extra == {"chosen": "good", "rejected": "bad"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "1", "image": "x", "question": "q", "answer": "a"', "line 2: not valid JSON"),
        ('["not", "an", "object"]', "line 2: expected a JSON object"),
        ('{"id": "1", "image": "x", "question": "q"}', "line 2: missing key(s) answer"),
        (
            '{"id": "1", "image": "x", "question": "q", "answer": "a", "region": "head"}',
            "line 2: \"region\" is 'head'",
        ),
        (
            '{"id": "1", "image": "x", "question": "q", "answer": "a", "task": "chat"}',
            "line 2: \"task\" is 'chat'",
        ),
        (
            '{"id": "1", "image": "x", "question": "q", "answer": "a", "findings": [{"organ": '
            '"liver", "finding": "brain_tumour"}]}',
            "line 2: bad finding",
        ),
        ('{"id": 7, "image": "x", "question": "q", "answer": "a"}', '"id" must be a string'),
    ],
)
def test_bad_lines_raise_mu2error_naming_file_and_line(tmp_path, line, message) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps(ROW) + "\n" + line + "\n")
    with pytest.raises(Mu2Error) as err:
        read_jsonl(p)
    assert message in str(err.value) and str(p) in str(err.value)


def test_missing_file_and_relative_paths(tmp_path) -> None:
    with pytest.raises(Mu2Error, match="JSONL file not found"):
        read_jsonl(tmp_path / "none.jsonl")
    out = tmp_path / "sub" / "train.jsonl"
    assert relative_image(tmp_path / "images" / "a.nii.gz", out) == "../images/a.nii.gz"
