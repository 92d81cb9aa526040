"""The model worker runs one job at a time, queues the rest, and refuses past max_queue."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from mu2.web.uploads import UploadRejected
from mu2.web.worker import ModelWorker


def test_jobs_run_one_at_a_time_in_arrival_order() -> None:
    worker = ModelWorker(max_queue=10)
    lock = threading.Lock()
    active, peak, order = [0], [0], []

    def job(i: int) -> int:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.02)
        with lock:
            active[0] -= 1
            order.append(i)
        return i * i

    async def main():
        return await asyncio.gather(*(worker.run(job, i) for i in range(6)))

    try:
        out = asyncio.run(main())
    finally:
        worker.close()
    assert [v for v, _ in out] == [i * i for i in range(6)]
    assert peak[0] == 1  # never two jobs on the model at once
    assert order == list(range(6))
    waits = [w for _, w in out]
    assert waits[0] < 0.02 and waits[-1] >= 0.09  # the last one waited for five jobs
    assert worker.status()["completed"] == 6 and worker.status()["waiting"] == 0


def test_queue_full_is_503_and_errors_count_as_failed() -> None:
    worker = ModelWorker(max_queue=2)
    gate = threading.Event()

    def blocked() -> str:
        gate.wait(5)
        return "done"

    def broken() -> None:
        raise ValueError("bad scan")

    async def main():
        first = asyncio.ensure_future(worker.run(blocked))
        second = asyncio.ensure_future(worker.run(blocked))
        await asyncio.sleep(0.05)
        with pytest.raises(UploadRejected, match="at most 2 are queued") as err:
            await worker.run(blocked)
        assert err.value.status == 503
        gate.set()
        assert [v for v, _ in await asyncio.gather(first, second)] == ["done", "done"]
        with pytest.raises(ValueError, match="bad scan"):
            await worker.run(broken)

    try:
        asyncio.run(main())
    finally:
        worker.close()
    status = worker.status()
    assert status["completed"] == 2 and status["failed"] == 1
    assert status["waiting"] == 0 and status["running"] == 0
