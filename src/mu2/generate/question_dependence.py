"""Question dependence of a trained model: does the heat map follow the question?

For one scan asked the default question of several regions (chest, abdomen, ...):

* **heat-map correlation**: Pearson r of the heat maps of two region questions over the body
  voxels of the scan (the heat maps of ``mu2 report --heatmap``, on the input's own grid). A
  question-guided tokenizer gives r well below 1; a question-independent pooling head r ~ 1.
* **token cosine across questions**: cosine of visual token q under question a and under
  question b, averaged over q (1.0 = the LLM sees the same tokens whatever is asked);
* **token cosine within a question**: mean cosine between different visual tokens of one
  question (1.0 = all Q tokens are one vector);
* **heat share in the region**: the share of a region question's heat that lies in that
  region's band of axial slices, next to the share the *other* questions put there (chance:
  the band's share of the body, also reported).

Region bands come from the same HU rule as region detection (``mu2.generate.regions``): chest
from the lung base up, abdomen below it down to ``pelvis_below_lung_mm``, pelvis below that.
Scans without aerated lung have no band boundary and are left out of the shares.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage as ndi

from mu2.errors import Mu2Error
from mu2.generate.coverage import CoverageRule
from mu2.generate.heatmap import frames_to_input, patches_to_frames
from mu2.generate.regions import default_question


@dataclass(frozen=True)
class BandRule:
    """How the slices of a scan are split into chest / abdomen / pelvis bands: the body and
    lung HU ranges of the coverage rules (:class:`CoverageRule`), a slice is lung when this
    share of its body is aerated lung, and the pelvis starts this far below the lung base."""

    body_hu: float = CoverageRule.body_hu
    lung_hu: tuple[float, float] = CoverageRule.lung_hu
    lung_fraction: float = 0.05
    pelvis_below_lung_mm: float = 220.0


def region_bands(
    array: np.ndarray, spacing: Sequence[float], rule: BandRule | None = None
) -> dict[str, np.ndarray]:
    """Boolean (Z,) masks of the chest, abdomen and pelvis slices of a canonical RAS CT.

    Empty when the scan has no aerated lung (no landmark to split the bands at)."""
    rule = rule or BandRule()
    per_slice = np.ones((3, 3, 1), dtype=bool)
    body = ndi.binary_fill_holes(array > rule.body_hu, structure=per_slice)
    inner = ndi.binary_erosion(body, structure=per_slice, iterations=2)
    lo, hi = rule.lung_hu
    lung = (array > lo) & (array < hi) & inner
    # (X, Y, Z) -> (Z,)
    lung_frac = lung.sum(axis=(0, 1)) / np.maximum(body.sum(axis=(0, 1)), 1.0)
    lung_z = np.flatnonzero(lung_frac >= rule.lung_fraction)
    if lung_z.size == 0:
        return {}
    z = np.arange(array.shape[2])
    base = int(lung_z.min())  # Z grows superior in RAS: the chest is above the lung base
    pelvis_top = base - rule.pelvis_below_lung_mm / float(spacing[2])
    return {"chest": z >= base, "abdomen": (z < base) & (z >= pelvis_top), "pelvis": z < pelvis_top}


@dataclass
class ScanDependence:
    """The numbers of one scan; pair keys are 'a|b' of the region names."""

    case_id: str
    regions: list[str]
    heat_corr: dict[str, float]
    token_cos: dict[str, float]
    token_self_cos: float
    share: dict[str, dict[str, float]] = field(default_factory=dict)
    """question region -> band region -> share of that question's body heat in the band."""
    band_share: dict[str, float] = field(default_factory=dict)
    """band region -> share of the body voxels in the band (chance level of ``share``)."""


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else float("nan")


@torch.inference_mode()
def scan_dependence(
    model: Any, processor: Any, volume: Any, regions: Sequence[str], case_id: str = ""
) -> ScanDependence:
    """Ask ``volume`` the default question of each region; compare heat maps and tokens."""
    from mu2.preprocess import prep_config, prepare

    if len(regions) < 2:
        raise Mu2Error(f"case {case_id or '?'}: need two regions to compare, got {list(regions)}")
    prepared = prepare(volume, prep_config(str(model.config.prep)))
    questions = [default_question(r) for r in regions]
    batch = processor(questions)
    pv, fm = processor.pad_frames([prepared.frames])  # (1, T, K, H, W), (1, T)
    b = len(questions)
    enc = model.encode_images(
        pv.expand(b, *pv.shape[1:]), fm.expand(b, -1), batch["question_ids"],
        batch["question_mask"], return_attribution=True,
    )  # fmt: skip
    if enc.attribution is None:
        raise Mu2Error("this model's tokenizer gives no heat map (relevance)")
    body = np.asarray(volume.array) > -500.0  # (X, Y, Z)
    heats = [
        frames_to_input(patches_to_frames(a, prepared.frames.shape[1:]), prepared)[body]
        for a in enc.attribution.float()  # (B, T, gz, gy, gx): one map per question
    ]  # each (V,) heat over the body voxels
    tokens = torch.nn.functional.normalize(enc.tokens.float(), dim=-1)  # (B, Q, E)
    corr, cos = {}, {}
    for i, j in combinations(range(b), 2):
        key = f"{regions[i]}|{regions[j]}"
        corr[key] = _pearson(heats[i], heats[j])
        cos[key] = float((tokens[i] * tokens[j]).sum(-1).mean())  # same token q, two questions
    q = tokens.shape[1]
    gram = tokens @ tokens.transpose(1, 2)  # (B, Q, Q)
    self_cos = (
        float(((gram.sum((1, 2)) - gram.diagonal(dim1=1, dim2=2).sum(1)) / (q * (q - 1))).mean())
        if q > 1
        else 1.0
    )
    out = ScanDependence(case_id, list(regions), corr, cos, self_cos)
    bands = region_bands(np.asarray(volume.array), volume.spacing)
    if bands:
        z_of_body = np.nonzero(body)[2]  # (V,) slice index of each body voxel
        for r, band in bands.items():
            out.band_share[r] = float(band[z_of_body].mean())
        for r, h in zip(regions, heats, strict=True):
            total = float(h.sum())
            out.share[r] = {
                br: float(h[band[z_of_body]].sum() / total) if total > 0 else float("nan")
                for br, band in bands.items()
            }
    return out


@dataclass
class QuestionDependence:
    """Means over scans (see the module docstring) and the per-scan numbers."""

    scans: list[ScanDependence]

    def summary(self) -> dict[str, Any]:
        def mean(xs: list[float]) -> float:
            xs = [x for x in xs if x == x]
            return round(float(np.mean(xs)), 4) if xs else float("nan")

        pairs = sorted({k for s in self.scans for k in s.heat_corr})
        regions = sorted({r for s in self.scans for r in s.share})
        out: dict[str, Any] = {
            "scans": len(self.scans),
            "heat_corr": {
                k: mean([s.heat_corr[k] for s in self.scans if k in s.heat_corr]) for k in pairs
            },
            "token_cos": {
                k: mean([s.token_cos[k] for s in self.scans if k in s.token_cos]) for k in pairs
            },
            "token_self_cos": mean([s.token_self_cos for s in self.scans]),
            "share_own": {},
            "share_others": {},
            "band_share": {},
        }
        for r in regions:
            own = [s.share[r][r] for s in self.scans if r in s.share and r in s.share[r]]
            others = [
                s.share[o][r] for s in self.scans for o in s.share if o != r and r in s.share[o]
            ]
            out["share_own"][r] = mean(own)
            out["share_others"][r] = mean(others)
            out["band_share"][r] = mean([s.band_share[r] for s in self.scans if r in s.share])
        return out

    def table(self) -> str:
        """Markdown: one line per region pair, one per region question."""
        s = self.summary()
        lines = [
            f"Question dependence over {s['scans']} scans (1.0 = the question changes nothing):",
            "",
            "| question pair | heat-map correlation | visual-token cosine across questions |",
            "|---|---|---|",
        ]
        lines += [
            f"| {k.replace('|', ' vs ')} | {s['heat_corr'][k]:.3f} | {s['token_cos'][k]:.3f} |"
            for k in s["heat_corr"]
        ]
        lines += [
            "",
            f"Cosine between different visual tokens of one question: {s['token_self_cos']:.4f}",
            "",
            "| region question | its heat in its region | other questions' heat there | region's share of the body |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r} | {s['share_own'][r]:.3f} | {s['share_others'][r]:.3f} | {s['band_share'][r]:.3f} |"
            for r in s["share_own"]
        ]
        return "\n".join(lines) + "\n"


def split_scans(data_dir: str | Path, split: str = "test") -> list[tuple[str, Path, list[str]]]:
    """(case id, image, regions asked of it) per case of a ``mu2 data synth`` split."""
    root = Path(data_dir)
    path = root / f"{split}.jsonl"
    if not path.is_file():
        raise Mu2Error("split file not found", path=str(path), fix="pass a `mu2 data synth` folder")
    cases: dict[str, tuple[Path, list[str]]] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            cid, image, region = row["case_id"], row["image"], row.get("region")
        except (json.JSONDecodeError, KeyError, TypeError):
            raise Mu2Error(
                f"line {n} is not a row with case_id, image, region", path=str(path)
            ) from None
        _, regions = cases.setdefault(cid, (root / image, []))
        if region and region not in regions:
            regions.append(region)
    return [(cid, image, regions) for cid, (image, regions) in cases.items()]


def question_dependence(
    model: Any,
    processor: Any,
    scans: Sequence[tuple[str, Path, list[str]]],
    limit: int | None = None,
) -> QuestionDependence:
    """Question dependence over the scans that were asked about two or more regions."""
    from mu2.io import load_ct

    picked = [s for s in scans if len(s[2]) >= 2][:limit]
    if not picked:
        raise Mu2Error(
            "no scan with questions about two regions",
            fix="use a split with chest and abdomen rows",
        )
    model.eval()
    return QuestionDependence(
        [scan_dependence(model, processor, load_ct(img), regs, cid) for cid, img, regs in picked]
    )
