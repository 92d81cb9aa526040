"""Lesion hit rate of heat maps: the statistic itself, and the measuring code path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mu2.errors import Mu2Error
from mu2.generate.localise import lesion_hit, lesion_hit_rate, lesion_hit_stats, synth_lesion_cases
from mu2.generate.pipeline import ReportGenerator


def _blob(shape: tuple[int, int, int], centre: tuple[int, int, int], r: float) -> np.ndarray:
    grid = np.indices(shape)
    d2 = sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True))
    return d2 <= r * r


def test_lesion_hit_statistic() -> None:
    shape = (30, 30, 20)
    body = np.ones(shape, bool)
    lesion = _blob(shape, (8, 10, 10), 2)
    on_lesion = np.exp(-((np.indices(shape)[0] - 8) ** 2) / 20.0)  # hot band through the lesion
    elsewhere = np.exp(-((np.indices(shape)[0] - 25) ** 2) / 20.0)
    assert lesion_hit(on_lesion, lesion, body)
    assert not lesion_hit(elsewhere, lesion, body)
    with pytest.raises(ValueError):
        lesion_hit(on_lesion, np.zeros(shape, bool), body)


def test_synth_cases_have_lesions(synth_dir: Path) -> None:
    cases = synth_lesion_cases(synth_dir, "train")
    assert cases, "the tiny synthetic preset should draw fluid findings or focal lesions"
    for c in cases:
        assert c.image.is_file() and c.lesion_mask.is_file()
        assert c.label in ("lesion", "fluid")
        assert c.question.startswith("Describe the findings of the")
    with pytest.raises(Mu2Error):
        synth_lesion_cases(synth_dir, "nosuchsplit")


def test_hit_rate_code_path(generator: ReportGenerator, synth_dir: Path) -> None:
    """Untrained model: checks the measuring code runs and is consistent, not the rate."""
    cases = synth_lesion_cases(synth_dir, "train")[:2]
    res = lesion_hit_stats(generator, cases)
    assert res.n == len(cases)
    assert 0 <= res.hits <= res.n and res.rate == res.hits / res.n
    assert 0.0 <= res.mirrored_rate <= 1.0 and 0.0 <= res.p_value <= 1.0
    assert res.chance == pytest.approx(0.10)
    assert lesion_hit_rate(generator, cases[:1]) in (0.0, 1.0)
