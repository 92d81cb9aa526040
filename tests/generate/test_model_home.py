"""Model location: $MU2_HOME, the demo model default and the one-line missing-model error."""

from __future__ import annotations

from pathlib import Path

import pytest

from mu2.errors import Mu2Error
from mu2.generate.home import demo_model_dir, mu2_home, resolve_model_dir


def test_home_follows_env_and_defaults_to_cache(tmp_path: Path) -> None:
    assert mu2_home({"MU2_HOME": str(tmp_path)}) == tmp_path
    assert mu2_home({}) == Path("~/.cache/mu2").expanduser()
    assert demo_model_dir({"MU2_HOME": str(tmp_path)}) == tmp_path / "models" / "demo"


def test_missing_model_is_one_line_error(tmp_path: Path) -> None:
    env = {"MU2_HOME": str(tmp_path)}
    with pytest.raises(Mu2Error) as info:
        resolve_model_dir(None, env)
    msg = str(info.value)
    assert "\n" not in msg
    assert str(tmp_path / "models" / "demo") in msg
    assert "mu2 demo" in msg and "--model" in msg
    with pytest.raises(Mu2Error):
        resolve_model_dir(tmp_path / "elsewhere", env)


def test_existing_model_dir_is_returned(tmp_path: Path) -> None:
    demo = tmp_path / "models" / "demo"
    demo.mkdir(parents=True)
    (demo / "config.json").write_text("{}")
    assert resolve_model_dir(None, {"MU2_HOME": str(tmp_path)}) == demo
    assert resolve_model_dir(demo) == demo
