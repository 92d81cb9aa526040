"""Per-finding accuracy and report diversity, against hand-counted expectations."""

from __future__ import annotations

import pytest

from mu2.findings.catalogue import Finding
from mu2.metrics.perfinding import per_finding, report_diversity

EFFUSION_L = Finding("pleura", "pleural_effusion", side="left")
NODULE_R = Finding("lung", "lung_nodule", side="right", size_mm=6.0)


def test_per_kind_confusion_and_micro_f1() -> None:
    preds = [
        "Small left pleural effusion. A 6 mm nodule in the right upper lobe.",  # both right
        "Moderate right pleural effusion. No lung nodule.",  # effusion on the wrong side
        "No pleural effusion. No lung nodule.",  # misses the nodule
        "Small left pleural effusion. No lung nodule.",  # false effusion
    ]
    truths = [[EFFUSION_L, NODULE_R], [EFFUSION_L], [NODULE_R], []]
    result = per_finding(preds, truths, ["chest"] * 4)
    eff = result.kinds["pleural_effusion"]
    assert (eff.tp, eff.fn, eff.fp, eff.tn) == (2, 0, 1, 1)  # presence ignores the side
    assert eff.sensitivity == 1.0 and eff.specificity == 0.5 and eff.accuracy == 0.75
    nod = result.kinds["lung_nodule"]
    assert (nod.tp, nod.fn, nod.fp, nod.tn) == (1, 1, 0, 2)
    assert set(result.kinds) == {"pleural_effusion", "lung_nodule"}  # chest kinds only
    # Finding level (organ, kind, side): 2 matched; wrong-side and false effusion are FP;
    # the left effusion of case 2 and the nodule of case 3 are FN.
    assert (result.tp, result.fp, result.fn) == (2, 2, 2)
    assert result.f1 == pytest.approx(0.5)
    assert result.to_dict()["kinds"]["lung_nodule"]["sensitivity"] == 0.5


def test_report_diversity_catches_a_constant_model() -> None:
    assert report_diversity(["a b", "a  b", "a b"]) == (pytest.approx(1 / 3), 0.0)
    distinct, differs = report_diversity(["x", "y", "x", "z"])
    assert distinct == 0.75 and differs == 0.5


def test_scan_diversity_joins_each_scans_region_reports() -> None:
    normal_chest = "No pleural effusion."
    preds = [normal_chest, "Ascites.", normal_chest, "Splenomegaly.", normal_chest, "Ascites."]
    cases = ["a", "a", "b", "b", "c", "c"]
    regions = ["chest", "abdomen"] * 3
    res = per_finding(preds, [[]] * 6, regions, cases)
    assert res.differs_from_mode_share == pytest.approx(0.5)  # the normal chest: 3 of 6
    # scans: "Ascites. | No pleural effusion." twice, the spleen once -> 1 of 3 differs
    assert res.scan_differs_from_mode_share == pytest.approx(1 / 3)
    assert res.to_dict()["scan_differs_from_most_common_share"] == pytest.approx(1 / 3)
    # no case ids, or one report per scan: no scan share
    assert per_finding(preds, [[]] * 6, regions).scan_differs_from_mode_share is None
    one_each = per_finding(preds[:2], [[]] * 2, regions[:2], ["a", "b"])
    assert one_each.scan_differs_from_mode_share is None
    # a template writer (one text per region) differs on no scan
    template = per_finding([normal_chest, "Ascites."] * 3, [[]] * 6, regions, cases)
    assert template.scan_differs_from_mode_share == 0.0
