"""An LLM folder with a Llama-3-style tokenizer that has no pad token (as Llama-3.2 ships).

The tokenizer is built here the way Llama 3's is laid out: byte-level BPE, special tokens
<|begin_of_text|> (BOS, added by the post-processor), <|end_of_text|>, <|eot_id|> (EOS of
the chat), <|start_header_id|>/<|end_header_id|>, a header-style chat template, and NO pad
token. mu2 must add its own pad token (never reuse EOS, whose label is learnt), pad batches
with it and keep a padded row's logits equal to the row alone.
"""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from mu2.model import Mu2ForConditionalGeneration, build
from mu2.model.text import PAD
from mu2.train.dpo_loss import IGNORE_INDEX

TEXTS = ["The liver is normal.", "A 12 mm cyst in the left kidney.", "Describe the abdomen."]
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>",
            "<|end_header_id|>"]  # fmt: skip
CHAT = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>"
    "\n\n{{ m['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)


def _llama3_folder(path):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(TEXTS * 3, trainer)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", bos)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>"
    )
    fast.chat_template = CHAT
    assert fast.pad_token is None
    fast.save_pretrained(path)
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
        bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
    )  # fmt: skip
    LlamaForCausalLM(cfg).save_pretrained(path)
    return len(fast), fast.eos_token_id


@pytest.mark.slow
def test_no_pad_token_gets_its_own_pad_and_padding_changes_nothing(tmp_path, prepared_frames):
    vocab, eos = _llama3_folder(tmp_path / "llm")
    model = build("tiny", "mu2", llm_path=str(tmp_path / "llm")).eval()
    tok = model.processor.tokenizer
    assert tok.pad_token == PAD and tok.pad_token_id not in (eos, tok.bos_token_id)
    assert tok.eos_token_id == eos and tok.chat_template == CHAT  # its own template is kept
    assert model.get_input_embeddings().weight.shape[0] == vocab + 2  # <image> and the pad
    assert model.language_model.config.pad_token_id == tok.pad_token_id

    questions = ["Describe the abdomen.", "Describe the abdomen."]
    answers = ["The liver is normal.", "A 12 mm cyst in the left kidney."]
    batch = model.processor(questions, answers)
    short = int(batch["attention_mask"][0].sum())
    assert short < batch["input_ids"].shape[1]  # the first row is padded
    ids0 = batch["input_ids"][0]
    assert (ids0[short:] == tok.pad_token_id).all() and ids0[0] == tok.bos_token_id
    labels0 = batch["labels"][0]
    assert (labels0[short:] == IGNORE_INDEX).all() and labels0[short - 1] == eos  # EOS is learnt
    prompt = tok.decode(ids0[:short][labels0[:short] == IGNORE_INDEX])
    assert prompt.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>")

    pv, fmask = model.processor.pad_frames([prepared_frames[0]] * 2)
    alone = model.processor(questions[:1], answers[:1])
    with torch.no_grad():
        both = model(pv, fmask, **batch).logits
        one = model(pv[:1], fmask[:1], **alone).logits
    torch.testing.assert_close(both[0, :short], one[0], rtol=1e-4, atol=1e-5)
    loss = model(pv, fmask, **batch).loss
    assert torch.isfinite(loss)
    loss.backward()
    assert model.get_input_embeddings().weight.grad.abs().sum() > 0

    model.save_pretrained(tmp_path / "mu2")
    again = Mu2ForConditionalGeneration.from_pretrained(tmp_path / "mu2").eval()
    assert again.processor.tokenizer.pad_token_id == tok.pad_token_id
    gen = again.generate(
        pixel_values=pv, frame_mask=fmask, **again.processor(questions), max_new_tokens=3
    )
    assert gen.shape[0] == 2
