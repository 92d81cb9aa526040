"""`mu2 serve`: bad options and a missing model exit 2 with one line; a real start serves."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mu2.cli.main import main

START_TIMEOUT_S = 180.0


@pytest.fixture(scope="module")
def serve_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real, untrained tiny mu2 model saved like a trained one."""
    from mu2.model import build

    out = tmp_path_factory.mktemp("serve_cli_model")
    texts = ["Describe the findings of the abdomen in this CT.", "The liver is normal."]
    build("tiny", preset="mu2", train_texts=texts, seed=0).save_pretrained(out)
    return out


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, capsys.readouterr().err


def test_missing_demo_model_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MU2_HOME", str(tmp_path))
    code, err = run(["serve"], capsys)
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("mu2: error: no model at") and "mu2 demo" in last
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "70000"], "--port must lie in 0..65535"),
        (["--max-upload-mb", "0"], "--max-upload-mb must be > 0"),
        (["--set", "max_queu=3"], "max_queu"),
        (["--set", "max_queue=0"], "max_queue must be >= 1"),
    ],
)
def test_bad_options_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(["serve", *argv], capsys)
    assert code == 2 and message in err and "Traceback" not in err


def test_serve_starts_and_answers(serve_model_dir: Path, tmp_path: Path) -> None:
    """The real console entry point: model loads, uvicorn listens, the page and API answer."""
    env = {**os.environ, "MU2_HOME": str(tmp_path)}
    cmd = [sys.executable, "-m", "mu2.cli.main", "serve", "--model", str(serve_model_dir)]
    cmd += ["--port", "0", "--max-upload-mb", "5", "--set", "generation.max_new_tokens=4"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url, seen = None, []
        deadline = time.monotonic() + START_TIMEOUT_S
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            seen.append(line)
            found = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line)
            url = found.group(1) if found else None
        assert url, "".join(seen)
        assert any("open the address uvicorn prints" in s for s in seen)
        health = httpx.get(f"{url}/api/health", timeout=30).json()
        assert health["status"] == "ok" and "tiny" in health["model"]
        info = httpx.get(f"{url}/api/model", timeout=30).json()
        assert info["model_dir"] == str(serve_model_dir)
        assert info["limits"]["max_upload_bytes"] == 5 * 1024 * 1024
        assert info["generation"]["max_new_tokens"] == 4
        assert "<title>mu2" in httpx.get(url, timeout=30).text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
