"""ServeSettings: every problem reported at once; YAML and key=value via mu2.config."""

from __future__ import annotations

from pathlib import Path

import pytest

from mu2.config import load_config
from mu2.errors import Mu2Error
from mu2.web.settings import DEFAULT_MAX_UPLOAD_BYTES, ServeSettings


def test_defaults_and_overrides(tmp_path: Path) -> None:
    assert ServeSettings().max_upload_bytes == DEFAULT_MAX_UPLOAD_BYTES == 1024**3
    cfg = tmp_path / "serve.yaml"
    cfg.write_text("max_queue: 3\nheatmap: false\n")
    s = load_config(ServeSettings, cfg, ["cache_size=2"])
    assert (s.max_queue, s.heatmap, s.cache_size) == (3, False, 2)


def test_all_problems_in_one_error() -> None:
    with pytest.raises(Mu2Error) as err:
        ServeSettings(max_upload_bytes=0, max_queue=0)
    msg = str(err.value)
    assert "max_upload_bytes" in msg and "max_queue" in msg
    # the generation settings are mu2 report's own, validated by their class
    with pytest.raises(Mu2Error) as err:
        load_config(ServeSettings, None, ["generation.top_p=0", "generation.min_new_tokens=9",
                                          "generation.max_new_tokens=8"])  # fmt: skip
    msg = str(err.value)
    assert "top_p" in msg and "min_new_tokens" in msg


def test_unknown_key_is_a_user_error() -> None:
    with pytest.raises(Mu2Error, match="max_upload"):
        load_config(ServeSettings, None, ["max_uplaod_bytes=5"])
