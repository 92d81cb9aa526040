"""Experiment (issue 10): SFT plus an auxiliary findings loss on the visual tokens.

A linear head on the mean of the Q visual tokens the LLM receives predicts each finding
kind of the row's region (binary cross-entropy, masked to the kinds that occur in that
region's training rows), added to the SFT loss with weight ``--aux-weight``. The question
it answers: does forcing the tokenizer to keep the findings make the (frozen) LLM report
them? The head is dropped when the model is saved. Results: BENCHMARKS.md, issue 10,
"Session 4".

    .venv/bin/python scripts/sft_findings_aux.py SFT_CONFIG.yaml --aux-weight 1 [key=value ...]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mu2.config import load_config
from mu2.data.schema import read_jsonl
from mu2.train.config import SFTConfig
from mu2.train.sampling import model_inputs
from mu2.train.sft import SFTRecipe, row_mean_loss


class FindingsAuxRecipe(SFTRecipe):
    def __init__(self, cfg: SFTConfig, weight: float):
        super().__init__(cfg)
        self.weight = weight
        rows = read_jsonl(cfg.data.train)
        self.kinds = sorted({f["finding"] for r in rows for f in r.findings})
        self.region_kinds = {}  # region -> indices of the kinds its rows report
        for r in rows:
            seen = self.region_kinds.setdefault(r.region, set())
            seen.update(self.kinds.index(f["finding"]) for f in r.findings)

    def build(self):
        model, train, collate = super().build()
        model.aux_head = nn.Linear(model.config.text_config.hidden_size, len(self.kinds))

        def with_targets(items):
            batch = collate(items)
            target = torch.zeros(len(items), len(self.kinds))  # (B, C)
            mask = torch.zeros_like(target)
            for i, it in enumerate(items):
                mask[i, sorted(self.region_kinds.get(it.get("region"), ()))] = 1.0
                for f in it.get("findings", []):
                    target[i, self.kinds.index(f["finding"])] = 1.0
            batch["aux_target"], batch["aux_mask"] = target, mask
            return batch

        return model, train, with_targets

    def compute_loss(self, batch):
        model = self.accelerator.unwrap_model(self.model)
        inputs = model_inputs(batch)
        labels = inputs.pop("labels")
        enc = model.encode_images(
            inputs["pixel_values"], inputs["frame_mask"],
            inputs["question_ids"], inputs["question_mask"],
        )  # fmt: skip
        logits = self.model(
            input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
            image_encoding=enc,
        ).logits  # fmt: skip
        aux_logits = model.aux_head(enc.tokens.mean(dim=1))  # (B, Q, E) -> (B, E) -> (B, C)
        mask = batch["aux_mask"]
        bce = F.binary_cross_entropy_with_logits(aux_logits, batch["aux_target"], reduction="none")
        aux = (bce * mask).sum() / mask.sum().clamp(min=1.0)
        return row_mean_loss(logits, labels) + self.weight * aux, {"aux": aux.detach()}

    def save_model(self, unwrapped, out, state_dict):
        del unwrapped.aux_head
        if state_dict is not None:
            state_dict = {k: v for k, v in state_dict.items() if "aux_head" not in k}
        unwrapped.save_pretrained(out, state_dict=state_dict)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", type=Path)
    ap.add_argument("--aux-weight", type=float, default=1.0)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_intermixed_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = load_config(SFTConfig, args.config, args.overrides)
    print(FindingsAuxRecipe(cfg, args.aux_weight).run_all())


if __name__ == "__main__":
    main()
