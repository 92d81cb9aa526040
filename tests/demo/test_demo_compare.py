"""SFT vs SFT+DPO comparison, on evaluation folders written by the demo's own scorer."""

import json

import pytest

from mu2.demo.compare import compare_evals
from mu2.demo.predict import PREDICTIONS_FILE, score
from mu2.findings import Finding

ASCITES = Finding("peritoneum", "ascites", severity="moderate").to_dict()
SPLENOMEGALY = Finding("spleen", "splenomegaly").to_dict()
# (reference, findings, SFT report, SFT+DPO report)
CASES = [
    ("Moderate ascites.", [ASCITES], "Moderate ascites.", "No ascites."),
    ("The liver is normal.", [], "Splenomegaly. The liver is normal.", "The liver is normal."),
    ("Splenomegaly.", [SPLENOMEGALY], "Splenomegaly.", "Splenomegaly."),
]


def _eval_dir(tmp_path, name, column, vqa=False):
    rows = [
        {"id": f"c{i}", "case_id": f"c{i}", "question": "Describe the abdomen.",
         "prediction": case[column], "reference": case[0], "region": "abdomen",
         "dataset": "synth", "findings": case[1]}
        for i, case in enumerate(CASES)
    ]  # fmt: skip
    if vqa:  # a VQA row beside the reports: scored by VQA accuracy, not as a report
        rows.append({"id": "q0", "case_id": "c0", "question": "Is there ascites?",
                     "prediction": "No." if column == 3 else "Yes.", "reference": "Yes.",
                     "region": "abdomen", "dataset": "synth", "findings": [ASCITES],
                     "task": "vqa", "qtype": "presence"})  # fmt: skip
    out = tmp_path / name
    out.mkdir()
    (out / PREDICTIONS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))
    score(rows, out, name=name, metrics=["green"], bootstrap=20, green_backend="rules",
          missing_java="skip", seed=0, device="cpu")  # fmt: skip
    return out


@pytest.mark.parametrize("vqa", [False, True])
def test_paired_comparison_by_hand(tmp_path, vqa):
    sft, dpo = _eval_dir(tmp_path, "sft", 2, vqa), _eval_dir(tmp_path, "dpo", 3, vqa)
    c = compare_evals(sft, dpo, "SFT", "SFT+DPO", n_resamples=200, seed=0)
    assert c.n == 3 and "offline rules judge" in c.judge
    # GREEN per case: SFT 1, 1/2 (a false splenomegaly beside the matched normal liver), 1;
    # DPO 0 (ascites denied), 1, 1
    assert c.base.green == pytest.approx(2.5 / 3) and c.other.green == pytest.approx(2 / 3)
    assert c.green_diff == pytest.approx(-0.5 / 3)
    # findings: SFT tp 2, fp 1, fn 0 -> F1 4/5; DPO tp 1, fp 0, fn 1 -> F1 2/3
    assert c.base.f1 == pytest.approx(0.8) and c.other.f1 == pytest.approx(2 / 3)
    assert c.f1_diff == pytest.approx(2 / 3 - 0.8)
    assert c.base.mean_words == pytest.approx(8 / 3) and c.other.distinct_share == 1.0
    for value, (lo, hi) in [(c.base.green, c.base.green_ci), (c.f1_diff, c.f1_diff_ci),
                            (c.green_diff, c.green_diff_ci)]:  # fmt: skip
        assert lo <= value <= hi and lo < hi
    metrics = json.loads((sft / "metrics.json").read_text())
    assert c.base.green == pytest.approx(metrics["overall"]["green"])
    assert c.base.f1 == pytest.approx(metrics["per_finding"]["finding_f1_micro"])
    table = c.markdown()
    assert "| SFT+DPO - SFT | -0.167 [" in table and "offline rules judge" in table
