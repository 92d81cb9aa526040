"""Question types with closed answers: each answer follows what the question asks."""

from __future__ import annotations

import random

import pytest

from mu2.errors import Mu2Error
from mu2.findings.catalogue import Finding
from mu2.findings.questions import balanced_pick, typed_questions
from mu2.findings.writer import organ_questions


def effusion(side: str | None, severity: str | None = "moderate") -> Finding:
    return Finding("pleura", "pleural_effusion", side=side, severity=severity)


def ask(findings: list[Finding], region: str, qtype: str, seed: int = 0) -> dict[str, str]:
    """kind -> answer of the one question of that kind."""
    qa = typed_questions(findings, region, qtype, random.Random(seed))
    return {kind: a for _, a, kind in qa}


@pytest.mark.parametrize(
    ("findings", "answer"),
    [
        ([effusion("left")], "Left."),
        ([effusion("right")], "Right."),
        ([effusion("bilateral")], "Both sides."),
        ([effusion("left"), effusion("right")], "Both sides."),
        ([], "Neither side."),
    ],
)
def test_side_answer_names_the_side_of_the_effusion(findings, answer) -> None:
    qa = typed_questions(findings, "chest", "side", random.Random(0))
    by_kind = {kind: (q, a) for q, a, kind in qa}
    assert set(by_kind) == {"pleural_effusion", "lung_nodule"}  # the chest's lateral kinds
    q, a = by_kind["pleural_effusion"]
    assert "pleural effusion" in q and q.endswith("?")
    assert a == answer


def test_side_of_kidney_kinds_and_no_question_without_a_known_side() -> None:
    cyst = Finding("kidney", "renal_cyst", side="right", size_mm=20.0)
    stone = Finding("kidney", "renal_stone", side="left", size_mm=6.0)
    answers = ask([cyst, stone], "abdomen", "side")
    assert answers == {
        "renal_cyst": "Right.",
        "renal_stone": "Left.",
        "hydronephrosis": "Neither side.",
    }
    assert "pleural_effusion" not in ask([effusion(None)], "chest", "side")


def test_location_answer_depends_on_the_side_the_question_names() -> None:
    seen = set()
    for seed in range(40):
        for findings, yes_sides in (
            ([effusion("left")], {"left"}),
            ([effusion("right")], {"right"}),
            ([effusion("bilateral")], {"left", "right"}),
            ([], set()),
        ):
            qa = typed_questions(findings, "chest", "location", random.Random(seed))
            q, a = next((q, a) for q, a, k in qa if k == "pleural_effusion")
            named = "left" if " left" in q else "right"
            assert (" left" in q) != (" right" in q), q
            assert a == ("Yes." if named in yes_sides else "No."), (q, a)
            seen.add((named, a))
    assert seen == {("left", "Yes."), ("left", "No."), ("right", "Yes."), ("right", "No.")}


def test_location_of_a_kidney_finding_names_the_kidney() -> None:
    cyst = Finding("kidney", "renal_cyst", side="left", size_mm=20.0)
    for seed in range(10):
        qa = typed_questions([cyst], "abdomen", "location", random.Random(seed))
        q, a = next((q, a) for q, a, k in qa if k == "renal_cyst")
        assert "renal cyst" in q
        assert a == ("Yes." if " left" in q else "No.")


@pytest.mark.parametrize(
    ("severity", "fluid", "other"),
    [
        ("mild", "Small.", "Mild."),
        ("moderate", "Moderate.", "Moderate."),
        ("severe", "Large.", "Severe."),
    ],
)
def test_severity_words_follow_the_reports(severity, fluid, other) -> None:
    ascites = Finding("peritoneum", "ascites", severity=severity)
    steatosis = Finding("liver", "fatty_liver", severity=severity)
    answers = ask([ascites, steatosis], "abdomen", "severity")
    assert answers["ascites"] == fluid
    assert answers["fatty_liver"] == other
    assert answers["hydronephrosis"] == "None."
    assert set(answers) == {"fatty_liver", "hydronephrosis", "ascites"}  # graded kinds only


def test_severity_of_an_effusion_on_both_sides_is_the_worst() -> None:
    answers = ask([effusion("left", "mild"), effusion("right", "severe")], "chest", "severity")
    assert answers == {"pleural_effusion": "Large."}
    assert ask([], "chest", "severity") == {"pleural_effusion": "None."}
    assert ask([effusion("left", None)], "chest", "severity") == {}


def test_presence_is_the_writers_yes_no_question_and_kinds_limit_every_type() -> None:
    findings = [effusion("left")]
    ours = typed_questions(findings, "chest", "presence", random.Random(5))
    theirs = organ_questions(findings, "chest", random.Random(5), with_kind=True)
    assert ours == [tuple(t) for t in theirs]
    for qtype in ("presence", "side", "location", "severity"):
        qa = typed_questions(findings, "chest", qtype, random.Random(0), kinds=["pleural_effusion"])
        assert [k for *_, k in qa] == ["pleural_effusion"], qtype
        assert typed_questions(findings, "chest", qtype, random.Random(0), kinds=["ascites"]) == []


def test_unknown_type_or_region_is_a_clear_error() -> None:
    with pytest.raises(Mu2Error, match="unknown question type 'size'.*presence, side"):
        typed_questions([], "chest", "size", random.Random(0))
    with pytest.raises(Mu2Error, match="unknown region 'neck'"):
        typed_questions([], "neck", "side", random.Random(0))


def test_balanced_pick_represents_every_type_and_respects_the_bound() -> None:
    types = ["presence"] * 8 + ["side"] * 3 + ["severity"]
    for seed in range(20):
        picked = balanced_pick(types, 3, random.Random(seed))
        assert len(picked) == 3 and picked == sorted(set(picked))
        assert {types[i] for i in picked} == {"presence", "side", "severity"}
    assert len(balanced_pick(types, 100, random.Random(0))) == len(types)
    assert balanced_pick(types, 0, random.Random(0)) == []
