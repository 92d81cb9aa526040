"""The built wheel in a fresh virtual environment: it carries the configs and LICENSE, and
`mu2 report` runs on a real CT with a saved model (the demo model when `mu2 demo` has made
one under $MU2_HOME, else a freshly built tiny model). Slow: pip installs mu2's core
dependencies into the new environment (torch from the local CPU build)."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCH = os.environ.get("MU2_TEST_TORCH", "torch==2.13.0")

pytestmark = pytest.mark.release


def _run(*cmd: str, **kw) -> subprocess.CompletedProcess:
    out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=1800, **kw)
    assert out.returncode == 0, f"{' '.join(cmd)}\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    from mu2.generate.home import demo_model_dir

    demo = demo_model_dir()
    if (demo / "config.json").is_file():
        return demo
    from mu2.model import build

    out = tmp_path_factory.mktemp("model")
    build(
        "tiny", "mu2", train_texts=["The liver is normal.", "Describe the abdomen."]
    ).save_pretrained(out)
    return out


def test_wheel_installs_with_configs_and_reports(tmp_path, model_dir, real_ct_path):
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "dist"), str(ROOT))  # fmt: skip
    wheel = next((tmp_path / "dist").glob("mu2-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "mu2/configs/sft/paper.yaml" in names and "mu2/configs/dpo/paper.yaml" in names
    assert "mu2/configs/accelerate/deepspeed_zero3_offload.yaml" in names
    assert "mu2/configs/demo/fast.yaml" in names and "mu2/configs/bench/ablation.yaml" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = str(env_dir / "bin" / "python")
    _run(py, "-m", "pip", "install", "-q", "--disable-pip-version-check", TORCH)
    _run(py, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel))
    mu2 = str(env_dir / "bin" / "mu2")
    work = tmp_path / "elsewhere"  # not the checkout: the configs must come from the wheel
    work.mkdir()
    listed = _run(mu2, "config", "list", cwd=work).stdout
    assert "sft/paper" in listed and "accelerate/deepspeed_zero3_offload" in listed
    shown = _run(mu2, "config", "show", "sft/paper", "--path", cwd=work).stdout.strip()
    assert str(env_dir) in shown  # inside the installed package
    report = _run(
        mu2, "report", str(real_ct_path), "--model", str(model_dir), "--region", "abdomen",
        "--max-new-tokens", "16", cwd=work, env={**os.environ, "MU2_HOME": str(tmp_path / "home")},
    )  # fmt: skip
    assert "ABDOMEN" in report.stdout
    # the web extra is not installed: one line naming it
    serve = subprocess.run([mu2, "serve"], capture_output=True, text=True, cwd=work, timeout=600)
    assert serve.returncode == 2 and "install mu2[web]" in serve.stderr
