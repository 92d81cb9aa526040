"""Ask only what the scan and the model cover; keep one finding per organ and side.

Two honest-output rules between the model and the user:

* :func:`plan_regions`: automatic mode asks the regions the scan covers (from
  :mod:`mu2.generate.coverage`) that the model card lists; a region the user names that
  is outside the scan or the card is refused (one line, exit 2) unless ``force``, and then
  carries a warning.
* :func:`tidy_findings`: findings from all sections merged to one per (organ, kind, side),
  contradictions resolved (the statement of the finding's own region wins, then the most
  specific one) and flagged; findings about organs outside the field of view, or of a
  region that does not border the section's, dropped and noted in the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mu2.errors import Mu2Error
from mu2.findings.catalogue import FINDING_KINDS, ORGANS, REGIONS, Finding

REGION_CHOICES: tuple[str, ...] = (*REGIONS, "all")


def check_ask(question: str | None, region: str | None) -> tuple[str | None, str | None]:
    """The one check of what a report is asked (CLI, web service, library): a known region
    or None (automatic), a question that is not blank, not a question with region 'all'.
    Returns the question stripped and the region as given; the messages name the CLI's
    options (the web service rewords them for its form fields)."""
    if region is not None and region not in REGION_CHOICES:
        raise Mu2Error(
            f"unknown --region '{region}'", fix=f"choose one of {', '.join(REGION_CHOICES)}"
        )
    if question is not None:
        if not question.strip():
            raise Mu2Error("empty --question", fix="ask e.g. 'Is there a renal cyst in this CT?'")
        if region == "all":
            raise Mu2Error(
                "--question and --region all ask different things",
                fix="drop --question for one answer per region, or drop --region",
            )
        question = question.strip()
    return question, region


FORCE_FIX = "add --force to ask anyway (the output then says so)"
# Regions that share organs at their border (lung bases on an abdominal CT, the lower
# abdomen in a pelvic one): a finding of one may be stated in the other's section. A
# finding of a region that does not border the section's (pleural effusion in the pelvis
# section) is the model answering another question: dropped and noted.
ADJACENT_REGIONS: frozenset[frozenset[str]] = frozenset(
    {frozenset({"chest", "abdomen"}), frozenset({"abdomen", "pelvis"})}
)


@dataclass
class Plan:
    regions: list[str]
    warnings: list[str] = field(default_factory=list)


def _names(regions: list[str] | None) -> str:
    return ", ".join(regions) if regions else "none"


def plan_regions(
    region: str | None, covered: list[str], known: list[str] | None, force: bool = False
) -> Plan:
    """Regions to ask. ``covered``: what the scan shows; ``known``: the card's regions
    (None = the card does not say). ``region``: None (automatic), "all" or one region."""
    warnings: list[str] = []
    if known is None:
        warnings.append("the model card lists no regions: every covered region is asked")
    if region is None:
        ask = [r for r in covered if known is None or r in known]
        skipped = [r for r in covered if r not in ask]
        if skipped:
            warnings.append(
                f"the scan covers the {_names(skipped)}, which the model was not trained on "
                f"(model card: {_names(known)}): not asked"
            )
        if not ask:
            what = f"covers the {_names(covered)}" if covered else "covers no body region"
            knows = f"knows the {_names(known)}" if known else "lists no region on its card"
            raise Mu2Error(
                f"the scan {what} by its HU landmarks (lungs, pelvic bones) and the model "
                f"{knows}: nothing to ask",
                fix="name a region with --region R --force to ask anyway, or use a model "
                "trained on this region",
            )
        return Plan(ask, warnings)
    wanted = list(REGIONS) if region == "all" else [region]
    problems = []
    for r in wanted:
        if r not in covered:
            problems.append(f"the scan does not cover the {r} (covered: {_names(covered)})")
        if known is not None and r not in known:
            problems.append(f"the model was not trained on the {r} (model card: {_names(known)})")
    if problems and not force:
        raise Mu2Error("; ".join(problems), fix=FORCE_FIX)
    warnings += [f"asked because of --force: {p}" for p in problems]
    return Plan(wanted, warnings)


# Words a report uses for a catalogue organ, besides its name (for the notes on organs
# outside the field of view).
ORGAN_WORDS: dict[str, tuple[str, ...]] = {
    "lung": ("lungs?", "pulmonary"),
    "pleura": ("pleura", "pleural"),
    "liver": ("liver", "hepatic"),
    "gallbladder": ("gallbladder",),
    "spleen": ("spleen", "splenic"),
    "pancreas": ("pancreas", "pancreatic"),
    "kidney": ("kidneys?", "renal"),
    "aorta": ("aorta", "aortic"),
    "peritoneum": ("peritoneum", "ascites"),
    "bladder": ("bladder", "urinary bladder"),
    "bowel": ("bowel", "colon", "small intestine"),
}


def out_of_view_notes(
    text: str, organs_in_view: dict[str, bool], said: list[str] | None = None
) -> list[str]:
    """Notes on the organs that ``text`` speaks of (normal or not) that the field of view
    does not contain: such statements cannot come from this scan. Organs a note in
    ``said`` already names (a dropped finding) get no second note."""
    notes = []
    for region in REGIONS:
        for organ in ORGANS[region]:
            if organs_in_view.get(organ) is not False:
                continue
            if any(f"the {organ} is outside" in n for n in said or []):
                continue
            words = "|".join(ORGAN_WORDS.get(organ, (organ,)))
            if re.search(rf"\b(?:{words})\b", text, flags=re.IGNORECASE):
                notes.append(
                    f"the {organ} is outside the field of view: what the text says about it "
                    "does not come from this scan"
                )
    return notes


def _specificity(f: Finding) -> int:
    return sum(v is not None for v in (f.side, f.size_mm, f.severity)) + (f.count > 1)


def _attrs(f: Finding) -> tuple[Any, ...]:
    return (f.side, f.size_mm, f.severity, f.count)


def tidy_findings(
    per_section: list[tuple[str | None, list[Finding]]], organs_in_view: dict[str, bool]
) -> tuple[list[Finding], list[str], dict[str | None, list[str]]]:
    """(section region, findings) pairs -> merged findings, warnings, notes per section.

    A finding about an organ outside the field of view is dropped (noted in its section);
    the same (organ, kind, side) stated differently in several sections keeps the
    statement of its own region's section, else the most specific, and is flagged.
    """
    warnings: list[str] = []
    notes: dict[str | None, list[str]] = {}
    groups: dict[tuple[str, str, str | None], list[tuple[str | None, Finding]]] = {}
    for region, findings in per_section:
        for f in findings:
            kind = FINDING_KINDS[f.finding]
            note = None
            if organs_in_view.get(f.organ) is False:
                note = f"'{kind.label}' dropped: the {f.organ} is outside the field of view"
            elif (
                region
                and kind.region != region
                and (frozenset({kind.region, region}) not in ADJACENT_REGIONS)
            ):
                note = f"'{kind.label}' dropped: a {kind.region} finding in the {region} section"
            if note is not None:
                notes.setdefault(region, []).append(note)
                warnings.append(f"{region or 'answer'}: {note}")
                continue
            groups.setdefault(f.key(), []).append((region, f))
    merged: list[Finding] = []
    for items in groups.values():
        own = [f for r, f in items if r == FINDING_KINDS[items[0][1].finding].region]
        pool = own or [f for _, f in items]
        best = max(pool, key=_specificity)
        distinct = {_attrs(f) for _, f in items}
        if len(distinct) > 1:
            from mu2.generate.fhir import describe_finding

            said = sorted({describe_finding(f) for _, f in items})
            best.extra = {**best.extra, "conflicting_statements": said}
            warnings.append(
                f"contradictory statements merged: {' vs '.join(said)}; kept "
                f"'{describe_finding(best)}'"
            )
        merged.append(best)
    return merged, warnings, notes
