"""What is asked and what is kept: regions from scan x model card, one finding per organ and
side, findings outside the field of view or in the wrong section dropped and noted.

The section texts are report sentences read by the project's real findings extractor, as
the pipeline does with the model's answers.
"""

from __future__ import annotations

import pytest

from mu2.errors import Mu2Error
from mu2.findings.extract import extract_findings
from mu2.generate.scope import out_of_view_notes, plan_regions, tidy_findings

IN_VIEW_ALL = {
    o: True
    for o in ("lung", "pleura", "liver", "gallbladder", "spleen", "pancreas", "kidney")
    + ("aorta", "peritoneum", "bladder", "bowel")
}


def _sections(texts: dict[str, str]):
    return [(r, extract_findings(t, region=r)) for r, t in texts.items()]


def test_plan_asks_covered_regions_the_card_knows() -> None:
    plan = plan_regions(None, ["abdomen", "pelvis"], ["chest", "abdomen"])
    assert plan.regions == ["abdomen"]
    assert plan.warnings == [
        "the scan covers the pelvis, which the model was not trained on "
        "(model card: chest, abdomen): not asked"
    ]
    assert plan_regions(None, ["chest"], None).regions == ["chest"]  # card without regions
    with pytest.raises(Mu2Error, match="nothing to ask"):
        plan_regions(None, ["pelvis"], ["chest", "abdomen"])


def test_named_region_outside_card_or_scan_needs_force() -> None:
    with pytest.raises(Mu2Error, match="not trained on the pelvis.*--force"):
        plan_regions("pelvis", ["abdomen", "pelvis"], ["chest", "abdomen"])
    with pytest.raises(Mu2Error, match="does not cover the chest"):
        plan_regions("all", ["abdomen", "pelvis"], None)
    plan = plan_regions("pelvis", ["abdomen", "pelvis"], ["chest", "abdomen"], force=True)
    assert plan.regions == ["pelvis"]
    assert plan.warnings == [
        "asked because of --force: the model was not trained on the pelvis "
        "(model card: chest, abdomen)"
    ]


def test_contradictions_merge_to_one_finding_per_organ_and_side() -> None:
    # the --region all case: the chest says moderate, the abdomen severe right effusion
    # (the abdomen first: the chest's statement wins for being the finding's own region)
    per = _sections(
        {
            "abdomen": "There is a severe right pleural effusion. Moderate ascites.",
            "chest": "There is a moderate right pleural effusion. No pulmonary nodules.",
        }
    )
    findings, warnings, notes = tidy_findings(per, IN_VIEW_ALL)
    effusions = [f for f in findings if f.finding == "pleural_effusion"]
    assert len(effusions) == 1 and effusions[0].severity == "moderate"  # its own section
    assert effusions[0].extra["conflicting_statements"] == sorted(
        effusions[0].extra["conflicting_statements"]
    )
    assert len(effusions[0].extra["conflicting_statements"]) == 2
    assert any("contradictory statements merged" in w for w in warnings)
    assert [f.finding for f in findings].count("ascites") == 1 and notes == {}


def test_the_same_statement_twice_is_one_finding_without_a_warning() -> None:
    text = "There is a moderate right pleural effusion."
    findings, warnings, _ = tidy_findings(_sections({"chest": text, "abdomen": text}), IN_VIEW_ALL)
    assert len(findings) == 1 and warnings == []


def test_chest_text_in_the_pelvis_section_and_unimaged_organs_are_dropped() -> None:
    # the demo model answering the pelvis question with chest text, on a CT whose field of
    # view holds no gallbladder (a pelvic scan)
    in_view = {**IN_VIEW_ALL, "gallbladder": False, "pancreas": False}
    per = _sections(
        {
            "pelvis": "No pulmonary nodules. There is a moderate right pleural effusion.",
            "abdomen": "Multiple gallstones in the gallbladder. Moderate ascites.",
        }
    )
    findings, warnings, notes = tidy_findings(per, in_view)
    assert [f.finding for f in findings] == ["ascites"]
    assert notes["pelvis"] == ["'pleural effusion' dropped: a chest finding in the pelvis section"]
    assert notes["abdomen"][0].startswith("'")
    assert "the gallbladder is outside the field of view" in notes["abdomen"][0]
    assert len(warnings) == 2


def test_normal_statements_about_unimaged_organs_are_flagged() -> None:
    text = "The gallbladder is unremarkable. The pancreas is normal. The liver is normal."
    in_view = {**IN_VIEW_ALL, "gallbladder": False, "pancreas": False}
    notes = out_of_view_notes(text, in_view)
    assert [n.split(" is outside")[0] for n in notes] == ["the gallbladder", "the pancreas"]
    assert out_of_view_notes(text, IN_VIEW_ALL) == []
    assert out_of_view_notes("The urinary bladder is normal.", in_view) == []
