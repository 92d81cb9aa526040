"""Does a trained mu2 model read the image? Three checks on a synthetic split.

1. per-finding accuracy of greedy reports (the finding extractor against the ground truth);
2. teacher-forced report loss with each row's own image vs the images shuffled across rows
   (the shuffled-image control: a model that ignores the image scores the same);
3. linear decodability of each finding kind (logistic regression fitted on training cases)
   from the projector's frame tokens and from the visual tokens the LLM receives: where the
   information is lost on the way to the LLM.

``mu2 diagnose image-use`` prints these lines.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

REPORT_BATCH = 16  # rows per forward pass
SHUFFLE_ROWS = 64  # rows of the own-vs-shuffled loss
MAX_NEW_TOKENS = 96


def report_rows(root: Path, split: str, limit: int | None = None) -> list[dict]:
    rows = [json.loads(line) for line in (root / f"{split}.jsonl").read_text().splitlines()]
    return [r for r in rows if r["task"] == "report"][:limit]


def image_use(model_dir: Path, synth: Path, split: str = "test", probe_train: int = 300) -> list[str]:
    """The three checks' lines, for the model in ``model_dir`` on ``synth``'s ``split``."""
    from sklearn.linear_model import LogisticRegression

    from mu2.engine.dataset import SFTCollator, prepare_fn
    from mu2.findings.catalogue import Finding
    from mu2.metrics.perfinding import per_finding
    from mu2.model import Mu2ForConditionalGeneration
    from mu2.train.sampling import generate_reports, model_inputs

    model = Mu2ForConditionalGeneration.from_pretrained(model_dir).eval()
    proc = model.processor
    prep, _ = prepare_fn(model.config.prep)
    cache: dict[str, torch.Tensor] = {}
    out: list[str] = []

    def frames(r: dict) -> torch.Tensor:  # (T, K, H, W)
        if r["image"] not in cache:
            cache[r["image"]] = prep(r, synth / f"{split}.jsonl")
        return cache[r["image"]]

    rows = report_rows(synth, split)
    preds: list[str] = []
    for i in range(0, len(rows), REPORT_BATCH):
        b = rows[i : i + REPORT_BATCH]
        preds += generate_reports(model, proc, [frames(r) for r in b], [r["question"] for r in b],
                                  device="cpu", max_new_tokens=MAX_NEW_TOKENS)  # fmt: skip
    truths = [[Finding.from_dict(f) for f in r["findings"]] for r in rows]
    res = per_finding(preds, truths, [r["region"] for r in rows])
    out.append("1. per-finding accuracy (sensitivity / specificity), greedy reports:")
    for k, s in res.kinds.items():
        if s.tp + s.fn:  # kinds that occur in this split
            out.append(f"   {k:18s} {(s.tp + s.tn) / s.n:.2f} ({s.tp / (s.tp + s.fn):.2f} / "
                       f"{s.tn / max(1, s.tn + s.fp):.2f})")  # fmt: skip
    out.append(f"   reports differing from the most common one: {res.differs_from_mode_share:.3f}")

    collate = SFTCollator(proc, 256)  # text tokens of a report row
    items = [{"frames": frames(r), "question": r["question"], "answer": r["answer"]}
             for r in rows[:SHUFFLE_ROWS]]  # fmt: skip
    batch = collate(items)
    perm = torch.roll(torch.arange(len(items)), 1)  # every row gets another row's image
    with torch.no_grad():
        own = model(**model_inputs(batch)).loss.item()
        batch["pixel_values"] = batch["pixel_values"][perm]
        batch["frame_mask"] = batch["frame_mask"][perm]
        other = model(**model_inputs(batch)).loss.item()
    out.append(f"2. report loss, own image {own:.4f} vs another row's image {other:.4f}")

    max_frames = model.config.tokenizer().max_frames

    def features(split_rows: list[dict]) -> tuple[np.ndarray, np.ndarray, list[set]]:
        proj, vis, kinds = [], [], []
        for i in range(0, len(split_rows), REPORT_BATCH):
            b = split_rows[i : i + REPORT_BATCH]
            pv, fm = proc.pad_frames([frames(r) for r in b])  # (B, T, K, H, W)
            q = proc.tokenizer([r["question"] for r in b], return_tensors="pt", padding=True,
                               add_special_tokens=False)  # fmt: skip
            with torch.no_grad():
                enc = model.encode_images(pv, fm, q["input_ids"], q["attention_mask"].bool())
                vis.append(enc.tokens.flatten(1))  # (B, Q*E)
                full = torch.zeros(len(b), max_frames, *pv.shape[2:])  # same T for every batch
                full[:, : pv.shape[1]] = pv
                t = model.projector(model.vision_tower(full.flatten(0, 1)[:, None]))  # (B*T, N, E)
                proj.append(t.reshape(len(b), -1))  # (B, T*N*E)
            kinds += [{f["finding"] for f in r["findings"]} for r in b]
        return torch.cat(proj).numpy(), torch.cat(vis).numpy(), kinds

    abdomen = [r for r in report_rows(synth, "train") if r["region"] == "abdomen"]
    test_abd = [r for r in rows if r["region"] == "abdomen"]
    ptr, vtr, ktr = features(abdomen[:probe_train])
    pte, vte, kte = features(test_abd)
    out.append("3. linear decodability on the test split (abdomen rows): projector tokens | "
               "visual tokens to the LLM")  # fmt: skip
    for k in sorted({k for s in ktr for k in s}):
        ytr, yte = np.array([k in s for s in ktr]), np.array([k in s for s in kte])
        if ytr.all() or not yte.size:  # nothing to separate (or to score) in these rows
            out.append(f"   {k:18s} -- (present in every probe training row or no test rows)")
            continue
        accs = [LogisticRegression(max_iter=2000, C=0.1).fit(a, ytr).score(b, yte)
                for a, b in ((ptr, pte), (vtr, vte))]  # fmt: skip
        majority = max(yte.mean(), 1 - yte.mean())
        out.append(f"   {k:18s} {accs[0]:.2f} | {accs[1]:.2f}  (majority {majority:.2f})")
    return out


