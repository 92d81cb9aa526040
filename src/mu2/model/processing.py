"""Mu2Processor: questions (and reports) -> the LLM's token ids, and volumes -> padded frames.

As in LLaVA, one ``<image>`` in the chat prompt is expanded into exactly as many placeholder
tokens as the visual tokenizer emits; the model checks the count and scatters the visual
tokens into those positions. The prompt always starts with BOS (the reference code's
training prompt lacked it and lost the first question token).

Two budgets, kept apart: ``max_length`` counts text tokens only (chat prompt, question,
report); the Q image placeholders come on top, so the LLM sees at most max_length + Q
positions (the paper's 1024 queries with a 1024-token text budget: 2048). Chat templates
that stamp a date (Llama 3's "Today Date") get a fixed one, so a question's prompt is
the same whenever and wherever it is rendered: in training, preference sampling and
inference.
"""

from __future__ import annotations

import torch
from transformers import ProcessorMixin

from mu2.errors import Mu2Error
from mu2.model.text import IMAGE_TOKEN

IGNORE_INDEX = -100  # label of tokens without loss (prompt, padding)
# What Llama 3's own template falls back to when no clock is available; passed as its
# ``date_string`` so that prompts never depend on the day they are rendered.
TEMPLATE_DATE = "26 Jul 2024"


class Mu2Processor(ProcessorMixin):
    """Wraps the LLM tokenizer; saved next to the model weights (``processor_config.json``)."""

    attributes = ["tokenizer"]
    tokenizer_class = "AutoTokenizer"

    def __init__(
        self,
        tokenizer=None,
        num_image_tokens: int = 1,
        image_token: str = IMAGE_TOKEN,
        max_length: int | None = None,
        chat_template: str | None = None,
        **kwargs,
    ):
        self.num_image_tokens = int(num_image_tokens)
        self.image_token = image_token
        self.max_length = max_length
        super().__init__(tokenizer, chat_template=chat_template)

    @property
    def image_token_id(self) -> int:
        return self.tokenizer.convert_tokens_to_ids(self.image_token)

    def prompt_ids(self, question: str) -> list[int]:
        """Chat prompt for one question: BOS, Q placeholders, the question, the answer cue."""
        tok = self.tokenizer
        if self.image_token in question:
            raise Mu2Error(f"the question contains the reserved token {self.image_token!r}")
        messages = [{"role": "user", "content": f"{self.image_token}\n{question}"}]
        text = tok.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False, date_string=TEMPLATE_DATE
        )
        text = text.replace(self.image_token, self.image_token * self.num_image_tokens, 1)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        if tok.bos_token_id is not None and (not ids or ids[0] != tok.bos_token_id):
            ids = [tok.bos_token_id, *ids]
        count = sum(1 for i in ids if i == self.image_token_id)
        if count != self.num_image_tokens:
            raise ValueError(
                f"prompt holds {count} image placeholders, expected {self.num_image_tokens}: "
                "the chat template altered the image token"
            )
        return ids

    def text_length(self, prompt: list[int]) -> int:
        """Tokens of a prompt that count against ``max_length``: all but the placeholders."""
        return len(prompt) - self.num_image_tokens

    def check_budget(
        self, max_length: int | None, max_positions: int | None, question: str, where: str
    ) -> None:
        """At start-up: the text budget leaves room for a report after ``question``'s prompt,
        and text + image tokens fit the LLM's positions (one clear error, before any work)."""
        if max_length is None:
            return
        text = self.text_length(self.prompt_ids(question))
        if text >= max_length:
            raise Mu2Error(
                f"{where}: max_length={max_length} text tokens leaves no room for a report "
                f"after the {text}-token prompt",
                fix="raise model.max_length (it counts text only; image tokens come on top)",
            )
        total = max_length + self.num_image_tokens
        if max_positions is not None and total > max_positions:
            raise Mu2Error(
                f"{where}: max_length={max_length} text + {self.num_image_tokens} image tokens "
                f"= {total} exceed the LLM's {max_positions} positions",
                fix="lower model.max_length or the number of visual queries",
            )

    def __call__(
        self,
        questions: list[str],
        answers: list[str] | None = None,
        max_length: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Token ids for a batch; right padded with labels when ``answers`` are given (training),
        left padded otherwise (generation). ``question_ids`` hold the bare question for the TTA."""
        if isinstance(questions, str):
            questions = [questions]
        if answers is not None and len(answers) != len(questions):
            raise Mu2Error(f"got {len(questions)} questions but {len(answers)} answers")
        if any(not q.strip() for q in questions):
            raise Mu2Error("empty question", fix="ask e.g. 'Describe the findings of the abdomen.'")
        limit = max_length or self.max_length
        tok = self.tokenizer
        rows, labels = [], []
        for i, question in enumerate(questions):
            prompt = self.prompt_ids(question)
            text = self.text_length(prompt)  # max_length budgets text; placeholders on top
            if limit is not None and text >= limit:
                raise Mu2Error(
                    f"prompt is {text} text tokens but max_length is {limit}",
                    fix="raise max_length or shorten the question",
                )
            if answers is None:
                rows.append(prompt)
                continue
            answer = tok(answers[i], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            if limit is not None:
                answer = answer[: limit - text]
            rows.append(prompt + answer)
            labels.append([IGNORE_INDEX] * len(prompt) + answer)
        left = answers is None
        input_ids, attention_mask = _pad(rows, tok.pad_token_id, left=left)
        q_rows = [tok(q, add_special_tokens=False)["input_ids"] for q in questions]
        question_ids, question_mask = _pad(q_rows, tok.pad_token_id, left=False)
        out = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "question_ids": question_ids,
            "question_mask": question_mask,
        }
        if answers is not None:
            out["labels"] = _pad(labels, IGNORE_INDEX, left=False)[0]
        return out

    @staticmethod
    def pad_frames(frames: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Volumes as frames (T_i, K, H, W) -> pixel_values (B, T_max, K, H, W), frame_mask (B, T_max)."""
        if not frames:
            raise Mu2Error("no volumes to batch")
        shapes = {tuple(f.shape[1:]) for f in frames}
        if any(f.dim() != 4 for f in frames) or len(shapes) != 1:
            raise Mu2Error(
                f"volumes must all be prepared as (T, K, H, W) with one (K, H, W); got "
                f"{[tuple(f.shape) for f in frames]}",
                fix="prepare every volume with the same preprocessing size",
            )
        t_max = max(f.shape[0] for f in frames)
        first = frames[0]
        pixel_values = first.new_zeros(len(frames), t_max, *first.shape[1:])  # (B, T_max, K, H, W)
        frame_mask = torch.zeros(len(frames), t_max, dtype=torch.bool)
        for i, f in enumerate(frames):
            pixel_values[i, : f.shape[0]] = f
            frame_mask[i, : f.shape[0]] = True
        return pixel_values, frame_mask

    def decode(self, ids, skip_special_tokens: bool = True, **kwargs) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=skip_special_tokens, **kwargs)

    def batch_decode(self, ids, skip_special_tokens: bool = True, **kwargs) -> list[str]:
        return self.tokenizer.batch_decode(ids, skip_special_tokens=skip_special_tokens, **kwargs)


def _pad(rows: list[list[int]], value: int, *, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Ragged rows -> (B, L) ids and (B, L) mask (1 = real token)."""
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), value, dtype=torch.long)
    mask = torch.zeros(len(rows), length, dtype=torch.long)
    for i, r in enumerate(rows):
        sl = slice(length - len(r), length) if left else slice(0, len(r))
        ids[i, sl] = torch.tensor(r, dtype=torch.long)
        mask[i, sl] = 1
    return ids, mask
