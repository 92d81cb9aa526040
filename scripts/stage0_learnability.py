"""Can the tiny ViT3D learn a finding kind from its image alone? A findings-head probe.

Trains the tiny vision tower + projector + a multi-label findings head (mean and max pool
over the frame tokens) on the training cases of a synthetic set, without augmentation,
and prints test accuracy per kind next to the majority rate. This is the upper bound of
what stage 0 can give SFT at a given step budget.

    mu2 data synth --out /tmp/s --n 1000 --seed 0
    .venv/bin/python scripts/stage0_learnability.py /tmp/s --steps 300 --lr 2e-3
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mu2.model.builders import vision_config
from mu2.model.projector import SpatialPoolingProjector
from mu2.model.vision import VisionTower
from mu2.train.dataset import prepare_fn


def cases(root: Path, split: str, prep) -> list[dict]:
    by_case: dict[str, dict] = {}
    for line in (root / f"{split}.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["task"] == "report":
            c = by_case.setdefault(r["case_id"], {"image": r["image"], "kinds": set()})
            c["kinds"] |= {f["finding"] for f in r["findings"]}
    for c in by_case.values():
        c["frames"] = prep(c, root / f"{split}.jsonl").half()  # (T, K, H, W)
    return list(by_case.values())


def stack(cs: list[dict], kinds: list[str], t_max: int) -> tuple[torch.Tensor, ...]:
    k, h, w = cs[0]["frames"].shape[1:]
    x = torch.zeros(len(cs), t_max, k, h, w)  # (B, T, K, H, W)
    m = torch.zeros(len(cs), t_max, dtype=torch.bool)  # (B, T)
    for i, c in enumerate(cs):
        t = c["frames"].shape[0]
        x[i, :t], m[i, :t] = c["frames"].float(), True
    y = torch.tensor([[kind in c["kinds"] for kind in kinds] for c in cs]).float()  # (B, C)
    return x, m, y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("synth", type=Path)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    prep, _ = prepare_fn("tiny")
    train, test = cases(args.synth, "train", prep), cases(args.synth, "test", prep)
    kinds = sorted({k for c in train for k in c["kinds"]})
    t_max = max(c["frames"].shape[0] for c in train + test)
    xtr, mtr, ytr = stack(train, kinds, t_max)
    xte, mte, yte = stack(test, kinds, t_max)
    mean, std = xtr[mtr].mean(), xtr[mtr].std()
    vc = vision_config("tiny")
    tower = VisionTower(vc)
    proj = SpatialPoolingProjector(vc.hidden_size, 128, vc.grid, 2)
    head = nn.Sequential(nn.LayerNorm(256), nn.Linear(256, len(kinds)))
    params = [p for mod in (tower, proj, head) for p in mod.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=args.steps, pct_start=0.1)

    def logits(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        b, t = m.shape
        tok = proj(tower((x.flatten(0, 1)[:, None] - mean) / std)).view(b, t, -1, 128)  # (B,T,N,E)
        w = m[:, :, None, None].float()
        avg = (tok * w).sum((1, 2)) / (w.sum((1, 2)) * tok.shape[2])  # (B, E)
        top = tok.masked_fill(~m[:, :, None, None], -1e4).amax((1, 2))  # (B, E)
        return head(torch.cat([avg, top], -1))  # (B, C)

    gen = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    for _ in range(args.steps):
        idx = torch.randint(len(xtr), (args.batch,), generator=gen)
        loss = F.binary_cross_entropy_with_logits(logits(xtr[idx], mtr[idx]), ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        pred = torch.cat([logits(xte[i : i + 50], mte[i : i + 50]) for i in range(0, len(xte), 50)])
    acc = ((pred > 0) == (yte > 0.5)).float().mean(0)
    print(f"{args.steps} steps of {args.batch} in {seconds:.0f} s; test accuracy (majority):")
    for kind, a, p in zip(kinds, acc.tolist(), yte.mean(0).tolist(), strict=True):
        print(f"  {kind:18s} {a:.2f} ({max(p, 1 - p):.2f})")


if __name__ == "__main__":
    main()
