"""Where `mu2 demo` writes: the output folder layout, the model folder, the final listing.

Layout of the output folder (default ``$MU2_HOME/demo/<profile>``)::

    data/synth/  synthetic benchmark (images/, gt/, train/val/test.jsonl)
    clip/        stage 0: final/vision.safetensors, probe.md
    sft/ dpo/    training runs (final/ = the model), sft-no-stage0/ with the ablation
    prefs/       pairs.jsonl
    eval/<model>/ predictions.jsonl, metrics.json, table.md, per_case.jsonl
    examples/<case>/ report.txt, report.json, heatmap.png, heatmap.nii.gz, fhir.json
    cache/       prepared volumes shared by all stages
    summary.md demo.json

The final model goes to ``<home>/models/<model_name>``, where `mu2 report` looks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mu2.generate.home import HOME_ENV

SUMMARY_MD = "summary.md"


def default_out(home: Path, profile: str) -> Path:
    return home / "demo" / profile


@dataclass
class DemoPaths:
    """Where the demo writes; the final model goes to ``home/models/<model_name>``."""

    root: Path
    home: Path
    model_name: str

    @property
    def data(self) -> Path:
        """Stage folder; the data set itself is in ``synth/`` (synthesize wants its own)."""
        return self.root / "data"

    @property
    def synth(self) -> Path:
        return self.root / "data" / "synth"

    @property
    def clip(self) -> Path:
        return self.root / "clip"

    @property
    def lm(self) -> Path:
        return self.root / "lm"

    @property
    def lm_scratch(self) -> Path:
        return self.root / "lm-no-stage0"

    @property
    def sft(self) -> Path:
        return self.root / "sft"

    @property
    def scratch(self) -> Path:
        return self.root / "sft-no-stage0"

    @property
    def prefs(self) -> Path:
        return self.root / "prefs"

    @property
    def dpo(self) -> Path:
        return self.root / "dpo"

    @property
    def eval(self) -> Path:
        return self.root / "eval"

    @property
    def save(self) -> Path:
        return self.root / "save"

    @property
    def examples(self) -> Path:
        return self.root / "examples"

    @property
    def cache(self) -> Path:
        """Prepared volumes, shared by every stage (keyed by file and preparation)."""
        return self.root / "cache" / "prep"

    @property
    def model(self) -> Path:
        return self.home / "models" / self.model_name


def where_things_are(paths: DemoPaths, records: list[Any], custom_home: bool) -> dict[str, str]:
    """Label -> path of every artefact of the run (printed and written to demo.json)."""
    out = {r.name: r.outputs for r in records}
    places = {"demo output": str(paths.root), "data": str(paths.synth)}
    if "clip" in out:
        places["stage-0 tower"] = out["clip"].get("vision_path", "")
        places["stage-0 probe"] = str(Path(out["clip"].get("final_dir", "")) / "probe.md")
    for name, label in (("sft", "SFT model"), ("sft-scratch", "SFT model without stage 0"),
                        ("dpo", "DPO model")):  # fmt: skip
        if out.get(name, {}).get("final_dir"):
            places[label] = out[name]["final_dir"]
    if out.get("prefs", {}).get("pairs_path"):
        places["preference pairs"] = out["prefs"]["pairs_path"]
    for name, outputs in out.items():
        if name.startswith("eval-") and outputs.get("table_path"):
            places[f"metrics ({outputs['name']})"] = str(Path(outputs["table_path"]).parent)
    for case, files in out.get("examples", {}).get("cases", {}).items():
        places[f"report {case}"] = str(Path(files["report_path"]).parent)
    places["final model"] = str(paths.model)
    places["summary"] = str(paths.root / SUMMARY_MD)
    env = f"{HOME_ENV}={paths.home} " if custom_home else ""
    places["next"] = f"{env}mu2 report SCAN --heatmap h.png --fhir r.json" + (
        "" if paths.model.name == "demo" else f" --model {paths.model}"
    )
    return places
