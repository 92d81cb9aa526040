"""Probe pieces: the linear probe reads a linearly present label and not a random one; the
zero-shot prompts state the finding (read back by the extractor) against a normal report."""

import numpy as np

from mu2.findings.extract import extract_findings
from mu2.pretrain.probe import linear_probe, probe_markdown, zero_shot_prompts


def test_linear_probe_separates_a_linear_label_and_reports_the_majority():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8))
    y = np.stack([x[:, 0] > 0.3, rng.random(200) < 0.3, np.zeros(200, bool)], axis=1).astype(float)
    out = linear_probe(x[:120], y[:120], x[120:], y[120:], ["signal", "noise", "never"])
    assert out["signal"]["accuracy"] > 0.9
    assert out["noise"]["accuracy"] < 0.85  # no better than about the 0.7 majority
    never = out["never"]
    assert never["accuracy"] == 1.0 and never["majority"] == 1.0 and never["positives"] == 0
    assert out["signal"]["n"] == 80


def test_zero_shot_prompts_state_the_finding_or_nothing():
    pos, neg = zero_shot_prompts("renal_cyst", ["chest", "abdomen"], n=4, seed=0)
    assert len(pos) == len(neg) == 4
    for text in pos:
        kinds = {f.finding for f in extract_findings(text)}
        assert "renal_cyst" in kinds, text
    for text in neg:
        assert extract_findings(text) == [], text
    assert len(set(pos)) > 1  # several phrasings (prompt ensembling)


def test_markdown_table_has_a_row_per_label():
    result = {
        "n_train": 10, "n_test": 4, "labels": ["splenomegaly", "renal_cyst:left"],
        "linear_probe": {
            "splenomegaly": {"accuracy": 0.75, "majority": 0.5, "positives": 2, "n": 4},
            "renal_cyst:left": {"accuracy": 1.0, "majority": 0.75, "positives": 1, "n": 4},
        },
        "zero_shot": {"splenomegaly": {"accuracy": 0.5, "positives": 2, "n": 4}},
        "mean_over_kinds": {"linear_probe": 0.75, "zero_shot": 0.5, "majority": 0.5},
    }  # fmt: skip
    text = probe_markdown(result)
    assert "| splenomegaly | 2 / 4 | 0.500 | 0.500 | 0.750 |" in text
    assert "| renal_cyst:left | 1 / 4 | 0.750 | - | 1.000 |" in text
