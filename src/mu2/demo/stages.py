"""Stage bookkeeping of `mu2 demo`: reuse finished stages, time each one.

Every stage has a folder. Before it runs, ``stage.json`` records the hash of its config
(its own recipe config plus the hashes of the stages it reads from); when it finishes,
``done.json`` records the same hash, its outputs and its times. A later run reuses a
stage whose ``done.json`` hash matches and whose outputs still exist; a stage that was
interrupted with the same hash keeps its folder (the recipes resume from checkpoints);
anything else starts from an empty folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import resource
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DONE_FILE = "done.json"
STARTED_FILE = "stage.json"


def config_hash(material: Any) -> str:
    """Stable short hash of JSON-able material (sorted keys)."""
    text = json.dumps(material, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (synth workers)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


@dataclass
class StageRecord:
    """What happened to one stage in this run."""

    name: str
    title: str
    status: str  # ran | reused | skipped
    wall_s: float = 0.0
    cpu_s: float = 0.0
    note: str = ""
    hash: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    """Outputs of the run that produced them (times too, when reused)."""
    first_wall_s: float = 0.0
    first_cpu_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "status": self.status,
            "wall_s": round(self.wall_s, 2),
            "cpu_s": round(self.cpu_s, 2),
            "first_run_wall_s": round(self.first_wall_s, 2),
            "first_run_cpu_s": round(self.first_cpu_s, 2),
            "note": self.note,
            "hash": self.hash,
        }


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _outputs_exist(outputs: dict[str, Any]) -> bool:
    """Every path-like output (keys ending in ``_path`` or ``_dir``) is still there."""
    for key, value in outputs.items():
        if key.endswith(("_path", "_dir")) and value and not Path(value).exists():
            return False
    return True


class StageRunner:
    """Runs the demo's stages in order, reusing finished ones, printing one header each."""

    def __init__(self, total: int, force: bool, echo: Callable[[str], None]):
        self.total = total
        self.force = force
        self.echo = echo
        self.records: list[StageRecord] = []
        self.hashes: dict[str, str] = {}

    def run(
        self,
        name: str,
        title: str,
        folder: Path,
        material: Any,
        fn: Callable[[], dict[str, Any]],
        upstream: tuple[str, ...] = (),
    ) -> StageRecord:
        """Run ``fn`` in ``folder`` unless an identical earlier run finished there."""
        digest = config_hash(
            {"stage": name, "config": material, "upstream": [self.hashes[u] for u in upstream]}
        )
        self.hashes[name] = digest
        index = len(self.records) + 1
        done = _read(folder / DONE_FILE)
        if (
            not self.force
            and done is not None
            and done.get("hash") == digest
            and _outputs_exist(done.get("outputs", {}))
        ):
            rec = StageRecord(
                name,
                title,
                "reused",
                note=str(done.get("note", "")),
                hash=digest,
                outputs=done.get("outputs", {}),
                first_wall_s=float(done.get("wall_s", 0.0)),
                first_cpu_s=float(done.get("cpu_s", 0.0)),
            )
            self.echo(
                f"[{index}/{self.total}] {title}: reused ({folder}; "
                f"first run {rec.first_wall_s:.1f} s)"
            )
            self.records.append(rec)
            return rec
        started = _read(folder / STARTED_FILE)
        if folder.exists() and (self.force or started is None or started.get("hash") != digest):
            shutil.rmtree(folder)
        elif folder.exists():
            log.info("%s: resuming in %s", name, folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / DONE_FILE).unlink(missing_ok=True)
        (folder / STARTED_FILE).write_text(
            json.dumps({"stage": name, "hash": digest, "config": material}, indent=1, default=str)
        )
        self.echo(f"[{index}/{self.total}] {title} ...")
        wall0, cpu0 = time.perf_counter(), cpu_seconds()
        outputs = fn()
        wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
        note = str(outputs.pop("note", ""))
        (folder / DONE_FILE).write_text(
            json.dumps(
                {
                    "stage": name,
                    "hash": digest,
                    "wall_s": round(wall, 2),
                    "cpu_s": round(cpu, 2),
                    "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "note": note,
                    "outputs": outputs,
                },
                indent=1,
                default=str,
            )
        )
        rec = StageRecord(name, title, "ran", wall, cpu, note, digest, outputs, wall, cpu)
        self.echo(
            f"[{index}/{self.total}] {title}: done in {wall:.1f} s (CPU {cpu:.1f} s)"
            + (f" -- {note}" if note else "")
        )
        self.records.append(rec)
        return rec

    def skip(self, name: str, title: str, reason: str) -> StageRecord:
        """A stage that cannot run in this configuration (e.g. DPO without pairs)."""
        index = len(self.records) + 1
        self.hashes[name] = config_hash({"stage": name, "skipped": reason})
        self.echo(f"[{index}/{self.total}] {title}: skipped -- {reason}")
        rec = StageRecord(name, title, "skipped", note=reason, hash=self.hashes[name])
        self.records.append(rec)
        return rec
