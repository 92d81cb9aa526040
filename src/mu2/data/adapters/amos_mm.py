"""AMOS-MM 2024: one JSON with ``training`` / ``validation`` lists of CT items.

Each item::

    {"image": "imagesTr/amos_0001.nii.gz",
     "labels": {"report": {"findings": {"chest": "...", "abdomen": "...", "pelvis": "..."},
                           "impression": "..."},
                "qa": [{"question": "...", "options": {"A": "...", ...}, "answer": "A"}, ...]}}

One report row per region with findings text (the paper asks one question per region),
plus one VQA row per well-formed ``qa`` item. The release ships reports and questions as
two files of this shape, ``report_generation_train_val.json`` (items without ``qa``) and
``vqa_train_val.json`` (items with ``labels.qa`` only); each converts on its own. Image
paths are relative to the JSON's folder unless absolute.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mu2.data.adapters.common import Conversion, image_ref, question, strip_nii
from mu2.data.schema import Record
from mu2.errors import Mu2Error
from mu2.findings.catalogue import REGIONS

DATASET = "amos-mm"


def _qa_text(qa: dict[str, Any]) -> tuple[str, str] | None:
    q, a = qa.get("question"), qa.get("answer")
    if not isinstance(q, str) or not q.strip() or a is None or not str(a).strip():
        return None
    options = qa.get("options") or qa.get("choices")
    if isinstance(options, dict) and options:
        q = q.strip() + " Choices: " + " ".join(f"{k}. {v}" for k, v in options.items())
        if str(a) in options:
            a = f"{a}. {options[str(a)]}"
    return q.strip(), str(a).strip()


def convert_amos_mm(in_path: Path, out_jsonl: Path, split: str | None = None) -> Conversion:
    """Rows of every item (or only the ``split`` list: training / validation)."""
    try:
        data = json.loads(in_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Mu2Error("AMOS-MM JSON not found", path=str(in_path)) from None
    except (ValueError, UnicodeDecodeError) as err:
        raise Mu2Error(f"not valid JSON ({err})", path=str(in_path)) from None
    if not isinstance(data, dict):
        raise Mu2Error('expected {"training": [...], "validation": [...]}', path=str(in_path))
    lists = {k: v for k, v in data.items() if isinstance(v, list)}
    if split is not None:
        if split not in lists:
            raise Mu2Error(
                f"no list '{split}' in the JSON",
                path=str(in_path),
                fix=f"use one of {', '.join(lists) or '(none)'}",
            )
        lists = {split: lists[split]}
    out = Conversion()
    for name, items in lists.items():
        for i, item in enumerate(items):
            where = f"{name}[{i}]"
            try:
                image = Path(item["image"])
                labels = item["labels"]
                findings = (labels.get("report") or {}).get("findings", {})
                qa_items = labels.get("qa") or []
            except (KeyError, TypeError, AttributeError):
                raise Mu2Error(f"item {where} lacks image / labels", path=str(in_path)) from None
            if "report" not in labels and "qa" not in labels:
                raise Mu2Error(
                    f"item {where} has neither labels.report.findings nor labels.qa",
                    path=str(in_path),
                )
            if not isinstance(findings, dict):
                raise Mu2Error(
                    f"item {where}: report.findings must map region -> text", path=str(in_path)
                )
            path = image if image.is_absolute() else in_path.parent / image
            case = strip_nii(image.name)
            ref = image_ref(path, out_jsonl)
            meta = {"split": name}
            for region in REGIONS:
                text = findings.get(region)
                if not isinstance(text, str) or not text.strip():
                    continue
                rid = f"{case}-{region}"
                out.records.append(
                    Record(
                        id=rid,
                        case_id=case,
                        image=ref,
                        question=question(region, rid),
                        answer=text.strip(),
                        region=region,
                        task="report",
                        dataset=DATASET,
                        meta=meta,
                    )
                )
            for j, qa in enumerate(qa_items):
                pair = _qa_text(qa) if isinstance(qa, dict) else None
                if pair is None:
                    out.skipped.append(f"{where}.qa[{j}]: no question/answer")
                    continue
                out.records.append(
                    Record(
                        id=f"{case}-qa{j}",
                        case_id=case,
                        image=ref,
                        question=pair[0],
                        answer=pair[1],
                        task="vqa",
                        dataset=DATASET,
                        meta=meta,
                    )
                )
    return out
