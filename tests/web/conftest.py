"""Fixtures for the web tests: a real (untrained) tiny mu2 model and a live uvicorn server.

The model is the real component built by ``mu2.model.build``; an untrained model decodes
greedily to whitespace, so the apps here sample with a fixed seed (every request gets
the same seed, so one scan still always gets one report) to get visible text.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mu2.web.settings import ServeSettings

TRAIN_TEXTS = [
    "Describe the findings of the abdomen in this CT.",
    "The liver is normal in size and attenuation. No ascites.",
    "There is a simple cortical cyst in the left kidney, measuring 12 mm.",
    "The lungs are clear. No pleural effusion.",
    "The bladder is unremarkable.",
]
# Short sampled answers: visible text, seconds per report on 2 CPU cores.
TEST_TOKEN = "test-token-0123456789"
# TestClient sends Host "testserver"; the token every POST must carry.
TEST_GENERATION = {"max_new_tokens": 8, "min_new_tokens": 8, "do_sample": True, "seed": 0}
TEST_SETTINGS = {
    "token": TEST_TOKEN,
    "allowed_hosts": ["127.0.0.1", "localhost", "testserver"],
}
TOKEN_HEADERS = {"X-Mu2-Token": TEST_TOKEN}
SERVER_START_TIMEOUT_S = 30.0


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mu2.model import build

    out = tmp_path_factory.mktemp("web_tiny_model")
    build("tiny", preset="mu2", train_texts=TRAIN_TEXTS, seed=0).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def web_generator(tiny_model_dir: Path):
    from mu2.generate.pipeline import ReportGenerator

    return ReportGenerator(tiny_model_dir)


@pytest.fixture(scope="session")
def make_settings():
    """``make_settings(**overrides)`` -> ServeSettings for the tests (short sampled answers)."""

    def make(**overrides) -> ServeSettings:
        """Generation fields (max_new_tokens, ...) go to ``generation``, the rest as given."""
        from mu2.generate.settings import GenerationSettings

        gen_keys = set(GenerationSettings.__dataclass_fields__)
        gen = {**TEST_GENERATION, **{k: v for k, v in overrides.items() if k in gen_keys}}
        rest = {k: v for k, v in overrides.items() if k not in gen_keys}
        return ServeSettings(**{**TEST_SETTINGS, **rest}, generation=GenerationSettings(**gen))

    return make


@pytest.fixture(scope="session")
def live_server():
    """``with live_server(app) as url``: the app on uvicorn at 127.0.0.1, a free port."""
    return serve_in_thread


@pytest.fixture(scope="session")
def small_npy(tmp_path_factory: pytest.TempPathFactory, real_ct_path: Path) -> Path:
    """16 axial slices of the real CT as .npy: one model frame, so a report takes little."""
    from mu2.io import load_ct

    out = tmp_path_factory.mktemp("web_npy") / "ct16.npy"
    vol = load_ct(real_ct_path)
    mid = vol.shape[2] // 2
    # (X, Y, Z) -> (X, Y, 16), canonical RAS as .npy expects
    np.save(out, np.ascontiguousarray(vol.array[:, :, mid - 8 : mid + 8]).astype(np.int16))
    return out


@contextlib.contextmanager
def serve_in_thread(app) -> Iterator[str]:
    """Run ``app`` with uvicorn on 127.0.0.1 at a free port; yields the base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=SERVER_START_TIMEOUT_S)
        sock.close()
