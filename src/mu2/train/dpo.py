"""Stage 2 recipe, DPO on GREEN-ranked preference pairs (from ``mu2 prefs build``).

    mu2 train dpo --config configs/dpo/tiny.yaml [key=value ...]

setup: the policy starts from the SFT model folder; the frozen reference *is* the SFT
model (a second copy, or -- with LoRA on a model without adapters -- the policy with its
adapters switched off, which saves a whole model of memory). Dropout is off in the
policy (as TRL does) so policy and reference differ only by their weights.
train: each micro-batch holds B pairs as 2B rows, chosen first then rejected (TRL's
layout), with both rows of a pair on the very same prepared volume (one augmentation
draw); the reference sees the identical batch. Loss: sigmoid DPO on completion
log-probabilities summed over the report tokens (:mod:`mu2.train.dpo_loss`); logged:
implicit rewards, their margin and the pair accuracy.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import torch
from accelerate.utils import DistributedType
from torch import nn

from mu2.engine.dataset import PairCollator, adopt_prep
from mu2.engine.recipe import Recipe
from mu2.errors import Mu2Error
from mu2.train.config import DPOConfig
from mu2.train.dpo_loss import completion_tokens, dpo_loss, sequence_logps
from mu2.train.precision import cast_frozen_llm
from mu2.train.sampling import generate_reports, model_inputs
from mu2.train.sft import freeze_unused, load_sft_model, make_dataset

logger = logging.getLogger(__name__)

PAIR_FIELDS = ("image", "question", "chosen", "rejected")


def disable_dropout(model: nn.Module) -> None:
    """Dropout probability 0 everywhere: nn.Dropout modules and float ``*dropout`` attributes
    that attention layers pass to ``F.dropout`` (mu2's attention, HF's ``attention_dropout``)."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
        for name in ("dropout", "attention_dropout"):
            if isinstance(getattr(module, name, None), float):
                setattr(module, name, 0.0)


@contextlib.contextmanager
def adapters_disabled(model: nn.Module) -> Iterator[None]:
    """Run the base model under injected PEFT adapters (the SFT model = the reference)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers = [m for m in model.modules() if isinstance(m, BaseTunerLayer)]
    for layer in layers:
        layer.enable_adapters(False)
    try:
        yield
    finally:
        for layer in layers:
            layer.enable_adapters(True)


def _check_pairs(path: Path) -> None:
    """No pairs at all is a known outcome of prefs build (every case skipped): say so."""
    from mu2.train.prefs import skipped_path

    if (not path.is_file() or not path.read_text().strip()) and skipped_path(path).is_file():
        n = sum(1 for line in skipped_path(path).read_text().splitlines() if line.strip())
        raise Mu2Error(
            f"no preference pairs in {path}: prefs build skipped all {n} cases "
            f"(reasons in {skipped_path(path).name})",
            fix="train SFT longer (samples scoring GREEN 0 are skipped) or sample more (--n)",
        )


class DPORecipe(Recipe):
    stage = "dpo"

    def __init__(self, cfg: DPOConfig):
        super().__init__(cfg)
        self.cfg: DPOConfig = cfg
        self.ref: nn.Module | None = None

    def build(self):
        cfg, acc = self.cfg, self.accelerator
        if Path(cfg.output_dir).resolve() == Path(cfg.model.sft_model).resolve().parent:
            logger.warning(
                "DPO output_dir is the SFT run folder; the SFT 'final' would be replaced"
            )
        _check_pairs(Path(cfg.data.train))
        policy = load_sft_model(cfg.model.sft_model)
        adopt_prep(policy, cfg.data.prep, trained=True)
        self.processor = policy.processor
        self.processor.check_budget(
            cfg.model.max_length,
            getattr(policy.config.text_config, "max_position_embeddings", None),
            "Describe the findings.",
            "model.max_length",
        )
        policy.freeze(vision=cfg.model.freeze_vision, llm=cfg.model.freeze_llm or None)
        freeze_unused(policy)
        if cfg.model.disable_dropout:
            disable_dropout(policy)
        lora = cfg.model.lora
        if lora.enabled and not policy.config.lora:
            policy.add_lora(
                r=lora.r, alpha=lora.alpha, target_modules=lora.target_modules, dropout=lora.dropout
            )
            logger.info("reference = the policy with its LoRA adapters disabled")
        else:
            if lora.enabled:
                policy.freeze(llm=True)  # the SFT model's own adapters keep training
            self.ref = (
                load_sft_model(cfg.model.sft_model).requires_grad_(False).eval().to(acc.device)
            )
            plugin = getattr(acc.state, "deepspeed_plugin", None)
            if (
                acc.distributed_type == DistributedType.DEEPSPEED
                and plugin is not None
                and plugin.zero_stage == 3
            ):
                raise Mu2Error(
                    "DPO with a separate reference model is not supported under ZeRO-3",
                    fix="use configs/accelerate/deepspeed_zero2.yaml or model.lora.enabled=true",
                )
        cast_frozen_llm(policy, cfg.model.dtype)
        if cfg.model.gradient_checkpointing:
            policy.enable_checkpointing()
        train = make_dataset(
            cfg.data.train,
            cfg.data,
            seed=cfg.seed,
            train=True,
            required=PAIR_FIELDS,
            limit=cfg.data.limit,
        )
        self.val = (
            make_dataset(cfg.data.val, cfg.data, seed=cfg.seed, train=False, required=PAIR_FIELDS,
                         limit=cfg.data.max_val_cases)
            if cfg.data.val
            else None
        )  # fmt: skip
        self.collate = PairCollator(self.processor, cfg.model.max_length)
        return policy, train, self.collate

    def cases_in(self, batch):
        return int(batch["pixel_values"].shape[0]) // 2  # 2B rows = B pairs

    def pair_logps(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed completion log-probs (2B,) of the policy (with grad) and of the reference."""
        inputs = model_inputs(batch)
        labels = inputs.pop("labels")
        # One precision context for both: the prepared policy autocasts (bf16) but the
        # reference (not prepared) and the unwrapped policy would not, and the log-ratio at
        # step 0 would then measure the precision gap instead of 0.
        with self.accelerator.autocast(), self._same_attention_kernels():
            logps = sequence_logps(self.model(**inputs).logits, labels)  # (2B,)
            with torch.no_grad():
                if self.ref is not None:
                    ref_logits = self.ref(**inputs).logits
                else:
                    policy = self.accelerator.unwrap_model(self.model)
                    with adapters_disabled(policy):
                        ref_logits = policy(**inputs).logits
                ref_logps = sequence_logps(ref_logits, labels)  # (2B,)
        return logps, ref_logps

    def train(self) -> None:
        # The whole loop, backward included: gradient checkpointing recomputes the forward
        # there and must meet the kernel the forward used.
        with self._same_attention_kernels():
            super().train()

    def _same_attention_kernels(self) -> contextlib.AbstractContextManager:
        """On CPU, one attention kernel for the policy (with grad) and the reference.

        PyTorch's CPU ``scaled_dot_product_attention`` picks its fused kernel for the
        reference's no-grad call (the μ² tokenizer's masked attention) but the math kernel
        when inputs need grad; in bf16 the two differ, and the log-ratio at step 0 with
        them. The math kernel for both keeps it exactly 0. (Entered again inside the
        training loop: nesting is harmless.)
        """
        if self.accelerator.device.type != "cpu":
            return contextlib.nullcontext()
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel(SDPBackend.MATH)

    def compute_loss(self, batch):
        logps, ref_logps = self.pair_logps(batch)
        chosen, rejected = logps.chunk(2)  # (2B,) -> (B,), (B,): rows are [chosen; rejected]
        ref_chosen, ref_rejected = ref_logps.chunk(2)
        cfg = self.cfg
        out = dpo_loss(
            chosen, rejected, ref_chosen, ref_rejected, beta=cfg.beta, rpo_alpha=cfg.rpo_alpha,
            chosen_tokens=completion_tokens(batch["labels"]).chunk(2)[0],  # (2B,) -> (B,)
            label_smoothing=cfg.label_smoothing, reference_free=cfg.reference_free,
        )  # fmt: skip
        extra = {
            "reward_chosen": out.chosen_rewards.mean(),
            "reward_rejected": out.rejected_rewards.mean(),
            "reward_margin": out.margins.mean(),
            "reward_accuracy": out.accuracy,
            "logp_chosen": chosen.detach().mean(),
            "logp_rejected": rejected.detach().mean(),
        }
        return out.loss, extra

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        if self.val is None:
            return {}
        acc = self.accelerator
        indices = list(range(len(self.val)))[acc.process_index :: acc.num_processes]
        sums = torch.zeros(3, device=acc.device)  # loss sum, correct pairs, pairs
        for start in range(0, len(indices), self.run.batch_size):
            items = [self.val[i] for i in indices[start : start + self.run.batch_size]]
            batch = {k: v.to(acc.device) for k, v in self.collate(items).items()}
            with acc.autocast():
                loss, extra = self.compute_loss(batch)
            n = len(items)
            sums += torch.stack(
                [loss.float() * n, extra["reward_accuracy"].float() * n, torch.tensor(float(n))]
            )
        sums = acc.reduce(sums, "sum")
        values = {"loss": (sums[0] / sums[2]).item(), "reward_accuracy": (sums[1] / sums[2]).item()}
        self.log_samples()
        return values

    def log_samples(self) -> None:
        n = min(self.run.num_sample_reports, len(self.val) if self.val is not None else 0)
        if n == 0:
            return
        acc = self.accelerator
        items = [self.val[i] for i in range(n)]
        with acc.autocast():
            texts = generate_reports(
                acc.unwrap_model(self.model),
                self.processor,
                [it["frames"] for it in items],
                [it["question"] for it in items],
                device=acc.device,
                max_new_tokens=self.run.max_new_tokens,
            )
        self.metrics.log_samples(
            self.state.step,
            [
                {
                    "id": it.get("id", str(i)),
                    "reference": it.get("reference", it["chosen"]),
                    "generated": t,
                }
                for i, (it, t) in enumerate(zip(items, texts, strict=True))
            ],
        )


def run_dpo(cfg: DPOConfig) -> Path | None:
    """Train; return the final model folder (None when stopped early by ``stop_after``)."""
    return DPORecipe(cfg).run_all()
