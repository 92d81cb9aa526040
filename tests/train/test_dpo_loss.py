"""DPO loss: a hand-computed value, and agreement with TRL's DPOTrainer on the same sequences."""

import math

import pytest
import torch

from mu2.train.dpo_loss import dpo_loss, sequence_logps


def test_hand_computed_value():
    # pair 0: chosen log-ratio +1, rejected -1 -> -log sigmoid(0.1 * 2) = log(1 + e^-0.2)
    # pair 1: both log-ratios 0 -> log 2
    out = dpo_loss(
        policy_chosen_logps=torch.tensor([-10.0, -5.0]),
        policy_rejected_logps=torch.tensor([-12.0, -7.0]),
        ref_chosen_logps=torch.tensor([-11.0, -5.0]),
        ref_rejected_logps=torch.tensor([-11.0, -7.0]),
        beta=0.1,
    )
    assert out.losses[0].item() == pytest.approx(0.5981388693, abs=1e-7)
    assert out.losses[1].item() == pytest.approx(0.6931471806, abs=1e-7)
    assert out.loss.item() == pytest.approx((0.5981388693 + 0.6931471806) / 2, abs=1e-7)
    assert out.chosen_rewards.tolist() == pytest.approx([0.1, 0.0])
    assert out.rejected_rewards.tolist() == pytest.approx([-0.1, 0.0])
    assert out.margins.tolist() == pytest.approx([0.2, 0.0])
    assert out.accuracy.item() == 0.5


def test_beta_scales_the_margin():
    args = [torch.tensor([-1.0]), torch.tensor([-3.0]), torch.tensor([-2.0]), torch.tensor([-2.0])]
    # margin 2 (log-ratios +1 and -1): loss = log(1 + exp(-beta * 2))
    for beta in (0.1, 0.5):
        assert dpo_loss(*args, beta=beta).loss.item() == pytest.approx(
            math.log1p(math.exp(-2 * beta))
        )


def test_sequence_logps_by_hand():
    # one sequence of 3 tokens over a vocabulary of 2; only the last token is a completion token
    logits = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0], [5.0, 5.0]]])  # (1, 3, 2)
    labels = torch.tensor([[-100, -100, 0]])
    # position 1 predicts token 0 with p = 3 / (3 + 1)
    assert sequence_logps(logits, labels).item() == pytest.approx(math.log(0.75))


def test_matches_trl_dpo_trainer(tmp_path):
    """TRL's sigmoid DPO loss, computed by its trainer on the same sequences and models."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from trl import DPOConfig, DPOTrainer

    from datasets import Dataset

    words = ["<pad>", "<eos>", "a", "b", "c", "d", "e", "f"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")
    cfg = LlamaConfig(
        vocab_size=8,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    torch.manual_seed(0)
    policy, ref = LlamaForCausalLM(cfg), LlamaForCausalLM(cfg)
    beta = 0.3
    trainer = DPOTrainer(
        model=policy,
        ref_model=ref,
        # fp32 like the rest of the suite (accelerate keeps one precision per process)
        args=DPOConfig(output_dir=str(tmp_path), beta=beta, report_to=[], use_cpu=True, bf16=False),
        train_dataset=Dataset.from_list([{"prompt": "a b", "chosen": "c d", "rejected": "e"}]),
        processing_class=hf_tok,
    )
    # rows: [chosen_1, chosen_2, rejected_1, rejected_2]; prompt = first 2 tokens
    ids = torch.tensor([[2, 3, 4, 5, 1], [3, 2, 5, 1, 0], [2, 3, 6, 1, 0], [3, 2, 7, 7, 1]])
    attention = (ids != 0).long()
    completion = torch.tensor([[0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 0, 1, 1, 0], [0, 0, 1, 1, 1]])
    policy.eval()  # no dropout in either computation
    trl_loss = trainer.compute_loss(  # Trainer's public hook (TRL's DPO loss behind it)
        policy, {"input_ids": ids, "attention_mask": attention, "completion_mask": completion}
    )
    labels = ids.masked_fill(completion == 0, -100)
    with torch.no_grad():
        logps = sequence_logps(policy(input_ids=ids, attention_mask=attention).logits, labels)
        ref_logps = sequence_logps(ref(input_ids=ids, attention_mask=attention).logits, labels)
    ours = dpo_loss(*logps.chunk(2), *ref_logps.chunk(2), beta=beta)
    assert ours.loss.item() == pytest.approx(trl_loss.item(), abs=1e-6)
    assert ours.loss.item() != pytest.approx(math.log(2), abs=1e-4)  # the pairs really differ
