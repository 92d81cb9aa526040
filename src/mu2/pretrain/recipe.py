"""Stage 0 recipe: contrastive image-report pretraining of the vision tower.

    mu2 train clip --config configs/clip/tiny.yaml [key=value ...]

setup: one item per scan (:mod:`mu2.pretrain.cases`) written to ``<output_dir>/cases/``,
a BPE tokenizer trained on the training reports, the stage-0 model
(:func:`mu2.pretrain.clip.build_clip_model`), volumes prepared once and cached by the
SFT data pipeline (:class:`mu2.engine.dataset.CTCaseDataset`). train: the loop every mu2
recipe shares (:class:`mu2.engine.recipe.Recipe`: accelerate, warm-up + cosine,
checkpoints and exact resume, metrics JSONL + TensorBoard, progress bar). save:
``<output_dir>/final/vision.safetensors`` -- what ``model.vision_path`` of an SFT config
loads, exactly as the paper config loads M3D-CLIP's ``pretrained_ViT.bin`` -- and the
probe of the tower (``probe.json``, ``probe.md``) beside it.

InfoNCE negatives are the other cases of the same micro-batch on the same process.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from mu2.data.synthetic.anatomy import LABELS
from mu2.data.synthetic.lesions import LESION_LABEL
from mu2.data.synthetic.synth import label_map_path
from mu2.engine.dataset import CTCaseDataset
from mu2.engine.label_patches import patch_label_shares, unknown_labels
from mu2.engine.recipe import Recipe
from mu2.errors import Mu2Error
from mu2.model.processing import Mu2Processor
from mu2.pretrain.cases import Case, LabelSpace, read_cases, write_cases
from mu2.pretrain.clip import build_clip_model, save_clip
from mu2.pretrain.config import ClipConfig
from mu2.pretrain.dataset import case_dataset
from mu2.pretrain.probe import probe_folder

logger = logging.getLogger(__name__)

CASES_DIR = "cases"
NORM_STATS_CASES = 32  # volumes whose voxels give the input mean and std


def frame_stats(dataset: CTCaseDataset, n: int) -> tuple[float, float]:
    """Mean and standard deviation of the prepared (un-augmented) frames of the first n cases."""
    total = total_sq = count = 0.0
    for i in range(min(n, len(dataset))):
        x = dataset.frames(i).double()  # (T, K, H, W)
        total += float(x.sum())
        total_sq += float((x * x).sum())
        count += x.numel()
    mean = total / count
    return mean, max(total_sq / count - mean * mean, 1e-12) ** 0.5


class LabelShares:
    """Per case: the share of each label group's voxels in each ViT patch, (G, T, gz, gy,
    gx), from the label map beside the cases' JSONL (computed on first use and kept; stage
    0's ``model.lesion_weight`` and ``model.organ_weight``). ``lesion``: group 0 is the
    lesion target's, the others the organ target's."""

    def __init__(
        self,
        cases: Sequence[Case],
        root: Path,
        prep: str,
        patch_size: Sequence[int],
        groups: Sequence[Sequence[str]],
        lesion: bool,
    ):
        self.images = {c.case_id: c.image for c in cases}
        self.root = root
        self.prep = prep
        self.patch_size = tuple(patch_size)
        self.groups = [list(g) for g in groups]
        self.lesion = lesion
        self._shares: dict[str, torch.Tensor] = {}

    def __call__(self, case_id: str) -> torch.Tensor:
        if case_id not in self._shares:
            self._shares[case_id] = patch_label_shares(
                label_map_path(self.root, case_id),
                self.images[case_id],
                self.prep,
                self.groups,
                self.patch_size,
            )
        return self._shares[case_id]


class ClipCollator:
    """Items -> ``pixel_values`` (B, T, K, H, W), ``frame_mask`` (B, T), ``input_ids`` and
    ``attention_mask`` (B, L) of the reports, ``labels`` (B, C) multi-hot findings, and
    with ``shares`` ``lesion_share`` (B, T, gz, gy, gx) and / or ``organ_share`` (B, G, T,
    gz, gy, gx), padded frames 0."""

    def __init__(
        self,
        tokenizer: Any,
        labels: LabelSpace,
        max_length: int,
        shares: LabelShares | None = None,
    ):
        self.tokenizer = tokenizer
        self.labels = labels
        self.max_length = max_length
        self.shares = shares

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        pixel_values, frame_mask = Mu2Processor.pad_frames([it["frames"] for it in items])
        text = self.tokenizer(
            [it["text"] for it in items],
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        batch = {
            "pixel_values": pixel_values,
            "frame_mask": frame_mask,
            "input_ids": text["input_ids"],
            "attention_mask": text["attention_mask"],
        }
        if len(self.labels):
            batch["labels"] = torch.stack([self.labels.encode(it["findings"]) for it in items])
        if self.shares is not None:
            shares = [self.shares(it["id"]) for it in items]  # (G, T_i, gz, gy, gx) each
            g, _, *grid = shares[0].shape
            out = torch.zeros(len(items), g, frame_mask.shape[1], *grid)  # (B, G, T, ...)
            for i, share in enumerate(shares):
                out[i, :, : share.shape[1]] = share
            first = 1 if self.shares.lesion else 0
            if self.shares.lesion:
                batch["lesion_share"] = out[:, 0]  # (B, T, gz, gy, gx)
            if g > first:
                batch["organ_share"] = out[:, first:]  # (B, G', T, gz, gy, gx)
        return batch


class ClipRecipe(Recipe):
    stage = "clip"

    def __init__(self, cfg: ClipConfig):
        super().__init__(cfg)
        self.cfg: ClipConfig = cfg

    def _cases(self, split: str, jsonl: str, limit: int | None) -> Path:
        """Case rows of one split, written once by the main process."""
        path = self.output_dir / CASES_DIR / f"{split}.jsonl"
        if self.accelerator.is_main_process:
            write_cases(read_cases(jsonl, limit), path.with_suffix(".tmp")).replace(path)
        self.accelerator.wait_for_everyone()
        return path

    def build(self):
        from mu2.model.text import train_text_tokenizer

        cfg, opts = self.cfg, self.cfg.model
        cases = read_cases(cfg.data.train, cfg.data.limit)
        if len(cases) < 2:
            raise Mu2Error(
                f"{len(cases)} training case(s)",
                path=cfg.data.train,
                fix="stage 0 needs >= 2 scans",
            )
        self.labels = (
            LabelSpace.from_cases(cases, opts.findings_sides)
            if opts.findings_weight > 0
            else LabelSpace([])
        )
        if opts.findings_weight > 0 and not len(self.labels):
            logger.info("no structured findings in %s: findings head off", cfg.data.train)
        self.tokenizer = train_text_tokenizer([c.text for c in cases], opts.vocab_size)
        model = build_clip_model(
            opts, len(self.tokenizer), self.tokenizer.pad_token_id, len(self.labels), seed=cfg.seed
        )
        # The classification head of the MONAI layout is never used (as in SFT).
        model.vision.vit.classification_head.requires_grad_(False)
        self.collate = ClipCollator(self.tokenizer, self.labels, opts.text_max_length)
        train_collate = self.collate
        if opts.lesion_weight > 0 or opts.organ_weight > 0:
            train_collate = ClipCollator(
                self.tokenizer,
                self.labels,
                opts.text_max_length,
                self._label_shares(cases, model.vision.config.patch_size),
            )
        train = case_dataset(
            self._cases("train", cfg.data.train, cfg.data.limit),
            cfg.data,
            seed=cfg.seed,
            train=True,
        )
        self.val = None
        if cfg.data.val:
            val_path = self._cases("val", cfg.data.val, cfg.data.max_val_cases)
            self.val = case_dataset(val_path, cfg.data, seed=cfg.seed, train=False)
        if opts.input_norm == "auto" and not opts.vision_path:
            mean, std = frame_stats(train, NORM_STATS_CASES)
            model.set_input_norm(mean, std)
            logger.info("input standardisation from %d volumes: mean %.4f std %.4f",
                        min(NORM_STATS_CASES, len(train)), mean, std)  # fmt: skip
        logger.info("stage 0: %d training cases, findings labels %s", len(cases), self.labels.names)
        return model, train, train_collate

    def _label_shares(self, cases: Sequence[Case], patch_size: Sequence[int]) -> LabelShares:
        """The lesion and organ targets' label maps; augmentation must keep voxels in place."""
        cfg = self.cfg
        opts = cfg.model
        on = [f"model.{n}" for n in ("lesion_weight", "organ_weight") if getattr(opts, n) > 0]
        aim = " and ".join(on)  # the targets that read label maps
        aug = cfg.data.augmentation
        if cfg.data.augment and (aug.rot90_prob or aug.flip_prob):
            raise Mu2Error(
                f"the label-map targets ({aim}) need frames whose voxels stay in place",
                fix="set data.augmentation.rot90_prob=0 and data.augmentation.flip_prob=0",
            )
        root = Path(cfg.data.train).parent
        missing = [c.case_id for c in cases if not label_map_path(root, c.case_id).is_file()]
        if missing:
            raise Mu2Error(
                f"the label-map targets ({aim}) read label maps; {len(missing)} of {len(cases)} "
                f"training cases have none (first: {missing[0]})",
                path=str(label_map_path(root, missing[0])),
                fix="synthesise with `mu2 data synth --save-labels`, or set "
                + " and ".join(f"{n}=0" for n in on),
            )
        # Channels of ``label_share``: the lesion first (when on), then the organ groups.
        groups = [[LESION_LABEL]] if opts.lesion_weight > 0 else []
        groups += [g.split("+") for g in opts.organ_labels] if opts.organ_weight > 0 else []
        unknown = unknown_labels(groups)  # checked before training, named by its config key
        if unknown:
            raise Mu2Error(
                f"model.organ_labels names unknown label(s) {unknown}",
                fix=f"use label-map names ({', '.join(sorted(LABELS))}), '+' joins several",
            )
        return LabelShares(cases, root, cfg.data.prep, patch_size, groups, opts.lesion_weight > 0)

    def compute_loss(self, batch):
        out = self.model(**batch)
        extra = {
            "clip_loss": out.clip_loss.detach(),
            "findings_loss": out.findings_loss.detach(),
            "histogram_loss": out.histogram_loss.detach(),
            "lesion_loss": out.lesion_loss.detach(),
            "organ_loss": out.organ_loss.detach(),
            "logit_scale": out.logit_scale.detach(),
        }
        return out.loss, extra

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Val losses, image -> report retrieval top-1 and findings-head accuracy (all val
        cases on every process: the val split is small and retrieval needs all of them)."""
        if self.val is None or len(self.val) < 2:
            return {}
        acc = self.accelerator
        model = acc.unwrap_model(self.model)
        images, texts, logits, targets = [], [], [], []
        size = self.run.batch_size
        for start in range(0, len(self.val), size):
            items = [self.val[i] for i in range(start, min(start + size, len(self.val)))]
            batch = {k: v.to(acc.device) for k, v in self.collate(items).items()}
            with acc.autocast():
                out = model(**batch)
            images.append(out.image_embeds.float())
            texts.append(out.text_embeds.float())
            if out.findings_logits is not None:
                logits.append(out.findings_logits.float())
                targets.append(batch["labels"])
        image, text = torch.cat(images), torch.cat(texts)  # (V, E) each
        scale = model.scale().float()
        from mu2.pretrain.clip import clip_loss

        values = {
            "clip_loss": clip_loss(image, text, scale).item(),
            "retrieval_top1": (image @ text.T)
            .argmax(1)
            .eq(torch.arange(len(image), device=image.device))
            .float()
            .mean()
            .item(),
        }
        if logits:
            lg, tg = torch.cat(logits), torch.cat(targets)  # (V, C)
            values["findings_loss"] = torch.nn.functional.binary_cross_entropy_with_logits(
                lg, tg
            ).item()
            values["findings_acc"] = (lg > 0).eq(tg > 0.5).float().mean().item()
        return values

    def save_model(self, unwrapped: torch.nn.Module, out: Path, state_dict: dict | None) -> None:
        save_clip(unwrapped, self.tokenizer, self.labels, self.cfg.model, out, state_dict)


def run_clip(cfg: ClipConfig) -> Path | None:
    """Train stage 0 and probe the tower; return the final folder (None when stopped early)."""
    recipe = ClipRecipe(cfg)
    final = recipe.run_all()
    if final is not None and recipe.is_main and cfg.probe.enabled and cfg.data.test:
        probe_folder(
            final,
            recipe.output_dir / CASES_DIR / "train.jsonl",
            cfg.data.test,
            cfg.data,
            cfg.probe,
            batch_size=cfg.batch_size,
        )
    return final


__all__ = ["Case", "ClipCollator", "LabelShares", "ClipRecipe", "case_dataset", "run_clip"]
