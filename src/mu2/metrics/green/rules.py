"""An offline, deterministic stand-in for the GREEN judge, writing GREEN-format answers.

It is NOT the GREEN model: it reads findings from both reports with the rule-based
extractor (``mu2.findings.extract``), aligns them, and writes its verdict in the published
answer format so that the same parser (``mu2.metrics.green.parse``) scores it. Meant for
CPU-only runs, tests and the embedded benchmark; every number it produces is labelled as
the offline judge.

Alignment (decisions, documented because GREEN's judge is a model and does not say):
- findings are paired by organ, kind and side; a pair whose severity differs, or whose
  sizes differ by more than ``size_tolerance`` (relative), is a significant (d) error and
  not a matched finding; a size or severity stated on one side only, or single versus
  multiple, is an insignificant (d) error and the pair still matches;
- a pair placed in different parts of the organ (lung lobe, liver lobe or segment, kidney
  pole; both reports name the part and the parts do not overlap) is a (c) error and not
  a matched finding; a part named in one report only is no error;
- left over, the same organ and kind with another side is a (c) error;
- what is left in the candidate is (a), what is left in the reference is (b);
- an abnormality that names no catalogue finding ("a hypodense lesion in the spleen") is a
  finding of its organ: one in the same organ in both reports matches, one in the
  candidate only is (a) -- also, and especially, when the reference calls that organ
  normal -- and one in the reference only is (b); abnormalities of organs outside the
  catalogue (adrenal, bones, ...) are not read;
- an organ stated normal (or a finding explicitly denied) in both reports, with no finding
  in it in either, counts as one matched finding ("normal liver"). GREEN's judge lists
  agreeing negative statements among matched findings too; without this a normal report
  compared with a normal report would score 0 (no matched findings);
- two reports that state no finding at all and each state something normal ("no acute
  abnormality", "unremarkable CT of the abdomen", "the lungs are clear"), worded however,
  match as one finding when nothing else matched ("no abnormality in either report");
- comparisons with a prior study that state a change (new, stable, increased, decreased,
  resolved) are compared per finding kind: extra in the candidate is (e), omitted is (f);
  a bare "compared with prior" without a change is an insignificant (e) / (f) error;
- two non-empty reports with nothing the extractor can read match (1 matched finding)
  when their text is the same after whitespace normalisation, and score 0 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mu2.findings.catalogue import FINDING_KINDS, Finding
from mu2.findings.extract import Comparison, Extraction, extract_report
from mu2.findings.lexicon import CHANGE_LABELS, SITE_PARENT
from mu2.metrics.green.parse import ERROR_CATEGORIES, INSIGNIFICANT, MATCHED, SIGNIFICANT

# Relative size difference above which a sized finding is misassessed (our choice).
SIZE_TOLERANCE = 0.3
EXPLANATION = (
    "Offline rule-based judge, not the GREEN model. Of the findings and normal statements "
    "read from both reports, {matched} agree, with {significant} clinically significant "
    "and {insignificant} insignificant discrepancies."
)


def describe(f: Finding) -> str:
    """Short name of a finding for the answer text (no ':' ';' or newlines: they delimit)."""
    k = FINDING_KINDS[f.finding]
    words = []
    if f.count > 1:
        words.append("multiple")
    if f.severity:
        words.append(f.severity)
    if f.side:
        words.append(f.side)
    words.append(k.label)
    if f.size_mm is not None:
        words.append(f"{round(f.size_mm)} mm")
    return " ".join(words)


@dataclass
class _Verdict:
    matched: list[str] = field(default_factory=list)
    significant: dict[str, list[str]] = field(
        default_factory=lambda: {c: [] for c in ERROR_CATEGORIES}
    )
    insignificant: dict[str, list[str]] = field(
        default_factory=lambda: {c: [] for c in ERROR_CATEGORIES}
    )


class RulesJudge:
    """Offline GREEN-format judge: ``judge(reference, candidate)`` returns the answer text."""

    name = "rules (offline rule-based judge, not the GREEN model)"

    def __init__(self, region: str | None = None, size_tolerance: float = SIZE_TOLERANCE):
        self.region = region
        self.size_tolerance = size_tolerance

    def judge(self, reference: str, candidate: str) -> str:
        """The verdict on one pair, in the exact GREEN answer format."""
        ref = extract_report(reference, self.region)
        cand = extract_report(candidate, self.region)
        v = _Verdict()
        self._align_findings(ref, cand, v)
        _align_abnormal(ref, cand, v)
        _align_normals(ref, cand, v)
        _align_comparisons(ref.comparisons, cand.comparisons, v)
        if not v.matched and _normal_report(ref) and _normal_report(cand):
            v.matched.append("no abnormality in either report")
        same_text = " ".join(reference.split()) == " ".join(candidate.split())
        if _empty(ref) and _empty(cand) and same_text and reference.strip():
            v.matched.append("identical reports")
        return _format(v)

    def judge_many(self, pairs: list[tuple[str, str]]) -> list[str]:
        """One answer per (reference, candidate) pair, in order."""
        return [self.judge(r, c) for r, c in pairs]

    def _align_findings(self, ref: Extraction, cand: Extraction, v: _Verdict) -> None:
        left_ref = list(ref.findings)
        left_cand = list(cand.findings)
        for r in list(left_ref):  # same organ, kind and side
            c = next((c for c in left_cand if c.key() == r.key()), None)
            if c is None:
                continue
            left_ref.remove(r)
            left_cand.remove(c)
            where = _site_conflict(ref.sites.get(r.key()), cand.sites.get(c.key()))
            if where:
                v.significant["c"].append(f"{FINDING_KINDS[r.finding].label} {where}")
                continue
            self._compare_pair(r, c, v)
        for r in list(left_ref):  # same organ and kind, another side
            c = next((c for c in left_cand if (c.organ, c.finding) == (r.organ, r.finding)), None)
            if c is None:
                continue
            left_ref.remove(r)
            left_cand.remove(c)
            v.significant["c"].append(
                f"{FINDING_KINDS[r.finding].label} on the {r.side or 'unstated'} side in the "
                f"reference, {c.side or 'unstated'} in the candidate"
            )
        v.significant["a"] += [describe(c) for c in left_cand]
        v.significant["b"] += [describe(r) for r in left_ref]

    def _compare_pair(self, r: Finding, c: Finding, v: _Verdict) -> None:
        label = FINDING_KINDS[r.finding].label
        problems = []
        if r.severity and c.severity and r.severity != c.severity:
            problems.append(f"{label} {c.severity} in the candidate, {r.severity} in reference")
        if r.size_mm is not None and c.size_mm is not None:
            largest = max(r.size_mm, c.size_mm)
            if largest > 0 and abs(r.size_mm - c.size_mm) / largest > self.size_tolerance:
                problems.append(
                    f"{label} {round(c.size_mm)} mm in the candidate, "
                    f"{round(r.size_mm)} mm in the reference"
                )
        if problems:
            v.significant["d"] += problems
            return
        v.matched.append(describe(r))
        if (r.severity is None) != (c.severity is None):
            v.insignificant["d"].append(f"{label} severity stated in one report only")
        if (r.size_mm is None) != (c.size_mm is None):
            v.insignificant["d"].append(f"{label} size stated in one report only")
        if (r.count > 1) != (c.count > 1):
            v.insignificant["d"].append(f"{label} single versus multiple")


def _empty(e: Extraction) -> bool:
    return not (
        e.findings or e.negated or e.normal_organs or e.comparisons or e.abnormal
        or e.global_normal
    )  # fmt: skip


def _normal_report(e: Extraction) -> bool:
    """No finding stated, and something stated normal (an organ, a denial, the study)."""
    return not (e.findings or e.abnormal) and bool(
        e.global_normal or e.normal_organs or e.negated
    )


def _coarse(site: str) -> str:
    return SITE_PARENT.get(site, site)


def _site_name(sites: frozenset[str]) -> str:
    return " and ".join(sorted(s.replace("_", " ") for s in sites))


def _site_conflict(ref: frozenset[str] | None, cand: frozenset[str] | None) -> str | None:
    """Why two placements of one finding disagree (None: they agree or one is unstated).

    Parts overlap when they share a coarse part (a lobe) and, where both name a finer
    part (a segment, the lingula), that too: segment 7 and the right hepatic lobe agree.
    """
    if not ref or not cand:
        return None
    if {_coarse(s) for s in ref} & {_coarse(s) for s in cand}:
        ref_fine = {s for s in ref if s in SITE_PARENT}
        cand_fine = {s for s in cand if s in SITE_PARENT}
        if not (ref_fine and cand_fine) or ref_fine & cand_fine:
            return None
    return f"in the {_site_name(cand)} in the candidate, the {_site_name(ref)} in the reference"


def _align_abnormal(ref: Extraction, cand: Extraction, v: _Verdict) -> None:
    """Abnormalities outside the catalogue, compared by organ (see the module docstring)."""
    ref_organs = dict((organ, phrase) for organ, phrase in reversed(ref.abnormal))
    cand_organs = dict((organ, phrase) for organ, phrase in reversed(cand.abnormal))
    for organ, phrase in cand_organs.items():
        if organ in ref_organs:
            v.matched.append(f"{organ} {ref_organs[organ]}")
        else:
            normal = " (normal in the reference)" if organ in ref.normal_organs else ""
            v.significant["a"].append(f"{organ} {phrase}{normal}")
    v.significant["b"] += [f"{o} {p}" for o, p in ref_organs.items() if o not in cand_organs]


def _align_normals(ref: Extraction, cand: Extraction, v: _Verdict) -> None:
    cand_normal = set(cand.normal_organs)
    v.matched += [f"normal {organ}" for organ in ref.normal_organs if organ in cand_normal]


def _cmp_name(c: Comparison) -> str:
    what = FINDING_KINDS[c.finding].label if c.finding else "the study"
    return f"{'no ' if c.negated else ''}{c.label} {what}".strip()


def _align_comparisons(ref: list[Comparison], cand: list[Comparison], v: _Verdict) -> None:
    ref_change = list(dict.fromkeys(c for c in ref if c.label in CHANGE_LABELS))
    cand_change = list(dict.fromkeys(c for c in cand if c.label in CHANGE_LABELS))
    v.significant["e"] += [_cmp_name(c) for c in cand_change if c not in ref_change]
    v.significant["f"] += [_cmp_name(c) for c in ref_change if c not in cand_change]
    ref_prior = any(c.label == "prior" for c in ref) or bool(ref_change)
    cand_prior = any(c.label == "prior" for c in cand) or bool(cand_change)
    if cand_prior and not ref_prior and not cand_change:
        v.insignificant["e"].append("comparison with a prior study")
    if ref_prior and not cand_prior and not ref_change:
        v.insignificant["f"].append("comparison with a prior study")


def _error_lines(errors: dict[str, list[str]]) -> list[str]:
    lines = []
    for letter, title in ERROR_CATEGORIES.items():
        names = errors[letter]
        tail = f" {'; '.join(names)}" if names else ""
        lines.append(f"({letter}) {title}: {len(names)}.{tail}")
    return lines


def _format(v: _Verdict) -> str:
    n_sig = sum(len(x) for x in v.significant.values())
    n_ins = sum(len(x) for x in v.insignificant.values())
    explanation = EXPLANATION.format(matched=len(v.matched), significant=n_sig, insignificant=n_ins)
    matched_tail = f" {'; '.join(v.matched)}" if v.matched else ""
    return "\n".join(
        [
            "[Explanation]:",
            explanation,
            "",
            f"[{SIGNIFICANT}]:",
            *_error_lines(v.significant),
            "",
            f"[{INSIGNIFICANT}]:",
            *_error_lines(v.insignificant),
            "",
            f"[{MATCHED}]:",
            f"{len(v.matched)}.{matched_tail}",
            "",
        ]
    )
