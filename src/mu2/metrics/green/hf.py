"""A GREEN judge model run locally with transformers, with the published client settings.

Published settings (green-protocol.md section 2): the judges' own chat template
(``from``/``value``), the tokenizer's special tokens plus an end-of-sequence token
(``add_eos_token=True``), left padding with pad = eos, truncation at 2048 tokens, greedy
decoding up to 2048 tokens counting the prompt, batches of 8, float16 weights on GPU.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mu2.device import resolve_device
from mu2.errors import Mu2Error
from mu2.metrics.green.prompt import GREEN_CHAT_TEMPLATE, judge_conversation, make_prompt
from mu2.metrics.offline import hub_offline

log = logging.getLogger(__name__)

# Published client defaults.
GREEN_MAX_LENGTH = 2048  # prompt + answer tokens; also the prompt truncation length
GREEN_BATCH_SIZE = 8


def load_judge_tokenizer(path: str | Path) -> Any:
    """The judge's tokenizer set up as the published client sets it up."""
    from transformers import AutoTokenizer

    with hub_offline():
        tokenizer = AutoTokenizer.from_pretrained(str(path))
    if tokenizer.eos_token is None:
        raise Mu2Error(
            "the judge tokenizer has no end-of-sequence token",
            path=str(path),
            fix="use a GREEN judge folder (its tokenizer defines eos_token)",
        )
    tokenizer.padding_side = "left"
    tokenizer.pad_token = tokenizer.eos_token
    # The published judges' template, set explicitly so every judge renders the same text.
    tokenizer.chat_template = GREEN_CHAT_TEMPLATE
    return tokenizer


def encode_prompts(tokenizer: Any, prompts: Sequence[str], max_length: int) -> list[list[int]]:
    """Chat-wrapped token ids of each prompt, ending in eos, at most ``max_length`` long."""
    eos = tokenizer.eos_token_id
    out = []
    for prompt in prompts:
        text = tokenizer.apply_chat_template(
            judge_conversation(prompt), tokenize=False, add_generation_prompt=True
        )
        ids = tokenizer(text, truncation=True, max_length=max_length)["input_ids"]
        if ids[-1] != eos:
            # add_eos_token=True of the published client: the tokenizer's own special tokens
            # (e.g. Llama's BOS) plus a final eos. transformers 5 rebuilds the post-processor
            # for that flag and may drop BOS, so the eos is added here, after truncating the
            # text to leave room for it (as the tokenizer's own truncation would).
            ids = tokenizer(text, truncation=True, max_length=max_length - 1)["input_ids"]
            ids = [*ids, eos]
        out.append(ids)
    return out


class HFJudge:
    """A GREEN model folder (e.g. GREEN-RadLlama2-7b) answering prompts in batches."""

    offline = False

    def __init__(
        self,
        path: str | Path,
        *,
        batch_size: int = GREEN_BATCH_SIZE,
        device: str | None = None,
        dtype: str | None = None,
        max_length: int = GREEN_MAX_LENGTH,
        max_new_tokens: int | None = None,
        progress: bool = True,
    ) -> None:
        """``max_new_tokens`` caps the answer length for smoke tests only (None = published)."""
        import torch
        from transformers import AutoModelForCausalLM

        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise Mu2Error(
                "GREEN judge folder not found (no config.json)",
                path=str(self.path),
                fix="download a GREEN model (e.g. StanfordAIMI/GREEN-RadLlama2-7b) and pass "
                "hf:FOLDER",
            )
        if batch_size < 1 or max_length < 2:
            raise Mu2Error(
                f"batch_size must be >= 1 and max_length >= 2, got {batch_size}, {max_length}"
            )
        self.device = resolve_device(device)
        if dtype is None:
            dtype = "float16" if self.device.type == "cuda" else "float32"
        self.name = f"hf:{self.path.name}"
        self.label = f"GREEN (judge {self.path.name})"
        self.batch_size = batch_size
        self.max_length = max_length
        self.max_new_tokens = max_new_tokens
        self.progress = progress
        self.tokenizer = load_judge_tokenizer(self.path)
        with hub_offline():
            self.model = AutoModelForCausalLM.from_pretrained(
                str(self.path), dtype=getattr(torch, dtype)
            )
        self.model.to(self.device).eval()

    def _generation_config(self) -> Any:
        from transformers import GenerationConfig

        # Built from scratch so a judge's own generation_config.json cannot change decoding.
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens}
        if self.max_new_tokens is None:
            kwargs = {"max_length": self.max_length}
        return GenerationConfig(
            do_sample=False,
            num_beams=1,
            eos_token_id=self.tokenizer.eos_token_id,
            pad_token_id=self.tokenizer.pad_token_id,
            **kwargs,
        )

    def answers(self, pairs: Sequence[tuple[str, str]]) -> list[str]:
        import torch
        from tqdm.auto import tqdm

        prompts = [make_prompt(ref, cand) for ref, cand in pairs]
        ids = encode_prompts(self.tokenizer, prompts, self.max_length)
        config = self._generation_config()
        out: list[str] = []
        starts = range(0, len(ids), self.batch_size)
        for start in tqdm(starts, desc="GREEN judge", disable=not self.progress):
            batch = self.tokenizer.pad(
                {"input_ids": ids[start : start + self.batch_size]},
                padding=True,
                return_tensors="pt",
            ).to(self.device)  # input_ids (B, L), left-padded
            with torch.inference_mode():
                generated = self.model.generate(**batch, generation_config=config)  # (B, L + new)
            new_tokens = generated[:, batch["input_ids"].shape[1] :]  # (B, new)
            out.extend(self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
        return out
