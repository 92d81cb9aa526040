"""One model, one thread: requests that arrive while the model is busy wait their turn.

The model is loaded once and used by a single worker thread, so two requests never run
it at the same time (no doubled memory, no interleaved generation state) and the event
loop stays free to accept uploads. Waiting requests are queued, not failed; only past
``max_queue`` does a request get 503. A request takes its place (``admission``) before
its body is read or unpacked, so a flood is refused before it costs disk; what one
admitted upload may unpack is capped in :mod:`mu2.web.uploads`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from mu2.web.uploads import UploadRejected

T = TypeVar("T")


class ModelWorker:
    """Runs jobs (functions that use the model) one at a time, in arrival order."""

    def __init__(self, max_queue: int) -> None:
        self.max_queue = max_queue
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mu2-model")
        self._lock = threading.Lock()
        self._waiting = 0  # submitted, not started
        self._running = 0
        self._admitted = 0  # requests holding a place, from before their upload is read
        self.completed = 0
        self.failed = 0

    def _call(self, fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
        with self._lock:
            self._waiting -= 1
            self._running += 1
        try:
            out = fn(*args, **kwargs)
        except BaseException:
            with self._lock:
                self.failed += 1
            raise
        else:
            with self._lock:
                self.completed += 1
            return out
        finally:
            with self._lock:
                self._running -= 1

    @contextlib.asynccontextmanager
    async def admission(self) -> AsyncIterator[None]:
        """Hold one of ``max_queue`` places for a whole request (503 when none is free)."""
        with self._lock:
            if self._admitted >= self.max_queue:
                raise UploadRejected(
                    503,
                    f"the model is busy with {self._admitted} requests "
                    f"(at most {self.max_queue} are queued)",
                    fix="retry in a minute",
                )
            self._admitted += 1
        try:
            yield
        finally:
            with self._lock:
                self._admitted -= 1

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, float]:
        """Queue ``fn(*args, **kwargs)``; returns its value and the seconds it waited."""
        with self._lock:
            if self._waiting + self._running >= self.max_queue:
                raise UploadRejected(
                    503,
                    f"the model is busy with {self._waiting + self._running} requests "
                    f"(at most {self.max_queue} are queued)",
                    fix="retry in a minute",
                )
            self._waiting += 1
        submitted = time.perf_counter()
        started: list[float] = []

        def timed() -> T:
            started.append(time.perf_counter())
            return self._call(fn, args, kwargs)

        try:
            future = self._executor.submit(timed)
        except RuntimeError:  # shut down
            with self._lock:
                self._waiting -= 1
            raise UploadRejected(503, "the server is shutting down") from None
        try:
            value = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if future.cancel():  # never started: take it off the count
                with self._lock:
                    self._waiting -= 1
            raise
        return value, (started[0] - submitted) if started else 0.0

    def status(self) -> dict[str, int]:
        with self._lock:
            return {
                "waiting": self._waiting,
                "running": self._running,
                "admitted": self._admitted,
                "completed": self.completed,
                "failed": self.failed,
                "max_queue": self.max_queue,
            }

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
