"""M3D-Cap: volumes already scaled to [0, 1] as ``.npy`` arrays (1, 32, 256, 256) + captions.

Two ways in:

* the split file ``M3D_Cap.json``: ``{"train": [{"image":
  "M3D_Cap_npy/ct_case/000006/Axial.npy", "text": "M3D_Cap_npy/ct_case/000006/text.txt"},
  ...], "validation": [...], ...}``. As released, the JSON sits inside ``M3D_Cap_npy/``
  and its paths are relative to the folder above it (M3D's ``data_root``); paths
  relative to the JSON's own folder are read too;
* a folder: every ``.npy`` with a ``text.txt`` (or the only ``.txt``) beside it.

Rows get ``meta.intensity = "unit"``: the arrays are not HU and must not be windowed
again (see :mod:`mu2.data.volume_io`). The case id is the case folder, so several series
of one case always land in the same split.
"""

from __future__ import annotations

import json
from pathlib import Path

from mu2.data.adapters.common import Conversion, image_ref, question
from mu2.data.schema import Record
from mu2.errors import Mu2Error

DATASET = "m3d-cap"
TEXT_NAME = "text.txt"


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise Mu2Error(f"caption unreadable ({err})", path=str(path)) from None


def _pairs_from_json(path: Path, split: str | None) -> list[tuple[Path, Path, str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise Mu2Error(f"not valid JSON ({err})", path=str(path)) from None
    if not isinstance(data, dict):
        raise Mu2Error('expected {"train": [{"image", "text"}, ...], ...}', path=str(path))
    lists = {k: v for k, v in data.items() if isinstance(v, list)}
    if split is not None:
        if split not in lists:
            raise Mu2Error(
                f"no list '{split}'", path=str(path), fix=f"use one of {', '.join(lists)}"
            )
        lists = {split: lists[split]}
    out = []
    bases = (path.parent, path.parent.parent)  # the JSON's folder, then M3D's data_root
    for name, items in lists.items():
        for i, item in enumerate(items):
            if not isinstance(item, dict) or "image" not in item or "text" not in item:
                raise Mu2Error(f"item {name}[{i}] needs 'image' and 'text'", path=str(path))
            base = next((b for b in bases if (b / item["image"]).is_file()), bases[0])
            out.append((base / item["image"], base / item["text"], name))
    return out


def _pairs_from_folder(root: Path) -> list[tuple[Path, Path, str]]:
    out = []
    for npy in sorted(root.rglob("*.npy")):
        text = npy.parent / TEXT_NAME
        if not text.is_file():
            txts = sorted(npy.parent.glob("*.txt"))
            if len(txts) != 1:
                continue
            text = txts[0]
        out.append((npy, text, ""))
    if not out:
        raise Mu2Error(
            "no .npy volume with a caption text file found",
            path=str(root),
            fix=f"each case folder needs <series>.npy and {TEXT_NAME}",
        )
    return out


def convert_m3d_cap(in_path: Path, out_jsonl: Path, split: str | None = None) -> Conversion:
    """One caption row per volume (``split`` selects a list of the JSON)."""
    if in_path.is_dir():
        pairs = _pairs_from_folder(in_path)
    elif in_path.is_file():
        pairs = _pairs_from_json(in_path, split)
    else:
        raise Mu2Error("M3D-Cap JSON or folder not found", path=str(in_path))
    out = Conversion()
    for npy, txt, name in pairs:
        if not npy.is_file():
            out.skipped.append(f"{npy}: volume not found")
            continue
        text = _text(txt) if txt.is_file() else ""
        if not text:
            out.skipped.append(f"{npy}: empty or missing caption")
            continue
        case = npy.parent.name
        rid = f"{case}/{npy.stem}"
        meta = {"intensity": "unit", **({"split": name} if name else {})}
        out.records.append(
            Record(
                id=rid,
                case_id=case,
                image=image_ref(npy, out_jsonl),
                question=question(None, rid),
                answer=text,
                region=None,
                task="report",
                dataset=DATASET,
                meta=meta,
            )
        )
    return out
