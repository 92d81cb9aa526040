"""LoRA adapters in peft's format: saved, re-loaded onto the base, loaded by peft itself,
merged (library and `mu2 model merge-lora`), and old LoRA folders still loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from peft import PeftModel

from mu2.cli.main import main
from mu2.errors import Mu2Error
from mu2.model import Mu2ForConditionalGeneration, build
from mu2.model.adapters import merge_lora

from .conftest import QUESTIONS, REPORTS


def _batch(model, frames):
    batch = model.processor(QUESTIONS, answers=REPORTS[:2])
    pixel_values, frame_mask = model.processor.pad_frames(frames)
    return {**batch, "pixel_values": pixel_values, "frame_mask": frame_mask}


def _logits(model, batch) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(**batch).logits


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    """A base model folder and the same model with trained-looking (non-zero) LoRA weights."""
    root = tmp_path_factory.mktemp("lora")
    model = build("tiny", "mu2", train_texts=REPORTS + QUESTIONS, seed=0)
    model.save_pretrained(root / "base")
    model.add_lora(r=4, alpha=8, target_modules=["q_proj", "v_proj"])
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # peft starts lora_B at zero: the adapter would change nothing
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    model.save_pretrained(root / "lora")
    return root / "base", root / "lora"


def test_adapter_is_written_in_peft_format(folders):
    _, lora = folders
    config = json.loads((lora / "adapter" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 4 and config["lora_alpha"] == 8
    assert (lora / "adapter" / "adapter_model.safetensors").is_file()


def test_adapter_onto_base_gives_identical_logits(folders, prepared_frames):
    base, lora = folders
    full = Mu2ForConditionalGeneration.from_pretrained(lora)  # LoRA inside model.safetensors
    batch = _batch(full, prepared_frames)
    expected = _logits(full, batch)
    plain = _logits(Mu2ForConditionalGeneration.from_pretrained(base), batch)
    assert not torch.allclose(plain, expected, atol=1e-3)  # the adapter really matters

    onto = Mu2ForConditionalGeneration.from_pretrained(base, adapter=lora / "adapter")
    assert torch.equal(_logits(onto, batch), expected)
    assert onto.config.lora["target_modules"] == ["q_proj", "v_proj"]

    # peft's own loader on the mu2 base (what a peft user does)
    peft_model = PeftModel.from_pretrained(
        Mu2ForConditionalGeneration.from_pretrained(base), lora / "adapter"
    )
    assert torch.equal(_logits(peft_model, batch), expected)


def test_merge_gives_the_same_logits(folders, prepared_frames):
    _, lora = folders
    model = Mu2ForConditionalGeneration.from_pretrained(lora)
    batch = _batch(model, prepared_frames)
    merged = merge_lora(model)
    assert not merged.config.lora
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    torch.testing.assert_close(_logits(merged, batch), _logits(model, batch), atol=1e-5, rtol=0)


def test_merge_lora_command(folders, prepared_frames, tmp_path, capsys):
    base, lora = folders
    out = tmp_path / "merged"
    with pytest.raises(SystemExit) as done:
        main(["model", "merge-lora", str(base), str(out), "--adapter", str(lora / "adapter")])
    assert done.value.code == 0
    assert "merged LoRA (r=4)" in capsys.readouterr().out
    merged = Mu2ForConditionalGeneration.from_pretrained(out)
    assert not merged.config.lora and not (out / "adapter").exists()
    reference = Mu2ForConditionalGeneration.from_pretrained(lora)
    batch = _batch(reference, prepared_frames)
    torch.testing.assert_close(_logits(merged, batch), _logits(reference, batch), atol=1e-5, rtol=0)


def test_merge_without_lora_is_one_line(folders, tmp_path, capsys):
    base, _ = folders
    assert main(["model", "merge-lora", str(base), str(tmp_path / "o")]) == 2
    assert "has no LoRA adapters to merge" in capsys.readouterr().err


def test_not_an_adapter_folder(folders, tmp_path):
    base, _ = folders
    with pytest.raises(Mu2Error, match="not a peft adapter folder"):
        Mu2ForConditionalGeneration.from_pretrained(base, adapter=tmp_path)
