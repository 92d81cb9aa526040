"""The transformers judge returns the decoded answer only: never the prompt in front of it.

The reference is a greedy loop written here (one forward pass per new token, argmax), fed
the same prompt ids; HFJudge must return exactly the decoded new tokens of that loop.
"""

from __future__ import annotations

import pytest
import torch

from mu2.metrics.green import make_judge, make_prompt, render_chat
from mu2.metrics.green.hf import encode_prompts

from .conftest import build_tiny_judge

REF = "Small left pleural effusion. No lung nodule."
CAND = "Moderate right pleural effusion."
NEW = 5
SEED = 2


@pytest.fixture(scope="module")
def judge_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-judge")
    texts = [render_chat(make_prompt(REF, CAND))]
    return build_tiny_judge(path, texts, vocab_size=300, layers=1, seed=SEED)


def test_answer_is_the_decoded_new_tokens_only(judge_dir) -> None:
    judge = make_judge(f"hf:{judge_dir}", device="cpu", max_new_tokens=NEW, progress=False)
    (answer,) = judge.answers([(REF, CAND)])
    (ids,) = encode_prompts(judge.tokenizer, [make_prompt(REF, CAND)], judge.max_length)
    seq = torch.tensor([ids])
    with torch.no_grad():
        for _ in range(NEW):
            nxt = judge.model(input_ids=seq).logits[0, -1].argmax()
            seq = torch.cat([seq, nxt.view(1, 1)], dim=1)
            if int(nxt) == judge.tokenizer.eos_token_id:
                break
    new_ids = seq[0, len(ids) :].tolist()
    assert len(new_ids) == NEW  # this seed's model writes NEW tokens before any eos
    assert answer == judge.tokenizer.decode(new_ids, skip_special_tokens=True)
    assert "Reference" not in answer and "<|assistant|>" not in answer
