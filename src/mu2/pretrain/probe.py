"""How much a vision tower sees: zero-shot and linear-probe accuracy per finding kind.

* Linear probe: a logistic regression per label on frozen features of the ViT itself
  (its patch tokens, mean- and max-pooled over tokens and frames: the part SFT loads),
  fitted on training cases, scored on the test split. Run on a randomly initialised
  tower of the same layout too, it shows what stage 0 buys.
* Zero-shot: for each kind, a report stating the finding and a normal report of the same
  region(s), each averaged over several phrasings of the report writer (CLIP's prompt
  ensembling); a case counts as positive when its image embedding is closer to the
  finding prompt.

scikit-learn provides the logistic regression (a well-kept solver, with feature scaling).
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from mu2.findings.catalogue import FINDING_KINDS, SEVERITIES, Finding
from mu2.findings.writer import write_report
from mu2.model.processing import Mu2Processor
from mu2.model.vision import VisionConfig, VisionTower
from mu2.pretrain.cases import LabelSpace, read_cases, write_cases
from mu2.pretrain.clip import ClipModel, load_clip, pool_tokens, vision_layout
from mu2.pretrain.config import ClipDataOptions, ProbeOptions
from mu2.pretrain.dataset import case_dataset

logger = logging.getLogger(__name__)

PROBE_JSON = "probe.json"
PROBE_MD = "probe.md"


@torch.no_grad()
def encode_dataset(
    vision: VisionTower,
    dataset: Any,
    batch_size: int,
    clip: ClipModel | None = None,
    desc: str = "probe",
) -> tuple[np.ndarray, np.ndarray | None, list[dict[str, Any]]]:
    """Frozen ViT features (n, 2 E_v), CLIP image embeddings (n, E) when ``clip`` is given
    (``vision`` must then be ``clip.export_vision()``), and the items' other fields."""
    vision.eval()
    if clip is not None:
        clip.eval()
    feats, embeds, rows = [], [], []
    for start in tqdm(range(0, len(dataset), batch_size), desc=desc, leave=False):
        items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        pixel_values, frame_mask = Mu2Processor.pad_frames([it["frames"] for it in items])
        b, t, k, h, w = pixel_values.shape
        real = frame_mask.reshape(-1).nonzero().squeeze(1)  # (F,)
        frames = pixel_values.reshape(b * t, 1, k, h, w)[real]  # (F, 1, K, H, W)
        tokens = vision(frames)  # (F, N0, E_v)
        n0, ev = tokens.shape[1:]
        grid = tokens.new_zeros(b * t, n0, ev).index_copy(0, real, tokens)  # (B*T, N0, E_v)
        feats.append(pool_tokens(grid.view(b, t, n0, ev), frame_mask, "meanmax"))  # (B, 2E_v)
        if clip is not None:
            projected = clip.projector(tokens)  # (F, N, W)
            n, width = projected.shape[1:]
            pgrid = projected.new_zeros(b * t, n, width).index_copy(0, real, projected)
            pooled = clip.pool_norm(pool_tokens(pgrid.view(b, t, n, width), frame_mask, clip.pool))
            embeds.append(clip.embed_images(pooled))  # (B, E)
        rows += [{k: v for k, v in it.items() if k != "frames"} for it in items]
    emb = torch.cat(embeds).numpy() if embeds else None
    return torch.cat(feats).numpy(), emb, rows


def linear_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    names: Sequence[str],
    c: float = 1.0,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Per label: test accuracy of a logistic regression on standardised features, and of
    always answering the training majority (what a model that ignores the image gets)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    xtr, xte = scaler.transform(train_x), scaler.transform(test_x)
    out = {}
    for j, name in enumerate(names):
        ytr, yte = train_y[:, j] > 0.5, test_y[:, j] > 0.5
        majority = bool(ytr.mean() >= 0.5)
        if ytr.min() == ytr.max():  # one class only: the majority is all a probe can say
            pred = np.full(len(yte), majority)
        else:
            clf = LogisticRegression(C=c, max_iter=5000, random_state=seed)
            pred = clf.fit(xtr, ytr).predict(xte)
        out[name] = {
            "accuracy": float((pred == yte).mean()),
            "majority": float((yte == majority).mean()),
            "positives": int(yte.sum()),
            "n": len(yte),
        }
    return out


def zero_shot_prompts(
    kind: str, regions: Sequence[str], n: int, seed: int = 0
) -> tuple[list[str], list[str]]:
    """n reports of ``regions`` stating one finding of ``kind`` and n normal ones."""
    k = FINDING_KINDS[kind]
    regions = list(regions) or [k.region]
    if k.region not in regions:
        regions.append(k.region)
    pos, neg = [], []
    for i in range(n):
        rng = random.Random(seed * 7919 + i)
        finding = Finding(
            k.organ,
            kind,
            side=rng.choice(("left", "right")) if k.lateral else None,
            severity=rng.choice(SEVERITIES) if k.graded else None,
        )
        pos.append(" ".join(write_report([finding], r, rng) for r in regions))
        neg.append(" ".join(write_report([], r, rng) for r in regions))
    return pos, neg


@torch.no_grad()
def zero_shot(
    clip: ClipModel,
    tokenizer: Any,
    image_embeds: np.ndarray,
    kinds: Sequence[str],
    regions: Sequence[str],
    n_prompts: int,
    max_length: int,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Per kind: (n,) bool, image embedding closer to the finding prompt than the normal one."""
    clip.eval()
    images = torch.from_numpy(image_embeds)  # (n, E)

    def embed(texts: list[str]) -> torch.Tensor:
        enc = tokenizer(
            texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        mean = clip.embed_texts(enc["input_ids"], enc["attention_mask"]).mean(0)  # (P, E) -> (E,)
        return torch.nn.functional.normalize(mean, dim=0)

    out = {}
    for kind in kinds:
        pos, neg = zero_shot_prompts(kind, regions, n_prompts, seed)
        prompts = torch.stack([embed(neg), embed(pos)])  # (2, E)
        out[kind] = (images @ prompts.T).argmax(1).numpy() == 1  # (n, 2) -> (n,)
    return out


def random_tower(config: VisionConfig | str, seed: int) -> VisionTower:
    """A freshly initialised tower of a layout (or of the one SFT builds for a size)."""
    vision_cfg = vision_layout(config)[0] if isinstance(config, str) else config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return VisionTower(vision_cfg)


def _targets(rows: list[dict[str, Any]], labels: LabelSpace) -> np.ndarray:
    return (
        torch.stack([labels.encode(r["findings"]) for r in rows])
        .numpy()
        .reshape(len(rows), len(labels))
    )


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def probe_folder(
    folder: str | Path,
    train_cases: str | Path,
    test_jsonl: str | Path,
    data: ClipDataOptions,
    opts: ProbeOptions,
    batch_size: int = 16,
) -> dict[str, Any]:
    """Probe the stage-0 model saved in ``folder``; write probe.json and probe.md there."""
    folder = Path(folder)
    clip, tokenizer, labels = load_clip(folder)
    test_cases = read_cases(test_jsonl, opts.max_test_cases)
    test_path = write_cases(test_cases, Path(train_cases).parent / "test.jsonl")
    train_ds = case_dataset(
        train_cases, data, seed=opts.seed, train=False, limit=opts.max_train_cases
    )
    test_ds = case_dataset(test_path, data, seed=opts.seed, train=False)
    tower = clip.export_vision()  # raw frames in, as SFT loads it
    xtr, _, rtr = encode_dataset(tower, train_ds, batch_size, desc="probe train")
    xte, emb, rte = encode_dataset(tower, test_ds, batch_size, clip=clip, desc="probe test")
    ytr, yte = _targets(rtr, labels), _targets(rte, labels)
    result: dict[str, Any] = {
        "n_train": len(rtr),
        "n_test": len(rte),
        "labels": labels.names,
        "linear_probe": linear_probe(xtr, ytr, xte, yte, labels.names, opts.c, opts.seed),
    }
    if opts.baseline:
        rand = random_tower(clip.vision.config, opts.seed)
        rxtr, _, _ = encode_dataset(rand, train_ds, batch_size, desc="probe random train")
        rxte, _, _ = encode_dataset(rand, test_ds, batch_size, desc="probe random test")
        result["linear_probe_random_init"] = linear_probe(
            rxtr, ytr, rxte, yte, labels.names, opts.c, opts.seed
        )
    regions = Counter(tuple(r.get("regions") or ()) for r in rtr).most_common(1)[0][0]
    shots = zero_shot(
        clip, tokenizer, emb, labels.kinds, regions, opts.prompts,
        clip.text.max_length, opts.seed,
    )  # fmt: skip
    result["zero_shot"] = {}
    for j, name in enumerate(labels.names):
        if name in shots:
            truth = yte[:, j] > 0.5
            result["zero_shot"][name] = {
                "accuracy": float((shots[name] == truth).mean()),
                "positives": int(truth.sum()),
                "n": len(truth),
            }
    kinds = labels.kinds
    result["mean_over_kinds"] = {
        key: _mean([result[key][k]["accuracy"] for k in kinds if k in result.get(key, {})])
        for key in ("zero_shot", "linear_probe", "linear_probe_random_init")
        if key in result
    }
    result["mean_over_kinds"]["majority"] = _mean(
        [result["linear_probe"][k]["majority"] for k in kinds]
    )
    (folder / PROBE_JSON).write_text(json.dumps(result, indent=2))
    (folder / PROBE_MD).write_text(probe_markdown(result))
    logger.info("probe: %s", result["mean_over_kinds"])
    return result


def probe_markdown(result: dict[str, Any]) -> str:
    """A short table: one row per label, accuracies on the test split."""
    has_rand = "linear_probe_random_init" in result
    head = "| finding | positives / n | majority | zero-shot | linear probe |"
    rule = "|---|---|---|---|---|"
    if has_rand:
        head += " linear probe, random-init tower |"
        rule += "---|"
    lines = [
        f"Stage-0 probe: {result['n_test']} test cases, linear probe fitted on "
        f"{result['n_train']} training cases.",
        "",
        head,
        rule,
    ]

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    for name in result["labels"]:
        lp = result["linear_probe"][name]
        zs = result["zero_shot"].get(name, {}).get("accuracy")
        row = f"| {name} | {lp['positives']} / {lp['n']} | {fmt(lp['majority'])} | {fmt(zs)} | {fmt(lp['accuracy'])} |"
        if has_rand:
            row += f" {fmt(result['linear_probe_random_init'][name]['accuracy'])} |"
        lines.append(row)
    means = result["mean_over_kinds"]
    row = (
        f"| **mean over kinds** | | {fmt(means.get('majority'))} | {fmt(means.get('zero_shot'))} "
        f"| {fmt(means.get('linear_probe'))} |"
    )
    if has_rand:
        row += f" {fmt(means.get('linear_probe_random_init'))} |"
    lines.append(row)
    return "\n".join(lines) + "\n"
