"""Bounded memory and disk per request: bombs are refused before they cost anything.

A 0.5 MB .nii.gz whose valid header says 512 x 512 x 1024 is refused before a voxel is
read; a 1 MB zip that unpacks to 1 GiB is refused before it is unpacked (the upload
folder never holds more than twice the upload); a scan over the memory budget is
refused from its header; a full queue refuses a request before its body is read.
"""

from __future__ import annotations

import contextlib
import gzip
import resource
import socket
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import httpx
import nibabel as nib
import numpy as np
import pytest
from fastapi.testclient import TestClient

from mu2.web import create_app
from mu2.web.uploads import DiskBudget, UploadLimits, UploadRejected, extract_zip

GIB = 2**30


def _gz_bomb(path: Path) -> Path:
    """Valid .nii.gz of a constant int16 512 x 512 x 1024 volume, about 0.5 MB."""
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.int16)
    hdr.set_data_shape((512, 512, 1024))
    zeros = gzip.compress(b"\0" * (1 << 24), compresslevel=9)
    with gzip.open(path, "wb") as fh:
        hdr.write_to(fh)
        fh.write(b"\0" * 4)
    with path.open("ab") as fh:
        for _ in range(512 * 512 * 1024 * 2 // (1 << 24)):
            fh.write(zeros)  # concatenated gzip members: one valid stream
    return path


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory) -> Path:
    """About 1 MB of zip whose one entry unpacks to 1 GiB of zeros."""
    path = tmp_path_factory.mktemp("bomb") / "series.zip"
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf,
        zf.open("series/slice.dcm", "w", force_zip64=True) as fh,
    ):
        chunk = b"\0" * (1 << 24)
        for _ in range(GIB // len(chunk)):
            fh.write(chunk)
    return path


def _tree_bytes(folder: Path) -> int:
    total = 0
    for p in folder.rglob("*"):
        with contextlib.suppress(OSError):  # removed while walking
            total += p.stat().st_size if p.is_file() else 0
    return total


class _DiskWatch:
    """Largest total size of the files under ``folder`` while the block runs (sampled)."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.peak, self._stop = folder, 0, threading.Event()

    def __enter__(self) -> _DiskWatch:
        def watch() -> None:
            while not self._stop.is_set():
                self.peak = max(self.peak, _tree_bytes(self.folder))
                time.sleep(0.005)

        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)
        self.peak = max(self.peak, _tree_bytes(self.folder))


@pytest.fixture
def private_tmp(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "server-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _client(app) -> TestClient:
    return TestClient(app, base_url="http://127.0.0.1", headers={"X-Mu2-Token": app.state.token})


def test_gz_bomb_is_refused_before_reading(web_generator, make_settings, tmp_path, private_tmp):
    bomb = _gz_bomb(tmp_path / "bomb.nii.gz")
    assert bomb.stat().st_size < 1_000_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    app = create_app(generator=web_generator, settings=make_settings())
    t0 = time.perf_counter()
    with _client(app) as c:
        r = c.post("/api/report", files={"file": ("bomb.nii.gz", bomb.read_bytes())})
    seconds = time.perf_counter() - t0
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    assert r.status_code in (413, 422), r.text
    detail = r.json()["detail"]
    assert "bomb.nii.gz" in detail and "compression bomb" in detail and "fix:" in detail
    assert str(private_tmp) not in detail  # the user's name, not the server's folder
    assert grown < 3 * GIB and seconds < 60
    assert list(private_tmp.iterdir()) == []  # upload folder removed


def test_scan_over_the_memory_budget_is_refused_from_its_header(
    web_generator, make_settings, real_ct_path, private_tmp
):
    # 122 x 101 x 112 voxels cost about 26 MiB at PEAK_BYTES_PER_VOXEL; the budget is 10 MiB
    app = create_app(generator=web_generator, settings=make_settings(max_memory_gb=0.01))
    with _client(app) as c:
        r = c.post("/api/report", files={"file": ("ct.nii.gz", real_ct_path.read_bytes())})
    assert r.status_code == 422
    assert "memory budget" in r.json()["detail"] and "max_memory_gb" in r.json()["detail"]
    assert list(private_tmp.iterdir()) == []


def test_zip_bomb_is_refused_without_unpacking(web_generator, make_settings, zip_bomb, private_tmp):
    upload = zip_bomb.stat().st_size
    assert upload < 2_000_000
    app = create_app(generator=web_generator, settings=make_settings())
    with _client(app) as c, _DiskWatch(private_tmp) as disk:
        r = c.post("/api/report", files={"file": ("series.zip", zip_bomb.read_bytes())})
    assert r.status_code == 413, r.text
    assert "zip-bomb guard" in r.json()["detail"]
    assert disk.peak <= 2 * upload, (disk.peak, upload)
    assert list(private_tmp.iterdir()) == []


def test_extract_zip_writes_nothing_of_a_bomb(zip_bomb, tmp_path):
    limits = UploadLimits(8 * GIB, 8 * GIB, 100, max_unzip_ratio=8.0)
    with pytest.raises(UploadRejected) as err:
        extract_zip(zip_bomb, tmp_path / "out", limits, "series.zip")
    assert err.value.status == 413 and "8x the zip" in str(err.value)
    assert _tree_bytes(tmp_path) == 0


def test_unpacking_budget_is_shared_by_concurrent_requests():
    budget = DiskBudget(100)
    budget.reserve("a", 60, "a.zip")
    with pytest.raises(UploadRejected) as err:
        budget.reserve("b", 50, "b.zip")
    assert err.value.status == 503 and "b.zip" in str(err.value)
    budget.release("a")
    budget.reserve("b", 50, "b.zip")
    assert budget.used == 50


def test_full_queue_refuses_before_reading_the_body(
    web_generator, make_settings, live_server, zip_bomb, private_tmp
):
    """With every place taken by a request still sending its body, the next upload gets
    503 at once and nothing of it reaches the disk."""
    app = create_app(generator=web_generator, settings=make_settings(max_queue=1))
    with live_server(app) as url:
        host, port = url.removeprefix("http://").split(":")
        slow = socket.create_connection((host, int(port)), timeout=10)
        try:
            slow.sendall(
                f"POST /api/report HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"X-Mu2-Token: {app.state.token}\r\nContent-Length: 1000000\r\n"
                "Content-Type: multipart/form-data; boundary=xyz\r\n\r\n--xyz\r\n".encode()
            )
            deadline = time.monotonic() + 30
            while app.state.service.worker.status()["admitted"] < 1:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            with _DiskWatch(private_tmp) as disk:
                r = httpx.post(
                    f"{url}/api/report",
                    files={"file": ("series.zip", zip_bomb.read_bytes())},
                    headers={"X-Mu2-Token": app.state.token},
                    timeout=30,
                )
            assert r.status_code == 503 and "busy" in r.json()["detail"]
            assert disk.peak == 0
        finally:
            slow.close()
