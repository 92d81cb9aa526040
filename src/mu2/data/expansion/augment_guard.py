"""Guard rails of data set expansion: which rewrites and QA pairs may enter training data.

A rewrite that adds, loses or moves a finding teaches the model to hallucinate; one in
another script (the reference code met Chinese output from its LLM) or a stub of a few
words teaches it nothing good. Each check returns the reason to drop a text, or None,
so the caller can count drops by reason. Findings are compared as the extractor
(``mu2.findings.extract``) reads them, the same reader the offline GREEN judge uses.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from mu2.findings.catalogue import Finding
from mu2.findings.extract import Extraction, extract_report

# How a guard reads a text: ``extract_report`` or a memoised copy of it (a run asks the
# same short questions and answers thousands of times). Results are never mutated.
Reader = Callable[[str, "str | None"], Extraction]

# Specific lung locations the catalogue has no field for: a rewrite must keep them.
_LOBE = re.compile(r"\b(left|right)\s+(upper|middle|lower)\s+lobe\b", re.IGNORECASE)
# Latin letters are English text; a few Greek letters are common in medical writing.
_ALLOWED_NON_LATIN_LETTERS = frozenset("µμαβγ")
# Non-letter characters that still give away CJK text (fullwidth comma, ideographic stop).
_FOREIGN_SYMBOL_BLOCKS = ("CJK", "IDEOGRAPHIC", "FULLWIDTH", "HALFWIDTH", "HIRAGANA", "KATAKANA")


def non_english_script(text: str) -> bool:
    """True if ``text`` has letters of a non-Latin script (CJK, Cyrillic, ...)."""
    for ch in text:
        if ord(ch) < 128 or ch in _ALLOWED_NON_LATIN_LETTERS:
            continue
        name = unicodedata.name(ch, "")
        if unicodedata.category(ch).startswith("L"):
            if not name.startswith("LATIN"):
                return True
        elif any(block in name for block in _FOREIGN_SYMBOL_BLOCKS):
            return True
    return False


def normal_form(text: str) -> str:
    """Lower case, single spaces: what counts as the same text for duplicate checks."""
    return re.sub(r"\s+", " ", text).strip().lower()


def lobes(text: str) -> set[str]:
    """Lung lobes named in ``text`` (a location the structured findings cannot hold)."""
    return {f"{m.group(1).lower()} {m.group(2).lower()} lobe" for m in _LOBE.finditer(text)}


def _same_size(a: float | None, b: float | None, tol: float) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= tol


def _comparison(f: Finding) -> str | None:
    return f.extra.get("comparison") if f.extra else None


def _same_attributes(f: Finding, g: Finding, tol: float, loose_counts: bool) -> bool:
    same_count = f.count == g.count or (loose_counts and min(f.count, g.count) > 1)
    return (
        f.severity == g.severity
        and same_count
        and _same_size(f.size_mm, g.size_mm, tol)
        and _comparison(f) == _comparison(g)
    )


def findings_change(
    original: list[Finding],
    rewrite: list[Finding],
    size_tolerance_mm: float,
    loose_counts: bool = False,
) -> str | None:
    """Why ``rewrite``'s findings differ from ``original``'s, or None if they agree.

    ``finding_moved``: same kind, other side; ``finding_added`` / ``finding_lost``;
    ``finding_changed``: same finding, other size, severity, count or comparison.
    ``loose_counts`` takes any two counts above one as equal (prose saying "several"
    for a ground truth of three is vaguer, not wrong).
    """
    pending = list(rewrite)
    unmatched: list[Finding] = []
    changed = False
    for f in original:
        same = [g for g in pending if g.key() == f.key()]
        if not same:
            unmatched.append(f)
            continue
        exact = [g for g in same if _same_attributes(f, g, size_tolerance_mm, loose_counts)]
        pending.remove((exact or same)[0])
        changed = changed or not exact
    kinds_left = {(g.organ, g.finding) for g in pending}
    if any((f.organ, f.finding) in kinds_left for f in unmatched):
        return "finding_moved"
    if pending:
        return "finding_added"
    if unmatched:
        return "finding_lost"
    return "finding_changed" if changed else None


def rewrite_drop_reason(
    rewrite: str,
    source_text: str,
    source: Extraction,
    region: str | None,
    *,
    seen: set[str],
    min_length: int,
    size_tolerance_mm: float,
    read: Reader = extract_report,
) -> str | None:
    """The first guard rail ``rewrite`` of ``source_text`` fails, or None to keep it.

    ``seen`` holds the normal forms of the source and of the rewrites kept so far.
    """
    if len(rewrite.strip()) < min_length:
        return "too_short"
    if non_english_script(rewrite):
        return "non_english"
    if normal_form(rewrite) in seen:
        return "duplicate"
    got = read(rewrite, region)
    change = findings_change(source.findings, got.findings, size_tolerance_mm)
    if change:
        return change
    if lobes(rewrite) != lobes(source_text):
        return "finding_moved"
    if set(got.normal_organs) != set(source.normal_organs):
        return "normal_statement_changed"  # an organ called normal that was not, or so
    return None


def _consistent(stated: Finding, source: list[Finding], tol: float) -> bool:
    """A finding a QA answer states agrees with some source finding (where it says)."""
    for f in source:
        if (f.organ, f.finding) != (stated.organ, stated.finding):
            continue
        if stated.side is not None and stated.side != f.side:
            continue
        if stated.severity is not None and stated.severity != f.severity:
            continue
        if stated.size_mm is not None and not _same_size(stated.size_mm, f.size_mm, tol):
            continue
        if stated.count > 1 and f.count == 1:
            continue
        return True
    return False


def _yes_no(answer: str) -> str | None:
    word = re.match(r"\s*(yes|no)\b", answer, re.IGNORECASE)
    return word.group(1).lower() if word else None


def qa_drop_reason(
    question: str,
    answer: str,
    source: Extraction,
    region: str | None,
    *,
    seen: set[str],
    size_tolerance_mm: float,
    read: Reader = extract_report,
) -> str | None:
    """The first guard rail a QA pair fails, or None to keep it.

    The answer's own findings must each agree with one of the source's, and it must not
    deny one the source states. A bare "Yes" / "No" answers for the findings the question
    names: "Yes" needs them in the source, "No" needs them absent from it.
    """
    if not question.strip() or not answer.strip():
        return "empty"
    if non_english_script(question) or non_english_script(answer):
        return "non_english"
    if normal_form(question) in seen:
        return "duplicate"
    tol = size_tolerance_mm
    said = read(answer, region)
    present = {(f.organ, f.finding) for f in source.findings}
    asked = read(question, region).findings
    verdict = _yes_no(answer)
    if (
        not all(_consistent(f, source.findings, tol) for f in said.findings)
        or any(denied in present for denied in said.negated)
        or (verdict == "yes" and not all(_consistent(f, source.findings, tol) for f in asked))
        or (verdict == "no" and any(_consistent(f, source.findings, tol) for f in asked))
    ):
        return "answer_contradicts_report"
    return None
