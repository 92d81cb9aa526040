"""The results LRU: bounded by count and by bytes, least recently used leave first."""

from __future__ import annotations

from mu2.web.preview import VolumePreview
from mu2.web.store import ResultStore, StoredResult


def _item(nbytes: int) -> StoredResult:
    preview = VolumePreview(b"\0" * nbytes, None, (nbytes, 1, 1), (1.0, 1.0, 1.0), (1, 1, 1))
    return StoredResult(doc={}, fhir={}, heat_nifti=None, preview=preview, filename="x")


def test_count_bound_evicts_least_recently_used() -> None:
    store = ResultStore(max_items=2, max_bytes=10**6)
    store.put("a", _item(1))
    store.put("b", _item(1))
    assert store.get("a") is not None  # a is now the most recent
    store.put("c", _item(1))
    assert store.get("b") is None
    assert store.get("a") is not None and store.get("c") is not None
    assert len(store) == 2 and store.nbytes == 2


def test_byte_bound_keeps_the_newest_even_when_alone_too_big() -> None:
    store = ResultStore(max_items=10, max_bytes=100)
    store.put("a", _item(60))
    store.put("b", _item(30))
    store.put("c", _item(30))  # 120 > 100: a goes
    assert store.get("a") is None and len(store) == 2 and store.nbytes == 60
    store.put("d", _item(500))
    assert len(store) == 1 and store.get("d") is not None and store.nbytes == 500


def test_replacing_an_id_does_not_count_twice() -> None:
    store = ResultStore(max_items=3, max_bytes=1000)
    store.put("a", _item(10))
    store.put("a", _item(20))
    assert len(store) == 1 and store.nbytes == 20
