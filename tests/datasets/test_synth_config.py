"""SynthConfig: presets, sizes, overrides, validation that collects every problem."""

from __future__ import annotations

import numpy as np
import pytest

from mu2.data.synthetic.plan import plan_case
from mu2.data.synthetic.synth_config import ALL_KINDS, TINY_KINDS, SynthConfig, make_config
from mu2.errors import Mu2Error


def test_presets_and_sizes_are_independent() -> None:
    tiny = make_config("tiny", "tiny")
    assert tiny.kinds == TINY_KINDS and tiny.in_plane == (64,)
    hard_paper = make_config("hard", "paper")
    assert hard_paper.kinds == ALL_KINDS and hard_paper.in_plane == (256, 384, 512)
    assert hard_paper.liver_cyst_mm[0] < tiny.liver_cyst_mm[0]  # realistic small lesions
    assert make_config("tiny", "paper").liver_cyst_mm == tiny.liver_cyst_mm
    over = make_config(overrides=["prevalence=0.5", "kinds=[ascites]", "tissue.fat=-90"])
    assert over.prevalence == 0.5 and over.kinds == ("ascites",) and over.tissue.fat == -90.0


def test_invalid_values_are_reported_together() -> None:
    with pytest.raises(Mu2Error) as err:
        SynthConfig(
            kinds=("liver_cyst", "brain_tumour"),
            prevalence=1.5,
            liver_cyst_mm=(30.0, 10.0),
            split=(0.5, 0.2, 0.2),
            holdout_combos=("a+b",),
        )
    msg = str(err.value)
    for part in (
        "unknown kind 'brain_tumour'",
        "prevalence must be in [0, 1]",
        "liver_cyst_mm must be (low, high)",
        "split must be three shares",
        "holdout combo 'a+b'",
    ):
        assert part in msg


def test_plan_respects_prevalence_and_the_cap() -> None:
    cfg = make_config(overrides=["prevalence=1.0", "max_findings=3", "multiple_prob=1.0"])
    plan = plan_case(cfg, np.random.default_rng(0), ALL_KINDS)
    assert len(plan) == 3 and len({p.kind for p in plan}) == 3
    for p in plan:
        lo, hi = {"liver_cyst": cfg.liver_cyst_mm, "renal_cyst": cfg.renal_cyst_mm}.get(
            p.kind, (0, 1e9)
        )
        assert all(lo <= v <= hi for v in p.values)
        assert len(p.values) == p.count * len(p.sides)
    none = plan_case(make_config(overrides=["prevalence=0.0"]), np.random.default_rng(0), ALL_KINDS)
    assert none == []
