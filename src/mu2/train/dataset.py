"""Training data: CT volumes from a unified JSONL, prepared once, augmented per draw.

Rows are the unified JSONL of ``mu2 data`` (``{"id", "image", "question", "answer", ...}``)
or the preference pairs of ``mu2 prefs build`` (``"chosen"``/``"rejected"`` instead of
``"answer"``); ``image`` is resolved relative to the JSONL's folder unless absolute.

Preparing a volume (orientation, HU scaling, resizing) costs far more than a training
step of the tiny model, so prepared frames are cached: in memory (default; one copy per
process) or on disk (``cache_dir``, shared by processes and runs). Augmentation runs on
the cached frames with a generator seeded by (seed, epoch, index): the draw depends
only on *which* case in *which* epoch, never on process count, batch size or resume
point, so a resumed or distributed run sees exactly the volumes a single run sees.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset, Sampler

from mu2.data.schema import resolve_image
from mu2.errors import Mu2Error

logger = logging.getLogger(__name__)


class Draw(NamedTuple):
    """One case drawn in one epoch: the key of its augmentation."""

    index: int
    epoch: int


def read_rows(path: str | Path, required: tuple[str, ...] = ("image",)) -> list[dict[str, Any]]:
    """JSONL rows with a clear error naming the line that is not JSON or lacks a field."""
    path = Path(path)
    if not path.is_file():
        raise Mu2Error(
            "data file not found", path=str(path), fix="run `mu2 data synth` or pass data.train=..."
        )
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise Mu2Error(f"line {n} is not JSON", path=str(path)) from None
            missing = [k for k in required if not isinstance(row, dict) or k not in row]
            if missing:
                raise Mu2Error(
                    f"line {n} lacks {', '.join(repr(k) for k in missing)}",
                    path=str(path),
                    fix=f"every row needs {', '.join(required)}",
                )
            rows.append(row)
    if not rows:
        raise Mu2Error("no rows", path=str(path), fix="point to a non-empty JSONL")
    return rows


def augmentation_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed that mixes (seed, epoch, index) well (numpy's SeedSequence hashing)."""
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


RowPrepare = Callable[[Mapping[str, Any], Path], torch.Tensor]
"""(JSONL row, the JSONL's path) -> prepared frames (T, K, H, W)."""


def prepare_fn(prep: str) -> tuple[RowPrepare, str]:
    """(row reader -> prepared frames (T, K, H, W), cache key) for a named preprocessing size.

    Rows are read by :func:`mu2.data.volume_io.prepare_record`, the one reader that applies
    a row's ``meta`` (CT-RATE v1 rescaling, M3D-Cap unit arrays), as ``mu2 data check`` does.
    """
    from mu2.data.volume_io import prepare_record
    from mu2.preprocess import prep_config

    cfg = prep_config(prep)

    def run(row: Mapping[str, Any], jsonl: Path) -> torch.Tensor:
        return prepare_record(row, jsonl, cfg).frames.float()

    return run, repr(cfg)


def augment_fn(enabled: bool) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None:
    """Training augmentation of prepared frames (mu2.preprocess.augment), or None.

    Side-preserving (intensity and noise only): the reports state left and right.
    """
    if not enabled:
        return None
    from mu2.preprocess import AugmentConfig, augment

    return partial(_augment, cfg=AugmentConfig.side_preserving(), fn=augment)


def _augment(
    frames: torch.Tensor, generator: torch.Generator, *, cfg: Any, fn: Any
) -> torch.Tensor:
    return fn(frames, cfg, generator)


class CTCaseDataset(Dataset):
    """Items: ``{"frames": (T, K, H, W) float tensor, **row fields except image}``.

    ``prepare_fn`` maps (row, JSONL path) to prepared frames (T, K, H, W); ``augment_fn``
    maps (frames, generator) to augmented frames, or None for no augmentation.
    """

    def __init__(
        self,
        jsonl: str | Path,
        prepare_fn: RowPrepare,
        *,
        augment_fn: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
        seed: int = 0,
        cache: str = "memory",
        cache_dir: str | Path | None = None,
        cache_key: str = "",
        cache_dtype: str = "float16",
        limit: int | None = None,
        required: tuple[str, ...] = ("image", "question", "answer"),
    ):
        if cache not in ("memory", "disk", "none"):
            raise Mu2Error(f"data.cache is {cache!r}", fix="use memory, disk or none")
        if cache == "disk" and not cache_dir:
            raise Mu2Error("data.cache=disk needs data.cache_dir", fix="set data.cache_dir=DIR")
        self.jsonl = Path(jsonl)
        self.rows = read_rows(self.jsonl, required)[:limit]
        self.prepare_fn = prepare_fn
        self.augment_fn = augment_fn
        self.seed = seed
        self.cache = cache
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.cache_key = cache_key
        if cache_dtype not in ("float16", "float32"):
            raise Mu2Error(f"data.cache_dtype is {cache_dtype!r}", fix="use float16 or float32")
        self.cache_dtype = getattr(torch, cache_dtype)
        self._memory: dict[str, torch.Tensor] = {}  # by image path: rows often share a scan

    def __len__(self) -> int:
        return len(self.rows)

    def image_path(self, index: int) -> Path:
        return resolve_image(self.rows[index], self.jsonl)

    def frames(self, index: int) -> torch.Tensor:
        """Prepared, un-augmented frames (T, K, H, W) float32, from the cache when possible.

        Cached frames are stored in ``cache_dtype`` (float16 halves the memory; its step
        near 1.0 is 0.0005 of the [0, 1] range, about 0.2 HU in a 400 HU window).
        """
        path = self.image_path(index)
        meta = self.rows[index].get("meta") or {}
        # rows sharing a scan share frames, unless their meta reads it differently
        key = f"{path.resolve()}|{json.dumps(meta, sort_keys=True)}" if meta else str(path.resolve())
        if key in self._memory:
            return self._memory[key].float()
        if not path.exists():
            raise Mu2Error(
                f"image of row {index + 1} not found: {path}",
                path=str(self.jsonl),
                fix="image paths are relative to the JSONL's folder (or absolute)",
            )
        disk = self._disk_path(path, meta) if self.cache == "disk" else None
        if disk is not None and disk.is_file():
            frames = load_file(str(disk))["frames"]
        else:
            frames = self.prepare_fn(self.rows[index], self.jsonl)
            if self.cache != "none":
                frames = frames.to(self.cache_dtype)
            if disk is not None:
                disk.parent.mkdir(parents=True, exist_ok=True)
                tmp = disk.with_suffix(f".tmp{torch.randint(1 << 30, ()).item()}")
                save_file({"frames": frames.contiguous()}, str(tmp))
                tmp.replace(disk)  # atomic: processes sharing the cache never read half a file
        if self.cache == "memory":
            self._memory[key] = frames
        return frames.float()

    def _disk_path(self, image: Path, meta: Mapping[str, Any]) -> Path:
        stat = image.stat()
        key = f"{image.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{self.cache_key}"
        if meta:  # rows without meta keep the cache files they always had
            key += "|" + json.dumps(meta, sort_keys=True)
        digest = hashlib.sha1(key.encode()).hexdigest()
        assert self.cache_dir is not None
        return self.cache_dir / digest[:2] / f"{digest}.safetensors"

    def __getitem__(self, item: int | Draw) -> dict[str, Any]:
        draw = item if isinstance(item, Draw) else Draw(int(item), 0)
        frames = self.frames(draw.index)
        if self.augment_fn is not None:
            gen = torch.Generator().manual_seed(
                augmentation_seed(self.seed, draw.epoch, draw.index)
            )
            frames = self.augment_fn(frames, gen)
        row = {k: v for k, v in self.rows[draw.index].items() if k != "image"}
        return {"frames": frames, **row}


class EpochSampler(Sampler[Draw]):
    """Shuffled order per epoch from (seed, epoch); yields :class:`Draw` keys.

    ``accelerate`` shards the batches of this sampler across processes and calls
    ``set_epoch``; the order never depends on global RNG state.
    """

    def __init__(self, size: int, seed: int = 0, *, shuffle: bool = True):
        self.size = size
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[Draw]:
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order: Sequence[int] = torch.randperm(self.size, generator=gen).tolist()
        else:
            order = range(self.size)
        for index in order:
            yield Draw(index, self.epoch)


class SFTCollator:
    """Items -> one model batch: padded frames and the prompt + report tokens.

    Returns ``pixel_values`` (B, T, K, H, W), ``frame_mask`` (B, T), ``input_ids``,
    ``attention_mask``, ``labels`` (B, L; -100 outside the report), ``question_ids``,
    ``question_mask`` (B, Lq).
    """

    def __init__(self, processor: Any, max_length: int | None):
        self.processor = processor
        self.max_length = max_length

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        pixel_values, frame_mask = self.processor.pad_frames([it["frames"] for it in items])
        text = self.processor(
            [it["question"] for it in items],
            answers=[it["answer"] for it in items],
            max_length=self.max_length,
        )
        return {"pixel_values": pixel_values, "frame_mask": frame_mask, **text}


class PairCollator:
    """Preference pairs -> one batch of 2B rows, chosen first then rejected (TRL's layout).

    Both halves share the very same frames tensor of their pair, so the policy and the
    reference, chosen and rejected, all see one augmentation draw.
    """

    def __init__(self, processor: Any, max_length: int | None):
        self.processor = processor
        self.max_length = max_length

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        frames = [it["frames"] for it in items]
        # (B, T, K, H, W) twice -> (2B, T, K, H, W): row i and row B + i are one pair
        pixel_values, frame_mask = self.processor.pad_frames(frames + frames)
        questions = [it["question"] for it in items]
        text = self.processor(
            questions + questions,
            answers=[it["chosen"] for it in items] + [it["rejected"] for it in items],
            max_length=self.max_length,
        )
        return {"pixel_values": pixel_values, "frame_mask": frame_mask, **text}
