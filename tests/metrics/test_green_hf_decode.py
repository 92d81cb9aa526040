"""The transformers judge returns the decoded answer only: never the prompt in front of it.

The reference is a greedy loop written here (one forward pass per new token, argmax), fed
the same prompt ids; HFJudge must return exactly the decoded new tokens of that loop.
"""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from mu2.metrics.green import make_judge, make_prompt, render_chat
from mu2.metrics.green.hf import encode_prompts

REF = "Small left pleural effusion. No lung nodule."
CAND = "Moderate right pleural effusion."
NEW = 5
SEED = 2


@pytest.fixture(scope="module")
def judge_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-judge")
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator([render_chat(make_prompt(REF, CAND))], trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    fast.save_pretrained(path)
    torch.manual_seed(SEED)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    return path


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
