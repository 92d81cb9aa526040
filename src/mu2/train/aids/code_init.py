"""Start SFT with visual tokens that already are the findings code, on average.

Every μ² output token is a convex mix of projector tokens, and the projector ends in a
linear layer, so a visual token is ``W2 @ (mix of the hidden features) + b2``. Fitting
``W2, b2`` by ridge regression from each case's *mean* hidden feature to its findings code
(``mu2.train.aids.findings_code``) makes a uniform mix emit the code from step 0. Without it,
the signed code (mean zero over cases) leaves the code loss on a plateau at 1.0 for
150-450 steps before the tokens become case-dependent, a wait that varied with the seed
(docs/experiments/2026-11-28-research-log.md). Written by hand: a closed-form least-squares warm start of one
layer is a few lines of torch.linalg, not a library feature.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from mu2.engine.tower_cache import TowerCache
from mu2.train.aids.findings_code import CodeCollator, findings_code

log = logging.getLogger(__name__)


@torch.no_grad()
def fit_projector_to_code(
    model: Any,
    dataset: Any,
    collate: CodeCollator,
    directions: torch.Tensor,
    rows: int,
    *,
    ridge: float = 1e-2,
    batch_size: int = 16,
    cache: TowerCache | None = None,
) -> float:
    """Set the projector's last linear layer by ridge regression (relative strength
    ``ridge``) on ``rows`` training rows spread over the data set; return the fit's
    relative residual (the code loss a uniform mix would have on those rows)."""
    last = model.projector.mlp[-1]
    hidden: list[torch.Tensor] = []
    handle = last.register_forward_hook(lambda _m, inputs, _out: hidden.append(inputs[0]))
    step = max(1, len(dataset) // max(1, rows))
    picks = list(range(0, len(dataset), step))[:rows]
    xs, ys = [], []
    try:
        for start in range(0, len(picks), batch_size):
            batch = collate([dataset[i] for i in picks[start : start + batch_size]])
            pv, fm = batch["pixel_values"], batch["frame_mask"].bool()  # (B, T, K, H, W), (B, T)
            if cache is not None:
                patches = cache.patches(model.vision_tower, pv, fm)  # (F, N0, E_v)
            else:
                frames = pv[fm][:, None].to(last.weight.dtype)  # (F, 1, K, H, W)
                patches = model.vision_tower(frames)
            hidden.clear()
            model.projector(patches)  # the hook keeps the last layer's input (F, N, E_h)
            per_frame = hidden[0].mean(dim=1)  # (F, E_h)
            counts = fm.sum(dim=1).tolist()  # real frames per row
            xs.append(torch.stack([f.mean(dim=0) for f in per_frame.split(counts)]))  # (B, E_h)
            ys.append(findings_code(directions, batch["code_sign"]))  # (B, E)
    finally:
        handle.remove()
    x = torch.cat(xs).double()  # (R, E_h)
    y = torch.cat(ys).double()  # (R, E)
    xa = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)  # (R, E_h + 1)
    gram = xa.T @ xa  # (E_h + 1, E_h + 1)
    reg = ridge * gram.diagonal().mean() * torch.eye(len(gram), dtype=gram.dtype)
    solution = torch.linalg.solve(gram + reg, xa.T @ y)  # (E_h + 1, E)
    last.weight.copy_(solution[:-1].T.to(last.weight.dtype))
    last.bias.copy_(solution[-1].to(last.bias.dtype))
    residual = ((xa @ solution - y).pow(2).mean() / y.pow(2).mean()).item()
    log.info("projector output layer fitted to the findings code on %d rows: residual %.3f",
             len(x), residual)  # fmt: skip
    return residual
