"""`mu2 report --input-list` over several processes: the same case files as one process,
and one merged failure list (real CLI, real CT sample, a real saved tiny model)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mu2.cli.main import main


@pytest.fixture(scope="module")
def varied_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model saved like a trained one, matrices redrawn at unit gain so that the
    answers differ between scans (a fresh build repeats one token)."""
    from mu2.model import build

    model = build("tiny", preset="mu2", train_texts=["The liver is normal.", "No ascites."])
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 1.5 / p.shape[-1] ** 0.5)
    out = tmp_path_factory.mktemp("varied_model")
    model.save_pretrained(out)
    return out


@pytest.fixture()
def scan_list(tmp_path: Path, real_ct_path: Path, data_dir: Path) -> Path:
    (tmp_path / "bad.nii.gz").write_bytes(b"not a volume")
    shutil.copy(data_dir / "real-ct" / "example_ct_sm.nii.gz", tmp_path / "small.nii.gz")
    # Failures in both shards of two (bad: shard 1, missing: shard 0): the merge must sort.
    lines = [str(real_ct_path), "bad.nii.gz", "missing.nii.gz", "small.nii.gz",
             str(data_dir / "real-ct" / "example_ct_dicom"), str(real_ct_path)]  # fmt: skip
    (tmp_path / "scans.txt").write_text("\n".join(lines) + "\n")
    return tmp_path / "scans.txt"


def _docs(out: Path) -> dict[str, dict]:
    docs = {}
    for p in sorted(out.glob("*.json")):
        if p.name == "failures.json":  # the list of failures, not a report
            continue
        doc = json.loads(p.read_text())
        doc.pop("timings")
        docs[p.name] = doc
    return docs


def _failed(stderr: str) -> list[str]:
    return [line.strip() for line in stderr.splitlines() if line.startswith("  ")]


def test_two_processes_write_what_one_writes_and_merge_failures(
    varied_model_dir: Path, scan_list: Path, tmp_path: Path, capsys
) -> None:
    base = ["report", "--input-list", str(scan_list), "--model", str(varied_model_dir),
            "--max-new-tokens", "6", "--batch-size", "2"]  # fmt: skip
    runs = {}
    for n in (1, 2):
        out = tmp_path / f"out{n}"
        with pytest.raises(SystemExit) as exit_:
            main([*base, "--out", str(out), "--num-processes", str(n)])
        assert exit_.value.code == 1  # two scans fail in both runs
        stdout, stderr = capsys.readouterr()
        runs[n] = (_docs(out), _failed(stderr), stdout)
    (one, failed_one, out_one), (two, failed_two, out_two) = runs[1], runs[2]
    assert sorted(one) == ["example_ct.json", "example_ct_2.json", "example_ct_dicom.json",
                           "small.json"]  # fmt: skip
    assert two == one
    assert len({d["report"] for d in one.values()}) >= 2  # answers differ between scans
    assert [f.split(":")[0] for f in failed_two] == [
        str(scan_list.parent / "bad.nii.gz"), str(scan_list.parent / "missing.nii.gz")
    ]
    assert failed_two == failed_one
    assert "wrote 4 report(s)" in out_one and "wrote 4 report(s)" in out_two
    assert not list((tmp_path / "out2").glob(".mu2-shard-*"))  # records merged and removed


@pytest.mark.slow
def test_torchrun_ranks_shard_and_rank0_merges(
    varied_model_dir: Path, scan_list: Path, tmp_path: Path
) -> None:
    """Two ranks of `torchrun --nproc_per_node 2` (what `accelerate launch` runs per node)."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", "29517", "-m", "mu2.cli.main", "report", "--input-list",
           str(scan_list), "--model", str(varied_model_dir), "--max-new-tokens", "6",
           "--out", str(out)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert "wrote 4 report(s)" in proc.stdout, proc.stderr[-2000:]
    assert proc.stdout.count("wrote") == 1  # only rank 0 prints the merged summary
    assert "2 scan(s) failed" in proc.stderr
    assert len([p for p in out.glob("*.json") if p.name != "failures.json"]) == 4
    assert len(json.loads((out / "failures.json").read_text())) == 2  # written once, merged
