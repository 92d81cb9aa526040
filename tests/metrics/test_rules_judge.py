"""The offline rules judge: GREEN-format answers that the GREEN parser scores sensibly."""

from __future__ import annotations

import random
import re

from mu2.findings import FINDING_KINDS, REGIONS, Finding
from mu2.findings.roundtrip import random_findings
from mu2.findings.writer import write_report
from mu2.metrics.green.parse import ERROR_CATEGORIES, parse_answer
from mu2.metrics.green.rules import RulesJudge

JUDGE = RulesJudge()


def _cases(n: int, seed: int = 0):
    rng = random.Random(seed)
    for _ in range(n):
        region = rng.choice(REGIONS)
        yield region, random_findings(region, rng), rng


def _score(ref: str, cand: str):
    return parse_answer(JUDGE.judge(ref, cand))


def test_answer_has_the_exact_green_layout():
    ref = "Moderate left pleural effusion. The lungs are clear."
    answer = JUDGE.judge(ref, "Small right pleural effusion. Splenomegaly. The lungs are clear.")
    lines = answer.splitlines()
    assert lines[0] == "[Explanation]:" and lines[2] == ""
    assert lines[3] == "[Clinically Significant Errors]:"
    for i, (letter, title) in enumerate(ERROR_CATEGORIES.items()):
        assert re.fullmatch(
            rf"\({letter}\) {re.escape(title)}: \d+\.( [^:;]+(; [^:;]+)*)?", lines[4 + i]
        )
    assert lines[10] == "" and lines[11] == "[Clinically Insignificant Errors]:"
    assert lines[18] == "" and lines[19] == "[Matched Findings]:"
    assert re.fullmatch(r"\d+\.( [^:;]+(; [^:;]+)*)?", lines[20])
    parsed = parse_answer(answer)
    assert parsed.significant["a"] == 1 and parsed.significant["c"] == 1
    assert parsed.matched == 1  # normal lungs
    assert parsed.score == 1 / 3


def test_self_comparison_scores_one():
    for region, findings, rng in _cases(60):
        text = write_report(findings, region, rng)
        assert _score(text, text).score == 1.0, text


def test_rewording_the_same_findings_scores_one():
    for region, findings, rng in _cases(60, seed=1):
        a, b = write_report(findings, region, rng), write_report(findings, region, rng)
        assert _score(a, b).score == 1.0, (a, b)


def test_normal_report_against_normal_report_scores_one():
    rng = random.Random(0)
    for region in REGIONS:
        a, b = write_report([], region, rng), write_report([], region, rng)
        assert _score(a, b).score == 1.0


def test_side_swap_is_a_location_error():
    swapped = 0
    for region, findings, rng in _cases(200, seed=2):
        lateral = [
            f for f in findings
            if f.side in ("left", "right") and sum(g.finding == f.finding for g in findings) == 1
        ]  # fmt: skip
        if not lateral:
            continue
        f = lateral[0]
        other = Finding(f.organ, f.finding, "right" if f.side == "left" else "left",
                        f.size_mm, f.severity, f.count, dict(f.extra))  # fmt: skip
        cand = [other if g is f else g for g in findings]
        s = _score(write_report(findings, region, rng), write_report(cand, region, rng))
        assert s.significant["c"] >= 1 and s.score < 1.0
        swapped += 1
    assert swapped >= 20


def test_deleting_a_finding_is_a_missing_finding():
    for region, findings, rng in _cases(80, seed=3):
        if not findings:
            continue
        ref = write_report(findings, region, rng)
        s = _score(ref, write_report(findings[1:], region, rng))
        assert s.significant["b"] >= 1 and s.score < 1.0


def test_adding_a_finding_is_a_false_report():
    for region, findings, rng in _cases(80, seed=4):
        present = {f.finding for f in findings}
        extra = [k for k in FINDING_KINDS.values() if k.region == region and k.name not in present]
        if not extra:
            continue
        k = extra[0]
        added = Finding(k.organ, k.name, "left" if k.lateral else None,
                        20.0 if k.sized else None, "mild" if k.graded else None)  # fmt: skip
        s = _score(write_report(findings, region, rng),
                   write_report([*findings, added], region, rng))  # fmt: skip
        assert s.significant["a"] >= 1 and s.score < 1.0


def test_severity_and_size_misassessment():
    ref = "Mild ascites. A 2.0 cm simple cyst in the left kidney."
    s = _score(ref, "Large ascites. A 2.1 cm simple cyst in the left kidney.")
    assert s.significant["d"] == 1 and s.matched == 1
    s = _score(ref, "Mild ascites. A 4.5 cm simple cyst in the left kidney.")
    assert s.significant["d"] == 1 and s.matched == 1
    s = _score(ref, "Ascites. Multiple simple cysts in the left kidney, up to 2 cm.")
    assert sum(s.significant.values()) == 0 and s.matched == 2
    assert s.insignificant["d"] == 2  # severity on one side only; single vs multiple


def test_comparisons():
    ref = "Right pleural effusion, increased compared with prior."
    s = _score(ref, "Right pleural effusion.")
    assert s.significant["f"] == 1 and s.significant["e"] == 0
    s = _score("Right pleural effusion.", ref)
    assert s.significant["e"] == 1 and s.significant["f"] == 0
    s = _score(ref, "Right pleural effusion, new since the prior study.")
    assert s.significant["e"] == 1 and s.significant["f"] == 1


def test_worked_disagreement_scores_the_published_formula():
    ref = "Moderate left pleural effusion. No pulmonary nodules."
    cand = "Moderate left pleural effusion. A 6 mm nodule in the right upper lobe."
    s = _score(ref, cand)
    assert s.matched == 1 and s.significant["a"] == 1 and s.score == 0.5


def test_unreadable_reports():
    assert _score("No acute findings.", "No acute findings.").score == 1.0
    assert _score("No acute findings.", "Something else.").score == 0.0
    assert _score("", "").score == 0.0


def test_deterministic():
    ref = write_report(random_findings("abdomen", random.Random(5)), "abdomen", random.Random(5))
    assert JUDGE.judge(ref, "Ascites.") == RulesJudge().judge(ref, "Ascites.")


def test_location_within_the_organ():
    s = _score("A 6 mm nodule in the right upper lobe.", "A 6 mm nodule in the right lower lobe.")
    assert s.significant["c"] == 1 and s.matched == 0
    s = _score("A 6 mm nodule in the right upper lobe.", "A 6 mm nodule in the lingula.")
    assert s.significant["c"] == 1  # the lingula is on the left, but a side is not stated
    s = _score("A 2 cm cyst in hepatic segment VII.", "A 2 cm cyst in the right hepatic lobe.")
    assert s.score == 1.0  # segment 7 lies in the right lobe
    s = _score("A 2 cm cyst in hepatic segment 7.", "A 2 cm cyst in hepatic segment 6.")
    assert s.significant["c"] == 1
    s = _score("A 9 mm stone in the upper pole of the left kidney.", "A 9 mm left renal stone.")
    assert s.score == 1.0  # a part named in one report only


def test_normal_reports_match_whatever_their_wording():
    for ref, cand in [
        ("No acute abnormality.", "Unremarkable CT of the abdomen and pelvis."),
        ("The lungs are clear.", "No pleural effusion."),
        ("Normal study.", "The liver, spleen and pancreas are unremarkable."),
    ]:
        assert _score(ref, cand).score == 1.0, (ref, cand)
    assert _score("No acute abnormality.", "Moderate ascites.").significant["a"] == 1


def test_abnormality_outside_the_catalogue_in_a_normal_organ_is_a_false_finding():
    ref = "The spleen is unremarkable. The pancreas is normal."
    s = _score(ref, "A 2 cm hypodense lesion in the spleen. The pancreas is normal.")
    assert s.significant["a"] == 1 and s.matched == 1 and s.score == 0.5
    s = _score("A hypodense splenic lesion.", "A 1 cm hypoattenuating lesion in the spleen.")
    assert s.score == 1.0
    s = _score("A 3 cm mass in the pancreatic head.", "The pancreas is unremarkable.")
    assert s.significant["b"] == 1
