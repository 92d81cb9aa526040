"""Grounding loss: a report row's question-to-CT relevance should fall on its finding's voxels.

Why: the findings code (:mod:`mu2.train.aids.findings_code`) can be read from any mix of visual
tokens, so nothing in SFT makes the question-conditioned aggregation look where a finding is,
and the heat map of the paper's Fig. 4 (the relevance of every ViT patch, exact through the
linear μ² tokenizer) pointed at fluid no more often than chance. Where voxel labels exist
(synthetic data written by ``mu2 data synth --save-labels``), this loss asks that at least a
``target`` share of a report row's relevance lies on the patches of the row's own fluid or
focal findings. It is not in the paper (whose data sets have no voxel labels); it is off by
default (``SFTConfig.ground_weight``) and the ablation presets never get it.

Only findings whose voxels *are* the finding are grounded: fluid (pleural effusion, ascites,
hydronephrosis: label ``fluid``) and focal lesions (label ``lesion``). Organ-level findings
(fatty liver, hepatomegaly, splenomegaly) are left to the code loss: their evidence is a whole
organ. A case with fluid in two regions grounds both regions' rows on all of its fluid (the
label map does not split it by region).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from mu2.errors import Mu2Error


def grounded_labels(findings: Sequence[dict[str, Any]]) -> set[str]:
    """The label-map labels holding ``findings`` (fluid and focal lesions only)."""
    from mu2.data.synthetic.lesions import voxel_label

    labels = (voxel_label(f["finding"]) for f in findings)
    return {label for label in labels if label is not None}


class GroundingMasks:
    """Per report row: which ViT patches hold its grounded findings, (T, gz, gy, gx) bool.

    Label maps are read from ``labels/<case_id>.nii.gz`` next to the rows' JSONL and taken
    through the same crop / resize / reorientation as the scan (``PrepMapping.to_frames``),
    then averaged over each patch; a patch counts when at least ``min_share`` of its voxels
    carry the label. Masks are computed on first use and kept (one per row).
    """

    def __init__(
        self,
        rows: Sequence[dict[str, Any]],
        jsonl: str | Path,
        prep: str,
        patch_size: Sequence[int],
        min_share: float,
    ):
        self.root = Path(jsonl).parent
        self.prep = prep
        self.patch_size = tuple(int(p) for p in patch_size)
        self.min_share = float(min_share)
        # case_id -> image path (dataset items do not carry the path)
        self.images = {r.get("case_id"): r["image"] for r in rows}
        self._masks: dict[tuple[str, frozenset[str]], torch.Tensor | None] = {}

    def labels_of(self, row: dict[str, Any]) -> set[str]:
        """Grounded labels of a report row (VQA rows carry the whole case's findings)."""
        if row.get("task", "report") != "report":
            return set()
        return grounded_labels(row.get("findings") or [])

    def mask(self, row: dict[str, Any]) -> torch.Tensor | None:
        """(T, gz, gy, gx) bool, or None when the row has nothing to ground (or no case_id
        to find its label map by)."""
        labels = self.labels_of(row)
        case = row.get("case_id")
        if not labels or case is None:
            return None
        key = (case, frozenset(labels))
        if key not in self._masks:
            self._masks[key] = self._compute(case, labels)
        return self._masks[key]

    def _compute(self, case: str, labels: set[str]) -> torch.Tensor | None:
        from mu2.data.synthetic.synth import label_map_path
        from mu2.engine.label_patches import patch_label_share

        image = Path(self.images[case])
        image = image if image.is_absolute() else self.root / image
        share = patch_label_share(  # (T, gz, gy, gx)
            label_map_path(self.root, case), image, self.prep, labels, self.patch_size
        )
        mask = share >= self.min_share
        return mask if bool(mask.any()) else None


class GroundingCollator:
    """Wraps a collator: adds ``ground_mask`` (B, T, gz, gy, gx) bool, frames padded as the
    pixel values are (a row without grounded findings is all False)."""

    def __init__(self, collate: Any, masks: GroundingMasks):
        self.collate = collate
        self.masks = masks

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = self.collate(items)
        b, t = batch["frame_mask"].shape
        found = [self.masks.mask(it) for it in items]
        grid = next((m.shape[1:] for m in found if m is not None), (1, 1, 1))
        out = torch.zeros(b, t, *grid, dtype=torch.bool)  # (B, T, gz, gy, gx)
        for i, m in enumerate(found):
            if m is not None:
                out[i, : m.shape[0]] = m
        batch["ground_mask"] = out
        return batch


def grounding_loss(relevance: torch.Tensor, mask: torch.Tensor, target: float) -> torch.Tensor:
    """relevance (B, T, gz, gy, gx) >= 0, mask (B, T, gz, gy, gx) bool -> scalar.

    Per grounded row: max(0, log target - log share), share = relevance on the mask / all
    relevance. Zero once the share reaches ``target``, so the other findings (read from
    elsewhere) keep the rest; rows with an empty mask do not count."""
    rows = mask.flatten(1).any(dim=1)  # (B,)
    if not bool(rows.any()):
        return relevance.sum() * 0.0
    r = relevance.float().flatten(1)[rows]  # (G, T*gz*gy*gx)
    m = mask.flatten(1)[rows].to(r.dtype)
    share = (r * m).sum(dim=1) / r.sum(dim=1).clamp(min=1e-12)  # (G,)
    gap = math.log(target) - share.clamp(min=1e-6).log()
    return gap.clamp(min=0.0).mean()


class GroundingLoss:
    """SFT's grounding loss (``ground_weight``): a report row's relevance on its finding's
    patches, for tokenizers with relevance (μ² / LinVT presets)."""

    name = "ground"
    needs_attribution = True

    def __init__(self, cfg: Any, model: Any, train: Any, collate: Any):
        if model.visual_tokenizer.config.kind != "mu2":
            raise Mu2Error(
                f"ground_weight needs a tokenizer with relevance (μ² / LinVT presets), not "
                f"'{model.visual_tokenizer.config.kind}'",
                fix="set ground_weight=0",
            )
        masks = GroundingMasks(
            train.rows,
            cfg.data.train,
            cfg.data.prep,
            model.vision_tower.config.patch_size,
            cfg.ground_min_share,
        )
        self.weight = cfg.ground_weight
        self.target = cfg.ground_target
        self.collate = GroundingCollator(collate, masks)

    def loss(self, batch: dict[str, Any], encoding: Any) -> torch.Tensor:
        # (B, T, gz, gy, gx) relevance of every ViT patch and the row's grounded patches
        mask = batch["ground_mask"].to(encoding.attribution.device)
        return grounding_loss(encoding.attribution, mask, self.target)
