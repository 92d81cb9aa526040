"""Mu2Processor: BOS, Q placeholders, labels on the report only, padding sides, frames."""

from __future__ import annotations

import pytest
import torch

from mu2.errors import Mu2Error
from mu2.model import IGNORE_INDEX, Mu2Processor


def test_training_batch_layout(tiny_model):
    proc = tiny_model.processor
    tok = proc.tokenizer
    qs = ["Describe the abdomen.", "Describe the chest findings in detail please."]
    answers = ["The liver is normal.", "Small cyst."]
    batch = proc(qs, answers)
    q = proc.num_image_tokens
    for i in range(2):
        ids = batch["input_ids"][i][batch["attention_mask"][i].bool()].tolist()
        assert ids[0] == tok.bos_token_id  # the reference code's prompt lacked BOS
        assert ids.count(proc.image_token_id) == q
        labels = batch["labels"][i]
        kept = labels[labels != IGNORE_INDEX].tolist()
        assert kept == tok(answers[i], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        assert ids[-len(kept) :] == kept  # the answer ends the row (right padding)
        assert proc.decode(kept) == answers[i]
    assert batch["attention_mask"][0, -1] == 1 or batch["attention_mask"][1, -1] == 1
    assert batch["attention_mask"][:, 0].all()  # right padded
    qids = batch["question_ids"][0][batch["question_mask"][0].bool()].tolist()
    assert proc.decode(qids) == qs[0]


def test_generation_batch_is_left_padded_without_labels(tiny_model):
    batch = tiny_model.processor(["Short?", "A much longer question about the pelvis?"])
    assert "labels" not in batch
    assert batch["attention_mask"][:, -1].all() and not batch["attention_mask"][0, 0]


def test_max_length_truncates_the_report_never_the_prompt(tiny_model):
    proc = tiny_model.processor
    prompt_len = len(proc.prompt_ids("Describe the abdomen."))
    text_len = prompt_len - proc.num_image_tokens  # max_length budgets text tokens only
    batch = proc(["Describe the abdomen."], ["word " * 50], max_length=text_len + 5)
    assert batch["input_ids"].shape[1] == prompt_len + 5
    with pytest.raises(Mu2Error, match="max_length"):
        proc(["Describe the abdomen."], ["x"], max_length=text_len - 1)


def test_image_placeholders_do_not_count_against_the_text_budget(tiny_model):
    """The paper's 1024 queries with max_length 1024: rows fit, the report keeps its room."""
    tok = tiny_model.processor.tokenizer
    proc = Mu2Processor(tok, num_image_tokens=1024)
    question, report = "Describe the abdomen.", "The liver is normal. " * 20
    batch = proc([question], [report], max_length=1024)
    kept = batch["labels"][0][batch["labels"][0] != IGNORE_INDEX].tolist()
    assert kept == tok(report, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert batch["input_ids"].shape[1] <= 1024 + 1024
    proc.check_budget(1024, 2048, question, "model.max_length")
    with pytest.raises(Mu2Error, match="exceed the LLM's 2000 positions"):
        proc.check_budget(1024, 2000, question, "model.max_length")
    with pytest.raises(Mu2Error, match="no room for a report"):
        proc.check_budget(5, 4096, question, "model.max_length")


# Llama 3's template shape: a system header whose "Today Date" comes from the clock unless
# the caller passes ``date_string`` (the same fallback chain as the released template).
LLAMA3_STYLE_TEMPLATE = (
    "{{ bos_token }}{% if not date_string is defined %}{% if strftime_now is defined %}"
    "{% set date_string = strftime_now('%d %b %Y') %}{% else %}"
    "{% set date_string = '26 Jul 2024' %}{% endif %}{% endif %}"
    "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
    "Today Date: {{ date_string }}\n\n<|eot_id|>{% for m in messages %}"
    "<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] | trim }}"
    "<|eot_id|>{% endfor %}{% if add_generation_prompt %}"
    "<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)


def test_prompts_do_not_depend_on_the_day_they_are_rendered(tiny_model, monkeypatch):
    import copy
    from datetime import datetime

    import transformers.utils.chat_template_utils as ctu

    tok = copy.deepcopy(tiny_model.processor.tokenizer)
    tok.chat_template = LLAMA3_STYLE_TEMPLATE
    proc = Mu2Processor(tok, num_image_tokens=4)
    prompts = []
    for day in (datetime(2025, 1, 2), datetime(2026, 12, 7)):

        class Clock(datetime):
            @classmethod
            def now(cls, tz=None, _day=day):
                return _day

        monkeypatch.setattr(ctu, "datetime", Clock)
        prompts.append(proc.prompt_ids("Describe the chest."))
    assert prompts[0] == prompts[1]
    text = tok.decode(prompts[0])
    assert "Today Date:" in text and "2025" not in text and "2026" not in text


def test_bad_questions_are_user_errors(tiny_model):
    proc = tiny_model.processor
    with pytest.raises(Mu2Error, match="empty question"):
        proc(["  "])
    with pytest.raises(Mu2Error, match="reserved token"):
        proc(["What is <image>?"])
    with pytest.raises(Mu2Error, match="2 questions but 1 answers"):
        proc(["a", "b"], ["c"])


def test_pad_frames_batches_different_depths():
    pv, mask = Mu2Processor.pad_frames([torch.ones(3, 2, 4, 4), torch.ones(1, 2, 4, 4)])
    assert pv.shape == (2, 3, 2, 4, 4)
    assert mask.tolist() == [[True, True, True], [True, False, False]]
    assert pv[1, 1:].abs().sum() == 0
    with pytest.raises(Mu2Error, match="same preprocessing size"):
        Mu2Processor.pad_frames([torch.ones(1, 2, 4, 4), torch.ones(1, 2, 8, 8)])


def test_round_trip_through_a_folder(tiny_model, tmp_path):
    tiny_model.processor.save_pretrained(tmp_path)
    again = Mu2Processor.from_pretrained(tmp_path)
    assert again.num_image_tokens == tiny_model.processor.num_image_tokens
    a = tiny_model.processor(["Describe the liver."], ["Normal."])
    b = again(["Describe the liver."], ["Normal."])
    assert all(torch.equal(a[k], b[k]) for k in a)
