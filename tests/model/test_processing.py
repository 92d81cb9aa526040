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
    batch = proc(["Describe the abdomen."], ["word " * 50], max_length=prompt_len + 5)
    assert batch["input_ids"].shape[1] == prompt_len + 5
    with pytest.raises(Mu2Error, match="max_length"):
        proc(["Describe the abdomen."], ["x"], max_length=prompt_len - 1)


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
