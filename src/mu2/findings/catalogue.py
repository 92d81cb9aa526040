"""The findings catalogue: which finding kinds exist, in which organ and region, and which
attributes (side, size, severity) each one carries.

This is the single source of truth shared by the synthetic generator (ground truth), the
report writer, the finding extractor (offline GREEN judge) and the structured output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mu2.errors import Mu2Error

REGIONS: tuple[str, ...] = ("chest", "abdomen", "pelvis")
SIDES: tuple[str, ...] = ("left", "right", "bilateral")
SEVERITIES: tuple[str, ...] = ("mild", "moderate", "severe")

# Organs (in report order) per region; an organ without findings gets a normal statement.
ORGANS: dict[str, tuple[str, ...]] = {
    "chest": ("lung", "pleura"),
    "abdomen": ("liver", "gallbladder", "spleen", "pancreas", "kidney", "aorta", "peritoneum"),
    "pelvis": ("bladder", "bowel"),
}


@dataclass(frozen=True)
class FindingKind:
    """One kind of finding and the attributes a report states about it."""

    name: str
    organ: str
    region: str
    label: str  # short human name, e.g. "renal cyst"
    lateral: bool = False  # carries a side (left / right / bilateral)
    sized: bool = False  # carries a size in mm (diameter for the aorta)
    graded: bool = False  # carries a severity (mild / moderate / severe)
    countable: bool = False  # may be single or multiple


FINDING_KINDS: dict[str, FindingKind] = {
    k.name: k
    for k in (
        FindingKind("liver_cyst", "liver", "abdomen", "liver cyst", sized=True, countable=True),
        FindingKind(
            "liver_metastasis", "liver", "abdomen", "liver metastasis", sized=True, countable=True
        ),
        FindingKind("fatty_liver", "liver", "abdomen", "hepatic steatosis", graded=True),
        FindingKind("hepatomegaly", "liver", "abdomen", "hepatomegaly"),
        FindingKind("splenomegaly", "spleen", "abdomen", "splenomegaly"),
        FindingKind("gallstone", "gallbladder", "abdomen", "gallstone", sized=True, countable=True),
        FindingKind(
            "renal_cyst",
            "kidney",
            "abdomen",
            "renal cyst",
            lateral=True,
            sized=True,
            countable=True,
        ),
        FindingKind(
            "renal_stone",
            "kidney",
            "abdomen",
            "renal stone",
            lateral=True,
            sized=True,
            countable=True,
        ),
        FindingKind(
            "hydronephrosis", "kidney", "abdomen", "hydronephrosis", lateral=True, graded=True
        ),
        FindingKind(
            "pleural_effusion", "pleura", "chest", "pleural effusion", lateral=True, graded=True
        ),
        FindingKind(
            "lung_nodule", "lung", "chest", "lung nodule", lateral=True, sized=True, countable=True
        ),
        FindingKind("ascites", "peritoneum", "abdomen", "ascites", graded=True),
        FindingKind("aortic_aneurysm", "aorta", "abdomen", "aortic aneurysm", sized=True),
    )
}


def kind(name: str) -> FindingKind:
    """Look up a finding kind by name, with a clear error for unknown names."""
    try:
        return FINDING_KINDS[name]
    except KeyError:
        raise Mu2Error(
            f"unknown finding kind '{name}'", fix=f"use one of {', '.join(FINDING_KINDS)}"
        ) from None


@dataclass
class Finding:
    """One finding in one case: what the structured ground truth and the extractor produce.

    ``side`` is None for non-lateral kinds; ``size_mm`` is the largest diameter (None when
    the kind has no size or the report gives none); ``count`` is 1 for single findings and
    >= 2 for "multiple".
    """

    organ: str
    finding: str
    side: str | None = None
    size_mm: float | None = None
    severity: str | None = None
    count: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        k = kind(self.finding)
        if self.organ != k.organ:
            raise Mu2Error(
                f"finding '{self.finding}' belongs to organ '{k.organ}', not '{self.organ}'"
            )
        if self.side is not None and self.side not in SIDES:
            raise Mu2Error(f"side '{self.side}' is not one of {SIDES}")
        if self.severity is not None and self.severity not in SEVERITIES:
            raise Mu2Error(f"severity '{self.severity}' is not one of {SEVERITIES}")
        if self.count < 1:
            raise Mu2Error(f"count must be >= 1, got {self.count}")

    @property
    def region(self) -> str:
        return FINDING_KINDS[self.finding].region

    def key(self) -> tuple[str, str, str | None]:
        """Identity used to align findings: organ, kind and side."""
        return (self.organ, self.finding, self.side)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not d["extra"]:
            d.pop("extra")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
