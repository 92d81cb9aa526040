"""Predict a JSONL split (the synthetic data set's real file layout) with the one predictor."""

from __future__ import annotations

import json
from pathlib import Path

from mu2.generate.predict import predict_split


def test_split_rows_batched_with_a_loader_worker_equal_one_by_one(
    varied_generator, synth_dir: Path, tmp_path: Path
) -> None:
    split = next(p for p in ("train", "val", "test") if (synth_dir / f"{p}.jsonl").is_file())
    jsonl = synth_dir / f"{split}.jsonl"
    rows = [json.loads(x) for x in jsonl.read_text().splitlines() if x.strip()]
    tasks = sorted({r.get("task", "report") for r in rows})
    kw = dict(cache_dir=tmp_path / "cache", tasks=tasks, max_new_tokens=6, progress=False)
    model = varied_generator.model
    one = predict_split(model, jsonl, batch_size=1, **kw)
    many = predict_split(model, jsonl, batch_size=4, workers=1, **kw)
    assert len(one) == len(rows) >= 2
    assert len({r["prediction"] for r in one}) >= 2  # the answers differ between rows
    assert many == one
    assert [r["id"] for r in one] == [str(r["id"]) for r in rows]
    assert all(r["reference"] == src["answer"] for r, src in zip(one, rows, strict=True))
    assert {"question", "region", "findings"} <= set(one[0])
    assert predict_split(model, jsonl, batch_size=4, max_cases=1, **kw) == one[:1]
