"""VQA question types in the synthetic data set: the default rows are unchanged, typed rows
answer what they ask about the case's ground truth, bad types are one line and exit 2."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from mu2.cli.main import main
from mu2.data.schema import read_jsonl, write_jsonl
from mu2.data.synthetic.synth import synthesize
from mu2.data.synthetic.synth_config import make_config
from mu2.errors import Mu2Error

FILES = ("train.jsonl", "val.jsonl", "test.jsonl", "manifest.json")
# SHA-256 of each file of `synthesize(out, 4, 0, make_config(preset))`, written by the
# generator before VQA question types existed: the default must keep these bytes.
BEFORE_QTYPES: dict[str, dict[str, str]] = {
    "tiny": {
        "train.jsonl": "e4dbc596380908f6f45c6983f13bb5643fbfb1b83533a88be32cd1dfd7945c38",
        "val.jsonl": "fc13ec56b515e02da37f37e2b69f0b15365271c3df7a6b803dc263d2500f102d",
        "test.jsonl": "28446f1e0b3635d7e870cc4c371fec51644a07db208768d3e6fcda975c47758b",
        "manifest.json": "05e344bf0d3d3dd83fa456cbd862d1394e678f7bd28daec6f732a8cee37c082b",
    },
    "hard": {
        "train.jsonl": "77aadc9d57c1afb8d6f3f49091f8fbc2d6d5f78135bcd758609f7d3cc2ed420f",
        "val.jsonl": "ff5a755643472860002bff7745999027f40d5e4830bab06e6c5bf7cc770ca923",
        "test.jsonl": "1b5c3af52991e8532a21ba6d58fc48fe58c93688e87c487f82d4a90a9b44a3b2",
        "manifest.json": "b15804a0dc194b63cdb652c153425a0d24a9416698173f86e435e1f47d1e145a",
    },
}
ALL_TYPES = ["presence", "side", "location", "severity"]
TYPED = [f"vqa_types=[{','.join(ALL_TYPES)}]", "vqa_per_case=6", "prevalence=0.5"]


def run_cli(args: list[str]) -> int:
    try:
        return main(args)
    except SystemExit as done:
        return int(done.code or 0)


def rows_of(out: Path) -> list:
    return [r for s in ("train", "val", "test") for r in read_jsonl(out / f"{s}.jsonl")]


@pytest.mark.parametrize("preset", ["tiny", "hard"])
def test_default_config_writes_the_bytes_it_always_wrote(preset, tmp_path) -> None:
    synthesize(tmp_path, 4, 0, make_config(preset), workers=1, progress=False)
    for name in FILES:
        digest = hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        assert digest == BEFORE_QTYPES[preset][name], name


@pytest.fixture(scope="module")
def typed(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("typed") / "s"
    synthesize(out, 8, 0, make_config("hard", overrides=TYPED), workers=1, progress=False)
    return out


def expected_answer(qtype: str, question: str, findings: list[dict]) -> str:
    """The closed answer worked out from the row's ground truth and the question's words
    (an independent reading: kinds by their label in the question)."""
    labels = {
        "pleural effusion": "pleural_effusion",
        "renal cyst": "renal_cyst",
        "renal stone": "renal_stone",
        "hydronephrosis": "hydronephrosis",
        "lung nodule": "lung_nodule",
        "ascites": "ascites",
        "hepatic steatosis": "fatty_liver",
    }
    kind = next(k for label, k in labels.items() if label in question)
    mine = [f for f in findings if f["finding"] == kind]
    sides = set()
    for f in mine:
        sides |= {"left", "right"} if f["side"] == "bilateral" else {f["side"]}
    if qtype == "side":
        if not mine:
            return "Neither side."
        return "Both sides." if len(sides) == 2 else sides.pop().capitalize() + "."
    if qtype == "location":
        named = "left" if re.search(r"\bleft\b", question) else "right"
        return "Yes." if named in sides else "No."
    if qtype == "severity":
        order = ["mild", "moderate", "severe"]
        if not mine:
            return "None."
        worst = max((f["severity"] for f in mine), key=order.index)
        fluid = {"mild": "Small.", "moderate": "Moderate.", "severe": "Large."}
        if kind in ("ascites", "pleural_effusion"):
            return fluid[worst]
        return worst.capitalize() + "."
    raise AssertionError(f"unexpected question type {qtype}")


def test_typed_rows_answer_what_they_ask(typed) -> None:
    rows = rows_of(typed)
    vqa = [r for r in rows if r.task == "vqa"]
    assert {r.qtype for r in vqa} == set(ALL_TYPES)
    checked = Counter()
    for r in vqa:
        if r.qtype == "presence":
            assert r.answer == "No." or r.answer.startswith("Yes")
            continue
        want = expected_answer(r.qtype, r.question, r.findings)
        assert r.answer == want, (r.qtype, r.question, r.findings)
        checked[r.qtype, want] += 1
    # both answers of location, a side and a grade among the checked rows
    assert {("location", "Yes."), ("location", "No.")} <= set(checked)
    assert {"Left.", "Right.", "Both sides."} & {a for t, a in checked if t == "side"}
    assert {a for t, a in checked if t == "severity"} - {"None."}
    assert all(r.qtype is None for r in rows if r.task == "report")


def test_each_case_keeps_at_most_vqa_per_case_rows_with_every_type(typed) -> None:
    by_case: dict[str, list] = {}
    for r in rows_of(typed):
        if r.task == "vqa":
            by_case.setdefault(r.case_id, []).append(r)
    assert len(by_case) == 8
    for mine in by_case.values():
        assert len(mine) <= 6
        assert {r.qtype for r in mine} == set(ALL_TYPES)


def test_question_types_leave_report_rows_and_images_unchanged(typed, tmp_path) -> None:
    plain = tmp_path / "plain"
    synthesize(plain, 8, 0, make_config("hard", overrides=TYPED[2:]), workers=1, progress=False)
    reports = {r.id: r.to_dict() for r in rows_of(plain) if r.task == "report"}
    assert reports == {r.id: r.to_dict() for r in rows_of(typed) if r.task == "report"}
    manifest = json.loads((typed / "manifest.json").read_text())
    assert manifest["config"]["vqa_types"] == ALL_TYPES
    assert "vqa_types" not in json.loads((plain / "manifest.json").read_text())["config"]


def test_only_kinds_the_preset_draws_are_asked_about(tmp_path) -> None:
    synthesize(tmp_path, 6, 0, make_config("tiny", overrides=TYPED), workers=1, progress=False)
    vqa = [r for r in rows_of(tmp_path) if r.task == "vqa"]
    # tiny draws no kidney kinds and no lung nodules: only effusion is lateral
    assert all("kidney" not in r.question and "nodule" not in r.question for r in vqa)
    assert any(r.qtype == "side" and "pleural effusion" in r.question for r in vqa)


def test_unknown_or_repeated_types_are_rejected() -> None:
    with pytest.raises(Mu2Error, match="unknown question type 'size'.*presence, side, location"):
        make_config(overrides=["vqa_types=[presence,size]"])
    with pytest.raises(Mu2Error, match="distinct"):
        make_config(overrides=["vqa_types=[side,side]"])


def test_cli_writes_typed_rows_and_rejects_a_bad_type_in_one_line(tmp_path, capsys) -> None:
    out = tmp_path / "s"
    args = ["data", "synth", "--out", str(out), "--n", "4", "--workers", "1"]
    assert run_cli([*args, "vqa_types=[side,location,severity]"]) == 0
    qtypes = {r.qtype for r in rows_of(out) if r.task == "vqa"}
    assert qtypes and qtypes <= {"side", "location", "severity"}
    capsys.readouterr()
    assert run_cli([*args, "vqa_types=[side,sides]"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown question type 'sides'" in err
    assert "Traceback" not in err


def test_rows_with_a_qtype_read_back_and_a_misplaced_one_is_a_clear_error(typed, tmp_path) -> None:
    text = (typed / "train.jsonl").read_text()
    again = tmp_path / "again.jsonl"
    write_jsonl(read_jsonl(typed / "train.jsonl"), again)
    assert again.read_text() == text  # qtype survives a read and a write, bytes unchanged
    row = {"id": "r", "image": "a.nii.gz", "question": "q?", "answer": "Left."}
    for bad, what in (
        ({"task": "report", "qtype": "side"}, "'report' row"),
        ({"task": "vqa", "qtype": "sides"}, "'sides'"),
    ):
        path = tmp_path / "bad.jsonl"
        path.write_text(json.dumps({**row, **bad}) + "\n")
        with pytest.raises(Mu2Error, match=f"line 1: .*qtype.*{what}"):
            read_jsonl(path)
