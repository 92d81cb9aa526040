"""build(llm_path=...): any local Hugging Face causal LM folder (Llama, Qwen2, ...)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

from mu2.errors import Mu2Error
from mu2.model import Mu2ForConditionalGeneration, build
from mu2.model.text import train_text_tokenizer

TEXTS = ["The liver is normal.", "A 12 mm cyst in the left kidney.", "Describe the abdomen."]


def _llm_folder(tmp_path, config_cls):
    """A small LLM saved as any HF model folder, with a tokenizer that lacks <image>."""
    tok = train_text_tokenizer(TEXTS, vocab_size=300)
    cfg = config_cls(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    return tmp_path, len(tok)


@pytest.mark.parametrize("config_cls", [LlamaConfig, Qwen2Config])
def test_a_local_llm_folder_is_wired_in(tmp_path, config_cls, prepared_frames):
    folder, vocab = _llm_folder(tmp_path / "llm", config_cls)
    model = build("tiny", "mu2", llm_path=str(folder)).eval()
    assert model.language_model.config.model_type == config_cls.model_type
    emb = model.get_input_embeddings().weight
    assert emb.shape == (vocab + 1, 64)  # the <image> token was added and the table resized
    assert model.config.image_token_id == vocab
    pv, fmask = model.processor.pad_frames(prepared_frames)
    batch = model.processor(["Describe the abdomen.", "Describe the liver."], TEXTS[:2])
    with torch.no_grad():
        logits = model(pv, fmask, **batch).logits
    assert logits.shape[-1] == vocab + 1
    model.save_pretrained(tmp_path / "mu2")
    again = Mu2ForConditionalGeneration.from_pretrained(tmp_path / "mu2").eval()
    with torch.no_grad():
        assert torch.equal(again(pv, fmask, **batch).logits, logits)
    new = again.generate(
        pixel_values=pv, frame_mask=fmask, **again.processor(["Describe the abdomen."] * 2),
        max_new_tokens=3,
    )  # fmt: skip
    assert new.shape[0] == 2


def test_missing_llm_folder_is_a_user_error(tmp_path):
    with pytest.raises(Mu2Error, match="LLM folder not found"):
        build("tiny", llm_path=str(tmp_path / "nope"))


def test_the_wired_llm_stays_causal(tmp_path, prepared_frames):
    """Changing a later token must not change earlier logits (a lost attention setting
    once left a loaded LLM without its causal mask)."""
    folder, _ = _llm_folder(tmp_path / "llm", LlamaConfig)
    model = build("tiny", "mu2", llm_path=str(folder)).eval()
    pv, fmask = model.processor.pad_frames(prepared_frames[:1])
    batch = model.processor(["Describe the abdomen."], ["The liver is normal."])
    changed = {**batch, "input_ids": batch["input_ids"].clone()}
    changed["input_ids"][0, -2] = 5
    with torch.no_grad():
        a = model(pv, fmask, **batch).logits
        b = model(pv, fmask, **changed).logits
    assert torch.equal(a[0, :-2], b[0, :-2])
    assert not torch.equal(a[0, -1], b[0, -1])
