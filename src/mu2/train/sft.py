"""Stage 1 recipe, supervised fine-tuning: next-token loss on the report tokens only.

    mu2 train sft --config configs/sft/tiny.yaml [key=value ...]

setup: build the mu2 model (``mu2.model.build``, or ``model.init_from`` a saved model),
freeze what the config says, optional LoRA, gradient checkpointing; the training JSONL
as prepared volumes (cached) with per-draw augmentation. train: the shared loop of
:class:`mu2.engine.recipe.Recipe`. cleanup: the model to ``<output_dir>/final``, loadable
by ``Mu2ForConditionalGeneration.from_pretrained`` (processor included), for
``mu2 report --model``, ``mu2 prefs build --model`` and ``mu2 train dpo``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from mu2.data.schema import read_jsonl
from mu2.engine.dataset import CTCaseDataset, SFTCollator, adopt_prep, augment_fn, prepare_fn
from mu2.engine.recipe import Recipe
from mu2.engine.tower_cache import TowerCache
from mu2.errors import Mu2Error
from mu2.train.aids import AuxiliaryLoss, sft_aids
from mu2.train.config import DataOptions, DPODataOptions, ModelOptions, SFTConfig
from mu2.train.precision import cast_frozen_llm
from mu2.train.sampling import generate_reports, model_inputs

logger = logging.getLogger(__name__)


def make_dataset(
    jsonl: str,
    data: DataOptions | DPODataOptions,
    *,
    seed: int,
    train: bool,
    required: tuple[str, ...],
    limit: int | None = None,
) -> CTCaseDataset:
    prep, key = prepare_fn(data.prep)
    return CTCaseDataset(
        jsonl,
        prep,
        augment_fn=augment_fn(data.augment and train),
        seed=seed,
        cache=data.cache,
        cache_dir=data.cache_dir,
        cache_key=key,
        cache_dtype=data.cache_dtype,
        limit=limit,
        required=required,
    )


def row_mean_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy averaged over each row's answer tokens, then over rows.

    logits (B, L, V), labels (B, L) with -100 outside the answer; rows without answer tokens
    are left out.
    """
    targets = labels[:, 1:]  # (B, L-1): token t+1 is predicted at position t
    nll = torch.nn.functional.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), targets.flatten(), ignore_index=-100, reduction="none"
    ).view_as(targets)  # (B, L-1)
    counts = (targets != -100).sum(dim=1)  # (B,)
    rows = counts > 0
    return (nll.sum(dim=1)[rows] / counts[rows]).mean()


def freeze_unused(model: torch.nn.Module) -> None:
    """Freeze parameters no forward uses, which DDP would wait for gradients of forever:
    MONAI's ViT blocks keep a ``norm_cross_attn`` LayerNorm even without cross-attention
    (the classification head is already frozen by ``Mu2ForConditionalGeneration.freeze``)."""
    for module in model.modules():
        if getattr(module, "with_cross_attention", True) is False and hasattr(
            module, "norm_cross_attn"
        ):
            module.norm_cross_attn.requires_grad_(False)


def build_model(opts: ModelOptions, train_texts: list[str], seed: int = 0) -> torch.nn.Module:
    """A fresh mu2 model (or one loaded from ``init_from``) with the freezing, LoRA and
    checkpointing the config asks for."""
    from mu2.model import Mu2ForConditionalGeneration, build

    if opts.init_from:
        if not Path(opts.init_from).is_dir():
            raise Mu2Error(
                f"model.init_from={opts.init_from} is not a folder",
                fix="pass a saved mu2 model folder (tiny: run `mu2 train lm --config "
                "configs/lm/tiny.yaml` first)",
            )
        model = Mu2ForConditionalGeneration.from_pretrained(opts.init_from)
    else:
        for name, path in (("llm_path", opts.llm_path), ("vision_path", opts.vision_path)):
            if path is not None and not Path(path).exists():
                hint = (
                    "run stage 0 first: mu2 train clip --config configs/clip/tiny.yaml"
                    if name == "vision_path"
                    else "download the model to that folder"
                )
                raise Mu2Error(
                    f"model.{name}={path} does not exist", fix=f"{hint}, or set model.{name}=null"
                )
        model = build(
            size=opts.size,
            preset=opts.preset,
            llm_path=opts.llm_path,
            vision_path=opts.vision_path,
            train_texts=train_texts,
            seed=seed,
            **opts.overrides,
        )
    # False leaves a part trainable; freeze() also fixes the ViT's unused classification head,
    # which DDP would otherwise wait for gradients of.
    model.freeze(
        vision=opts.freeze_vision,
        projector=opts.freeze_projector or None,
        tokenizer=opts.freeze_tokenizer or None,
        llm=opts.freeze_llm or None,
    )
    freeze_unused(model)
    if opts.lora.enabled:
        model.add_lora(
            r=opts.lora.r,
            alpha=opts.lora.alpha,
            dropout=opts.lora.dropout,
            target_modules=opts.lora.target_modules,
        )
    cast_frozen_llm(model, opts.dtype)
    if opts.gradient_checkpointing:
        model.enable_checkpointing()
    return model


def load_sft_model(path: str) -> torch.nn.Module:
    from mu2.model import Mu2ForConditionalGeneration

    if not (Path(path) / "config.json").is_file():
        raise Mu2Error(
            f"model.sft_model={path} is not a saved mu2 model",
            fix="run `mu2 train sft` first; it writes <output_dir>/final",
        )
    return Mu2ForConditionalGeneration.from_pretrained(path)


class SFTRecipe(Recipe):
    stage = "sft"

    def __init__(self, cfg: SFTConfig):
        super().__init__(cfg)
        self.cfg: SFTConfig = cfg
        self.tower_cache: TowerCache | None = None

    def build(self):
        cfg = self.cfg
        rows = read_jsonl(cfg.data.train)[: cfg.data.limit]
        texts = [text for r in rows for text in (r.question, r.answer)]
        model = build_model(cfg.model, texts, seed=cfg.seed)
        adopt_prep(model, cfg.data.prep)  # saved with the model: inference prepares alike
        self.processor = model.processor
        self.processor.check_budget(
            cfg.model.max_length,
            getattr(model.config.text_config, "max_position_embeddings", None),
            max((r.question for r in rows), key=len),
            "model.max_length",
        )
        train = make_dataset(
            cfg.data.train, cfg.data, seed=cfg.seed, train=True,
            required=("image", "question", "answer"), limit=cfg.data.limit,
        )  # fmt: skip
        self.val = (
            make_dataset(
                cfg.data.val,
                cfg.data,
                seed=cfg.seed,
                train=False,
                required=("image", "question", "answer"),
                limit=cfg.data.max_val_cases,
            )  # fmt: skip
            if cfg.data.val
            else None
        )
        self.collate = SFTCollator(self.processor, cfg.model.max_length)
        if cfg.cache_vision:
            self.tower_cache = TowerCache()
        # learning aids of the tiny model (mu2.train.aids); none in the paper's SFT
        self.aids: list[AuxiliaryLoss]
        self.aids, collate = sft_aids(cfg, model, rows, train, self.collate, self.tower_cache)
        return model, train, collate

    def compute_loss(self, batch):
        explicit = bool(self.aids) or self.cfg.cache_vision
        if self.cfg.loss_reduction == "token" and not explicit:
            return self.model(**model_inputs(batch)).loss, {}
        inputs = model_inputs(batch)
        labels = inputs.pop("labels")
        extra = {}
        if explicit:
            inputs["image_encoding"], extra = self._encode(batch, inputs)
        if self.cfg.loss_reduction == "token":
            loss = self.model(**inputs, labels=labels).loss
        else:
            logits = self.model(**inputs).logits  # (B, L, V)
            loss = row_mean_loss(logits, labels)
        for aid in self.aids:
            loss = loss + aid.weight * extra[aid.name]
        return loss, {k: v.detach() for k, v in extra.items()}

    def _encode(self, batch, inputs):
        """The visual tokens outside the LLM's forward: from the tower cache, and with the
        auxiliary losses. Single process only: the visual parameters would be used outside
        the DDP-wrapped forward."""
        if self.accelerator.num_processes > 1:
            raise Mu2Error(
                "code_weight, ground_weight and cache_vision run on one process only",
                fix="set code_weight=0 ground_weight=0 cache_vision=false for multi-GPU SFT",
            )
        model = self.accelerator.unwrap_model(self.model)
        pv, fm = inputs.pop("pixel_values"), inputs.pop("frame_mask")
        patches = None
        if self.tower_cache is not None:
            patches = self.tower_cache.patches(model.vision_tower, pv, fm)  # (F, N0, E_v)
        enc = model.encode_images(
            pv,
            fm,
            inputs.pop("question_ids"),
            inputs.pop("question_mask"),
            return_attribution=any(aid.needs_attribution for aid in self.aids),
            patches=patches,
        )
        return enc, {aid.name: aid.loss(batch, enc) for aid in self.aids}

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Token-weighted val loss over this process's share of the val cases, then sample reports."""
        if self.val is None:
            return {}
        acc = self.accelerator
        indices = list(range(len(self.val)))[acc.process_index :: acc.num_processes]
        total = torch.zeros(2, device=acc.device)  # (sum of token losses, token count)
        for start in range(0, len(indices), self.run.batch_size):
            items = [self.val[i] for i in indices[start : start + self.run.batch_size]]
            batch = {k: v.to(acc.device) for k, v in self.collate(items).items()}
            with acc.autocast():
                loss = self.model(**model_inputs(batch)).loss.float()
            tokens = (batch["labels"][:, 1:] != -100).sum()
            total += torch.stack([loss * tokens, tokens.float()])
        total = acc.reduce(total, "sum")
        values = {"loss": (total[0] / total[1].clamp(min=1)).item()}
        self.log_samples()
        return values

    def log_samples(self) -> None:
        """Greedy reports for the first few val cases, next to their references."""
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
                {"id": it.get("id", str(i)), "reference": it["answer"], "generated": text}
                for i, (it, text) in enumerate(zip(items, texts, strict=True))
            ],
        )


def run_sft(cfg: SFTConfig) -> Path | None:
    """Train; return the final model folder (None when stopped early by ``stop_after``)."""
    return SFTRecipe(cfg).run_all()
