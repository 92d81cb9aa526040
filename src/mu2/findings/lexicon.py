"""Word lists for reading chest / abdomen / pelvis CT prose: anatomy, findings, modifiers.

Written by hand: no maintained Python library extracts this catalogue's findings from
radiology prose offline (NegEx-style tools such as negspacy need a spaCy model and an
entity recogniser for these findings, which does not exist for CT reports), so the
extractor is a small rule system over these tables. All patterns are regular-expression
fragments matched case-insensitively on whole words.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# --- anatomy ---------------------------------------------------------------------------

# Words that name an organ of the catalogue. "other" names organs outside it: a generic
# head noun next to them ("ovarian cyst", "pericardial effusion") is not a catalogue finding.
ORGAN_TERMS: dict[str, tuple[str, ...]] = {
    "liver": (r"liver", r"hepatic"),
    "gallbladder": (r"gall ?bladder", r"cholecyst\w*"),
    "spleen": (r"spleen", r"splenic"),
    "pancreas": (r"pancrea\w*",),
    "kidney": (r"kidneys?", r"renal"),
    "aorta": (r"aorta", r"aortic"),
    "peritoneum": (r"peritone\w*", r"intraperitoneal"),
    "lung": (
        r"lungs?",
        r"pulmonary",
        r"(?:upper|middle|lower) lobes?",
        r"lingula\w*",
        r"lung bases",
    ),
    "pleura": (r"pleura\w*", r"hemithora\w*"),
    "bladder": (r"(?<!gall )bladder", r"vesical"),
    "bowel": (r"bowel", r"colon\w*", r"intestin\w*", r"jejun\w*", r"ile(?:um|al)", r"sigmoid"),
    "other": (
        r"thyroid",
        r"adrenal",
        r"ovar\w*",
        r"uter\w*",
        r"prostat\w*",
        r"ureter\w*",
        r"uvj|upj|ureterovesical|ureteropelvic",
        r"osseous",
        r"bones?",
        r"breasts?",
        r"(?:lymph )?nodes?",
        r"pericardi\w*",
        r"mesenter\w*",
        r"choledoch\w*",
        r"bile ducts?",
        r"vertebra\w*",
        r"iliac",
        r"arter\w*",
        r"brain",
        r"skin",
    ),
}

# --- findings --------------------------------------------------------------------------

# Phrases that name a catalogue finding on their own (synonyms included).
SPECIFIC_TERMS: dict[str, tuple[str, ...]] = {
    "liver_cyst": (r"(?:hepatic|liver) cysts?",),
    "liver_metastasis": (
        r"(?:hepatic|liver) metastas[ie]s",
        r"metastatic (?:liver|hepatic) (?:disease|lesions?)",
    ),
    "fatty_liver": (r"hepatic steatosis", r"fatty liver", r"fatty infiltration of the liver"),
    "hepatomegaly": (r"hepatomegaly",),
    "splenomegaly": (r"splenomegaly",),
    "gallstone": (r"gallstones?", r"cholelithiasis"),
    "renal_cyst": (r"(?:renal|kidney) cysts?", r"parapelvic cysts?"),
    "renal_stone": (
        r"nephrolithiasis",
        r"(?:renal|kidney) (?:stones?|calcul(?:us|i))",
        r"urolithiasis",
    ),
    "hydronephrosis": (
        r"hydro(?:uretero)?nephrosis",
        r"pelvi-?ca[lyi]+(?:ectasis|ceal dilatation|ceal dilation)",
        r"dilat(?:ed|ation of the) (?:renal )?collecting systems?",
    ),
    "pleural_effusion": (r"pleural effusions?", r"hydrothorax"),
    "lung_nodule": (r"(?:pulmonary|lung) nodules?",),
    "ascites": (
        r"ascites",
        r"free (?:intraperitoneal |peritoneal |abdominal |pelvic )?fluid",
        r"(?:intra)?peritoneal fluid",
        r"fluid (?:in|within) the (?:pelvic|abdominal|peritoneal) cavity",
        r"pelvic fluid",
    ),
    "aortic_aneurysm": (
        r"(?:abdominal )?aortic aneurysms?",
        r"aaa",
        r"aneurysmal dilatation of the (?:abdominal )?aorta",
    ),
}


@dataclass(frozen=True)
class GenericTerm:
    """A head noun whose finding depends on the organ it is said of ("cyst" + kidney)."""

    pattern: str
    kinds: dict[str, str]  # organ -> finding kind
    default_organ: str | None = None  # when no organ is named anywhere near
    region_organ: dict[str, str] = field(default_factory=dict)  # region -> organ default


GENERIC_TERMS: tuple[GenericTerm, ...] = (
    GenericTerm(r"cysts?|cystic lesions?", {"liver": "liver_cyst", "kidney": "renal_cyst"}),
    GenericTerm(
        r"(?:lesions? (?:consistent with|suspicious for|compatible with|concerning for|"
        r"representing) )?(?:metastas[ie]s|metastatic (?:disease|lesions?))",
        {"liver": "liver_metastasis"},
    ),
    GenericTerm(
        r"steatosis|fatty (?:infiltration|change)", {"liver": "fatty_liver"}, default_organ="liver"
    ),
    GenericTerm(r"enlarged|enlargement", {"liver": "hepatomegaly", "spleen": "splenomegaly"}),
    GenericTerm(r"stones?|calcul(?:us|i)", {"gallbladder": "gallstone", "kidney": "renal_stone"}),
    GenericTerm(r"effusions?", {"pleura": "pleural_effusion"}, region_organ={"chest": "pleura"}),
    GenericTerm(r"nodules?", {"lung": "lung_nodule"}, region_organ={"chest": "lung"}),
    GenericTerm(r"aneurysm(?:al)?", {"aorta": "aortic_aneurysm"}, default_organ="aorta"),
)

# Plural forms of trigger heads: a plural noun without a count word means "multiple".
PLURAL_HEADS: str = r"(?:cysts|lesions|metastases|stones|calculi|gallstones|nodules|aneurysms)\b"

# --- modifiers -------------------------------------------------------------------------

SIDE_TERMS: dict[str, str] = {
    "left": r"left(?:-sided)?",
    "right": r"right(?:-sided)?",
    "bilateral": r"bilateral(?:ly)?|both",
}

SEVERITY_TERMS: dict[str, str] = {
    "mild": r"mild(?:ly)?|minimal|trace|small",
    "moderate": r"moderate(?:ly)?",
    "severe": r"severe(?:ly)?|marked(?:ly)?|large|massive|extensive|gross",
}

NUMBER_VALUES: dict[str, int] = {
    "one": 1, "single": 1, "solitary": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
}  # fmt: skip
# "multiple" and friends: at least two, number unknown.
VAGUE_COUNT_TERMS: str = r"multiple|several|numerous|few|innumerable|scattered|various"
# Said after the noun of several findings ("the largest measuring 2 cm").
LARGEST_TERM: str = r"largest"

# Sizes: "2.3 cm", "23 mm", "2.3 x 1.8 cm", "2.3 cm x 1.8 cm"; largest diameter kept.
NUMBER = r"\d+(?:\.\d+)?"
SIZE_PATTERN: str = (
    rf"(?P<n1>{NUMBER})\s*(?P<u1>mm|cm)?"
    rf"(?:\s*(?:x|×|by)\s*(?P<n2>{NUMBER})\s*(?P<u2>mm|cm)?)?"
    rf"(?:\s*(?:x|×|by)\s*(?P<n3>{NUMBER})\s*(?P<u3>mm|cm)?)?"
)
UNIT_MM: dict[str, float] = {"mm": 1.0, "cm": 10.0}

# --- negation (NegEx-style) -------------------------------------------------------------

# Phrases that look like negations but are not (checked first).
PSEUDO_NEGATIONS: tuple[str, ...] = (
    r"no (?:significant |interval |definite )?change",
    r"no (?:significant |interval )?(?:increase|decrease)",
    r"not only",
    r"no prior",
    r"no previous",
    r"without (?:significant |interval )?change",
)
# Negations that scope forward, to the end of the clause.
PRE_NEGATIONS: tuple[str, ...] = (
    r"no evidence of",
    r"negative for",
    r"free of",
    r"absence of",
    r"without",
    r"no",
    r"not",
    r"nor",
)
# Negations that follow what they negate ("... is not seen").
POST_NEGATIONS: tuple[str, ...] = (
    r"(?:is|are|was|were) (?:not|no longer) (?:seen|identified|visualized|present|evident|"
    r"demonstrated|noted|appreciated|detected|observed)",
    r"(?:is|are|has|have) (?:resolved|absent)",
)
# Words and punctuation that end a negation's scope.
SCOPE_TERMINATORS: tuple[str, ...] = (
    r"but",
    r"however",
    r"although",
    r"though",
    r"except",
    r"aside from",
    r"apart from",
    r"other than",
    r"which",
    r"there (?:is|are)",
    r"with the exception",
)
SCOPE_PUNCTUATION: tuple[str, ...] = (r";", r", and (?:a|an|the|there|multiple|several|\d)\b")

# Words between a modifier and a finding that suggest they belong to different phrases
# ("a 5 mm stone and a 1.2 cm cyst"): the extractor prefers a finding on the same side.
PHRASE_BREAKS: str = r";|\b(?:and|or|with|while|whereas|but)\b"

# Statements that an organ is normal.
NORMAL_TERMS: tuple[str, ...] = (
    r"normal",
    r"unremarkable",
    r"clear",
    r"within normal limits",
    r"no abnormalit\w*",
    r"intact",
)

# --- comparison with a prior study ------------------------------------------------------

# Phrases that look like a change but describe the image ("decreased attenuation").
PSEUDO_COMPARISONS: tuple[str, ...] = (
    r"(?:de|in)creased (?:attenuation|density|enhancement|echogenicity|signal|uptake)",
    r"no prior",
    r"no previous",
)
COMPARISON_TERMS: dict[str, tuple[str, ...]] = {
    "new": (
        r"new(?:ly)?",
        r"interval (?:development|appearance)",
        r"not (?:previously )?(?:seen|present) (?:on|in) (?:the )?(?:prior|previous)",
    ),
    "stable": (
        r"unchanged",
        r"stable",
        r"no (?:significant |interval |definite )?change",
        r"without (?:significant |interval )?change",
        r"similar (?:in size|in appearance|to (?:the )?prior)",
        r"persistent",
        r"again (?:seen|noted|demonstrated)",
    ),
    "increased": (
        r"increas(?:ed|ing|e)",
        r"enlarging",
        r"larger than (?:before|previously|(?:on )?(?:the )?(?:prior|previous)\w*)",
        r"progress(?:ed|ion|ing)",
        r"worsen(?:ed|ing)",
        r"grown",
    ),
    "decreased": (
        r"decreas(?:ed|ing|e)",
        r"smaller than (?:before|previously|(?:on )?(?:the )?(?:prior|previous)\w*)",
        r"improv(?:ed|ing|ement)",
        r"reduc(?:ed|tion)",
        r"regress(?:ed|ion)",
        r"diminish(?:ed)?",
    ),
    "resolved": (r"resol(?:ved|ution)", r"no longer (?:seen|visualized|present|identified)"),
    "prior": (
        r"compared (?:with|to) (?:the )?(?:prior|previous|recent)",
        r"(?:prior|previous) (?:study|exam|examination|ct|scan|imaging)",
        r"since (?:the )?(?:prior|previous|last)",
        r"previously",
        r"interval",
    ),
}
CHANGE_LABELS: tuple[str, ...] = ("new", "stable", "increased", "decreased", "resolved")

# --- location within an organ ----------------------------------------------------------

# Parts of an organ a focal finding is placed in (lobe, segment, pole). Each maps to the
# organ it belongs to; GREEN's (c) category counts a finding put in the wrong part.
SITE_TERMS: dict[str, tuple[str, str]] = {  # name -> (organ, pattern)
    "upper_lobe": ("lung", r"upper lobes?"),
    "middle_lobe": ("lung", r"middle lobe"),
    "lower_lobe": ("lung", r"lower lobes?|lung bases?|(?:bi)?basilar"),
    "lingula": ("lung", r"lingula\w*"),
    "caudate_lobe": ("liver", r"caudate(?: lobe)?"),
    "right_hepatic_lobe": ("liver", r"right (?:hepatic )?lobe(?: of the liver)?"),
    "left_hepatic_lobe": ("liver", r"left (?:hepatic )?lobe(?: of the liver)?"),
    "segment": ("liver", r"(?:hepatic )?segment (?:[1-8]|viii|vii|vi|iv[ab]?|v|iii|ii|i)\b"),
    "upper_pole": ("kidney", r"upper poles?"),
    "lower_pole": ("kidney", r"lower poles?"),
    "interpolar": ("kidney", r"interpolar(?: region)?|mid(?:dle)?[- ]pole"),
}
ROMAN: dict[str, int] = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "iva": 4, "ivb": 4, "v": 5,
                         "vi": 6, "vii": 7, "viii": 8}  # fmt: skip
# Coarser part that contains a finer one: a segment lies in a lobe (Couinaud: 1 caudate,
# 2-4 left, 5-8 right); the lingula is part of the left upper lobe.
SITE_PARENT: dict[str, str] = {
    "lingula": "upper_lobe",
    "segment 1": "caudate_lobe",
    **{f"segment {n}": "left_hepatic_lobe" for n in (2, 3, 4)},
    **{f"segment {n}": "right_hepatic_lobe" for n in (5, 6, 7, 8)},
}

# --- whole-report normal statements and findings outside the catalogue ------------------

# "No acute abnormality", "Unremarkable CT of the abdomen": the whole study is normal.
GLOBAL_NORMAL_TERMS: tuple[str, ...] = (
    r"no acute (?:abnormalit\w*|findings?|process\w*|patholog\w*|disease|intra\w+ (?:abnormalit"
    r"\w*|findings?|process\w*))",
    r"no (?:significant |focal |other )?(?:abnormalit(?:y|ies)|findings?)"
    r"(?: (?:is|are) (?:seen|identified|detected))?(?: (?:in|of) the (?:chest|abdomen|pelvis))?",
    r"(?:unremarkable|normal|negative) (?:ct|study|exam\w*|scan)",
    r"(?:ct|study|exam\w*|scan) (?:is|was) (?:unremarkable|normal|negative|within normal limits)",
    r"(?:chest|abdomen|pelvis|abdomen and pelvis) (?:is|are) (?:unremarkable|normal)",
)
# Abnormalities that name no catalogue finding ("a hypodense lesion in the spleen"): the
# judge still counts them as findings of the organ they are said of.
ABNORMAL_TERMS: str = (
    r"lesions?|mass(?:es)?|hypo(?:dens|attenuat|enhanc)\w*|hyper(?:dens|attenuat|enhanc)\w*"
    r"|opacit(?:y|ies)|consolidation|thicken\w*|calcifi\w*|collections?|infiltrat\w*"
    r"|tumou?rs?|nodules?|nodularity|dilat(?:ed|ation)|h(?:a)?ematoma|abscess\w*|fractures?"
)
