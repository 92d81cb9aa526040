"""``mu2 bench tokenizer --quick``: a planted single-token lesion, one budget for both rows.

The quick run goes through the CLI a user types; the checks recompute accuracy and chance
from the saved per-item results with their own arithmetic (no import of the report code).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from mu2.bench.tokenizer_bench.config import TokenBenchConfig
from mu2.bench.tokenizer_bench.scenes import make_world, sample_batch
from mu2.errors import Mu2Error


@pytest.fixture(scope="module")
def quick_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of one `mu2 bench tokenizer --quick` run (results.json, table.md)."""
    from mu2.cli.main import main

    out = tmp_path_factory.mktemp("bench-tokenizer")
    with pytest.raises(SystemExit) as done:  # typer's standalone mode exits on success
        main(["bench", "tokenizer", "--quick", "--quiet", "--out", str(out)])
    assert done.value.code == 0
    assert "### Claims" in (out / "table.md").read_text()
    return out


@pytest.fixture(scope="module")
def quick_run(quick_out: Path) -> dict:
    return json.loads((quick_out / "results.json").read_text())


def _wilson_low(hits: int, n: int, z: float = 1.96) -> float:
    p = hits / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n)


def _above_chance(data: dict, row: str) -> tuple[float, float]:
    """(Wilson 95% lower bound of the row's accuracy, majority-label rate) on seed 0."""
    labels = data["eval_meta"]["0"]["label"]
    correct = next(r["correct"] for r in data["runs"] if r["row"] == row)
    chance = max(labels.count(v) for v in set(labels)) / len(labels)
    return _wilson_low(sum(correct), len(correct)), chance


def test_quick_bench_matches_budgets_and_plants_single_token_lesions(quick_run: dict) -> None:
    params = {r["row"]: r["params"] for r in quick_run["runs"]}
    assert set(params) == {"linvt", "mu2"}
    assert min(params.values()) >= 0.9 * max(params.values())
    sizes = set(quick_run["eval_meta"]["0"]["size"])
    assert sizes == {0, 1}  # none, or a one-token lesion in the asked region


def test_quick_bench_linvt_finds_the_single_token_lesion(quick_run: dict) -> None:
    """Positive control: the benchmark's lesion is learnable within the quick budget."""
    low, chance = _above_chance(quick_run, "linvt")
    assert low > chance + 0.1, (low, chance)


def test_quick_bench_mu2_finds_the_single_token_lesion(quick_run: dict) -> None:
    low, chance = _above_chance(quick_run, "mu2")
    assert low > chance + 0.1, (low, chance)


def test_scenes_put_the_lesion_in_the_asked_region() -> None:
    cfg = TokenBenchConfig(kinds=1, sizes=(1,), max_distractors=0, present_prob=1.0, lesion_amplitude=2.0,
                           noise_smoothing=0.0, side_question_prob=1.0)  # fmt: skip
    world = make_world(cfg)
    g = torch.Generator().manual_seed(0)
    b = sample_batch(cfg, world, 64, g)
    t, (gz, gy, gx), e = cfg.frames, cfg.grid, cfg.width
    frames = b.frames.view(64, t, gz, gy, gx, e)
    background = world.organ[None, :, None, None, None] + world.position[None]
    # Project out the background; the lesion token has the largest match with the signature.
    score = ((frames - background) @ world.kinds[0]).view(64, t, gz * gy, gx)
    for i in range(64):
        organ = int(b.question[i, 2]) - 3
        side = int(b.question[i, 3]) - 3 - 4
        flat = int(score[i].flatten().argmax())
        f, x = flat // (gz * gy * gx), flat % gx
        assert (f, x // (gx // 2)) == (organ, side), i


def test_bad_config_is_one_clear_error() -> None:
    with pytest.raises(Mu2Error, match="rows"):
        TokenBenchConfig(rows=["nope"])


def test_claim_verdict_does_not_reward_a_constant_lesion_answer() -> None:
    """A row that always says "lesion" must lose the small-lesion claim to a row that reads
    the scene, although it is perfect on the lesion items alone."""
    from mu2.bench.tokenizer_bench import verdicts
    from mu2.bench.tokenizer_bench.report import Results

    n, meta, runs = 40, {}, []
    for seed in range(3):
        size = [1] * (n // 2) + [0] * (n // 2)
        label = [1 if s else 0 for s in size]
        meta[str(seed)] = {"label": label, "size": size, "distractors": [0] * n,
                           "side_question": [1] * n}  # fmt: skip
        reads = [True] * n
        reads[seed] = reads[n - 1 - seed - seed] = False  # a few misses, different per seed
        runs.append({"row": "linvt", "seed": seed, "correct": reads, "kind_correct": reads})
        constant = [s > 0 for s in size]
        runs.append({"row": "mu2", "seed": seed, "correct": constant, "kind_correct": constant})
    data = {"config": {"max_distractors": 0}, "eval_meta": meta, "runs": runs}
    (v,) = [v for v in verdicts(Results(data)) if v["contrast"] == "mu2 - linvt"]
    assert v["verdict"] == "contradicted (mu2 not above chance)", v  # a constant answer is chance


def _hits(n: int, rate: float) -> list[bool]:
    k = round(rate * n)
    return [True] * k + [False] * (n - k)


def _distractor_data(rates: dict[str, tuple[float, float]]) -> dict:
    """3 seeds, 60 items: 30 with 0 distractors, 30 with 2; rates = row -> (at 0, at 2), each
    seed a little off so the t interval over seeds is not degenerate."""
    meta, runs = {}, []
    for seed in range(3):
        label = ([0, 1] * 30)[:60]
        meta[str(seed)] = {"label": label, "size": [1 if v else 0 for v in label],
                           "distractors": [0] * 30 + [2] * 30, "side_question": [1] * 60}  # fmt: skip
        for row, (at0, at2) in rates.items():
            c = _hits(30, at0 - 0.03 * seed) + _hits(30, at2 - 0.03 * seed)
            runs.append({"row": row, "seed": seed, "correct": c, "kind_correct": c})
    return {"config": {"max_distractors": 2}, "eval_meta": meta, "runs": runs}


def _verdict(data: dict, claim: str) -> dict:
    from mu2.bench.tokenizer_bench import verdicts
    from mu2.bench.tokenizer_bench.report import Results

    (v,) = [v for v in verdicts(Results(data)) if v["claim"] == claim]
    return v


def test_question_conditioning_claim_is_the_loss_to_distractors_not_overall_skill() -> None:
    """μ² better than the no-question control by the same margin with and without distractors
    is not distractor resistance; μ² keeping its accuracy while the control loses is."""
    claim = "question conditioning resists distractors"
    same_margin = _distractor_data({"mu2": (0.9, 0.9), "mu2-noq": (0.6, 0.6)})
    v = _verdict(same_margin, claim)
    assert v["verdict"].startswith("not shown"), v
    assert abs(v["difference"]) < 1e-9, v
    control_loses = _distractor_data({"mu2": (0.9, 0.9), "mu2-noq": (0.9, 0.5)})
    v = _verdict(control_loses, claim)
    assert v["verdict"] == "supported" and abs(v["difference"] - 0.4) < 0.02, v
    # A control at chance (labels are 50/50) loses nothing to distractors: no verdict, although
    # μ²'s loss alone would read "contradicted".
    at_chance = _distractor_data({"mu2": (0.9, 0.7), "mu2-noq": (0.5, 0.5)})
    v = _verdict(at_chance, claim)
    assert v["verdict"] == "not shown (mu2-noq not above chance: its loss says nothing)", v
    v = _verdict(at_chance, "question conditioning helps with distractors")
    assert v["verdict"] == "supported (mu2-noq not above chance)", v


def test_report_chance_of_kind_only_table_and_clipped_intervals() -> None:
    from mu2.bench.tokenizer_bench.report import Results

    # Labels 40% none, 60% kind 0 (split over two size classes: 1 and 2). Exact-label chance is
    # 0.4 (none); kind-only chance is 0.6 (kind 0).
    label = [0] * 8 + [1] * 6 + [2] * 6
    meta = {"0": {"label": label, "size": [0] * 8 + [1] * 6 + [4] * 6, "distractors": [0] * 20,
                  "side_question": [1] * 20}}  # fmt: skip
    data = {"config": {"max_distractors": 0}, "eval_meta": meta, "runs": []}
    res = Results(data)
    every = lambda m: m["size"] >= 0  # noqa: E731
    assert res.majority(every) == 0.4
    assert res.majority(every, kind_only=True) == 0.6
    # Per-seed accuracies 1.0, 1.0, 0.9: the t interval's upper end (1.11) is cut at 1.
    near_top = _distractor_data({"linvt": (1.0, 1.0)})
    for seed, r in enumerate(near_top["runs"]):
        r["correct"] = [True] * 60 if seed < 2 else _hits(60, 0.9)
    mean, lo, hi, _ = Results(near_top).accuracy("linvt", every)
    assert abs(mean - (1.0 + 1.0 + 0.9) / 3) < 1e-9 and 0.0 <= lo < mean and hi == 1.0


def test_report_flag_rescores_a_saved_run_and_rejects_other_files(
    quick_out: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--report DIR/results.json` prints exactly the table.md the quick run wrote; a file that
    is not a results file is one line and exit 2."""
    from mu2.cli.main import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(["bench", "tokenizer", "--report", str(quick_out / "results.json")])
    assert done.value.code == 0
    printed = capsys.readouterr().out
    assert printed == (quick_out / "table.md").read_text() and "| mu2 |" in printed
    bad = tmp_path / "other.json"
    bad.write_text('{"rows": []}')
    assert main(["bench", "tokenizer", "--report", str(bad)]) == 2  # Mu2Error: returned, not raised
    err = capsys.readouterr().err
    assert "not a tokenizer-benchmark results file" in err and "Traceback" not in err


def test_a_row_is_the_same_model_alone_and_in_the_full_benchmark() -> None:
    """The parameter budget comes from every row, not from the rows run: `--rows linvt` must
    train the linvt of the full table (same adapter, same parameter count)."""
    from mu2.bench.tokenizer_bench.model import build_models, count_params

    full = build_models(TokenBenchConfig(), 0)
    alone = build_models(TokenBenchConfig(rows=["perceiver", "linvt"]), 0)
    for row in ("perceiver", "linvt"):
        assert count_params(alone[row]) == count_params(full[row]), row


def test_worker_processes_and_run_order_do_not_change_the_results() -> None:
    """Each (seed, row) run is seeded on its own: two worker processes give the per-item
    predictions of one process, and a row run alone gives what it gives among the others."""
    from mu2.bench.tokenizer_bench.run import run_benchmark

    small = {"steps": 6, "eval_items": 64, "batch_size": 8, "seeds": 2}
    one = run_benchmark(TokenBenchConfig(rows=["linvt", "mu2"], workers=1, **small), False)
    two = run_benchmark(TokenBenchConfig(rows=["linvt", "mu2"], workers=2, **small), False)
    alone = run_benchmark(TokenBenchConfig(rows=["mu2"], workers=1, **small), False)
    key = [(r.seed, r.row) for r in one.runs]
    assert key == [(0, "linvt"), (0, "mu2"), (1, "linvt"), (1, "mu2")]
    assert [(r.seed, r.row) for r in two.runs] == key
    for a, b in zip(one.runs, two.runs, strict=True):
        assert (a.correct, a.last_loss) == (b.correct, b.last_loss), (a.seed, a.row)
    mu2_runs = [r for r in one.runs if r.row == "mu2"]
    for a, b in zip(mu2_runs, alone.runs, strict=True):
        assert (a.correct, a.last_loss) == (b.correct, b.last_loss), a.seed
