"""Many processes for one scan list: each takes every N-th scan, one merges the results.

Two ways to get N processes:

- ``mu2 report --input-list L --out D --num-processes N``: this process starts N copies
  of the same command on this machine (``MU2_SHARD=i/N`` in their environment), waits for
  them and merges their outputs and failure lists;
- a launcher (``torchrun --nproc_per_node N -m mu2.cli.main report ...``, ``accelerate
  launch`` with several GPUs, or one launcher per node with ``--nnodes``): every rank reads
  ``RANK`` / ``WORLD_SIZE``, takes its shard, and the ranks meet at a ``torch.distributed``
  barrier (gloo) before rank 0 merges. ``--out`` must then be on a file system every node
  sees.

Each shard writes its case JSON files straight into ``--out`` (case names are computed
from the whole list, so they do not depend on N) and a small record of what it wrote and
what failed, ``.mu2-shard-I-of-N.json``, that the merge reads and removes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mu2.errors import Mu2Error
from mu2.generate.batch import (
    DEFAULT_BATCH_SCANS,
    DEFAULT_WORKERS,
    BatchResult,
    _unique_names,
    read_input_list,
    run_batch,
    write_failures,
)

SHARD_ENV = "MU2_SHARD"


@dataclass
class BatchJob:
    """A ``--input-list`` run, as data: what each process of a sharded run is given."""

    model_dir: str
    input_list: str
    out: str
    device: str = "cpu"
    dtype: str | None = None
    batch_size: int = DEFAULT_BATCH_SCANS
    workers: int = DEFAULT_WORKERS
    report: dict[str, Any] = field(default_factory=dict)  # question, region, settings ...
    kv_cache: str = "dynamic"  # DecodeOptions.cache: dynamic or static


@dataclass(frozen=True)
class Shard:
    """This process's part of the list: scans ``index, index + count, ...``."""

    index: int = 0
    count: int = 1
    launcher: str = "none"  # none | spawn (--num-processes) | torch (torchrun / accelerate)

    @property
    def local_rank(self) -> int:
        return int(os.environ.get("LOCAL_RANK", self.index))

    def take(self, n: int) -> list[int]:
        return list(range(self.index, n, self.count))

    def record_path(self, out: Path) -> Path:
        return out / f".mu2-shard-{self.index}-of-{self.count}.json"


def current_shard() -> Shard:
    """The shard of this process: from ``MU2_SHARD=i/N``, else a launcher's RANK/WORLD_SIZE."""
    spec = os.environ.get(SHARD_ENV)
    if spec:
        try:
            i, n = (int(v) for v in spec.split("/"))
        except ValueError:
            raise Mu2Error(f"{SHARD_ENV}={spec!r}", fix="use INDEX/COUNT, e.g. 0/2") from None
        if not 0 <= i < n:
            raise Mu2Error(f"{SHARD_ENV}={spec!r}: index must lie in [0, count)")
        return Shard(i, n, "spawn")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        return Shard(int(os.environ.get("RANK", "0")), world, "torch")
    return Shard()


def shard_device(device: str, shard: Shard) -> str:
    """``cuda`` -> ``cuda:LOCAL_RANK`` (one GPU per process on a node); others unchanged."""
    if device == "cuda" and shard.count > 1:
        import torch

        gpus = max(torch.cuda.device_count(), 1)
        return f"cuda:{shard.local_rank % gpus}"
    return device


def write_record(shard: Shard, out: Path, result: BatchResult, scans: Sequence[Path]) -> None:
    """What this shard wrote and what failed, by position in the whole list."""
    pos = {str(s): i for i, s in enumerate(scans)}
    doc = {
        "written": [[pos.get(str(s), -1), str(s), str(p)] for s, p in result.written],
        "failed": [[pos.get(str(s), -1), str(s), m] for s, m in result.failed],
    }
    shard.record_path(out).write_text(json.dumps(doc), encoding="utf-8")


def merge_records(out: Path, count: int) -> BatchResult:
    """The shards' records, merged in list order (and removed); a missing record is a
    failed shard, reported as such."""
    written, failed = [], []
    for i in range(count):
        path = Shard(i, count).record_path(out)
        if not path.is_file():
            failed.append((-1, Path(f"<shard {i} of {count}>"), "the process wrote no results"))
            continue
        doc = json.loads(path.read_text(encoding="utf-8"))
        written += [(k, Path(s), Path(p)) for k, s, p in doc["written"]]
        failed += [(k, Path(s), m) for k, s, m in doc["failed"]]
        path.unlink()
    result = BatchResult()
    result.written = [(s, p) for _, s, p in sorted(written, key=lambda r: r[0])]
    result.failed = [(s, m) for _, s, m in sorted(failed, key=lambda r: r[0])]
    write_failures(out, result)
    return result


def barrier(shard: Shard) -> None:
    """Wait for every rank of a launcher (gloo: works for CPU and GPU runs alike)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    dist.barrier()


def run_job(job: BatchJob, shard: Shard, progress: bool = True) -> BatchResult | None:
    """This process's shard of ``job``; the merged result where this process merges (the
    only process, or rank 0 of a launcher), else None."""
    from mu2.findings.catalogue import REGIONS
    from mu2.generate.decode import DecodeOptions
    from mu2.generate.pipeline import ReportGenerator

    scans = read_input_list(job.input_list)
    names = _unique_names(scans)
    mine = shard.take(len(scans))
    # One forward holds every question of the batch's scans (at most one per region).
    generator = ReportGenerator(
        job.model_dir, device=shard_device(job.device, shard), dtype=job.dtype,
        decode_options=DecodeOptions(
            batch_size=job.batch_size * len(REGIONS), cache=job.kv_cache
        ),
    )  # fmt: skip
    out = Path(job.out)
    result = run_batch(
        generator, [scans[i] for i in mine], out, progress=progress,
        batch_size=job.batch_size, workers=job.workers, names=[names[i] for i in mine],
        failures_file=shard.count == 1, **job.report,
    )  # fmt: skip
    if shard.count == 1:
        return result
    write_record(shard, out, result, scans)
    if shard.launcher != "torch":
        return None
    barrier(shard)
    merged = merge_records(out, shard.count) if shard.index == 0 else None
    barrier(shard)  # no rank leaves before the merge is done

    import torch.distributed as dist

    dist.destroy_process_group()
    return merged


def spawn(job: BatchJob, count: int) -> BatchResult:
    """Run ``job`` in ``count`` processes on this machine (shard i of count each) and merge
    their records. Each child gets an even share of the CPU threads."""
    threads = max(1, (os.cpu_count() or 1) // count)
    procs = []
    for i in range(count):
        env = {**os.environ, SHARD_ENV: f"{i}/{count}", "OMP_NUM_THREADS": str(threads)}
        cmd = [sys.executable, "-m", "mu2.generate.shard", json.dumps(asdict(job))]
        procs.append(subprocess.Popen(cmd, env=env))
    for p in procs:
        p.wait()
    return merge_records(Path(job.out), count)


def _child_main(argv: Sequence[str]) -> int:
    """Entry of a process started by :func:`spawn`: run the shard, write its record."""
    try:
        run_job(BatchJob(**json.loads(argv[0])), current_shard(), progress=False)
    except Mu2Error as err:
        print(f"mu2: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
