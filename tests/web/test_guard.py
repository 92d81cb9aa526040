"""A local server safe to leave running: Host, Origin and token checks, header limits, a
request-head timeout, security headers, JSON errors, cancellation on disconnect.

Loopback only; every loop is bounded by a deadline.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from mu2.web import create_app
from mu2.web.app import STATIC_DIR
from mu2.web.guard import guarded_h11

DEADLINE_S = 30.0


@pytest.fixture
def app(web_generator, make_settings):
    return create_app(generator=web_generator, settings=make_settings())


def _client(app, **kw) -> TestClient:
    return TestClient(app, base_url="http://127.0.0.1:8000", **kw)


def test_foreign_host_is_refused_with_json(app):
    with _client(app) as c:
        assert c.get("/api/health").status_code == 200
        for host in ("evil.example", "attacker.test:8000", "127.0.0.1.nip.io"):
            r = c.get("/api/health", headers={"Host": host})
            assert r.status_code == 400, host
            assert "is not served here" in r.json()["detail"] and "fix:" in r.json()["detail"]


def test_post_needs_the_token(app, small_npy: Path):
    files = {"file": ("ct.npy", small_npy.read_bytes())}
    with _client(app) as c:
        for headers in ({}, {"X-Mu2-Token": "wrong-token-123"}):
            r = c.post("/api/report", files=files, headers=headers)
            assert r.status_code == 403 and "token" in r.json()["detail"]
        # the right token passes the guard (then the missing form field is the problem)
        r = c.post("/api/report", data={"x": "1"}, headers={"X-Mu2-Token": app.state.token})
        assert r.status_code not in (400, 403) or "file" in r.json()["detail"]


def test_foreign_origin_is_refused_even_with_the_token(app):
    token = {"X-Mu2-Token": app.state.token}
    with _client(app) as c:
        r = c.post("/api/report", headers={**token, "Origin": "http://evil.example"})
        assert r.status_code == 403 and "origin" in r.json()["detail"]
        r = c.post(
            "/api/report",
            headers={**token, "Origin": "http://127.0.0.1:8000"},
            files={"file": ("a.txt", b"x")},
        )
        assert r.status_code == 415  # same origin: through the guard to the upload checks


def test_too_many_headers(app):
    with _client(app) as c:
        r = c.get("/api/health", headers={f"x-h{i}": "1" for i in range(200)})
        assert r.status_code == 431


def test_page_gets_the_token_and_security_headers(app):
    with _client(app) as c:
        r = c.get("/")
    assert f'<meta name="mu2-token" content="{app.state.token}">' in r.text
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    js = (STATIC_DIR / "app.js").read_text()
    assert 'setRequestHeader("X-Mu2-Token"' in js and 'meta[name="mu2-token"]' in js


def test_internal_error_is_json_500(app, small_npy: Path, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("deep inside")

    monkeypatch.setattr(app.state.service, "_job", broken)
    with _client(app, raise_server_exceptions=False) as c:
        r = c.post(
            "/api/report",
            files={"file": ("ct.npy", small_npy.read_bytes())},
            headers={"X-Mu2-Token": app.state.token},
        )
    assert r.status_code == 500
    assert r.json()["detail"].startswith("internal error: ZeroDivisionError: deep inside")


@contextlib.contextmanager
def _serve(app, header_timeout_s: float = 30.0) -> Iterator[tuple[str, int]]:
    """The app on uvicorn with `mu2 serve`'s protocol, at 127.0.0.1 on a free port."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", http=guarded_h11(header_timeout_s), lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + DEADLINE_S
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.02)
    try:
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(DEADLINE_S)
        sock.close()


def test_half_open_connections_are_closed(app):
    """A connection that never finishes its request head is dropped after the timeout."""
    with _serve(app, header_timeout_s=0.5) as (host, port):
        conns = [socket.create_connection((host, port), timeout=5) for _ in range(20)]
        for s in conns:
            s.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no blank line
        t0 = time.monotonic()
        for s in conns:
            assert s.recv(1024) == b""  # closed by the server, well before the 5 s timeout
            s.close()
        assert time.monotonic() - t0 < 4.0
        # a complete request on a fresh connection is still served
        assert httpx.get(f"http://{host}:{port}/api/health").status_code == 200


def _send_upload(host: str, port: int, scan: Path, token: str) -> socket.socket:
    """POST ``scan`` to /api/report over a raw socket the test can close mid-report."""
    req = httpx.Request(
        "POST",
        f"http://{host}:{port}/api/report",
        files={"file": ("gone.npy", scan.read_bytes())},
        # a .npy has no spacing (1 mm assumed): 16 mm show no region, so ask by force
        data={"region": "abdomen", "force": "true"},
        headers={"X-Mu2-Token": token},
    )
    raw = req.read()
    head = f"POST /api/report HTTP/1.1\r\nHost: {host}:{port}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in req.headers.items() if k.lower() != "host"
    )
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(head.encode() + b"\r\n" + raw)
    return s


def test_request_is_cancelled_when_the_client_disconnects(app, small_npy: Path):
    """A request waiting for the busy model is taken off the queue when its client goes;
    its report never runs."""
    service = app.state.service
    release = threading.Event()
    ran: list[str] = []
    original = service._job

    def spy(upload, *args, **kwargs):
        ran.append(upload.filename)
        return original(upload, *args, **kwargs)

    service._job = spy
    try:
        with _serve(app) as (host, port):
            busy = threading.Thread(
                target=lambda: service.worker._executor.submit(release.wait, DEADLINE_S).result()
            )
            busy.start()  # the model thread is now busy until `release`
            s = _send_upload(host, port, small_npy, app.state.token)
            deadline = time.monotonic() + DEADLINE_S
            while service.worker.status()["waiting"] < 1:  # queued behind the busy model
                assert time.monotonic() < deadline
                time.sleep(0.05)
            s.close()  # the client goes away
            while service.worker.status()["waiting"] > 0:  # taken off the queue
                assert time.monotonic() < deadline
                time.sleep(0.05)
            release.set()
            busy.join(DEADLINE_S)
            # the handler releases its admission when it unwinds, just after the dequeue
            while service.worker.status()["admitted"] > 0:
                assert time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        release.set()
        service._job = original
    assert ran == []  # the report of the gone client never started


def test_running_report_stops_at_its_next_stage_when_the_client_disconnects(app, small_npy: Path):
    """The model is already working for a client that goes away: the job stops after the
    stage it is in (no heat map, no packaging), freeing the only model worker."""
    service = app.state.service
    started, release = threading.Event(), threading.Event()
    outcome: list[str] = []
    generate, job = service.generator.report, service._job

    def slow_report(*args, **kwargs):
        started.set()
        release.wait(DEADLINE_S)  # the client leaves while the model is "generating"
        return generate(*args, **kwargs)

    def spy(*args, **kwargs):
        try:
            stored = job(*args, **kwargs)
        except Exception as err:
            outcome.append(f"{type(err).__name__} {getattr(err, 'status', '')}")
            raise
        outcome.append("finished")
        return stored

    service.generator.report, service._job = slow_report, spy
    try:
        with _serve(app) as (host, port):
            s = _send_upload(host, port, small_npy, app.state.token)
            assert started.wait(DEADLINE_S)
            s.close()  # the client goes away while its report runs
            deadline = time.monotonic() + DEADLINE_S
            time.sleep(1.0)  # several disconnect polls
            release.set()
            while not outcome:
                assert time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        release.set()
        service.generator.report, service._job = generate, job
    assert outcome == ["UploadRejected 499"]
