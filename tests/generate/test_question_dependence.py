"""Question dependence of heat maps and visual tokens, on a real (untrained) tiny model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mu2.errors import Mu2Error
from mu2.generate.question_dependence import question_dependence, region_bands, split_scans
from mu2.io import load_ct


def _model(model_dir: Path):
    from mu2.model import Mu2ForConditionalGeneration

    return Mu2ForConditionalGeneration.from_pretrained(model_dir).eval()


def _scans(synth_dir: Path) -> list:
    scans = [s for split in ("train", "val", "test") for s in split_scans(synth_dir, split)]
    scans = [s for s in scans if len(s[2]) >= 2]
    assert scans, "the synthetic fixture must ask cases about two regions"
    return scans[:2]


def test_region_bands_split_the_scan_at_the_lung_base(synth_dir: Path) -> None:
    _, image, _ = _scans(synth_dir)[0]
    vol = load_ct(image)
    bands = region_bands(np.asarray(vol.array), vol.spacing)
    chest, abdomen, pelvis = bands["chest"], bands["abdomen"], bands["pelvis"]
    assert chest.any() and abdomen.any()
    assert not (chest & abdomen).any() and not (chest & pelvis).any()
    assert (chest | abdomen | pelvis).all()
    assert np.flatnonzero(abdomen).max() < np.flatnonzero(chest).min()  # RAS: chest on top
    air = np.full((8, 8, 8), -1000.0)
    assert region_bands(air, (1.0, 1.0, 1.0)) == {}  # no lung landmark: no bands


def test_metric_tells_question_guided_from_question_blind(
    tiny_model_dir: Path, synth_dir: Path
) -> None:
    model = _model(tiny_model_dir)
    scans = _scans(synth_dir)
    # Question-blind: the question cut out of the tokenizer (the failure this measures).
    for layer in model.visual_tokenizer.aggregation.layers:
        layer.text_attn.forward = lambda q, *a, **k: (torch.zeros_like(q), None)
    blind = question_dependence(model, model.processor, scans).summary()
    assert blind["heat_corr"]["chest|abdomen"] == pytest.approx(1.0, abs=1e-5)
    assert blind["token_cos"]["chest|abdomen"] == pytest.approx(1.0, abs=1e-5)
    assert blind["share_own"]["chest"] == pytest.approx(blind["share_others"]["chest"], abs=1e-5)
    # Question-guided by construction: an untrained tiny model's tokens are one vector (its
    # heat maps are flat whatever is asked), so the dependence is planted in its real heat
    # maps: question i keeps the heat of one half of the frames, question j the other half.
    encode = model.encode_images

    def planted(*args, **kwargs):
        enc = encode(*args, **kwargs)
        t = enc.attribution.shape[1]  # (B, T, gz, gy, gx)
        for i in range(enc.attribution.shape[0]):
            keep = slice(0, t // 2) if i % 2 == 0 else slice(t // 2, t)
            gate = torch.full_like(enc.attribution[i], 0.05)
            gate[keep] = 1.0
            enc.attribution[i] *= gate
        return enc

    model.encode_images = planted
    guided = question_dependence(model, model.processor, scans).summary()
    assert guided["heat_corr"]["chest|abdomen"] < 0.5
    gap = [abs(guided["share_own"][r] - guided["share_others"][r]) for r in ("chest", "abdomen")]
    assert min(gap) > 0.2, guided
    for r in ("chest", "abdomen"):
        assert 0.0 < guided["share_own"][r] < 1.0
        assert 0.0 < guided["band_share"][r] < 1.0


def test_split_scans_bad_input(tmp_path: Path) -> None:
    with pytest.raises(Mu2Error, match="split file not found"):
        split_scans(tmp_path, "test")
    (tmp_path / "test.jsonl").write_text('{"id": 1}\n')
    with pytest.raises(Mu2Error, match="line 1"):
        split_scans(tmp_path, "test")


def test_cli_prints_the_numbers_and_rejects_bad_data(
    tiny_model_dir: Path, synth_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from mu2.cli.main import main

    split = next(s for s in ("test", "val", "train") if _has_two(synth_dir, s))
    out = tmp_path / "qd.json"
    args = ["diagnose", "question-dependence", "--data", str(synth_dir), "--split", split]
    with pytest.raises(SystemExit) as done:  # typer's standalone mode exits on success
        main([*args, "--model", str(tiny_model_dir), "--json", str(out)])
    assert done.value.code == 0
    assert "heat-map correlation" in capsys.readouterr().out and out.is_file()
    assert main(["diagnose", "question-dependence", "--data", str(tmp_path)]) == 2
    assert "split file not found" in capsys.readouterr().err


def _has_two(root: Path, split: str) -> bool:
    return any(len(s[2]) >= 2 for s in split_scans(root, split))
