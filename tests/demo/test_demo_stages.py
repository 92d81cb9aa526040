"""Stage reuse of `mu2 demo`: done.json with the config hash, reruns on change or --force."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mu2.demo.stages import DONE_FILE, STARTED_FILE, StageRunner, config_hash


class Counter:
    """A stage body that writes a file and counts how often it ran."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.calls = 0

    def __call__(self) -> dict:
        self.calls += 1
        out = self.folder / "result.txt"
        out.write_text(str(self.calls))
        return {"result_path": str(out), "note": f"call {self.calls}"}


def _runner(force: bool = False) -> tuple[StageRunner, list[str]]:
    lines: list[str] = []
    return StageRunner(total=2, force=force, echo=lines.append), lines


def test_finished_stage_is_reused(tmp_path: Path) -> None:
    body = Counter(tmp_path / "a")
    runner, _ = _runner()
    rec = runner.run("a", "stage a", tmp_path / "a", {"steps": 3}, body)
    assert rec.status == "ran" and body.calls == 1
    done = json.loads((tmp_path / "a" / DONE_FILE).read_text())
    assert done["hash"] == rec.hash and done["note"] == "call 1"
    runner2, lines = _runner()
    rec2 = runner2.run("a", "stage a", tmp_path / "a", {"steps": 3}, body)
    assert rec2.status == "reused" and body.calls == 1
    assert rec2.outputs["result_path"] == str(tmp_path / "a" / "result.txt")
    assert rec2.note == "call 1" and "reused" in lines[0]


def test_changed_config_force_or_missing_output_reruns(tmp_path: Path) -> None:
    body = Counter(tmp_path / "a")
    _runner()[0].run("a", "stage a", tmp_path / "a", {"steps": 3}, body)
    _runner()[0].run("a", "stage a", tmp_path / "a", {"steps": 4}, body)
    assert body.calls == 2
    _runner(force=True)[0].run("a", "stage a", tmp_path / "a", {"steps": 4}, body)
    assert body.calls == 3
    (tmp_path / "a" / "result.txt").unlink()
    _runner()[0].run("a", "stage a", tmp_path / "a", {"steps": 4}, body)
    assert body.calls == 4


def test_upstream_change_invalidates_downstream(tmp_path: Path) -> None:
    up, down = Counter(tmp_path / "up"), Counter(tmp_path / "down")
    for steps, expected in ((1, 1), (1, 1), (2, 2)):
        runner, _ = _runner()
        runner.run("up", "up", tmp_path / "up", {"steps": steps}, up)
        runner.run("down", "down", tmp_path / "down", {}, down, upstream=("up",))
        assert down.calls == expected


def test_interrupted_stage_keeps_its_folder_only_for_the_same_config(tmp_path: Path) -> None:
    folder = tmp_path / "a"

    def crash() -> dict:
        (folder / "checkpoint").write_text("step 5")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _runner()[0].run("a", "a", folder, {"steps": 9}, crash)
    assert (folder / STARTED_FILE).is_file() and not (folder / DONE_FILE).exists()
    seen = []

    def look() -> dict:
        seen.append((folder / "checkpoint").exists())
        return {}

    _runner()[0].run("a", "a", folder, {"steps": 9}, look)
    _runner()[0].run("a", "a", folder, {"steps": 10}, look)
    assert seen == [True, False]  # resumed with the same config, fresh folder otherwise


def test_skip_and_hash_are_stable(tmp_path: Path) -> None:
    runner, lines = _runner()
    rec = runner.skip("dpo", "DPO", "no pairs")
    assert rec.status == "skipped" and "skipped -- no pairs" in lines[0]
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
