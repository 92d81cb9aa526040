"""Findings that are a whole organ or a fluid collection, as drawn by the phantom.

Enlarged liver or spleen and aortic aneurysm are read off the final label map (so the
measured mask is what the image shows); pleural effusion, hydronephrosis and ascites are
fluid painted by :mod:`mu2.data.synthetic.phantom` and graded by the drawn depth or diameter.
"""

from __future__ import annotations

import numpy as np

from mu2.data.synthetic.anatomy import LABELS, DrawnFinding
from mu2.data.synthetic.plan import GRADE_FIELD, Planned, grade
from mu2.data.synthetic.shapes import BoxMask, Grid, mask_to_box
from mu2.data.synthetic.synth_config import SynthConfig
from mu2.findings.catalogue import SEVERITIES, Finding


def fluid_finding(
    kind: str,
    organ: str,
    side: str | None,
    got: BoxMask | None,
    reference: tuple[str, ...],
    value: float,
    cfg: SynthConfig,
    details: dict,
    ring_mm: float = 10.0,
) -> DrawnFinding:
    """A fluid finding graded by its drawn ``value`` (depth or diameter, mm)."""
    sev = grade(value, getattr(cfg, GRADE_FIELD[kind]))
    f = Finding(organ=organ, finding=kind, side=side, severity=sev)
    return DrawnFinding(
        f, [got] if got is not None else [], reference, ring_mm, {**details, "label": "fluid"}
    )


def merge_sides(drawn: list[DrawnFinding]) -> list[DrawnFinding]:
    """Join a kind drawn on both sides into one bilateral finding (worst severity)."""
    out: list[DrawnFinding] = []
    for d in drawn:
        twin = next(
            (
                o
                for o in out
                if o.finding.finding == d.finding.finding
                and o.finding.side in ("left", "right")
                and d.finding.side in ("left", "right")
                and o.finding.side != d.finding.side
            ),
            None,
        )
        if twin is None:
            out.append(d)
            continue
        sev = max(
            twin.finding.severity, d.finding.severity, key=lambda s: SEVERITIES.index(s or "mild")
        )
        twin.finding.side, twin.finding.severity = "bilateral", sev
        twin.masks += d.masks
        twin.reference = tuple(dict.fromkeys(twin.reference + d.reference))
        twin.details = {
            k: [twin.details[k], d.details[k]] if k != "label" else v
            for k, v in twin.details.items()
        }
    return out


def organ_findings(
    planned: dict[str, Planned], labels: np.ndarray, grid: Grid, cfg: SynthConfig, r_a: float
) -> list[DrawnFinding]:
    """Findings that are a whole organ (or a segment of it), read off the final labels."""
    out: list[DrawnFinding] = []

    def extent_mm(bm: BoxMask) -> float:
        return round((bm.box[2].stop - bm.box[2].start) * grid.spacing[2], 1)

    liver = mask_to_box(labels == LABELS["liver"])
    spleen = mask_to_box(labels == LABELS["spleen"])
    if "hepatomegaly" in planned and liver is not None:
        out.append(
            DrawnFinding(
                Finding("liver", "hepatomegaly"),
                [liver],
                ("fat",),
                10.0,
                {"craniocaudal_mm": extent_mm(liver), "label": "liver"},
            )
        )
    if "splenomegaly" in planned and spleen is not None:
        out.append(
            DrawnFinding(
                Finding("spleen", "splenomegaly"),
                [spleen],
                ("fat",),
                10.0,
                {"length_mm": extent_mm(spleen), "label": "spleen"},
            )
        )
    if "aortic_aneurysm" in planned:
        aorta = labels == LABELS["aorta"]
        diameter = planned["aortic_aneurysm"].values[0]
        r_slice = np.sqrt(aorta.sum(axis=(0, 1)) * grid.spacing[0] * grid.spacing[1] / np.pi)
        seg = aorta & (r_slice > r_a + 0.25 * (diameter / 2.0 - r_a))[None, None, :]
        bm = mask_to_box(seg)
        if bm is not None:
            out.append(
                DrawnFinding(
                    Finding("aorta", "aortic_aneurysm", size_mm=float(round(diameter))),
                    [bm],
                    ("fat",),
                    10.0,
                    {"label": "aorta"},
                )
            )
    return out
