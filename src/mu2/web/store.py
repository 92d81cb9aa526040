"""Finished results kept for the downloads and the viewer: a bounded LRU in memory.

Bounded by count and by bytes, so a long-running server does not grow; a result that
was pushed out answers 404 with a line saying to run the report again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from mu2.web.preview import VolumePreview


@dataclass
class StoredResult:
    doc: dict[str, Any]
    """The JSON answer of POST /api/report (also the JSON download)."""
    fhir: dict[str, Any]
    heat_nifti: bytes | None
    """Heat map as .nii.gz, aligned with the uploaded scan."""
    preview: VolumePreview
    filename: str

    @property
    def nbytes(self) -> int:
        return self.preview.nbytes + (len(self.heat_nifti) if self.heat_nifti else 0)


class ResultStore:
    """Thread-safe LRU of results by id (ids are random, so they cannot be guessed)."""

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, StoredResult] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, rid: str, item: StoredResult) -> None:
        with self._lock:
            if rid in self._items:
                self._bytes -= self._items.pop(rid).nbytes
            self._items[rid] = item
            self._bytes += item.nbytes
            # The newest result is always kept, even alone above max_bytes.
            while len(self._items) > 1 and (
                len(self._items) > self.max_items or self._bytes > self.max_bytes
            ):
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes

    def get(self, rid: str) -> StoredResult | None:
        with self._lock:
            item = self._items.get(rid)
            if item is not None:
                self._items.move_to_end(rid)
            return item

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._bytes
