"""Text pretraining of the tiny LLM with the findings in its context (see ``LMConfig``).

Each step takes SFT rows (question, answer, structured findings), builds the exact SFT
prompt with ``Mu2Processor`` and, instead of visual tokens, writes the row's findings as
words ("hepatomegaly, ascites", or "normal") into the block of image placeholders (tiled
over the whole block, or once at a random offset: ``LMConfig.fill``). The loss is the SFT loss (answer
tokens only), and only the LLM trains. The saved folder is a whole mu2 model (the vision
tower from ``model.vision_path`` included) that SFT starts from with ``model.init_from``.

A recipe on the engine (:class:`mu2.engine.recipe.Recipe`): the same loop, checkpoints
with resume and metrics as SFT and DPO; the batches are text rows, not scans. The stage
exists only for the random-init tiny LLM on one device (a pretrained LLM skips it).
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import torch

from mu2.data.schema import Record, read_jsonl
from mu2.engine.dataset import Draw
from mu2.engine.recipe import Recipe
from mu2.errors import Mu2Error
from mu2.train.aids.findings_code import FindingsCoder, code_block
from mu2.train.config import LMConfig
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


class TextRows(torch.utils.data.Dataset):
    """The training rows by index; the engine's sampler draws ``Draw(index, epoch)``."""

    def __init__(self, rows: list[Record]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, item: int | Draw) -> Record:
        return self.rows[item.index if isinstance(item, Draw) else int(item)]


class RandomBatches:
    """``steps`` batches of ``size`` distinct row indices, each drawn by ``random.sample``
    from one ``random.Random(seed)`` (rows may come back in later batches): the LM stage's
    sampling since it was a loop of its own, kept so the demo's numbers stay where they
    were. Deterministic from the seed, so a resumed run skips to the same batches."""

    def __init__(self, n: int, size: int, steps: int, seed: int):
        self.n, self.size, self.steps, self.seed = n, min(size, n), steps, seed

    def set_epoch(self, epoch: int) -> None:
        """One pass over ``steps`` batches is the whole run: nothing to reshuffle."""

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        rng = random.Random(self.seed)
        for _ in range(self.steps):
            yield rng.sample(range(self.n), self.size)


class LMCollator:
    """Text rows -> the SFT prompt tensors, with the findings written into the image block.

    fill=repeat/once: the block's ids are the findings' words (``context_block``); fill=code:
    the ids stay placeholders and ``code_sign`` (B, K) says which kinds each row has, for the
    recipe to build the code block in embedding space. The random offset of fill=once is
    drawn from the batch's row ids, so a resumed run writes the same blocks.
    """

    def __init__(self, processor: Any, cfg: LMConfig, rows: list[Record], coder: FindingsCoder):
        self.processor = processor
        self.cfg = cfg
        tok = processor.tokenizer
        self.contexts = {
            r.id: tok(context_words(r), add_special_tokens=False)["input_ids"] for r in rows
        }  # row id -> context token ids
        self.separator = tok(CONTEXT_SEPARATOR, add_special_tokens=False)["input_ids"]
        self.coder = coder

    def __call__(self, batch: list[Record]) -> dict[str, torch.Tensor]:
        p, cfg = self.processor, self.cfg
        enc = p(
            [r.question for r in batch], [r.answer for r in batch], cfg.model.max_length
        )  # input_ids, attention_mask, labels: (B, L)
        out = {k: enc[k] for k in ("input_ids", "attention_mask", "labels")}
        if cfg.context == "findings" and cfg.fill == "code":
            out["code_sign"] = self.coder.signs(batch)  # (B, K)
        elif cfg.context == "findings":
            rng = random.Random(f"{cfg.seed}:" + ",".join(r.id for r in batch))
            blocks = [
                context_block(
                    self.contexts[r.id], p.num_image_tokens, cfg.fill, self.separator,
                    p.image_token_id, rng,
                )  # fmt: skip
                for r in batch
            ]
            out["input_ids"] = fill_image_block(enc["input_ids"], p.image_token_id, blocks)
        return out


class LMRecipe(Recipe):
    """Only the LLM trains; the loss is the SFT loss on the answer tokens."""

    stage = "lm"

    def __init__(self, cfg: LMConfig):
        super().__init__(cfg)
        self.cfg: LMConfig = cfg
        self.losses: list[float] = []

    def build(self) -> tuple[torch.nn.Module, TextRows, LMCollator]:
        cfg = self.cfg
        rows = [r for r in read_jsonl(cfg.data.train)[: cfg.data.limit] if r.answer.strip()]
        if not rows:
            raise Mu2Error("no rows with an answer to train on", path=cfg.data.train)
        model = build_model(cfg.model, [t for r in rows for t in (r.question, r.answer)], cfg.seed)
        for name, param in model.named_parameters():  # the LLM alone learns
            if not name.startswith("language_model."):
                param.requires_grad_(False)
        self.rows = rows
        self.processor = model.processor
        coder = FindingsCoder(rows, cfg.code_scope, cfg.code_sides, cfg.code_basis)
        self.directions = coder.directions(model.language_model.config.hidden_size)  # (K, E)
        # the code's mixing weights and noise, one generator over the whole run
        self.noise = torch.Generator().manual_seed(cfg.seed)
        return model, TextRows(rows), LMCollator(self.processor, cfg, rows, coder)

    def batch_sampler(self, n: int) -> RandomBatches:
        assert self.cfg.max_steps is not None  # LMConfig always sets it
        return RandomBatches(n, self.cfg.batch_size, self.cfg.max_steps, self.cfg.seed)

    def optimizer_for(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        """AdamW with weight decay on every LLM parameter, as the stage has always trained."""
        o = self.cfg.optim
        params = [p for p in model.parameters() if p.requires_grad]
        return torch.optim.AdamW(
            params, lr=o.lr, weight_decay=o.weight_decay, betas=tuple(o.betas), eps=o.eps
        )

    def cases_in(self, batch: dict[str, Any]) -> int:
        return int(batch["input_ids"].shape[0])

    def compute_loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg, p = self.cfg, self.processor
        lm = self.accelerator.unwrap_model(self.model).language_model
        ids = batch["input_ids"]  # (B, L)
        embeds = None
        if "code_sign" in batch:
            embeds = lm.get_input_embeddings()(ids)  # (B, L, E)
            block = code_block(
                self.directions.to(embeds.device), batch["code_sign"].cpu(),
                p.num_image_tokens, cfg.code_noise, cfg.code_mix_low, self.noise,
            ).to(embeds)  # (B, Q, E)  # fmt: skip
            is_image = ids == p.image_token_id  # (B, L)
            embeds = embeds.masked_scatter(is_image[..., None].expand_as(embeds), block)
        loss = lm(
            input_ids=None if embeds is not None else ids,
            inputs_embeds=embeds,
            attention_mask=batch["attention_mask"],
            labels=batch["labels"],
        ).loss
        self.losses.append(float(loss.detach()))
        return loss, {}

    def summary_extra(self) -> dict[str, Any]:
        return {
            "context": self.cfg.context,
            "fill": self.cfg.fill,
            "rows": len(self.rows),
            "first_loss": self.losses[0] if self.losses else None,
            "final_loss": self.losses[-1] if self.losses else None,
        }


def run_lm_pretrain(cfg: LMConfig) -> Path | None:
    """Train the LLM part; return the saved model folder (``output_dir/final``; None when
    stopped early by ``stop_after``)."""
    return LMRecipe(cfg).run_all()
