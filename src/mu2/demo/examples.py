"""Example reports of the demo: a few test cases and the real CT sample, each with its
heat-map PNG montage, heat-map NIfTI (the input's affine and shape), FHIR R4
``DiagnosticReport`` and JSON -- exactly what `mu2 report` writes for one scan.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

import mu2

log = logging.getLogger(__name__)

REAL_CT_NAME = "example_ct.nii.gz"
# Where the real CT sample lives in a source checkout, relative to the repository root.
REAL_CT_CANDIDATES: tuple[str, ...] = ("tests/data/real-ct/" + REAL_CT_NAME,)


@dataclass
class ExampleCase:
    """One scan to report on: its name, image, and (synthetic cases) ground truth."""

    name: str
    image: Path
    reference: dict[str, str] | None = None  # region -> reference report
    findings: list[dict[str, Any]] | None = None


def find_real_ct(explicit: str = "") -> Path | None:
    """The real CT sample: ``explicit`` when given, else the repository's copy (None when
    the package is installed without the repository)."""
    if explicit:
        return Path(explicit).expanduser()
    root = Path(mu2.__file__).resolve().parents[2]  # src/mu2/__init__.py -> repository root
    for rel in REAL_CT_CANDIDATES:
        path = (root / rel).resolve()
        if path.is_file():
            return path
    return None


def pick_test_cases(test_jsonl: Path, count: int) -> list[ExampleCase]:
    """The first ``count`` test cases (by case id) with a finding, topped up with normal ones."""
    from mu2.data.schema import resolve_image

    by_case: dict[str, dict[str, Any]] = {}
    for line in test_jsonl.read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("task", "report") != "report":
            continue
        case = by_case.setdefault(
            row["case_id"], {"image": resolve_image(row, test_jsonl), "ref": {}, "findings": []}
        )
        case["ref"][row.get("region") or "report"] = row["answer"]
        case["findings"] += row.get("findings", [])
    ordered = sorted(by_case, key=lambda c: (not by_case[c]["findings"], c))
    return [
        ExampleCase(c, Path(by_case[c]["image"]), by_case[c]["ref"], by_case[c]["findings"])
        for c in ordered[:count]
    ]


def write_example(
    generator: Any, case: ExampleCase, out_dir: Path, max_new_tokens: int
) -> dict[str, str]:
    """Report, heat map (PNG + NIfTI), FHIR and JSON for one scan into ``out_dir``."""
    from mu2.generate.outputs import write_outputs
    from mu2.io import load_ct

    volume = load_ct(case.image)
    result = generator.report(volume, heatmap=True, max_new_tokens=max_new_tokens)
    extra = (
        {"reference_by_region": case.reference, "ground_truth_findings": case.findings}
        if case.reference is not None
        else None
    )
    heat = result.heatmap is not None
    written = write_outputs(
        result, volume, scan=case.image, extra=extra, report_id=f"mu2-{case.name}",
        json_path=out_dir / "report.json", text_path=out_dir / "report.txt",
        fhir_path=out_dir / "fhir.json", title_prefix=f"{case.name}: ",
        heatmap_png=out_dir / "heatmap.png" if heat else None,
        heatmap_nifti=out_dir / "heatmap.nii.gz" if heat else None,
    )  # fmt: skip
    names = {"text": "report_path", "json": "json_path", "fhir": "fhir_path",
             "heatmap_png": "heatmap_png_path", "heatmap_nifti": "heatmap_nifti_path"}  # fmt: skip
    return {names[k]: v for k, v in written.items()}


def write_examples(
    model_dir: Path, cases: list[ExampleCase], out_dir: Path, max_new_tokens: int, device: str
) -> dict[str, dict[str, str]]:
    """Load the saved model once (from where `mu2 report` finds it) and report on each case."""
    from mu2.device import resolve_device
    from mu2.generate.pipeline import ReportGenerator

    generator = ReportGenerator(model_dir, device=resolve_device(device))
    written: dict[str, dict[str, str]] = {}
    for case in tqdm(cases, desc="reports", unit="scan"):
        written[case.name] = write_example(generator, case, out_dir / case.name, max_new_tokens)
    return written
