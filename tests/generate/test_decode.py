"""The one decode path: a batch of many questions of many scans gives, row for row, the
greedy answer each row gets on its own (real tiny model, real CT sample, synthetic scans)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mu2.generate.decode import DecodeOptions, decode, plan_batches
from mu2.generate.pipeline import ReportGenerator
from mu2.generate.settings import GenerationSettings
from mu2.io import CTVolume, load_ct

QUESTIONS = (
    "Describe the findings of the abdomen in this CT.",
    "Is there a renal cyst?",
    "Describe the findings of the chest in this CT, with every organ in detail.",
)


@pytest.fixture(scope="module")
def generator(varied_generator: ReportGenerator) -> ReportGenerator:
    return varied_generator


def _cases(generator: ReportGenerator, real_ct_path: Path, synth_dir: Path) -> list:
    real = load_ct(real_ct_path)
    # A shorter scan (fewer frames) so that the rows have two frame counts T.
    short = CTVolume(real.array[:, :, :40].copy(), real.spacing, real.affine, dict(real.meta))
    synth = sorted(synth_dir.glob("images/*.nii.gz"))[:2]
    scans = [real, short, *synth]
    return [generator.prepare_case(s, region="all", force=True) for s in scans]


@pytest.fixture(scope="module")
def rows(generator: ReportGenerator, real_ct_path: Path, synth_dir: Path) -> tuple[list, list]:
    frames, questions = [], []
    for i, case in enumerate(_cases(generator, real_ct_path, synth_dir)):
        for q in (*[s.question for s in case.sections], QUESTIONS[i % len(QUESTIONS)]):
            frames.append(case.prepared.frames)  # the same tensor for every question of a scan
            questions.append(q)
    return frames, questions


def test_batched_greedy_answers_equal_one_by_one(generator: ReportGenerator, rows) -> None:
    frames, questions = rows
    assert len({f.shape[0] for f in frames}) == 2  # two frame counts in the set
    settings = GenerationSettings(max_new_tokens=12, min_new_tokens=12)
    model, proc = generator.model, generator.processor
    alone = [
        decode(model, proc, [f], [q], settings=settings)
        for f, q in zip(frames, questions, strict=True)
    ]
    batched = decode(model, proc, frames, questions, settings=settings,
                     options=DecodeOptions(batch_size=7))  # fmt: skip
    # Not vacuous: batches mixed several scans and prompts of several lengths.
    assert any(len({id(frames[i]) for i in b}) > 1 for b in batched.batches)
    assert any(len({len(questions[i]) for i in b}) > 1 for b in batched.batches)
    assert sorted(i for b in batched.batches for i in b) == list(range(len(frames)))
    # The untrained model writes special tokens (empty texts): compare the token ids too.
    assert len({tuple(a.token_ids[0]) for a in alone}) > len(alone) // 2
    assert batched.token_ids == [a.token_ids[0] for a in alone]
    assert batched.texts == [a.texts[0] for a in alone]
    assert batched.new_tokens == [a.new_tokens[0] for a in alone]


def test_report_cases_equals_report_per_scan(generator, real_ct_path, synth_dir) -> None:
    cases = _cases(generator, real_ct_path, synth_dir)
    settings = GenerationSettings(max_new_tokens=8)
    again = _cases(generator, real_ct_path, synth_dir)
    one = [generator.report_cases([c], settings)[0] for c in again]
    many = generator.report_cases(cases, settings)
    assert [r.report for r in many] == [r.report for r in one]
    assert [[s.region for s in r.sections] for r in many] == [["chest", "abdomen", "pelvis"]] * 4
    for r in many:
        assert r.timings["encode"] > 0 and r.timings["generate"] > 0


def test_plan_batches_groups_by_frame_count() -> None:
    a, b = torch.zeros(2, 1, 1, 1), torch.zeros(3, 1, 1, 1)
    assert plan_batches([a, b, a, a, b], 2) == [[0, 2], [3], [1, 4]]


def test_static_kv_cache_gives_the_dynamic_answers(generator: ReportGenerator, rows) -> None:
    """``cache: static`` (pre-allocated KV cache, left-padded batches) decodes the same greedy
    tokens as the dynamic cache, and the static cache is really the one used."""
    frames, questions = rows
    settings = GenerationSettings(max_new_tokens=12, min_new_tokens=12)
    model, proc = generator.model, generator.processor
    caches: list[str] = []

    def spy(_module, _args, kwargs):  # records the cache the LLM is called with
        cache = kwargs.get("cache", kwargs.get("past_key_values"))  # name by transformers version
        caches.append(type(cache).__name__)

    dynamic = decode(model, proc, frames, questions, settings=settings,
                     options=DecodeOptions(batch_size=7))  # fmt: skip
    hook = model.language_model.register_forward_pre_hook(spy, with_kwargs=True)
    try:
        static = decode(model, proc, frames, questions, settings=settings,
                        options=DecodeOptions(batch_size=7, cache="static"))  # fmt: skip
    finally:
        hook.remove()
    assert caches and set(caches) == {"StaticCache"}, set(caches)
    assert static.token_ids == dynamic.token_ids
    assert static.texts == dynamic.texts
