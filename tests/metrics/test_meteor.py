"""METEOR through one JVM equals pycocoevalcap's Meteor on the same texts."""

from __future__ import annotations

import numpy as np
import pytest

from mu2.errors import Mu2Error
from mu2.metrics.meteor import MeteorScorer, meteor
from mu2.metrics.nlg import normalize

REFS = [
    "Small left pleural effusion. A 6 mm nodule in the right upper lobe.",
    "The liver is enlarged, measuring 19.5 cm. No ascites.",
    "Moderate hydronephrosis of the right kidney. The bladder is normal.",
]
PREDS = [
    "Small right pleural effusion. No lung nodules.",
    "Hepatomegaly (19.5 cm). There is no ascites.",
    "Moderate right hydronephrosis. Normal bladder.",
]


def _direct(refs: list[str], preds: list[str], scorer) -> tuple[float, list[float]]:
    gts = {i: [normalize(r)] for i, r in enumerate(refs)}
    res = {i: [normalize(p)] for i, p in enumerate(preds)}
    return scorer.compute_score(gts, res)


def _library_wrapper_on(scorer: MeteorScorer):
    """pycocoevalcap's Meteor wrapper driving our JVM (same jar, same arguments): one JVM
    start (~11 s) instead of two, and the library's own request/answer logic."""
    import threading

    from pycocoevalcap.meteor.meteor import Meteor

    wrapper = Meteor.__new__(Meteor)
    wrapper.meteor_p = scorer._proc
    wrapper.lock = threading.Lock()
    return wrapper


def _check_against(direct, scorer: MeteorScorer) -> None:
    scores = meteor(scorer, [normalize(r) for r in REFS], [normalize(p) for p in PREDS])
    corpus, cases = _direct(REFS, PREDS, direct)
    assert scores.per_case == pytest.approx(cases, abs=1e-12)
    assert scores.aggregate([np.arange(3)])[0] == pytest.approx(corpus, abs=1e-12)
    # A resample with repeats is the jar's corpus METEOR of those cases.
    subset = np.array([1, 1, 2])
    sub_corpus, _ = _direct([REFS[i] for i in subset], [PREDS[i] for i in subset], direct)
    assert scores.aggregate([subset])[0] == pytest.approx(sub_corpus, abs=1e-12)
    assert sub_corpus != pytest.approx(corpus)  # the subset is a different corpus


def test_meteor_equals_the_pycocoevalcap_wrapper() -> None:
    with MeteorScorer() as scorer:
        _check_against(_library_wrapper_on(scorer), scorer)


@pytest.mark.slow
def test_meteor_equals_pycocoevalcap_in_its_own_jvm() -> None:
    from pycocoevalcap.meteor.meteor import Meteor

    direct = Meteor()  # both JVMs load their paraphrase tables at the same time
    with MeteorScorer() as scorer:
        _check_against(direct, scorer)


def test_missing_java_is_a_clear_user_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no java on this PATH
    with pytest.raises(Mu2Error, match="METEOR needs Java"):
        MeteorScorer()
