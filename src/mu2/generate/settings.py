"""How answers are decoded (greedy or sampling), validated once for the library and CLI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mu2.errors import Mu2Error

# Report length cap (tokens) when the caller gives none; the tiny demo reports are shorter.
DEFAULT_MAX_NEW_TOKENS = 256


@dataclass
class GenerationSettings:
    """How answers are decoded: greedy by default, nucleus sampling when ``do_sample``."""

    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    min_new_tokens: int = 0
    """Force at least this many tokens (benchmarks of an untrained model, which may stop at once)."""

    def __post_init__(self) -> None:
        problems = []
        if self.max_new_tokens < 1:
            problems.append(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            problems.append(
                f"min_new_tokens must lie in [0, max_new_tokens], got {self.min_new_tokens}"
            )
        if self.temperature <= 0:
            problems.append(f"temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            problems.append(f"top_p must lie in (0, 1], got {self.top_p}")
        if problems:
            raise Mu2Error("invalid generation settings: " + "; ".join(problems))

    def hf_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "max_new_tokens": int(self.max_new_tokens),
            "do_sample": self.do_sample,
        }
        if self.min_new_tokens:
            kw["min_new_tokens"] = int(self.min_new_tokens)
        if self.do_sample:  # greedy decoding ignores (and warns about) these
            kw.update(temperature=float(self.temperature), top_p=float(self.top_p))
        return kw
