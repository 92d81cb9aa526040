"""The offline augmentation backend: rewrites and QA pairs from the findings catalogue.

No LLM is needed to vary the wording of a report whose findings the extractor can read:
the report writer knows several accepted phrasings of every finding and of every normal
organ. A rewrite redraws, sentence by sentence, each sentence the extractor fully
understands; any sentence with words the writer does not use (a detail the catalogue
cannot hold) is kept verbatim, so nothing outside the catalogue is lost. QA pairs come
from the extracted structured findings: yes/no per finding kind, side, size, severity and
"what are the findings in the <region>".
"""

from __future__ import annotations

import functools
import random
import re
from itertools import chain, zip_longest

from tqdm import tqdm

from mu2.data.expansion.augment import AugmentJob, JobOutput
from mu2.data.expansion.augment_guard import findings_change, lobes
from mu2.findings import writer
from mu2.findings.catalogue import FINDING_KINDS, ORGANS, Finding
from mu2.findings.extract import extract_findings

# Draws per wanted rewrite before giving up on finding another distinct one (short
# all-normal reports have only a handful of distinct phrasings).
TRIES_PER_REWRITE = 4
# Rendering the writer's sizes rounds to 1 mm or 0.1 cm: at most 0.5 mm off.
SIZE_TOLERANCE_MM = 0.5
# Draws of one finding sentence until one keeps the lobe and states a single diameter.
TRIES_PER_SENTENCE = 16
# Distinct sentences whose extraction the backend remembers.
SENTENCE_MEMO_SIZE = 1 << 15

OVERVIEW_QUESTION = "What are the findings in the {region}?"
OVERVIEW_QUESTION_NO_REGION = "What are the findings in this CT?"
SIDE_QUESTIONS = ("On which side is the {label}?", "Which side is the {label} on?")
SIDE_ANSWERS = {"left": "Left.", "right": "Right.", "bilateral": "Both sides."}
SIZE_QUESTIONS = ("What is the size of the {what}?", "How large is the {what}?")
SIZE_ANSWER = "{size} mm."
SIZE_ANSWER_LARGEST = "The largest measures {size} mm."
SEVERITY_QUESTIONS = ("How severe is the {what}?", "What is the severity of the {what}?")

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[a-z]+")
_PLACEHOLDER = re.compile(r"\{[a-z_0-9]+\}")
# "2.3 x 1.8 cm": the writer would redraw the second diameter, so such sentences stay.
_TWO_DIAMETERS = re.compile(r"\d\s*[x×]\s*\d")
# Words of the writer's phrasings that claim more than the finding itself: a character
# ("simple", "noncalcified"), a hedge ("suspicious") or an extra negative ("no
# pneumothorax"). A redraw must use exactly the ones its source sentence used, so a
# rewrite never adds or drops a claim the structured findings cannot see.
QUALIFIER_WORDS: frozenset[str] = frozenset(
    {
        "simple", "cortical", "circumscribed", "hypodense", "hypoenhancing", "suspicious",
        "solid", "noncalcified", "calcified", "nonobstructing", "infrarenal", "pneumothorax",
        "consolidation", "focal", "ductal", "dilatation", "obstruction", "thickening",
    }
)  # fmt: skip


def _writer_vocabulary() -> frozenset[str]:
    """Every word the report writer can produce (template placeholders left out)."""
    texts: list[str] = []
    for table in (writer.FINDING_TEMPLATES, writer.NORMAL_TEMPLATES, writer.COMPARISON_PHRASES):
        texts += chain.from_iterable(table.values())
    for table in writer.SEVERITY_WORDS.values():
        texts += chain.from_iterable(table.values())
    for table in writer.SIDE_LOCATIONS.values():
        texts += chain.from_iterable(table.values())
    texts += writer.SINGLE_WORDS + writer.VAGUE_COUNT_WORDS + tuple(writer.NUMBER_WORDS.values())
    texts += writer.SIZE_CLAUSES_SINGLE + writer.SIZE_CLAUSES_MULTIPLE + writer.SIZE_FORMATS
    texts += ("an", "bilateral", "left", "right")
    words: set[str] = set()
    for text in texts:
        words.update(_WORD.findall(_PLACEHOLDER.sub(" ", text).lower()))
    return frozenset(words)


def split_sentences(text: str) -> list[str]:
    """Sentences of a findings paragraph (a full stop inside "2.3 cm" does not split)."""
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


def qualifiers(text: str) -> set[str]:
    """The claim-bearing words (``QUALIFIER_WORDS``) that ``text`` uses."""
    return QUALIFIER_WORDS.intersection(_WORD.findall(text.lower()))


def _normal_organ(sentence: str) -> str | None:
    """The organ whose normal statement ``sentence`` is, word for word, if any."""
    for organ, options in writer.NORMAL_TEMPLATES.items():
        if sentence.strip() in options:
            return organ
    return None


class RulesBackend:
    """Offline backend: recombines extracted findings into the writer's other phrasings."""

    name = "rules"

    def __init__(self) -> None:
        self._vocabulary = _writer_vocabulary()
        # Normal sentences repeat in every report: read each distinct sentence once.
        self._read = functools.lru_cache(maxsize=SENTENCE_MEMO_SIZE)(extract_findings)

    def run(self, jobs: list[AugmentJob], progress: bool = False) -> list[JobOutput]:
        return [
            JobOutput(rewrites=self.rewrites(job), qa=self.qa_pairs(job))
            for job in tqdm(jobs, desc="augment (rules)", unit="report", disable=not progress)
        ]

    # --- rewrites --------------------------------------------------------------------

    def _plan(self, job: AugmentJob) -> list[tuple[str, object]]:
        """Per sentence: ("findings", [Finding]), ("normal", [phrasings with the same
        qualifiers]) or ("keep", None)."""
        plan: list[tuple[str, object]] = []
        for sentence in split_sentences(job.text):
            found = self._read(sentence, job.region)
            words = set(_WORD.findall(sentence.lower()))
            if found and words <= self._vocabulary and not _TWO_DIAMETERS.search(sentence):
                plan.append(("findings", found))
            elif not found and (organ := _normal_organ(sentence)):
                claims = qualifiers(sentence)
                same = [t for t in writer.NORMAL_TEMPLATES[organ] if qualifiers(t) == claims]
                plan.append(("normal", same) if len(same) > 1 else ("keep", None))
            else:
                plan.append(("keep", None))
        return plan

    @staticmethod
    def _redraw(sentence: str, found: list[Finding], region: str | None, rng: random.Random) -> str:
        """A new phrasing that reads back as ``found``, with the same lobes and qualifiers
        and no invented second diameter (the writer may say "several" for three: that draw
        is skipped)."""
        want, claims = lobes(sentence), qualifiers(sentence)
        for _ in range(TRIES_PER_SENTENCE):
            text = " ".join(writer.finding_sentence(f, rng) for f in found)
            if (
                lobes(text) == want
                and qualifiers(text) == claims
                and not _TWO_DIAMETERS.search(text)
                and findings_change(found, extract_findings(text, region), SIZE_TOLERANCE_MM)
                is None
            ):
                return text
        return sentence  # no such draw came out: keep the original words

    def rewrites(self, job: AugmentJob) -> list[str]:
        """Up to ``job.rewrites`` distinct redraws of the report (none equal to it)."""
        if job.rewrites == 0:
            return []
        rng = random.Random(f"{job.seed}:rewrite")
        sentences = split_sentences(job.text)
        plan = self._plan(job)
        if all(step == "keep" for step, _ in plan):
            return []  # nothing the catalogue understands: no safe variation
        seen = {" ".join(sentences)}
        out: list[str] = []
        for _ in range(TRIES_PER_REWRITE * job.rewrites):
            parts = []
            for sentence, (step, arg) in zip(sentences, plan, strict=True):
                if step == "findings":
                    parts.append(self._redraw(sentence, arg, job.region, rng))  # type: ignore[arg-type]
                elif step == "normal":
                    parts.append(rng.choice(arg))  # type: ignore[arg-type]
                else:
                    parts.append(sentence)
            text = " ".join(parts)
            if text not in seen:
                seen.add(text)
                out.append(text)
                if len(out) == job.rewrites:
                    break
        return out

    # --- question-answer pairs -------------------------------------------------------

    def qa_pairs(self, job: AugmentJob) -> list[tuple[str, str]]:
        """Every pair the findings support, in the order to take them: one question type
        after another for variety; the caller keeps the first ``job.qa`` that pass."""
        if job.qa == 0:
            return []
        rng = random.Random(f"{job.seed}:qa")
        groups = [
            self._yes_no(job, rng),
            self._sides(job.findings, rng),
            self._sizes(job.findings, rng),
            self._severities(job.findings, rng),
            [self._overview(job)],
        ]
        for group in groups:
            rng.shuffle(group)
        rng.shuffle(groups)
        pairs = [qa for round_ in zip_longest(*groups) for qa in round_ if qa is not None]
        return pairs

    @staticmethod
    def _overview(job: AugmentJob) -> tuple[str, str]:
        if job.region:
            return OVERVIEW_QUESTION.format(region=job.region), job.text
        return OVERVIEW_QUESTION_NO_REGION, job.text

    @staticmethod
    def _yes_no(job: AugmentJob, rng: random.Random) -> list[tuple[str, str]]:
        regions = [job.region] if job.region else sorted({f.region for f in job.findings})
        pairs: list[tuple[str, str]] = []
        for region in regions:
            mine = [f for f in job.findings if f.organ in ORGANS[region]]
            pairs += writer.organ_questions(mine, region, rng)
        return pairs

    @staticmethod
    def _sides(findings: list[Finding], rng: random.Random) -> list[tuple[str, str]]:
        sides: dict[str, set[str]] = {}
        for f in findings:
            if f.side:
                sides.setdefault(f.finding, set()).add(f.side)
        pairs = []
        for name, found in sides.items():
            answer = SIDE_ANSWERS[found.pop()] if len(found) == 1 else SIDE_ANSWERS["bilateral"]
            q = rng.choice(SIDE_QUESTIONS).format(label=FINDING_KINDS[name].label)
            pairs.append((q, answer))
        return pairs

    @staticmethod
    def _what(f: Finding, findings: list[Finding]) -> str | None:
        """The "left renal cyst" phrase; None when two findings would share the name."""
        label = FINDING_KINDS[f.finding].label
        what = f"{f.side} {label}" if f.side else label
        twins = [g for g in findings if g.finding == f.finding and g.side == f.side]
        return what if len(twins) == 1 else None

    def _sizes(self, findings: list[Finding], rng: random.Random) -> list[tuple[str, str]]:
        pairs = []
        for f in findings:
            what = self._what(f, findings)
            if f.size_mm is None or what is None:
                continue
            template = SIZE_ANSWER_LARGEST if f.count > 1 else SIZE_ANSWER
            plural = f.count > 1 or f.side == "bilateral"
            q = rng.choice(SIZE_QUESTIONS).format(what=what + ("s" if plural else ""))
            pairs.append((q, template.format(size=round(f.size_mm))))
        return pairs

    def _severities(self, findings: list[Finding], rng: random.Random) -> list[tuple[str, str]]:
        pairs = []
        for f in findings:
            what = self._what(f, findings)
            if f.severity is None or what is None:
                continue
            q = rng.choice(SEVERITY_QUESTIONS).format(what=what)
            pairs.append((q, f.severity.capitalize() + "."))
        return pairs
