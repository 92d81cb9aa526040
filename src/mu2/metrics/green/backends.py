"""GREEN judges behind one interface, and the factory that reads a ``--green-backend`` spec.

``rules``        the offline deterministic judge (mu2.metrics.green.rules), not the GREEN model
``hf:PATH``      a GREEN model folder run locally with transformers
``openai:URL``   a GREEN model behind an OpenAI-compatible server (e.g. vLLM)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from mu2.errors import Mu2Error

RULES_LABEL = "GREEN (offline rules judge, not the GREEN model)"
BACKEND_SPECS = "rules | hf:PATH | openai:URL"


@runtime_checkable
class GreenJudge(Protocol):
    """Anything that answers GREEN prompts in the published answer format."""

    name: str  # short id, e.g. "rules", "hf:GREEN-RadLlama2-7b"
    label: str  # printed next to every GREEN number it produced
    offline: bool  # True when no model or server is involved

    def answers(self, pairs: Sequence[tuple[str, str]]) -> list[str]:
        """One answer text per (reference, candidate) pair, in order."""
        ...


class RulesGreenJudge:
    """Adapter around the offline rules judge, which writes GREEN-format answers itself."""

    offline = True
    label = RULES_LABEL

    def __init__(self, progress: bool = False) -> None:
        try:
            from mu2.metrics.green.rules import RulesJudge
        except ModuleNotFoundError as err:
            if err.name != "mu2.metrics.green.rules":
                raise
            raise Mu2Error(
                "the offline rules judge (mu2.metrics.green.rules) is not part of this build",
                fix="use --green-backend hf:PATH or openai:URL",
            ) from err
        self._judge = RulesJudge()
        self.name = "rules"
        self._progress = progress

    def answers(self, pairs: Sequence[tuple[str, str]]) -> list[str]:
        from tqdm.auto import tqdm

        return [
            self._judge.judge(ref, cand)
            for ref, cand in tqdm(pairs, desc="GREEN (rules)", disable=not self._progress)
        ]


def make_judge(spec: str, **options: Any) -> GreenJudge:
    """Build the judge named by ``spec``; ``options`` go to the backend's constructor.

    hf: ``batch_size``, ``device``, ``dtype``, ``max_length``, ``progress``;
    openai: ``model``, ``tokenizer``, ``mode``, ``concurrency``, ``retries``, ``timeout_s``,
    ``api_key``, ``progress``; rules: ``progress``.
    """
    spec = spec.strip()
    kind, _, target = spec.partition(":")
    if kind == "rules" and not target:
        return RulesGreenJudge(progress=bool(options.get("progress", False)))
    if kind == "hf" and target:
        from mu2.metrics.green.hf import HFJudge

        return HFJudge(target, **options)
    if kind == "openai" and target:
        from mu2.metrics.green.openai_api import OpenAIJudge

        return OpenAIJudge(target, **options)
    raise Mu2Error(f"unknown GREEN backend '{spec}'", fix=f"use one of: {BACKEND_SPECS}")
