"""The tiny BPE tokenizer and the tokenizer preparation every LLM gets."""

from __future__ import annotations

from transformers import AutoTokenizer

from mu2.model.text import IMAGE_TOKEN, prepare_tokenizer, train_text_tokenizer


def test_trained_tokenizer_round_trips_text_and_saves_like_any_hf_tokenizer(tmp_path):
    tok = train_text_tokenizer(["The liver is normal.", "A 12 mm renal cyst."], vocab_size=400)
    image_id = prepare_tokenizer(tok)
    text = "Unseen words: Zebra 42 mm, é!"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text  # byte-level
    ids = tok(f"{IMAGE_TOKEN}{IMAGE_TOKEN} liver", add_special_tokens=False)["input_ids"]
    assert ids[:2] == [image_id, image_id]
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "Q?"}], add_generation_prompt=True, tokenize=False
    )
    assert prompt.startswith(tok.bos_token) and prompt.endswith("ASSISTANT:\n")
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again.convert_tokens_to_ids(IMAGE_TOKEN) == image_id
    assert again(text)["input_ids"] == tok(text)["input_ids"]
    assert again.chat_template == tok.chat_template
