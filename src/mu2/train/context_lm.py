"""Text pretraining of the tiny LLM with the findings in its context (see ``LMConfig``).

Each step takes SFT rows (question, answer, structured findings), builds the exact SFT
prompt with ``Mu2Processor`` and, instead of visual tokens, writes the row's findings as
words ("hepatomegaly, ascites", or "normal") into the block of image placeholders (tiled
over the whole block, or once at a random offset: ``LMConfig.fill``). The loss is the SFT loss (answer
tokens only), and only the LLM trains. The saved folder is a whole mu2 model (the vision
tower from ``model.vision_path`` included) that SFT starts from with ``model.init_from``.

Plain loop, no Accelerate: the stage exists only for the random-init tiny LLM on one
device (a pretrained LLM skips it).
"""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from mu2.data.schema import Record, read_jsonl
from mu2.engine.schedule import warmup_cosine
from mu2.errors import Mu2Error
from mu2.train.config import LMConfig
from mu2.train.findings_code import FindingsCoder, code_block
from mu2.train.sft import build_model

log = logging.getLogger(__name__)

NORMAL_WORD = "normal"  # the context of a row without findings
CONTEXT_SEPARATOR = ", "  # between the findings, and between repeats of the block


def context_words(record: Record) -> str:
    """The row's findings as words, e.g. "ascites, hepatomegaly" ("normal" for none)."""
    names = sorted({f["finding"].replace("_", " ") for f in record.findings})
    return CONTEXT_SEPARATOR.join(names) or NORMAL_WORD


def context_block(
    words: list[int],
    size: int,
    fill: str,
    separator: list[int],
    placeholder: int,
    rng: random.Random,
) -> list[int]:
    """The ``size`` ids that stand in for the visual tokens of one row.

    ``repeat`` tiles "words, words, ..." over the whole block: at initialisation the μ²
    tokenizer emits Q nearly equal tokens that each carry the whole case, and an LLM that
    learned to read a block whose every token says the same thing reads those best (it
    also took more seeds to a working alignment, BENCHMARKS.md). ``once`` writes the words
    once at a random offset among placeholders.
    """
    if fill == "repeat":
        unit = [*words, *separator]
        return (unit * (size // len(unit) + 1))[:size]
    words = words[:size]
    start = rng.randrange(size - len(words) + 1)
    block = [placeholder] * size
    block[start : start + len(words)] = words
    return block


def fill_image_block(
    input_ids: torch.Tensor, image_token_id: int, blocks: list[list[int]]
) -> torch.Tensor:
    """input_ids (B, L) with one block of Q placeholders per row -> each row's block ids
    written over its placeholders (a copy; the input is left as it is)."""
    ids = input_ids.clone()  # (B, L)
    for row, block in enumerate(blocks):
        slots = (ids[row] == image_token_id).nonzero().squeeze(1)  # (Q,)
        ids[row, slots] = torch.tensor(block[: len(slots)], dtype=ids.dtype)
    return ids


def _device(choice: str) -> torch.device:
    return torch.device("cuda" if choice == "auto" and torch.cuda.is_available() else "cpu")


def run_lm_pretrain(cfg: LMConfig) -> Path:
    """Train the LLM part; return the saved model folder (``output_dir/final``)."""
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    rows = read_jsonl(cfg.data.train)[: cfg.data.limit]
    rows = [r for r in rows if r.answer.strip()]
    if not rows:
        raise Mu2Error("no rows with an answer to train on", path=cfg.data.train)
    texts = [text for r in rows for text in (r.question, r.answer)]
    model = build_model(cfg.model, texts, seed=cfg.seed)
    processor = model.processor
    tok = processor.tokenizer
    device = _device(cfg.device)
    lm = model.language_model.to(device).train()
    params = [p for p in lm.parameters() if p.requires_grad]
    o = cfg.optim
    optimizer = torch.optim.AdamW(
        params, lr=o.lr, weight_decay=o.weight_decay, betas=tuple(o.betas), eps=o.eps
    )
    scheduler = warmup_cosine(optimizer, cfg.max_steps, o.warmup_ratio, o.min_lr_ratio)
    rng = random.Random(cfg.seed)
    noise_gen = torch.Generator().manual_seed(cfg.seed)
    contexts = {
        r.id: tok(context_words(r), add_special_tokens=False)["input_ids"] for r in rows
    }  # row id -> context token ids
    coder = FindingsCoder(rows)  # fill=code
    directions = coder.directions(lm.config.hidden_size).to(device)  # (K, E)
    separator = tok(CONTEXT_SEPARATOR, add_special_tokens=False)["input_ids"]
    losses: list[float] = []
    start = time.perf_counter()
    bar = tqdm(range(cfg.max_steps), desc="LM pretraining", unit="step")
    for step in bar:
        batch = rng.sample(rows, min(cfg.batch_size, len(rows)))
        enc = processor(
            [r.question for r in batch], [r.answer for r in batch], cfg.model.max_length
        )  # input_ids, attention_mask, labels: (B, L)
        ids = enc["input_ids"]
        embeds = None
        if cfg.context == "findings" and cfg.fill == "code":
            table = lm.get_input_embeddings()
            embeds = table(ids.to(device))  # (B, L, E)
            block = code_block(
                directions, coder.signs(batch), processor.num_image_tokens, cfg.code_noise,
                cfg.code_mix_low, noise_gen,
            )  # (B, Q, E)  # fmt: skip
            is_image = (ids == processor.image_token_id).to(device)  # (B, L)
            embeds = embeds.masked_scatter(is_image[..., None].expand_as(embeds), block)
        elif cfg.context == "findings":
            blocks = [
                context_block(
                    contexts[r.id],
                    processor.num_image_tokens,
                    cfg.fill,
                    separator,
                    processor.image_token_id,
                    rng,
                )  # fmt: skip
                for r in batch
            ]
            ids = fill_image_block(ids, processor.image_token_id, blocks)
        loss = lm(
            input_ids=None if embeds is not None else ids.to(device),
            inputs_embeds=embeds,
            attention_mask=enc["attention_mask"].to(device),
            labels=enc["labels"].to(device),
        ).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, o.clip_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.max_steps:
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            log.info("step %d/%d loss %.4f", step + 1, cfg.max_steps, losses[-1])
    final = Path(cfg.output_dir) / "final"
    model.save_pretrained(final)
    summary = {
        "stage": "lm",
        "context": cfg.context,
        "fill": cfg.fill,
        "steps": cfg.max_steps,
        "first_loss": losses[0],
        "final_loss": losses[-1],
        "seconds": round(time.perf_counter() - start, 2),
        "rows": len(rows),
    }
    (final / "training_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    log.info("LM pretraining: loss %.3f -> %.3f; model: %s", losses[0], losses[-1], final)
    return final
