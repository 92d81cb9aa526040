"""Training dataset: path resolution, caching, per-draw augmentation, sampler, collate."""

import json

import pytest
import torch

from mu2.errors import Mu2Error
from mu2.train.dataset import CTCaseDataset, Draw, EpochSampler, augment_fn, prepare_fn


@pytest.fixture()
def jsonl(tmp_path, data_dir):
    """Three rows over the two real CT samples, images relative to the JSONL's folder."""
    (tmp_path / "images").mkdir()
    for name in ("example_ct_sm.nii.gz", "example_ct.nii.gz"):
        (tmp_path / "images" / name).symlink_to(data_dir / "real-ct" / name)
    rows = [
        {
            "id": "a",
            "image": "images/example_ct_sm.nii.gz",
            "question": "Describe.",
            "answer": "Normal.",
        },
        {
            "id": "b",
            "image": "images/example_ct.nii.gz",
            "question": "Describe.",
            "answer": "Liver cyst.",
        },
        {
            "id": "c",
            "image": str(tmp_path / "images" / "example_ct_sm.nii.gz"),
            "question": "Q",
            "answer": "A",
        },
    ]
    path = tmp_path / "sub" / "train.jsonl"
    path.parent.mkdir()
    # relative paths resolve against the JSONL's own folder: move the images next to it
    (tmp_path / "sub" / "images").symlink_to(tmp_path / "images")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _dataset(jsonl, **kw):
    prep, key = prepare_fn("tiny")
    return CTCaseDataset(jsonl, prep, cache_key=key, **kw)


def test_items_resolve_images_and_keep_fields(jsonl):
    ds = _dataset(jsonl)
    assert len(ds) == 3
    item = ds[1]
    assert item["frames"].shape == (4, 16, 64, 64)  # 112 slices -> T = 4 frames of 16
    assert item["id"] == "b" and item["answer"] == "Liver cyst." and "image" not in item
    assert ds[0]["frames"].shape[0] == 2  # T follows the depth (30 slices)
    assert torch.equal(ds[2]["frames"], ds[0]["frames"])  # absolute path, same file


def test_memory_cache_prepares_each_scan_once(jsonl):
    prep, key = prepare_fn("tiny")
    calls = []
    ds = CTCaseDataset(jsonl, lambda r, j: calls.append(r) or prep(r, j), cache_key=key)
    first = ds.frames(0)
    assert ds.frames(0).dtype == torch.float32
    torch.testing.assert_close(ds.frames(2), first, rtol=0, atol=0)  # row 2: same scan as row 0
    assert len(calls) == 1
    exact = CTCaseDataset(jsonl, prep, cache="none")
    # float16 storage: within half a float16 step of the prepared values in [0, 1]
    torch.testing.assert_close(first, exact.frames(0), rtol=0, atol=2.5e-4)


def test_disk_cache_round_trip(jsonl, tmp_path):
    a = _dataset(jsonl, cache="disk", cache_dir=tmp_path / "cache")
    frames = a.frames(1)
    assert len(list((tmp_path / "cache").rglob("*.safetensors"))) == 1
    b = _dataset(jsonl, cache="disk", cache_dir=tmp_path / "cache")
    torch.testing.assert_close(b.frames(1), frames, rtol=0, atol=0)


def test_augmentation_depends_only_on_seed_epoch_index(jsonl):
    ds = _dataset(jsonl, augment_fn=augment_fn(True), seed=3)
    clean = ds.frames(1)
    draws = {e: ds[Draw(1, e)]["frames"] for e in range(4)}
    assert torch.equal(ds[Draw(1, 2)]["frames"], draws[2])  # same key, same draw
    assert any(not torch.equal(draws[e], draws[0]) for e in range(1, 4))  # epochs differ
    assert any(not torch.equal(d, clean) for d in draws.values())  # it augments...
    assert torch.equal(ds.frames(1), clean)  # ...without touching the cache


def test_sampler_is_a_permutation_per_epoch():
    s = EpochSampler(10, seed=1)
    s.set_epoch(0)
    e0 = list(s)
    s.set_epoch(1)
    e1 = list(s)
    assert sorted(d.index for d in e0) == list(range(10)) and {d.epoch for d in e1} == {1}
    assert [d.index for d in e0] != [d.index for d in e1]
    s.set_epoch(0)
    assert list(s) == e0


def test_missing_image_and_bad_rows_are_user_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "image": "nope.nii.gz", "question": "q", "answer": "a"}\n')
    with pytest.raises(Mu2Error, match="not found"):
        _dataset(bad)[0]
    bad.write_text('{"id": "x", "image": "nope.nii.gz"}\n')
    with pytest.raises(Mu2Error, match="line 1 lacks 'question', 'answer'"):
        _dataset(bad)
