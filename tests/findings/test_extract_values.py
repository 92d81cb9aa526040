"""The extractor's rules one at a time: each report below is read by hand and its expected
findings written out here (repeated mentions, ties, distance limits, negation reach,
abnormalities outside the catalogue, comparisons, sizes, liver segments).

Distance limits are tested at the exact boundary: the filler is one long neutral word
("zzz...") so the character gap is known, and the test asserts the gap it builds.
"""

from __future__ import annotations

import re

import pytest

from mu2.errors import Mu2Error
from mu2.findings.extract import (
    MAX_GAP,
    NEGATION_REACH,
    Comparison,
    _alternation,
    extract_findings,
    extract_report,
)


def _summary(text: str, region: str | None = None) -> list[tuple]:
    """(finding, side, size_mm, severity, count, comparison) of each positive finding."""
    return [
        (f.finding, f.side, f.size_mm, f.severity, f.count, f.extra.get("comparison"))
        for f in extract_findings(text, region)
    ]


def _gap_text(head: str, width: int, tail: str) -> str:
    return f"{head} {'z' * width} {tail}"


# --- the word-start alternation every pattern is built with -----------------------------


def test_alternation_names_each_group_and_matches_whole_words_only():
    rx = re.compile(_alternation({"side": ("left", "right"), "size": r"\d+ mm"}))
    text = "left kidney, 5 mm; bright lefty, 15 mm right"
    assert [(m.lastgroup, m.group()) for m in rx.finditer(text)] == [
        ("side", "left"),
        ("size", "5 mm"),
        ("size", "15 mm"),
        ("side", "right"),
    ]


# --- repeated mentions of one finding ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # "the cyst" repeats the left renal cyst and brings its size
        ("A left renal cyst. The cyst measures 2 cm.", [("renal_cyst", "left", 20.0, None, 1, None)]),
        # a side stated later goes to the earlier unsided mention, with the larger size
        ("A renal cyst. A left renal cyst measuring 3 cm.", [("renal_cyst", "left", 30.0, None, 1, None)]),
        (
            "Renal cyst measuring 1 cm. Left renal cyst measuring 2 cm. The cyst is simple.",
            [("renal_cyst", "left", 20.0, None, 1, None)],
        ),
        # the first comparison said of a finding stays; both are listed
        ("Stable liver cyst. Liver cyst, increased.", [("liver_cyst", None, None, None, 1, "stable")]),
        ("Liver cyst, new. Liver cyst, stable.", [("liver_cyst", None, None, None, 1, "new")]),
    ],
)
def test_repeated_mentions_merge(text, expected):
    assert _summary(text) == expected


def test_every_comparison_of_the_report_is_kept():
    assert extract_report("Stable liver cyst. Liver cyst, increased.").comparisons == [
        Comparison("stable", "liver_cyst"),
        Comparison("increased", "liver_cyst"),
    ]


# --- modifiers: which mention gets them -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a size halfway between two findings goes to the first
        ("Renal cyst, 5 mm, liver cyst.", [("renal_cyst", None, 5.0, None, 1, None),
                                           ("liver_cyst", None, None, None, 1, None)]),
        # two sizes at the same distance: the first one read is kept
        ("A 2 cm liver cyst 3 cm.", [("liver_cyst", None, 20.0, None, 1, None)]),
        # a number without a unit is no size and does not block the later modifiers
        ("3 right renal cysts.", [("renal_cyst", "right", None, None, 2, None)]),
        ("Right renal cyst (image 45) measuring 2 cm.", [("renal_cyst", "right", 20.0, None, 1, None)]),
        # a severity no finding takes does not stop the size and side after it
        ("Moderate 5 mm right renal stone.", [("renal_stone", "right", 5.0, None, 1, None)]),
        # "largest" before a singular noun is no count
        ("The largest stone in the right kidney.", [("renal_stone", "right", None, None, 1, None)]),
        # a far finding does not hide a near one
        (
            "A liver cyst " + "and other things " * 6 + "and a renal cyst measuring 2 cm.",
            [("liver_cyst", None, None, None, 1, None), ("renal_cyst", None, 20.0, None, 1, None)],
        ),
        # a count goes to the noun after it, even when the noun before is nearer
        ("Liver cyst, three nonobstructing renal stones.", [("liver_cyst", None, None, None, 1, None),
                                                           ("renal_stone", None, None, None, 3, None)]),
        ("A 12.34 mm liver cyst.", [("liver_cyst", None, 12.3, None, 1, None)]),  # 0.1 mm
        ("A 2.35 cm liver cyst.", [("liver_cyst", None, 23.5, None, 1, None)]),
        ("Small nodules.", [("lung_nodule", None, None, None, 2, None)]),  # region chest below
    ],
)
def test_modifier_assignment(text, expected):
    region = "chest" if text == "Small nodules." else None
    assert _summary(text, region) == expected


@pytest.mark.parametrize("side", ["left", "right"])
def test_bilateral_wins_over_one_side_said_later(side):
    text = f"Bilateral renal cysts, the largest on the {side}."
    assert _summary(text) == [("renal_cyst", "bilateral", None, None, 2, None)]


def test_a_finding_without_comparison_has_no_extra():
    assert extract_findings("Splenomegaly.")[0].extra == {}
    assert extract_findings("New splenomegaly.")[0].extra == {"comparison": "new"}


def test_generic_noun_takes_the_nearest_organ_named():
    assert _summary("The kidneys are normal, the liver has a cyst.") == [
        ("liver_cyst", None, None, None, 1, None)
    ]
    # the liver after the cyst is nearer (8 characters) than the kidney before it (10)
    assert _summary("Right kidney: a small cyst in the liver.")[0][0] == "liver_cyst"


def test_generic_noun_takes_the_region_organ():
    assert _summary("Small nodules.", "chest")[0][0] == "lung_nodule"
    assert extract_findings("Small effusions.", "chest")[0].finding == "pleural_effusion"
    assert extract_findings("Small effusions.") == []  # no organ, no region: nothing said


def test_liver_segments():
    assert extract_report("Cyst in hepatic segment VII.").sites == {
        ("liver", "liver_cyst", None): frozenset({"segment 7"})
    }
    assert extract_report("Simple cyst in segment 4 of the liver.").sites == {
        ("liver", "liver_cyst", None): frozenset({"segment 4"})
    }


@pytest.mark.parametrize(("attr", "head", "tail"), [("side", "Renal cyst", "on the left.")])
def test_side_reaches_exactly_max_gap(attr, head, tail):
    for extra, side in ((0, "left"), (1, None)):
        text = _gap_text(head, MAX_GAP[attr] - 9 + extra, tail)
        assert text.index("left") - (text.index("cyst") + 4) == MAX_GAP[attr] + extra
        assert _summary(text)[0][1] == side


def test_count_reaches_exactly_max_gap():
    for extra, count in ((0, 3), (1, 2)):  # past the limit: the plural says "several" (2)
        text = _gap_text("Three", MAX_GAP["count"] - 2 + extra, "renal cysts.")
        assert text.index("renal") - len("Three") == MAX_GAP["count"] + extra
        assert _summary(text)[0][4] == count


# --- negation ---------------------------------------------------------------------------


def test_post_negation_stops_at_but_and_semicolon():
    for text in ("Splenomegaly but hydronephrosis is not seen.",
                 "Mild splenomegaly; hydronephrosis is not seen."):  # fmt: skip
        report = extract_report(text)
        assert [f.finding for f in report.findings] == ["splenomegaly"]
        assert report.negated == [("kidney", "hydronephrosis")]


def test_a_negation_closed_at_once_negates_nothing():
    assert [f.finding for f in extract_findings("No; splenomegaly.")] == ["splenomegaly"]


def test_negation_reaches_exactly_negation_reach_characters():
    head = "No evidence of"
    for width, negated in ((NEGATION_REACH - 3, True), (NEGATION_REACH - 2, False)):
        text = _gap_text(head, width, "splenomegaly.")
        assert text.index("splenomegaly") - len(head) == width + 2
        assert bool(extract_report(text).negated) is negated
        organ = _gap_text(head, width, "spleen.")
        assert extract_report(organ).normal_organs == (["spleen"] if negated else [])


# --- organs stated normal, abnormalities outside the catalogue --------------------------


def test_organs_outside_the_catalogue_are_never_listed():
    assert extract_report("Bones: normal.").normal_organs == []
    # nor do they become the organ a later generic noun refers to
    assert _summary("The liver is normal. Bones: no fracture. Simple cyst.")[0][0] == "liver_cyst"
    report = extract_report("Kidneys: normal. Bones: unremarkable. Hypodense lesion.")
    assert report.abnormal == [("kidney", "hypodense"), ("kidney", "lesion")]
    assert extract_report("Bones: a fracture.").abnormal == []


def test_abnormality_takes_the_nearest_organ():
    report = extract_report("The liver is unremarkable, hypodense lesion near the spleen.")
    assert report.abnormal == [("spleen", "hypodense"), ("spleen", "lesion")]
    assert report.normal_organs == ["liver"]
    report = extract_report("The spleen is normal. A mass is seen.")  # organ of the sentence before
    assert report.abnormal == [("spleen", "mass")]


def test_abnormality_describing_a_finding_is_not_listed():
    report = extract_report("Liver: calcified gallstones.")
    assert [f.finding for f in report.findings] == ["gallstone"] and report.abnormal == []
    text = ("The spleen is normal. Cholelithiasis; there is also a markedly hypodense area "
            "at the far end of this particular study.")  # fmt: skip
    assert extract_report(text).abnormal == []  # a sentence naming a finding but no organ


def test_a_negated_abnormality_does_not_hide_the_next():
    report = extract_report("No mass in the liver; hypodense lesion in the spleen.")
    assert ("spleen", "lesion") in report.abnormal
    assert not any(phrase == "mass" for _, phrase in report.abnormal)


def test_abnormality_near_a_finding_reaches_exactly_max_gap():
    for extra, abnormal in ((0, []), (1, [("spleen", "mass")])):
        text = _gap_text("Spleen: a mass", MAX_GAP["sev"] - 2 + extra, "gallstones.")
        assert text.index("gallstones") - text.index("mass") - 4 == MAX_GAP["sev"] + extra
        assert extract_report(text).abnormal == abnormal


# --- comparisons, bad region --------------------------------------------------------------


def test_a_prior_study_named_is_no_change_of_the_finding():
    report = extract_report("Liver cyst, compared with the prior study.")
    assert _summary("Liver cyst, compared with the prior study.") == [
        ("liver_cyst", None, None, None, 1, None)
    ]
    assert report.comparisons == [Comparison("prior", "liver_cyst")]
    assert extract_report("Compared with the prior study.").comparisons == [Comparison("prior")]


def test_unknown_region_names_the_choices():
    with pytest.raises(Mu2Error) as info:
        extract_report("Splenomegaly.", region="head")
    assert str(info.value) == "unknown region 'head' -- fix: use one of chest, abdomen, pelvis"
