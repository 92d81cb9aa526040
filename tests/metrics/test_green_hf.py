"""The transformers judge path: chat wrapping, eos, left padding, greedy batched generation.

A tiny random Llama and a byte-level BPE tokenizer built here stand in for a GREEN model
folder; this checks the code path, not the scores.
"""

from __future__ import annotations

import pytest
import torch

from mu2.errors import Mu2Error
from mu2.metrics.green import make_judge, make_prompt, render_chat
from mu2.metrics.green.hf import encode_prompts, load_judge_tokenizer

from .conftest import build_tiny_judge

REF = "Small left pleural effusion. No lung nodule."
CAND = "Moderate right pleural effusion."
REF2 = "Hepatic steatosis. A 12 mm cyst in the left kidney, unchanged from prior."


@pytest.fixture(scope="module")
def judge_dir(tmp_path_factory):
    """A Llama-like judge folder: BOS-adding BPE tokenizer with </s>, random 2-layer Llama."""
    path = tmp_path_factory.mktemp("tiny-green")
    return build_tiny_judge(
        path, [render_chat(make_prompt(REF, CAND)), REF2], vocab_size=400, layers=2, seed=0
    )


def test_chat_template_renders_the_published_string(judge_dir) -> None:
    tokenizer = load_judge_tokenizer(judge_dir)
    prompt = make_prompt(REF, CAND)
    conv = [{"from": "human", "value": prompt}, {"from": "gpt", "value": ""}]
    text = tokenizer.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
    assert text == f"<|user|>\n{prompt}</s>\n<|assistant|>\n</s>\n<|assistant|>\n"
    assert tokenizer.padding_side == "left" and tokenizer.pad_token == tokenizer.eos_token


def test_prompt_ids_keep_bos_end_in_eos_and_respect_max_length(judge_dir) -> None:
    tokenizer = load_judge_tokenizer(judge_dir)
    prompt = make_prompt(REF, CAND)
    (ids,) = encode_prompts(tokenizer, [prompt], max_length=2048)
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(ids[1:-1]) == render_chat(prompt)
    (short,) = encode_prompts(tokenizer, [prompt], max_length=50)
    assert len(short) == 50 and short[-1] == tokenizer.eos_token_id
    assert short[:49] == ids[:49]


def test_hf_judge_generates_greedily_in_left_padded_batches(judge_dir) -> None:
    judge = make_judge(
        f"hf:{judge_dir}", batch_size=2, device="cpu", max_new_tokens=4, progress=False
    )
    assert judge.name == f"hf:{judge_dir.name}" and not judge.offline
    assert judge.model.dtype == torch.float32  # float16 only on GPU
    pairs = [(REF, CAND), (REF2, CAND), (REF, REF2)]
    answers = judge.answers(pairs)
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)
    # Greedy: the same pair alone, in a batch of one, gives the same answer.
    assert judge.answers([pairs[2]]) == [answers[2]]
    # Left padding: the shorter prompt in a batch is answered as when it is alone.
    single = make_judge(
        f"hf:{judge_dir}", batch_size=1, device="cpu", max_new_tokens=4, progress=False
    )
    assert single.answers(pairs[:2]) == answers[:2]


def test_missing_judge_folder_is_a_user_error(tmp_path) -> None:
    with pytest.raises(Mu2Error, match="GREEN judge folder not found"):
        make_judge(f"hf:{tmp_path / 'nope'}")
