"""Findings-style report prose from structured findings, one region at a time.

The synthetic benchmark needs reports that read like the findings section of AMOS-MM
(one paragraph per region, organ by organ, normal organs stated explicitly) and vary in
wording, so a model cannot score by copying one template. Every phrasing lives in the
tables below; the extractor (``mu2.findings.extract``) must read all of them back, which
``tests/findings/test_extract.py`` checks.

Template mini-language (rendered by :func:`_render`):
  ``{a|b}``        singular / plural alternative, picked by the finding's number
  ``{count}``      "a", "a single", "two", "multiple", ... (empty for a single bilateral finding)
  ``{size_clause}`` ", measuring 2.3 cm" / ", the largest measuring 23 mm" or "" without size
  ``{size}``       "2.3 cm", "23 mm", "2.3 x 1.8 cm" (template needs a size)
  ``{sev}``        "mild " / "" (optional severity adjective, with its trailing space)
  ``{sevword}``    "mild" (template needs a severity)
  ``{side}``       "left", "right", "bilateral" (or "" when the side is unknown)
  ``{kidney}`` ``{lung}`` ``{hemithorax}``  side-specific location ("left kidney", "both lungs")
A comparison (``Finding.extra["comparison"]``) is appended before the final full stop.
"""

from __future__ import annotations

import random
import re
import string

from mu2.errors import Mu2Error
from mu2.findings.catalogue import FINDING_KINDS, ORGANS, REGIONS, Finding

# --- phrasing tables -------------------------------------------------------------------

# Sentences stating one finding; a template is used only if the finding has the fields it
# needs ({size}, {sevword}). Each kind has at least three usable templates in every case.
FINDING_TEMPLATES: dict[str, tuple[str, ...]] = {
    "liver_cyst": (
        "There {is|are} {count} simple {cyst|cysts} in the liver{size_clause}.",
        "{count} hepatic {cyst|cysts} {is|are} seen{size_clause}.",
        "The liver contains {count} well-circumscribed {cyst|cysts}{size_clause}.",
        "{count} {size} hypodense liver {cyst|cysts} {is|are} noted.",
    ),
    "liver_metastasis": (
        "There {is|are} {count} hypoenhancing hepatic {lesion|lesions} consistent with "
        "{metastasis|metastases}{size_clause}.",
        "{count} liver {metastasis|metastases} {is|are} present{size_clause}.",
        "The liver demonstrates {count} {lesion|lesions} suspicious for "
        "{metastasis|metastases}{size_clause}.",
        "{count} {size} hepatic {metastasis|metastases} {is|are} identified.",
    ),
    "fatty_liver": (
        "There is {sev}hepatic steatosis.",
        "The liver shows {sev}diffuse fatty infiltration.",
        "{sev}fatty infiltration of the liver is noted.",
        "Diffusely decreased attenuation of the liver, consistent with {sev}steatosis.",
        "{sevword} fatty liver.",
    ),
    "hepatomegaly": (
        "Hepatomegaly.",
        "The liver is enlarged.",
        "The liver is enlarged, consistent with hepatomegaly.",
        "There is hepatomegaly.",
    ),
    "splenomegaly": (
        "Splenomegaly.",
        "The spleen is enlarged.",
        "There is splenomegaly.",
        "The spleen is enlarged, consistent with splenomegaly.",
    ),
    "gallstone": (
        "There {is|are} {count} {gallstone|gallstones} in the gallbladder{size_clause}.",
        "Cholelithiasis with {count} {calculus|calculi}{size_clause}.",
        "The gallbladder contains {count} {stone|stones}{size_clause}.",
        "{count} {size} calcified {gallstone|gallstones} {is|are} noted.",
    ),
    "renal_cyst": (
        "There {is|are} {count} simple cortical {cyst|cysts} in {kidney}{size_clause}.",
        "{count} {side} renal {cyst|cysts} {is|are} seen{size_clause}.",
        "{kidney} {contains|contain} {count} {cyst|cysts}{size_clause}.",
        "{count} {size} {side} renal {cyst|cysts} {is|are} noted.",
    ),
    "renal_stone": (
        "There {is|are} {count} nonobstructing {calculus|calculi} in {kidney}{size_clause}.",
        "{count} {side} renal {stone|stones} {is|are} noted{size_clause}.",
        "{side} nephrolithiasis with {count} {stone|stones}{size_clause}.",
        "{count} {size} {side} renal {calculus|calculi} {is|are} seen.",
    ),
    "hydronephrosis": (
        "There is {sev}{side} hydronephrosis.",
        "{sev}hydronephrosis of {kidney}.",
        "{kidney} {shows|show} {sev}hydronephrosis.",
        "{sevword} {side} hydronephrosis.",
    ),
    "pleural_effusion": (
        "There {is|are} {count} {sev}{side} pleural {effusion|effusions}.",
        "{sev}{side} pleural {effusion|effusions}.",
        "{count} {sev}pleural {effusion|effusions} {is|are} present in {hemithorax}.",
        "{count} {sevword} {side} pleural {effusion|effusions} {is|are} seen.",
    ),
    "lung_nodule": (
        "There {is|are} {count} {nodule|nodules} in {lung}{size_clause}.",
        "{count} {side} pulmonary {nodule|nodules} {is|are} seen{size_clause}.",
        "{count} {size} {nodule|nodules} {is|are} noted in {lung}.",
        "{lung} {contains|contain} {count} {nodule|nodules}{size_clause}.",
    ),
    "ascites": (
        "There is {sev}ascites.",
        "{sev}ascites is present.",
        "A {sevword} amount of ascites is noted.",
        "{sev}free fluid in the abdomen, consistent with ascites.",
    ),
    "aortic_aneurysm": (
        "There is an infrarenal abdominal aortic aneurysm{size_clause}.",
        "The abdominal aorta is aneurysmal, measuring {size} in maximal diameter.",
        "Infrarenal AAA{size_clause}.",
        "{count} {size} abdominal aortic aneurysm is present.",
        "Aneurysmal dilatation of the abdominal aorta{size_clause}.",
    ),
}

# Explicit normal statements for an organ without findings.
NORMAL_TEMPLATES: dict[str, tuple[str, ...]] = {
    "lung": (
        "The lungs are clear.",
        "No pulmonary nodules.",
        "The lungs are clear without focal nodule or consolidation.",
        "No suspicious pulmonary nodule is identified.",
    ),
    "pleura": (
        "No pleural effusion.",
        "There is no pleural effusion or pneumothorax.",
        "The pleural spaces are clear.",
    ),
    "liver": (
        "The liver is normal in size and attenuation.",
        "The liver is unremarkable without focal lesion.",
        "Normal liver.",
        "No focal hepatic lesion; the liver is normal in size.",
    ),
    "gallbladder": (
        "The gallbladder is unremarkable.",
        "No cholelithiasis.",
        "The gallbladder is normal without stones.",
    ),
    "spleen": (
        "The spleen is normal in size.",
        "The spleen is unremarkable.",
        "No splenomegaly.",
    ),
    "pancreas": (
        "The pancreas is unremarkable.",
        "Normal pancreas.",
        "The pancreas is normal in size without ductal dilatation.",
    ),
    "kidney": (
        "The kidneys are unremarkable.",
        "No hydronephrosis or renal calculi.",
        "Both kidneys are normal in size without hydronephrosis.",
    ),
    "aorta": (
        "The abdominal aorta is normal in caliber.",
        "No abdominal aortic aneurysm.",
        "The aorta is of normal caliber.",
    ),
    "peritoneum": (
        "No ascites.",
        "No free fluid.",
        "There is no ascites or free fluid.",
    ),
    "bladder": (
        "The urinary bladder is unremarkable.",
        "The bladder is normal.",
        "Normal urinary bladder.",
    ),
    "bowel": (
        "The bowel is unremarkable.",
        "No bowel obstruction or wall thickening.",
        "The visualized bowel loops are normal in caliber.",
    ),
}

# Severity words; effusions and ascites are also graded small / large.
SEVERITY_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "default": {"mild": ("mild",), "moderate": ("moderate",), "severe": ("severe", "marked")},
    "fluid": {
        "mild": ("small", "mild", "trace"),
        "moderate": ("moderate",),
        "severe": ("large", "severe"),
    },
}
FLUID_KINDS: frozenset[str] = frozenset({"pleural_effusion", "ascites"})

SINGLE_WORDS: tuple[str, ...] = ("a", "a single", "one")
NUMBER_WORDS: dict[int, str] = {
    2: "two",
    3: "three",
    4: "four",
    5: "five",
    6: "six",
    7: "seven",
    8: "eight",
    9: "nine",
    10: "ten",
}
VAGUE_COUNT_WORDS: tuple[str, ...] = ("multiple", "several", "numerous")

SIZE_CLAUSES_SINGLE: tuple[str, ...] = (
    ", measuring {size}",
    " measuring {size}",
    " ({size})",
    ", {size} in diameter",
)
SIZE_CLAUSES_MULTIPLE: tuple[str, ...] = (
    ", the largest measuring {size}",
    ", up to {size}",
    " measuring up to {size}",
    " (largest {size})",
)
# Size formats: largest diameter in cm or mm, or two diameters (largest first).
SIZE_FORMATS: tuple[str, ...] = ("{cm} cm", "{mm} mm", "{cm} x {cm2} cm", "{mm} x {mm2} mm")
SECOND_DIAMETER_RATIO: tuple[float, float] = (0.5, 0.9)  # smaller diameter / largest

# Side-specific locations, with their determiner ("the left kidney", "both kidneys").
SIDE_LOCATIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "kidney": {
        "left": ("the left kidney",),
        "right": ("the right kidney",),
        "bilateral": ("both kidneys",),
        "": ("the kidney",),
    },
    "lung": {
        "left": ("the left lung", "the left upper lobe", "the left lower lobe"),
        "right": (
            "the right lung",
            "the right upper lobe",
            "the right middle lobe",
            "the right lower lobe",
        ),
        "bilateral": ("both lungs",),
        "": ("the lung",),
    },
    "hemithorax": {
        "left": ("the left hemithorax",),
        "right": ("the right hemithorax",),
        "bilateral": ("both hemithoraces",),
        "": ("the chest",),
    },
}

COMPARISON_PHRASES: dict[str, tuple[str, ...]] = {
    "new": (", new since the prior study", ", new compared with the prior examination"),
    "stable": (", unchanged from prior", ", stable compared with the prior study"),
    "increased": (", increased since the prior study", ", increased compared with prior"),
    "decreased": (", decreased since the prior study", ", decreased compared with prior"),
}

QUESTION_TEMPLATES: tuple[str, ...] = (
    "Describe the findings of the {region} in this CT.",
    "What are the findings of the {region} in this CT scan?",
    "Please describe the {region} findings in this CT image.",
    "Write the findings section for the {region} of this CT.",
)

KIND_QUESTION_TEMPLATES: tuple[str, ...] = (
    "Is there {label_a} in this CT?",
    "Does this CT show {label_a}?",
    "Is there evidence of {label_a}?",
)
ARTICLE_AN_LABELS: frozenset[str] = frozenset({"aortic aneurysm"})
# Kinds whose label is a mass noun ("Is there hepatic steatosis?", not "a hepatic steatosis").
MASS_NOUN_KINDS: frozenset[str] = frozenset(
    {"fatty_liver", "hepatomegaly", "splenomegaly", "hydronephrosis", "ascites"}
)

# --- rendering -----------------------------------------------------------------------

_ALT = re.compile(r"\{([^{}|]*)\|([^{}|]*)\}")
_AN = re.compile(r"\b([Aa]) (?=[aeiouAEIOU]|8|1[18](?:\D|$))")  # "an 8 mm", "an 11 mm"
_FIELDS = string.Formatter()


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in _FIELDS.parse(_ALT.sub("", template)) if name}


def _size_text(size_mm: float, rng: random.Random) -> str:
    fmt = rng.choice(SIZE_FORMATS)
    second = size_mm * rng.uniform(*SECOND_DIAMETER_RATIO)
    return fmt.format(
        cm=f"{size_mm / 10:.1f}",
        cm2=f"{second / 10:.1f}",
        mm=f"{round(size_mm)}",
        mm2=f"{min(round(second), round(size_mm))}",
    )


def _severity_word(f: Finding, rng: random.Random) -> str:
    table = SEVERITY_WORDS["fluid" if f.finding in FLUID_KINDS else "default"]
    return rng.choice(table[f.severity]) if f.severity else ""


def _count_word(f: Finding, rng: random.Random) -> str:
    if f.side == "bilateral" and f.count == 1:
        return ""  # "bilateral renal cysts": the count is per side, a plural noun
    if f.count == 1:
        return rng.choice(SINGLE_WORDS)
    words = list(VAGUE_COUNT_WORDS)
    if f.count in NUMBER_WORDS:
        words += [NUMBER_WORDS[f.count]] * len(words)  # exact number as often as vague ones
    return rng.choice(words)


def _sentence_case(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r" ([,.)])", r"\1", text)
    text = _AN.sub(lambda m: m.group(1) + "n ", text)
    return text[:1].upper() + text[1:]


def _render(template: str, f: Finding, rng: random.Random) -> str:
    k = FINDING_KINDS[f.finding]
    plural = f.count > 1 or f.side == "bilateral"
    text = _ALT.sub(lambda m: m.group(2 if plural else 1), template)
    side = f.side or ""
    size = _size_text(f.size_mm, rng) if f.size_mm is not None else ""
    clauses = SIZE_CLAUSES_MULTIPLE if f.count > 1 else SIZE_CLAUSES_SINGLE
    sevword = _severity_word(f, rng)
    values = {
        "count": _count_word(f, rng) if (k.countable or plural) else "a",
        "size": size,
        "size_clause": rng.choice(clauses).format(size=size) if size else "",
        "sev": f"{sevword} " if sevword else "",
        "sevword": sevword,
        "side": side,
        **{loc: rng.choice(table[side]) for loc, table in SIDE_LOCATIONS.items()},
    }
    text = text.format(**values)
    cmp = f.extra.get("comparison") if f.extra else None
    if cmp:
        if cmp not in COMPARISON_PHRASES:
            raise Mu2Error(
                f"unknown comparison '{cmp}' on finding '{f.finding}'",
                fix=f"use one of {', '.join(COMPARISON_PHRASES)}",
            )
        text = text.rstrip(".") + rng.choice(COMPARISON_PHRASES[cmp]) + "."
    return _sentence_case(text)


def _usable(template: str, f: Finding) -> bool:
    need = _fields(template)
    if "size" in need and f.size_mm is None:
        return False
    return not ("sevword" in need and f.severity is None)


def usable_templates(f: Finding) -> list[str]:
    """The phrasings of ``f``'s kind that state everything ``f`` carries."""
    return [t for t in FINDING_TEMPLATES[f.finding] if _usable(t, f)]


def finding_sentence(f: Finding, rng: random.Random, template: str | None = None) -> str:
    """One sentence stating ``f``, in a phrasing drawn by ``rng`` (or the given one)."""
    if template is None:
        template = rng.choice(usable_templates(f))
    elif not _usable(template, f):
        raise Mu2Error(f"template '{template}' needs a size or severity that {f} lacks")
    return _render(template, f, rng)


def _check_region(region: str) -> None:
    if region not in REGIONS:
        raise Mu2Error(f"unknown region '{region}'", fix=f"use one of {', '.join(REGIONS)}")


def write_report(findings: list[Finding], region: str, rng: random.Random) -> str:
    """Findings prose for one region: each organ in report order, findings or normal.

    Findings of organs outside ``region`` are left out (they belong to another region's
    paragraph). Deterministic given the state of ``rng``.
    """
    _check_region(region)
    sentences: list[str] = []
    for organ in ORGANS[region]:
        mine = [f for f in findings if f.organ == organ]
        if mine:
            sentences += [finding_sentence(f, rng) for f in mine]
        else:
            sentences.append(rng.choice(NORMAL_TEMPLATES[organ]))
    return " ".join(sentences)


def write_question(region: str, rng: random.Random) -> str:
    """The instruction that asks for one region's findings (AMOS-MM style)."""
    _check_region(region)
    return rng.choice(QUESTION_TEMPLATES).format(region=region)


def _answer_detail(f: Finding) -> str:
    parts: list[str] = []
    if f.count > 1:
        parts.append(NUMBER_WORDS.get(f.count, "multiple"))
    if f.severity:
        parts.append(f.severity)
    if f.side:
        loc = SIDE_LOCATIONS.get(f.organ, SIDE_LOCATIONS["hemithorax"])[f.side][0]
        parts.append(f"in {loc}" if f.side != "bilateral" else "bilateral")
    if f.size_mm is not None:
        parts.append(f"{round(f.size_mm)} mm")
    return ", ".join(parts)


def organ_questions(
    findings: list[Finding], region: str, rng: random.Random, with_kind: bool = False
) -> list[tuple[str, ...]]:
    """Yes/no questions, one per finding kind of the region's organs, with their answers.

    "Is there a renal cyst in this CT?" -> "Yes, in the left kidney, 18 mm." or "No."
    ``with_kind`` adds the kind's name as a third element of each tuple.
    """
    _check_region(region)
    qa: list[tuple[str, ...]] = []
    for organ in ORGANS[region]:
        for k in FINDING_KINDS.values():
            if k.organ != organ:
                continue
            article = "an" if k.label in ARTICLE_AN_LABELS else "a"
            label_a = k.label if k.name in MASS_NOUN_KINDS else f"{article} {k.label}"
            q = rng.choice(KIND_QUESTION_TEMPLATES).format(label=k.label, label_a=label_a)
            present = [f for f in findings if f.finding == k.name]
            tag = (k.name,) if with_kind else ()
            if not present:
                qa.append((q, "No.", *tag))
                continue
            details = [d for d in (_answer_detail(f) for f in present) if d]
            qa.append((q, "Yes, " + "; ".join(details) + "." if details else "Yes.", *tag))
    return qa
