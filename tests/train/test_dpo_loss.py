"""DPO loss: a hand-computed value, and agreement with TRL's DPOTrainer on the same sequences."""

import math

import pytest
import torch

from mu2.train.dpo_loss import completion_tokens, dpo_loss, sequence_logps


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


def _trl_and_ours(tmp_path, **trl_args):
    """TRL's DPOTrainer loss and the log-probs it is computed from, on one set of sequences."""
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
    trainer = DPOTrainer(
        model=policy,
        ref_model=ref,
        # fp32 like the rest of the suite (accelerate keeps one precision per process)
        args=DPOConfig(
            output_dir=str(tmp_path), report_to=[], use_cpu=True, bf16=False, **trl_args
        ),
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
    return trl_loss, logps, ref_logps, labels


def test_matches_trl_dpo_trainer(tmp_path):
    """TRL's sigmoid DPO loss, computed by its trainer on the same sequences and models."""
    trl_loss, logps, ref_logps, _ = _trl_and_ours(tmp_path, beta=0.3)
    ours = dpo_loss(*logps.chunk(2), *ref_logps.chunk(2), beta=0.3)
    assert ours.loss.item() == pytest.approx(trl_loss.item(), abs=1e-6)
    assert ours.loss.item() != pytest.approx(math.log(2), abs=1e-4)  # the pairs really differ


def test_rpo_matches_trl_sigmoid_plus_sft(tmp_path):
    """RPO = TRL's loss_type ["sigmoid", "sft"] weighted [1, alpha], on the same sequences."""
    trl_loss, logps, ref_logps, labels = _trl_and_ours(
        tmp_path, beta=0.3, loss_type=["sigmoid", "sft"], loss_weights=[1.0, 0.7]
    )
    chosen_tokens = completion_tokens(labels).chunk(2)[0]
    assert chosen_tokens.tolist() == [3, 2]
    ours = dpo_loss(*logps.chunk(2), *ref_logps.chunk(2), beta=0.3, rpo_alpha=0.7,
                    chosen_tokens=chosen_tokens)  # fmt: skip
    plain = dpo_loss(*logps.chunk(2), *ref_logps.chunk(2), beta=0.3)
    assert ours.loss.item() == pytest.approx(trl_loss.item(), abs=1e-6)
    assert ours.loss.item() > plain.loss.item() + 0.5  # the NLL term is really there


# The pairs of test_hand_computed_value: log-ratios (+1, -1) and (0, 0).
PAIRS = dict(
    policy_chosen_logps=torch.tensor([-10.0, -5.0]),
    policy_rejected_logps=torch.tensor([-12.0, -7.0]),
    ref_chosen_logps=torch.tensor([-11.0, -5.0]),
    ref_rejected_logps=torch.tensor([-11.0, -7.0]),
)


def test_rpo_nll_term_by_hand():
    # NLL per chosen token over the batch: (10 + 5) / (4 + 6) = 1.5; alpha 0.5 adds 0.75
    out = dpo_loss(**PAIRS, beta=0.1, rpo_alpha=0.5, chosen_tokens=torch.tensor([4, 6]))
    assert out.losses.tolist() == pytest.approx([0.5981388693 + 0.75, 0.6931471806 + 0.75])
    assert out.chosen_rewards.tolist() == pytest.approx([0.1, 0.0])  # rewards unchanged
    with pytest.raises(ValueError, match="chosen_tokens"):
        dpo_loss(**PAIRS, rpo_alpha=0.5)


def test_label_smoothing_by_hand():
    # eps 0.2, margin 0.2: 0.8 * log(1 + e^-0.2) + 0.2 * log(1 + e^0.2)
    out = dpo_loss(**PAIRS, beta=0.1, label_smoothing=0.2)
    assert out.losses[0].item() == pytest.approx(0.8 * 0.5981388693 + 0.2 * 0.7981388693)
    assert out.losses[1].item() == pytest.approx(0.6931471806)  # margin 0: log 2 either way


def test_reference_free_by_hand():
    # policy log-prob margins alone: 0.1 * (-10 + 12) = 0.2 and 0.1 * (-5 + 7) = 0.2
    out = dpo_loss(**PAIRS, beta=0.1, reference_free=True)
    assert out.losses.tolist() == pytest.approx([0.5981388693, 0.5981388693])
    assert out.chosen_rewards.tolist() == pytest.approx([-1.0, -0.5])
