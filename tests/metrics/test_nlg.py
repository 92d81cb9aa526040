"""Our BLEU / ROUGE / BERTScore equal the libraries called directly on the same texts."""

from __future__ import annotations

import numpy as np
import pytest

from mu2.errors import Mu2Error
from mu2.metrics.nlg import (
    DEFAULT_BERTSCORE_LABEL,
    bertscore_f1,
    bertscore_label,
    bleu,
    default_bertscore_model,
    normalize,
    rouge_f1,
    rouge_l_coco,
)

REFS = [
    "Small left pleural effusion. A 6 mm nodule in the right upper lobe.",
    "The liver is enlarged, measuring 19.5 cm. No ascites.",
    "Moderate hydronephrosis of the right kidney. The bladder is normal.",
    "Normal study.",
]
PREDS = [
    "Small right pleural effusion. No lung nodule.",
    "Hepatomegaly (19.5 cm). There is no ascites.",
    "Moderate right hydronephrosis. Normal bladder.",
    "The liver is normal.",
]


def _coco(texts: list[str]) -> dict[int, list[str]]:
    return {i: [normalize(t)] for i, t in enumerate(texts)}


def test_normalize_splits_punctuation_and_keeps_decimals() -> None:
    assert (
        normalize("Liver 19.5 cm,  normal (no ascites).")
        == "liver 19.5 cm , normal ( no ascites ) ."
    )


def test_bleu_equals_pycocoevalcap() -> None:
    from pycocoevalcap.bleu.bleu import Bleu

    expected, expected_cases = Bleu(4).compute_score(_coco(REFS), _coco(PREDS), verbose=0)
    ours = bleu(REFS, PREDS)
    assert ours.corpus == pytest.approx(expected, abs=1e-12)
    assert ours.per_case == pytest.approx(np.asarray(expected_cases).T, abs=1e-12)
    # Aggregating a subset (repeats allowed) is the library's corpus BLEU of that subset.
    subset = np.array([2, 0, 2])
    sub_expected, _ = Bleu(4).compute_score(
        {k: [normalize(REFS[i])] for k, i in enumerate(subset)},
        {k: [normalize(PREDS[i])] for k, i in enumerate(subset)},
        verbose=0,
    )
    assert ours.aggregate([subset])[0] == pytest.approx(sub_expected, abs=1e-12)
    assert bleu(REFS, REFS).corpus[0] == pytest.approx(1.0)


def test_rouge_equals_pycocoevalcap_and_rouge_score() -> None:
    from pycocoevalcap.rouge.rouge import Rouge
    from rouge_score import rouge_scorer

    mean, cases = Rouge().compute_score(_coco(REFS), _coco(PREDS))
    ours = rouge_l_coco(REFS, PREDS)
    assert ours == pytest.approx(cases, abs=1e-12) and ours.mean() == pytest.approx(mean)

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    direct = [scorer.score(r, p) for r, p in zip(REFS, PREDS, strict=True)]
    f1 = rouge_f1(REFS, PREDS)
    for key in ("rouge1", "rouge2", "rougeL"):
        assert f1[key] == pytest.approx([d[key].fmeasure for d in direct], abs=1e-12)


def test_bertscore_equals_bert_score_with_the_packaged_backbone() -> None:
    from bert_score import BERTScorer

    model = default_bertscore_model()
    assert (model / "config.json").is_file()
    _, _, f1 = BERTScorer(model_type=str(model), num_layers=6).score(PREDS, REFS)
    ours = bertscore_f1([*REFS, REFS[0]], [*PREDS, REFS[0]])  # plus a report against itself
    assert ours[:-1] == pytest.approx(f1.numpy(), abs=1e-6)
    assert ours[-1] == pytest.approx(1.0, abs=1e-5)
    assert bertscore_label(None, None) == DEFAULT_BERTSCORE_LABEL


def test_bertscore_custom_backbone_needs_folder_and_layer(tmp_path) -> None:
    with pytest.raises(Mu2Error, match="not found"):
        bertscore_f1(REFS, PREDS, model=tmp_path / "missing", layer=3)
    with pytest.raises(Mu2Error, match="needs a layer"):
        bertscore_f1(REFS, PREDS, model=default_bertscore_model())
