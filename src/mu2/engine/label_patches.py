"""Voxel label maps on the ViT patch grid: the share of each patch's voxels with a label.

Two training aids read the synthetic benchmark's label maps (``mu2 data synth
--save-labels``, ``mu2.data.synthetic.synth.label_map_path``) at the tower's resolution:
SFT's grounding loss (which patches hold a report row's finding) and stage 0's lesion
target (which patches hold a focal lesion). Both need the label map taken through exactly
the crop / resize / reorientation of its scan (``PrepMapping.to_frames``) and averaged over
each patch, so that is done once, here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mu2.errors import Mu2Error


def unknown_labels(groups: Sequence[Iterable[str]]) -> list[str]:
    """The names in ``groups`` that are not labels of the synthetic label maps, sorted."""
    from mu2.data.synthetic.anatomy import LABELS

    return sorted({name for g in groups for name in g} - set(LABELS))


def patch_label_share(
    label_path: str | Path,
    image_path: str | Path,
    prep: str,
    labels: Iterable[str],
    patch_size: Sequence[int],
) -> torch.Tensor:
    """(T, gz, gy, gx) float in [0, 1]: the share of each ViT patch's frame voxels that carry
    one of ``labels`` (names of ``mu2.data.synthetic.anatomy.LABELS``)."""
    return patch_label_shares(label_path, image_path, prep, [list(labels)], patch_size)[0]


def patch_label_shares(
    label_path: str | Path,
    image_path: str | Path,
    prep: str,
    groups: Sequence[Iterable[str]],
    patch_size: Sequence[int],
) -> torch.Tensor:
    """(G, T, gz, gy, gx) float in [0, 1]: for each group of label names, the share of each
    ViT patch's frame voxels that carry one of them.

    The label map is read once, on the canonical grid of its scan; each group's mask is
    mapped to frames (T, K, H, W) like the scan (trilinear, as ``prepare`` resamples) and
    averaged over patches.
    """
    from mu2.data.synthetic.anatomy import LABELS
    from mu2.io import load_ct
    from mu2.io.volume import load_label_map
    from mu2.preprocess.config import prep_config
    from mu2.preprocess.prepare import prep_mapping

    label_path = Path(label_path)
    if not label_path.is_file():
        raise Mu2Error(
            "no label map for the case",
            path=str(label_path),
            fix="synthesise with `mu2 data synth --save-labels`, or turn off the aid that reads it",
        )
    groups = [list(g) for g in groups]
    unknown = unknown_labels(groups)
    if unknown:
        raise Mu2Error(f"unknown label(s) {unknown}", fix=f"use names of {sorted(LABELS)}")
    mapping, _ = prep_mapping(load_ct(image_path), prep_config(prep))
    canonical = load_label_map(label_path)  # (X, Y, Z) label ids
    if canonical.shape != tuple(mapping.input_shape):
        raise Mu2Error(
            f"label map {canonical.shape} and scan {mapping.input_shape} differ",
            path=str(label_path),
            fix="pass the label map written with this scan",
        )
    pool = tuple(int(p) for p in patch_size)
    out = []
    for group in groups:
        mask = np.isin(canonical, [LABELS[name] for name in group]).astype(np.float32)
        frames = mapping.to_frames(mask, mode="trilinear")  # (X, Y, Z) -> (T, K, H, W)
        # (T, K, H, W) -> (T, 1, K, H, W) -> share per patch (T, 1, gz, gy, gx)
        out.append(F.avg_pool3d(frames.float()[:, None], pool)[:, 0])
    return torch.stack(out)  # (G, T, gz, gy, gx)
