"""Demo profiles, overrides and the summary tables built from metrics files."""

from __future__ import annotations

import pytest

from mu2.demo.config import DemoConfig, fast_profile, full_profile, make_demo_config
from mu2.demo.summary import (
    TARGET_ACCURACY,
    TARGET_DIFFERS_SHARE,
    metrics_table,
    per_finding_table,
    target_check,
)
from mu2.errors import Mu2Error
from mu2.metrics.green.backends import RULES_LABEL
from mu2.metrics.nlg import DEFAULT_BERTSCORE_LABEL


def test_profiles_and_overrides() -> None:
    full, fast = full_profile(), fast_profile()
    assert full.model_name == "demo" and fast.model_name != "demo"  # --fast never clobbers
    assert fast.data.n < full.data.n and fast.sft.steps < full.sft.steps
    cfg = make_demo_config("fast", ["sft.steps=7", "ablate_stage0=true", "data.overrides=[a=1]"])
    assert isinstance(cfg, DemoConfig)
    assert cfg.sft.steps == 7 and cfg.ablate_stage0 and cfg.data.overrides == ["a=1"]
    assert cfg.clip.steps == fast.clip.steps


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["sft.stepz=3"], "did you mean 'steps'"),
        (["sft.steps=0"], "sft.steps must be >= 1"),
        (["prefs.samples=1"], "prefs.samples must be >= 2"),
        (["model_name=../x"], "model_name must be a plain folder name"),
    ],
)
def test_bad_overrides_are_one_line_errors(overrides: list[str], message: str) -> None:
    with pytest.raises(Mu2Error, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_demo_config("full", overrides)
    with pytest.raises(Mu2Error, match="unknown demo profile"):
        make_demo_config("huge")


def _metrics(acc: float, differs: float) -> dict:
    kinds = {
        k: {"n": 10, "positives": 4, "accuracy": acc, "sensitivity": acc, "specificity": None}
        for k in ("splenomegaly", "renal_cyst")
    }
    return {
        "n": 10,
        "labels": {"green": RULES_LABEL, "bertscore": DEFAULT_BERTSCORE_LABEL, "bleu1": "b"},
        "overall": {"green": 0.25, "bertscore": 0.5, "bleu1": 0.125},
        "per_finding": {
            "kinds": kinds,
            "finding_f1_micro": 0.5,
            "distinct_report_share": differs,
            "differs_from_most_common_share": differs,
        },
    }


def test_target_check_thresholds() -> None:
    kinds = ["splenomegaly", "renal_cyst"]
    assert target_check(_metrics(TARGET_ACCURACY, TARGET_DIFFERS_SHARE), kinds).met
    low = target_check(_metrics(TARGET_ACCURACY - 0.01, TARGET_DIFFERS_SHARE), kinds)
    assert not low.met and len(low.shortfalls) == 2
    assert not target_check(_metrics(1.0, TARGET_DIFFERS_SHARE - 0.01), kinds).met
    assert not target_check(_metrics(1.0, 1.0), [*kinds, "ascites"]).met  # kind not tested


def test_tables_label_substitutes_and_show_the_numbers() -> None:
    results = {"SFT": _metrics(0.5, 0.25), "SFT+DPO": _metrics(0.95, 0.9)}
    table = metrics_table(results)
    assert "GREEN (offline rules judge)" in table and "BERTScore (MiniLM-L6 backbone)" in table
    assert "| SFT (n=10) | 0.125 | - | - | - | - | 0.500 | 0.250 |" in table
    pf = per_finding_table(results, ["splenomegaly", "renal_cyst"])
    assert "| splenomegaly | 4/10 | 0.500 | 0.500 | - | 0.950 | 0.950 | - |" in pf
    assert "| SFT | 0.500 | 0.250 | 0.250 | not met |" in pf
    assert "| SFT+DPO | 0.500 | 0.900 | 0.900 | met |" in pf
