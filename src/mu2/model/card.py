"""The model card: what a saved model was trained on, written beside its weights.

A report is only as trustworthy as the data behind the model, and a report file travels
without the README. So every saved model carries ``model_card.json`` (regions and finding
kinds it was trained on, the data sets, whether they were synthetic, the recipe stages,
the date), and every output built from it (text, JSON, FHIR, PNG, web page) says so.

The card is derived from the training rows themselves (``region``, ``findings``,
``dataset`` of the unified JSONL), never typed in by hand. A later stage (DPO after SFT)
extends the card of the model it starts from. A model saved before cards existed gets
:func:`unknown_card`: nothing known, and a warning that says so.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from mu2.findings.catalogue import FINDING_KINDS, REGIONS

log = logging.getLogger(__name__)

CARD_FILE = "model_card.json"
CARD_SCHEMA = "mu2-model-card/1"
# Data set names (the ``dataset`` field of a row) that are generated, not real patients.
SYNTHETIC_DATASETS: tuple[str, ...] = ("synth", "synthetic")
INTENDED_USE = "research only: a draft for a radiologist, not a diagnosis"


@dataclass
class ModelCard:
    """What the model was trained on. ``regions`` / ``finding_kinds`` None = not known."""

    name: str = ""
    regions: list[str] | None = None
    finding_kinds: list[str] | None = None
    training_data: list[dict[str, Any]] = field(default_factory=list)
    recipe: list[dict[str, Any]] = field(default_factory=list)
    created: str = ""
    mu2_version: str = ""
    intended_use: str = INTENDED_USE
    known: bool = True  # False: a model saved without a card (nothing below is known)

    @property
    def synthetic_only(self) -> bool:
        """True when every training data set is synthetic (and there is at least one)."""
        return bool(self.training_data) and all(d.get("synthetic") for d in self.training_data)

    @property
    def data_summary(self) -> str:
        """E.g. 'synthetic phantoms (synth, 40 rows)' or 'unknown training data'."""
        if not self.known or not self.training_data:
            return "unknown training data"
        parts = [f"{d['dataset']}, {d['rows']} rows" for d in self.training_data]
        kind = "synthetic phantoms only" if self.synthetic_only else "data sets"
        return f"{kind} ({'; '.join(parts)})"

    def warning(self) -> str | None:
        """The one line every output carries when the model should not be trusted on real
        scans: trained on synthetic data only, or of unknown provenance."""
        if not self.known:
            return (
                "model card missing: the training data, regions and findings of this model are "
                "unknown; treat the report as unverified"
            )
        if self.synthetic_only:
            return (
                "this model was trained on synthetic phantoms only, not on real patients; "
                "its findings on a real CT are not diagnostic"
            )
        return None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["schema"] = CARD_SCHEMA
        d["synthetic_only"] = self.synthetic_only
        d["training_data_summary"] = self.data_summary
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelCard:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def unknown_card(name: str = "") -> ModelCard:
    """The card of a model saved without one: nothing known (outputs warn about it)."""
    return ModelCard(name=name, known=False)


def _version() -> str:
    from mu2 import __version__

    return __version__


def card_from_rows(
    rows: Iterable[Any],
    stage: str,
    *,
    name: str = "",
    data_path: str | Path | None = None,
    base: ModelCard | None = None,
    extra: dict[str, Any] | None = None,
) -> ModelCard:
    """Build (or extend ``base``) from the training rows of one stage.

    ``rows`` are :class:`mu2.data.schema.Record` objects or plain dicts of the unified
    JSONL. Regions come from the rows' ``region`` (rows without one say nothing about
    regions); finding kinds from their structured ``findings``; the data sets from their
    ``dataset`` field, synthetic when the name is one of :data:`SYNTHETIC_DATASETS`.
    """
    regions: set[str] = set()
    kinds: set[str] = set()
    datasets: Counter[str] = Counter()
    for row in rows:
        get = row.get if isinstance(row, dict) else lambda k, r=row: getattr(r, k, None)
        region = get("region")
        if region in REGIONS:
            regions.add(region)
        for f in get("findings") or []:
            kind = f.get("finding") if isinstance(f, dict) else getattr(f, "finding", None)
            if kind in FINDING_KINDS:
                kinds.add(kind)
        datasets[str(get("dataset") or "unnamed")] += 1
    card = ModelCard.from_dict(base.to_dict()) if base is not None and base.known else ModelCard()
    card.name = name or card.name
    if regions:
        card.regions = sorted(set(card.regions or []) | regions, key=REGIONS.index)
    if kinds:
        card.finding_kinds = sorted(set(card.finding_kinds or []) | kinds)
    for ds, n in sorted(datasets.items()):
        card.training_data.append(
            {"dataset": ds, "synthetic": ds in SYNTHETIC_DATASETS, "rows": n, "stage": stage}
        )
    step: dict[str, Any] = {"stage": stage, "rows": sum(datasets.values())}
    if data_path is not None:
        step["data"] = Path(data_path).name
    card.recipe.append({**step, **(extra or {})})
    card.created = date.today().isoformat()
    card.mu2_version = _version()
    return card


def save_card(card: ModelCard, model_dir: str | Path) -> Path:
    path = Path(model_dir) / CARD_FILE
    path.write_text(json.dumps(card.to_dict(), indent=1) + "\n")
    return path


def load_card(model_dir: str | Path | None, name: str = "") -> ModelCard:
    """The card saved with a model; :func:`unknown_card` (and a log warning) when there is
    none or it cannot be read, so older models keep working but say what is not known."""
    if model_dir is None:
        return unknown_card(name)
    path = Path(model_dir) / CARD_FILE
    if not path.is_file():
        log.warning("%s has no %s: training data unknown", model_dir, CARD_FILE)
        return unknown_card(name or Path(model_dir).name)
    try:
        return ModelCard.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as err:
        log.warning("%s: unreadable model card (%s)", path, err)
        return unknown_card(name or Path(model_dir).name)


def model_card_of(model: Any, model_dir: str | Path | None, name: str = "") -> ModelCard:
    """The card of a loaded model: its folder's file, else the one attached in memory
    (e.g. right after training), else :func:`unknown_card`."""
    if model_dir is not None:
        return load_card(model_dir, name)
    card = getattr(model, "model_card", None)
    return card if isinstance(card, ModelCard) else unknown_card(name)
