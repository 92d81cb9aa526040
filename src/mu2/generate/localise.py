"""Does the question-to-CT heat map point at the lesion? (issue: heat-map hit rate)

On synthetic cases the lesion voxels are known (label map ``lesion`` written by
``mu2 data synth --save-labels``). Two statistics against the top decile (90th
percentile) of heat over the body:

* **voxel share** (the primary one): the share of lesion voxels whose heat is in the top
  decile. If the heat ignored where the lesion is, a lesion voxel would be in the top
  decile with probability 0.10, so the mean share over cases has chance level 0.10 for
  lesions of any size and shape;
* **hit**: a case whose *mean* lesion heat reaches the top decile. For a focal lesion
  this is close to "the lesion is in the top decile" with chance about 0.10, but for an
  extended region (pleural fluid, ascites) its chance level is far below 0.10, because a
  mean over many voxels rarely reaches a 90th percentile.

As a control with the same lesion size and a similar anatomical place, the lesion mask
mirrored left-right is scored the same way; a model that localises lesions beats both the
chance level and the mirrored control (paired one-sided Wilcoxon test on the shares).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from tqdm.auto import tqdm

from mu2.data.synthetic.lesions import FLUID_KINDS, FLUID_LABEL, FOCAL, LESION_LABEL
from mu2.data.synthetic.synth import label_map_path
from mu2.errors import Mu2Error
from mu2.findings.catalogue import FINDING_KINDS
from mu2.generate.regions import default_question

log = logging.getLogger(__name__)

TOP_FRACTION = 0.10  # "top decile of heat"
BODY_HU = -500.0  # voxels above this are body (air and padding are not)


@dataclass
class LesionCase:
    """A scan, its lesion mask (same file grid as the scan) and the question to ask."""

    image: Path
    lesion_mask: Path
    question: str
    case_id: str = ""
    label: str = "lesion"
    """Label of the abnormal voxels in the map: ``lesion`` (focal lesions) or ``fluid``
    (pleural effusion, ascites, hydronephrosis)."""


@dataclass
class HitRate:
    """Voxel share and hit rate, their chance level, p-values and the mirrored control."""

    rate: float
    hits: int
    n: int
    chance: float
    p_value: float
    """One-sided binomial p of the hit count against ``chance`` (conservative for
    extended lesions, whose hit chance is below it)."""
    mirrored_rate: float
    voxel_share: float = float("nan")
    """Mean over cases of the share of lesion voxels in the top decile (chance: ``chance``)."""
    mirrored_share: float = float("nan")
    share_p_value: float = float("nan")
    """One-sided paired Wilcoxon p: lesion shares above the mirrored masks' shares."""

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def lesion_hit(
    heat: np.ndarray, lesion: np.ndarray, body: np.ndarray, top: float = TOP_FRACTION
) -> bool:
    """True when the mean heat over ``lesion`` voxels is in the top ``top`` of body heat."""
    if not lesion.any():
        raise ValueError("empty lesion mask")
    region = body | lesion
    threshold = float(np.quantile(heat[region], 1.0 - top))
    return float(heat[lesion].mean()) >= threshold


def top_share(
    heat: np.ndarray, lesion: np.ndarray, body: np.ndarray, top: float = TOP_FRACTION
) -> float:
    """Share of ``lesion`` voxels whose heat is in the top ``top`` of body heat.

    Strictly above the quantile: where most of the body has the same heat (e.g. zero), a
    tie with the threshold does not count as hot."""
    if not lesion.any():
        raise ValueError("empty lesion mask")
    threshold = float(np.quantile(heat[body | lesion], 1.0 - top))
    return float((heat[lesion] > threshold).mean())


def synth_lesion_cases(synth_dir: str | Path, split: str = "test") -> list[LesionCase]:
    """Cases of a synthetic split with a focal lesion or a fluid finding in their label map.

    Focal lesions are scored when the case has any (label ``lesion``), else its fluid
    (pleural effusion, ascites: label ``fluid``); the question asks for the findings of the
    region holding most of those findings (one map per case, so each case counts once).
    """
    root = Path(synth_dir)
    rows_path = root / f"{split}.jsonl"
    if not rows_path.is_file():
        raise Mu2Error(
            "split file not found", path=str(rows_path), fix="run `mu2 data synth` first"
        )
    case_ids = []
    for line in rows_path.read_text().splitlines():
        if line.strip():
            cid = json.loads(line).get("case_id")
            if cid and cid not in case_ids:
                case_ids.append(cid)
    cases = []
    for cid in case_ids:
        labels = label_map_path(root, cid)
        gt_path = root / "gt" / f"{cid}.json"
        if not labels.is_file():
            raise Mu2Error(
                "no label map for the case", path=str(labels), fix="synthesise with --save-labels"
            )
        gt = json.loads(gt_path.read_text())
        kinds = [f["finding"] for f in gt["findings"]]
        focal = [k for k in kinds if k in FOCAL]
        fluid = [k for k in kinds if k in FLUID_KINDS]
        if not focal and not fluid:
            continue
        picked, label = (focal, LESION_LABEL) if focal else (fluid, FLUID_LABEL)
        region = Counter(FINDING_KINDS[k].region for k in picked).most_common(1)[0][0]
        cases.append(
            LesionCase(
                image=root / gt["image"],
                lesion_mask=labels,
                question=default_question(region),
                case_id=cid,
                label=label,
            )
        )
    return cases


def lesion_hit_stats(
    generator: Any, cases: Sequence[LesionCase], top: float = TOP_FRACTION, progress: bool = False
) -> HitRate:
    """Hit rate of the generator's heat maps over ``cases`` (see module docstring)."""
    from mu2.data.synthetic.anatomy import LABELS
    from mu2.io import load_ct
    from mu2.io.volume import load_label_mask

    hits = mirrored = n = 0
    shares: list[float] = []
    mirrored_shares: list[float] = []
    for case in tqdm(cases, desc="heat-map hits", unit="case", disable=not progress):
        volume = load_ct(case.image)
        lesion = load_label_mask(case.lesion_mask, [LABELS[case.label]])
        if lesion.shape != volume.shape:
            raise Mu2Error(
                f"lesion mask {lesion.shape} and scan {volume.shape} differ",
                path=str(case.lesion_mask),
                fix="pass the label map written with this scan",
            )
        if not lesion.any():
            log.debug("case %s has no lesion voxels; skipped", case.case_id)
            continue
        result = generator.report(volume, question=case.question, max_new_tokens=1, heatmap=True)
        body = volume.array > BODY_HU
        mirror = lesion[::-1]  # X flipped: left <-> right
        hits += lesion_hit(result.heatmap, lesion, body, top)
        mirrored += lesion_hit(result.heatmap, mirror, body, top)
        shares.append(top_share(result.heatmap, lesion, body, top))
        mirrored_shares.append(top_share(result.heatmap, mirror, body, top))
        n += 1
    if n == 0:
        raise Mu2Error("no case with a lesion to score", fix="use cases with focal lesions")
    p = stats.binomtest(hits, n, top, alternative="greater").pvalue
    diff = np.asarray(shares) - np.asarray(mirrored_shares)
    share_p = (
        float(stats.wilcoxon(diff, alternative="greater").pvalue) if np.any(diff) else 1.0
    )  # all pairs tied (e.g. a symmetric lesion): no evidence either way
    return HitRate(
        hits / n, hits, n, top, float(p), mirrored / n,
        float(np.mean(shares)), float(np.mean(mirrored_shares)), share_p,
    )  # fmt: skip


def lesion_hit_rate(
    generator: Any, cases: Sequence[LesionCase], top: float = TOP_FRACTION
) -> float:
    """Share of cases whose lesion lies in the top decile of heat (chance: ``top``)."""
    return lesion_hit_stats(generator, cases, top).rate
