"""Short questions with closed answers about one region's findings, by question type.

The yes/no ``presence`` question ("Is there ascites?") can be answered from the image
alone, whatever it asks. The other types make the answer depend on *what the question
asks*, so a model that ignores the question cannot score:

============  ===================================  =========================================
type          asks                                 closed answers
============  ===================================  =========================================
presence      is kind K present?                   "No." / "Yes." or "Yes, <details>."
side          on which side is K?                  "Left." / "Right." / "Both sides." /
                                                   "Neither side." (K absent)
location      is K on the <named> side?            "Yes." / "No." (side drawn left or right)
severity      how much / how severe is K?          "None." / "Mild." / "Moderate." /
                                                   "Severe."; fluid kinds (effusion,
                                                   ascites): "None." / "Small." /
                                                   "Moderate." / "Large."
============  ===================================  =========================================

``side`` and ``location`` are asked for lateral kinds (pleural effusion, renal cyst and
stone, hydronephrosis, lung nodule), ``severity`` for graded kinds (fatty liver,
hydronephrosis, pleural effusion, ascites). A finding on both sides (one bilateral finding,
or a left and a right one) answers "Both sides." and "Yes." for either side; its severity is
the worst of the kind's findings (what the report states for a merged bilateral finding).
A present finding without a side or a severity gets no such question (no closed answer).
The severity words are the first of the report writer's words for each grade
(:data:`mu2.findings.writer.SEVERITY_WORDS`), so the answers read like the reports.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from mu2.errors import Mu2Error
from mu2.findings.catalogue import FINDING_KINDS, ORGANS, SEVERITIES, Finding, FindingKind
from mu2.findings.writer import (
    ARTICLE_AN_LABELS,
    FLUID_KINDS,
    MASS_NOUN_KINDS,
    SEVERITY_WORDS,
    organ_questions,
)

PRESENCE, SIDE, LOCATION, SEVERITY = "presence", "side", "location", "severity"
QTYPES: tuple[str, ...] = (PRESENCE, SIDE, LOCATION, SEVERITY)

SIDE_TEMPLATES: tuple[str, ...] = (
    "On which side is the {label}?",
    "Which side is the {label} on?",
    "Is the {label} on the left, on the right or on both sides?",
)
SIDE_ANSWERS: dict[str, str] = {
    "left": "Left.",
    "right": "Right.",
    "both": "Both sides.",
    "none": "Neither side.",
}

# "{side}" is left or right; the organ decides how the location is named.
LOCATION_TEMPLATES: dict[str, tuple[str, ...]] = {
    "pleura": (
        "Is there {label_a} on the {side}?",
        "Is there {label_a} in the {side} hemithorax?",
        "Does the {side} hemithorax show {label_a}?",
    ),
    "kidney": (
        "Is there {label_a} in the {side} kidney?",
        "Does the {side} kidney show {label_a}?",
        "Is there {label_a} on the {side}?",
    ),
    "lung": (
        "Is there {label_a} in the {side} lung?",
        "Does the {side} lung show {label_a}?",
        "Is there {label_a} on the {side}?",
    ),
}
YES_NO: dict[bool, str] = {True: "Yes.", False: "No."}

SEVERITY_TEMPLATES: dict[str, tuple[str, ...]] = {
    "fluid": (
        "How much {label} is there?",
        "What amount of {label} is present?",
        "How much {label} does this CT show?",
    ),
    "default": (
        "How severe is the {label}?",
        "What is the grade of the {label}?",
        "How would you grade the {label}?",
    ),
}
NO_SEVERITY_ANSWER = "None."


def severity_answer(kind_name: str, severity: str | None) -> str:
    """The closed severity answer: "None." when absent, else the report's word for it."""
    if severity is None:
        return NO_SEVERITY_ANSWER
    table = SEVERITY_WORDS["fluid" if kind_name in FLUID_KINDS else "default"]
    return table[severity][0].capitalize() + "."


def _label_a(k: FindingKind) -> str:
    if k.name in MASS_NOUN_KINDS:
        return k.label
    return f"{'an' if k.label in ARTICLE_AN_LABELS else 'a'} {k.label}"


def _sides(present: list[Finding]) -> set[str] | None:
    """Sides the kind occupies ({"left", "right"} for bilateral); None if one is unknown."""
    out: set[str] = set()
    for f in present:
        if f.side is None:
            return None
        out |= {"left", "right"} if f.side == "bilateral" else {f.side}
    return out


def _side(k: FindingKind, present: list[Finding], rng: random.Random) -> list[tuple[str, str]]:
    sides = _sides(present)
    if sides is None:
        return []
    key = "both" if len(sides) == 2 else next(iter(sides), "none")
    return [(rng.choice(SIDE_TEMPLATES).format(label=k.label), SIDE_ANSWERS[key])]


def _location(k: FindingKind, present: list[Finding], rng: random.Random) -> list[tuple[str, str]]:
    sides = _sides(present)
    if sides is None:
        return []
    side = rng.choice(("left", "right"))
    q = rng.choice(LOCATION_TEMPLATES[k.organ]).format(label_a=_label_a(k), side=side)
    return [(q, YES_NO[side in sides])]


def _severity(k: FindingKind, present: list[Finding], rng: random.Random) -> list[tuple[str, str]]:
    grades = [f.severity for f in present]
    if any(g is None for g in grades):
        return []
    worst = max(grades, key=SEVERITIES.index) if grades else None
    table = SEVERITY_TEMPLATES["fluid" if k.name in FLUID_KINDS else "default"]
    return [(rng.choice(table).format(label=k.label), severity_answer(k.name, worst))]


Asker = Callable[[FindingKind, list[Finding], random.Random], list[tuple[str, str]]]
_ASKERS: dict[str, tuple[Callable[[FindingKind], bool], Asker]] = {
    SIDE: (lambda k: k.lateral, _side),
    LOCATION: (lambda k: k.lateral, _location),
    SEVERITY: (lambda k: k.graded, _severity),
}


def check_qtypes(qtypes: Sequence[str]) -> list[str]:
    """Problems with a list of question types (empty when every one is known)."""
    return [
        f"unknown question type '{t}' (known: {', '.join(QTYPES)})"
        for t in qtypes
        if t not in QTYPES
    ]


def typed_questions(
    findings: list[Finding],
    region: str,
    qtype: str,
    rng: random.Random,
    kinds: Sequence[str] | None = None,
) -> list[tuple[str, str, str]]:
    """(question, answer, kind) of one type for each fitting kind of ``region``'s organs.

    ``kinds`` limits the kinds asked about (a kind never drawn is always absent: no
    signal). ``presence`` rows are :func:`mu2.findings.writer.organ_questions`.
    """
    if problems := check_qtypes([qtype]):
        raise Mu2Error(problems[0])
    if region not in ORGANS:
        raise Mu2Error(f"unknown region '{region}'", fix=f"use one of {', '.join(ORGANS)}")
    allowed = set(FINDING_KINDS if kinds is None else kinds)
    if qtype == PRESENCE:
        return [
            (q, a, k)
            for q, a, k in organ_questions(findings, region, rng, with_kind=True)
            if k in allowed
        ]
    fits, ask = _ASKERS[qtype]
    out: list[tuple[str, str, str]] = []
    for organ in ORGANS[region]:
        for k in FINDING_KINDS.values():
            if k.organ != organ or k.name not in allowed or not fits(k):
                continue
            present = [f for f in findings if f.finding == k.name]
            out += [(q, a, k.name) for q, a in ask(k, present, rng)]
    return out


def balanced_pick(qtypes: Sequence[str], k: int, rng: random.Random) -> list[int]:
    """Indices of at most ``k`` candidates, the types taking turns (in a drawn order).

    Each type present among the candidates is represented once ``k`` reaches the number
    of types; a type with few candidates leaves its turns to the others.
    """
    pools: dict[str, list[int]] = {}
    for i, t in enumerate(qtypes):
        pools.setdefault(t, []).append(i)
    order = sorted(pools)
    rng.shuffle(order)
    picked: list[int] = []
    while len(picked) < k and any(pools.values()):
        for t in order:
            if pools[t] and len(picked) < k:
                picked.append(pools[t].pop(rng.randrange(len(pools[t]))))
    return sorted(picked)
