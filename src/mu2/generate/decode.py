"""The one decode path of mu2: (frames, question) rows -> answers.

Every caller that turns prepared volumes into text goes through :func:`decode`:
``ReportGenerator`` (one scan or many, ``mu2 report`` and the web service), the
"predict a split" function (:mod:`mu2.generate.predict`, used by the demo and the
benchmark) and the sample reports / preference sampling of training.

Rows are decoded in batches (left-padded prompts, the LLM's KV cache), many questions of
many scans together. Within a batch the vision tower runs once per distinct scan (rows
that share a frames tensor share its patches); only scans with the same number of frames
share a batch, so no scan is padded with empty frames and a batched answer is the answer
the row gets on its own (tested on greedy decoding).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from mu2.device import synchronize
from mu2.errors import Mu2Error
from mu2.generate.settings import GenerationSettings

CACHE_CHOICES = ("dynamic", "static")


@dataclass
class DecodeOptions:
    """How rows are batched and decoded (the maths of decoding is in GenerationSettings)."""

    batch_size: int = 16
    """Rows (scan, question) per forward pass."""
    cache: str = "dynamic"
    """``static``: transformers' pre-allocated KV cache; on a GPU transformers then compiles
    the decoding step with ``torch.compile`` (see ``compile``)."""
    compile: bool = True
    """With ``cache: static`` on a GPU: compile the decoding step (False: static cache only)."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise Mu2Error(f"decode batch size must be >= 1, got {self.batch_size}")
        if self.cache not in CACHE_CHOICES:
            raise Mu2Error(f"unknown KV cache '{self.cache}'", fix="use dynamic or static")


@dataclass
class Decoded:
    """Answers in row order, with the per-row new-token counts and the time spent."""

    texts: list[str]
    new_tokens: list[int]
    token_ids: list[list[int]] = field(default_factory=list)  # new tokens per row, no padding
    attribution: list[torch.Tensor] | None = None  # per row (T, gz, gy, gx), float32, CPU
    encode_seconds: float = 0.0
    generate_seconds: float = 0.0
    batches: list[list[int]] = field(default_factory=list)  # row indices of each forward


def plan_batches(frames: Sequence[torch.Tensor], batch_size: int) -> list[list[int]]:
    """Row indices per forward: rows grouped by frame count T (first-seen order), in chunks."""
    groups: dict[int, list[int]] = {}
    for i, f in enumerate(frames):
        groups.setdefault(int(f.shape[0]), []).append(i)
    return [
        rows[s : s + batch_size]
        for rows in groups.values()
        for s in range(0, len(rows), batch_size)
    ]


@torch.inference_mode()
def decode(
    model: Any,
    processor: Any,
    frames: Sequence[torch.Tensor],
    questions: Sequence[str],
    *,
    settings: GenerationSettings | None = None,
    options: DecodeOptions | None = None,
    device: str | torch.device | None = None,
    attribution: bool = False,
    seed: int | None = None,
) -> Decoded:
    """Row i = (frames[i] (T, K, H, W), questions[i]) -> its answer (stripped text).

    Pass the same tensor object for several questions of one scan: its vision tower output
    is computed once per batch. ``seed``: draw sampled answers from a forked RNG seeded
    with it (the caller's RNG is left as it was); None uses the current RNG.
    """
    if len(frames) != len(questions):
        raise Mu2Error(f"decode got {len(frames)} volumes but {len(questions)} questions")
    settings = settings or GenerationSettings()
    options = options or DecodeOptions()
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    out = Decoded(texts=[""] * len(frames), new_tokens=[0] * len(frames),
                  token_ids=[[] for _ in frames])  # fmt: skip
    attrs: list[torch.Tensor | None] = [None] * len(frames)
    if not frames:
        return out
    tok = processor.tokenizer
    kw = settings.hf_kwargs()
    kw.update(pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    if options.cache == "static":
        kw.update(cache_implementation="static", disable_compile=not options.compile)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    forks = [dev] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=forks, enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)  # sampling draws from torch's RNG; restored after
        for rows in plan_batches(frames, options.batch_size):
            t0 = time.perf_counter()
            enc, batch = _encode(model, processor, [frames[i] for i in rows],
                                 [questions[i] for i in rows], dev, attribution)  # fmt: skip
            synchronize(dev)
            t1 = time.perf_counter()
            new = _generate_from_encoding(model, enc, batch, **kw)
            synchronize(dev)
            out.encode_seconds += t1 - t0
            out.generate_seconds += time.perf_counter() - t1
            new = new.cpu()
            texts = processor.batch_decode(new, skip_special_tokens=True)
            counts = (new != pad).sum(dim=1).tolist()  # finished rows are padded
            for j, i in enumerate(rows):
                out.texts[i], out.new_tokens[i] = texts[j].strip(), int(counts[j])
                out.token_ids[i] = [int(t) for t in new[j] if int(t) != pad]
                if attribution and enc.attribution is not None:
                    attrs[i] = enc.attribution[j].float().cpu()  # (T, gz, gy, gx)
            out.batches.append(list(rows))
    if attribution and all(a is not None for a in attrs):
        out.attribution = attrs  # type: ignore[assignment]
    return out


def _encode(
    model: Any,
    processor: Any,
    frames: list[torch.Tensor],
    questions: list[str],
    dev: torch.device,
    attribution: bool,
) -> tuple[Any, dict[str, torch.Tensor]]:
    """One batch (all rows with the same T): the vision tower once per distinct scan, then
    the question-conditioned tokenizer per row. Returns the encoding and the prompt batch."""
    batch = {k: v.to(dev) for k, v in processor(questions).items()}  # left-padded prompts
    scans: dict[int, int] = {}  # id(frames tensor) -> index among distinct scans
    for f in frames:
        scans.setdefault(id(f), len(scans))
    distinct = list({id(f): f for f in frames}.values())
    pv, fm = processor.pad_frames(distinct)  # (S, T, K, H, W), (S, T): one T, no padding
    s, t, k, h, w = pv.shape
    dtype = model.projector.mlp[0].weight.dtype
    pv = pv.to(dev).reshape(s * t, 1, k, h, w).to(dtype)  # (S*T, 1, K, H, W)
    per_scan = model.vision_tower(pv).unflatten(0, (s, t))  # (S, T, N0, E_v)
    index = torch.tensor([scans[id(f)] for f in frames], device=dev)
    patches = per_scan.index_select(0, index).flatten(0, 1)  # (B*T, N0, E_v), batch order
    # Only the shape of pixel_values is read when the patches are given: a zero-stride view.
    shape_only = pv.new_zeros(()).expand(len(frames), t, k, h, w)  # (B, T, K, H, W)
    enc = model.encode_images(
        shape_only,
        fm.to(dev).index_select(0, index),  # (B, T)
        batch["question_ids"],
        batch["question_mask"],
        return_attribution=attribution,
        patches=patches,
    )
    return enc, batch


def _generate_from_encoding(
    model: Any, enc: Any, batch: dict[str, torch.Tensor], **gen_kwargs: Any
) -> torch.Tensor:
    """New tokens (B, L_new) with the visual tokens computed once (encode and generate are
    timed apart).

    Uses ``model.generate(image_encoding=...)`` when the model offers it; otherwise scatters
    the visual tokens into the prompt embeddings here, as the model's own merge does.
    """
    if "image_encoding" in inspect.signature(model.generate).parameters:
        return model.generate(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            image_encoding=enc,
            **gen_kwargs,
        )
    input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
    embeds = model.get_input_embeddings()(input_ids)  # (B, L, E)
    is_image = input_ids == model.config.image_token_id  # (B, L)
    counts = is_image.sum(dim=1).tolist()
    if any(c != enc.tokens.shape[1] for c in counts):
        raise Mu2Error(
            f"prompt holds {counts} image placeholders but the encoder gave {enc.tokens.shape[1]}",
            fix="the model folder's processor does not match its weights; re-save the model",
        )
    # (B, Q, E) visual tokens into the (B, L, E) placeholder positions
    embeds = embeds.masked_scatter(
        is_image[..., None].expand_as(embeds), enc.tokens.to(embeds.dtype)
    )
    if not bool(enc.mask.all()):
        attention_mask = attention_mask.clone()
        attention_mask[is_image] = enc.mask.reshape(-1).to(attention_mask.dtype)
    return model.language_model.generate(
        inputs_embeds=embeds, attention_mask=attention_mask, **gen_kwargs
    )
