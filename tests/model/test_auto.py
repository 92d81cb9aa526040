"""mu2 through the transformers Auto classes, trust_remote_code, generation_config.json and
Hub repo ids (offline, from a Hugging Face cache folder laid out as huggingface_hub does)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import (
    AutoModel,
    AutoModelForImageTextToText,
    AutoProcessor,
    GenerationConfig,
)

from mu2.generate.pipeline import ReportGenerator
from mu2.io import load_ct
from mu2.model import Mu2ForConditionalGeneration, Mu2Processor, build
from mu2.preprocess import prep_config, prepare

from .conftest import QUESTIONS, REPORTS

QUESTION = "Describe the findings of the abdomen in this CT."
N_TOKENS = 6
SEED = 5  # sampling: an untrained model's greedy answer is only newlines (empty text)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("auto_model")
    build("tiny", "mu2", train_texts=REPORTS + QUESTIONS, seed=0).save_pretrained(out)
    return out


def _generate_text(model, processor, scan: Path) -> str:
    """The user's own loop: prepare, process, pad, generate, decode."""
    frames = prepare(load_ct(scan), prep_config(model.config.prep)).frames  # (T, K, H, W)
    batch = processor([QUESTION])
    pixel_values, frame_mask = processor.pad_frames([frames])  # (1, T, K, H, W), (1, T)
    torch.manual_seed(SEED)
    new = model.generate(
        pixel_values=pixel_values,
        frame_mask=frame_mask,
        **batch,
        max_new_tokens=N_TOKENS,
        min_new_tokens=N_TOKENS,
        do_sample=True,
    )
    return processor.batch_decode(new)[0].strip()


def test_auto_classes_return_mu2_and_match_report_generator(saved: Path, real_ct_path: Path):
    model = AutoModelForImageTextToText.from_pretrained(saved).eval()
    processor = AutoProcessor.from_pretrained(saved)
    assert type(model) is Mu2ForConditionalGeneration
    assert type(processor) is Mu2Processor
    assert type(AutoModel.from_pretrained(saved)) is Mu2ForConditionalGeneration
    assert model.can_generate()

    expected = ReportGenerator(saved).report(
        real_ct_path,
        question=QUESTION,
        max_new_tokens=N_TOKENS,
        min_new_tokens=N_TOKENS,
        do_sample=True,
        seed=SEED,
    )
    text = _generate_text(model, processor, real_ct_path)
    assert text and text == expected.sections[0].text


def test_saved_folder_carries_auto_map_and_generation_config(saved: Path):
    config = json.loads((saved / "config.json").read_text())
    assert config["auto_map"]["AutoModelForImageTextToText"] == (
        "mu2_auto.Mu2ForConditionalGeneration"
    )
    assert (saved / "mu2_auto.py").is_file()
    gen = GenerationConfig.from_pretrained(saved)
    assert gen.max_new_tokens == 256 and gen.do_sample is False
    assert gen.eos_token_id == config["text_config"]["eos_token_id"]


def test_generation_config_json_is_used(saved: Path, tmp_path: Path, real_ct_path: Path):
    folder = tmp_path / "short"
    shutil.copytree(saved, folder)
    gen = GenerationConfig.from_pretrained(folder)
    gen.max_new_tokens, gen.min_new_tokens = 3, 3
    gen.save_pretrained(folder)
    model = Mu2ForConditionalGeneration.from_pretrained(folder).eval()
    processor = model.processor
    frames = prepare(load_ct(real_ct_path), prep_config(model.config.prep)).frames
    pixel_values, frame_mask = processor.pad_frames([frames])
    new = model.generate(pixel_values=pixel_values, frame_mask=frame_mask, **processor([QUESTION]))
    assert new.shape[1] == 3  # from generation_config.json, not a default in code


def test_old_folder_without_generation_config_gets_the_defaults(saved: Path, tmp_path: Path):
    folder = tmp_path / "old"
    shutil.copytree(saved, folder)
    (folder / "generation_config.json").unlink()
    model = Mu2ForConditionalGeneration.from_pretrained(folder)
    assert model.generation_config.max_new_tokens == 256


REMOTE_SCRIPT = r"""
import sys, torch
from pathlib import Path
from transformers import AutoModelForImageTextToText, AutoProcessor
folder, repo, cache = sys.argv[1], sys.argv[2], sys.argv[3]

# 1. trust_remote_code: mu2 is not imported by this process; auto_map + mu2_auto.py find it.
assert "mu2" not in sys.modules
remote = AutoModelForImageTextToText.from_pretrained(folder, trust_remote_code=True)
proc = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
print("remote", type(remote).__module__, type(remote).__name__, type(proc).__name__)

# 2. Hub repo ids resolve through the offline cache, to the same weights.
from mu2.model import Mu2ForConditionalGeneration
from mu2.cli.main import main
hub = Mu2ForConditionalGeneration.from_pretrained(repo)
same = all(torch.equal(a, b) for a, b in zip(hub.state_dict().values(), remote.state_dict().values()))
print("hub", type(hub).__name__, hub.processor is not None, same)
def cli(*args):
    try:
        return main(list(args))
    except SystemExit as done:  # typer's standalone mode exits on success
        return done.code
rc = cli("report", sys.argv[4], "--model", repo, "--region", "abdomen", "--max-new-tokens", "4")
print("report rc", rc)
print("missing rc", cli("report", sys.argv[4], "--model", "nobody/not-cached"))
"""


def _hf_cache(tmp_path: Path, saved: Path, repo: str) -> Path:
    """A Hugging Face hub cache holding ``repo`` at one commit (huggingface_hub's layout)."""
    cache = tmp_path / "hf" / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    root = cache / ("models--" + repo.replace("/", "--"))
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    shutil.copytree(saved, root / "snapshots" / commit)
    return cache


def test_trust_remote_code_and_hub_id_offline(saved: Path, tmp_path: Path, real_ct_path: Path):
    repo = "mu2-test/tiny-report"
    cache = _hf_cache(tmp_path, saved, repo)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_CACHE": str(cache),
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
    }
    out = subprocess.run(
        [sys.executable, "-c", REMOTE_SCRIPT, str(saved), repo, str(cache), str(real_ct_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert "remote mu2.model.modeling Mu2ForConditionalGeneration Mu2Processor" in lines
    assert "hub Mu2ForConditionalGeneration True True" in lines
    assert "report rc 0" in lines
    assert "missing rc 2" in lines
    assert "nobody/not-cached' is not in the local Hugging Face cache" in out.stderr
