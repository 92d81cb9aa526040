"""Reading a GREEN judge answer into counts and a score, with the published rules.

The regular expressions and edge cases are those of the reference GREEN client
(``green_score``): section bodies end at the first blank line, a body that starts with
"No" counts 0, error lines are ``(a)``..``(f)`` (fallback ``(1)``..``(6)``), and each
line's count is the integer after ``": "`` and before ``"."``. Written here because the
reference client is not a library one can call without loading its model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ERROR_CATEGORIES: dict[str, str] = {
    "a": "False report of a finding in the candidate",
    "b": "Missing a finding present in the reference",
    "c": "Misidentification of a finding's anatomic location/position",
    "d": "Misassessment of the severity of a finding",
    "e": "Mentioning a comparison that isn't in the reference",
    "f": "Omitting a comparison detailing a change from a prior study",
}
SIGNIFICANT = "Clinically Significant Errors"
INSIGNIFICANT = "Clinically Insignificant Errors"
MATCHED = "Matched Findings"

_LETTER_LINE = re.compile(r"\([a-f]\) .*")
_NUMBER_LINE = re.compile(r"\([1-6]\) .*")
_COUNT = re.compile(r"(?<=: )\b\d+\b(?=\.)")
_MATCHED_COUNT = re.compile(r"^\b\d+\b(?=\.)")
# The format block of the prompt, as a judge that echoes it would repeat it.
_ECHOED_FORMAT = "[Explanation]:\n    <Explanation>\n"


def _zero_counts() -> dict[str, int]:
    return dict.fromkeys(ERROR_CATEGORIES, 0)


@dataclass(frozen=True)
class GreenAnswer:
    """Counts read from one judge answer; ``score`` is the published GREEN formula."""

    matched: int = 0
    significant: dict[str, int] = field(default_factory=_zero_counts)
    insignificant: dict[str, int] = field(default_factory=_zero_counts)

    @property
    def score(self) -> float:
        """matched / (matched + significant errors); 0 when nothing matched (published)."""
        if self.matched == 0:
            return 0.0
        return self.matched / (self.matched + sum(self.significant.values()))

    def to_dict(self) -> dict[str, object]:
        return {
            "matched": self.matched,
            "significant": dict(self.significant),
            "insignificant": dict(self.insignificant),
            "score": self.score,
        }


def clean_answer(text: str) -> str:
    """Text after the last ``<|assistant|>`` and after ``[Explanation]:``, minus ``</s>``/``<unk>``."""
    if "<|assistant|>" in text:
        text = text.split("<|assistant|>")[-1]
    if "[Explanation]:" in text:
        # Published quirk kept: when the answer echoes the format block of the prompt, the
        # reference client keeps the piece after the FIRST marker, otherwise after the last.
        echoed = _ECHOED_FORMAT in text
        text = text.split("[Explanation]:")[1 if echoed else -1]
    return text.replace("</s>", "").replace("<unk>", "")


def _section_body(text: str, name: str) -> str | None:
    match = re.search(rf"\[{re.escape(name)}\]:\s*(.*?)(?:\n\s*\n|\Z)", text, re.DOTALL)
    return match.group(1) if match else None


def _error_counts(body: str | None) -> dict[str, int]:
    counts = _zero_counts()
    if body is None or body.startswith("No"):
        return counts
    lines = sorted(_LETTER_LINE.findall(body))
    prefixes = [f"({letter}) " for letter in ERROR_CATEGORIES]
    if not lines:  # numbered variant (the GPT-4 template of the GREEN paper)
        lines = sorted(_NUMBER_LINE.findall(body))
        prefixes = [f"({i}) " for i in range(1, len(ERROR_CATEGORIES) + 1)]
    for letter, prefix in zip(ERROR_CATEGORIES, prefixes, strict=True):
        # Every line with this prefix is read; a later one with a count wins (published).
        for line in lines:
            if line.startswith(prefix):
                found = _COUNT.findall(line)
                if found:
                    counts[letter] = int(found[0])
    return counts


def _matched_count(body: str | None) -> int:
    if body is None or body.startswith("No"):
        return 0
    found = _MATCHED_COUNT.findall(body)
    return int(found[0]) if found else 0


def parse_answer(text: str) -> GreenAnswer:
    """Counts and score of one judge answer; an answer that cannot be read scores 0."""
    body = clean_answer(text)
    return GreenAnswer(
        matched=_matched_count(_section_body(body, MATCHED)),
        significant=_error_counts(_section_body(body, SIGNIFICANT)),
        insignificant=_error_counts(_section_body(body, INSIGNIFICANT)),
    )
