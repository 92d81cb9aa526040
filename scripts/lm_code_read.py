"""How well does an LM-stage model read the findings code? (issue 10)

Greedy reports of the LM-stage model (``mu2 train lm`` with ``fill=code``) for the test
report rows of a synthetic split, each with its own case's findings code in the image block
(``mu2.train.findings_code.code_block``: random mix weights, noise), scored per finding
kind with the finding extractor. This bounds what SFT can reach: SFT only has to make the
visual tokens look like that code.

    .venv/bin/python scripts/lm_code_read.py LM_MODEL_DIR SYNTH_DIR [--noise 0.5] [--low 0.25]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from mu2.findings.catalogue import Finding
from mu2.metrics.perfinding import per_finding
from mu2.model import Mu2ForConditionalGeneration
from mu2.train.findings_code import FindingsCoder, code_block


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("synth", type=Path)
    ap.add_argument("--split", default="test")
    ap.add_argument("--noise", type=float, default=0.5)
    ap.add_argument("--low", type=float, default=0.25, help="lowest mix weight of a kind")
    args = ap.parse_args()
    model = Mu2ForConditionalGeneration.from_pretrained(args.model).eval()
    proc, lm = model.processor, model.language_model
    embed = lm.get_input_embeddings()
    read = lambda name: [json.loads(x) for x in (args.synth / f"{name}.jsonl").open()]  # noqa: E731
    coder = FindingsCoder(read("train"))
    directions = coder.directions(lm.config.hidden_size)  # (K, E)
    rows = [r for r in read(args.split) if r["task"] == "report"]
    gen = torch.Generator().manual_seed(0)
    preds = []
    with torch.no_grad():
        for r in rows:
            ids = torch.tensor([proc.prompt_ids(r["question"])])  # (1, L)
            block = code_block(directions, coder.signs([r]), proc.num_image_tokens,
                               args.noise, args.low, gen)  # (1, Q, E)  # fmt: skip
            embeds = embed(ids)  # (1, L, E)
            slots = (ids == proc.image_token_id)[..., None].expand_as(embeds)
            out = lm.generate(inputs_embeds=embeds.masked_scatter(slots, block),
                              attention_mask=torch.ones_like(ids), max_new_tokens=96,
                              do_sample=False)  # fmt: skip
            preds.append(proc.tokenizer.decode(out[0], skip_special_tokens=True))
    truths = [[Finding.from_dict(f) for f in r["findings"]] for r in rows]
    res = per_finding(preds, truths, [r["region"] for r in rows])
    print(f"kinds {coder.kinds}; {len(rows)} {args.split} report rows")
    for kind, s in res.kinds.items():
        if s.tp + s.fn:
            print(f"  {kind:18s} accuracy {(s.tp + s.tn) / s.n:.2f}")


if __name__ == "__main__":
    main()
