"""SFT against SFT+DPO over several seeds, from the stages of a finished `mu2 demo` run.

The demo's DPO starts from an SFT model at the ceiling of its benchmark, where pairs are
mostly ties and DPO has nothing to fix. This script reuses the demo's data, stage-0 tower
and text-pretrained LLM (``--from``, a finished demo folder), trains SFT for fewer steps
(``--set sft.max_steps=N``: an SFT model below the ceiling), then per seed builds GREEN-ranked
pairs, trains DPO and scores both models on the same test reports with paired bootstrap
intervals (``mu2.demo.compare``). Each stage is the demo's own (same recipe configs,
``--set`` takes the demo's dotted keys), so the numbers come from the recipe users run.

    python benchmarks/dpo_bench.py --from $MU2_HOME/demo/full --out runs/dpo-bench \\
        --seeds 0 1 2 --set sft.max_steps=100 --set prefs.limit=240

Sampling the pairs is the expensive stage, so a sweep of DPO settings reuses one SFT model
and one set of pairs per seed: within one ``--out`` the SFT and pairs stages are reused
while their configs are unchanged, ``--tag`` gives each DPO setting its own DPO and
evaluation folders (``dpo-s<seed>-<tag>``, ``eval-s<seed>/dpo-<tag>``), and ``--sft`` /
``--pairs`` take an SFT model folder and pair files from an earlier run as they are:

    python benchmarks/dpo_bench.py --from $MU2_HOME/demo/full --out runs/dpo-bench \\
        --sft runs/old/sft/final --pairs 'runs/old/prefs-s{seed}/pairs.jsonl' --seeds 0 \\
        --tag lr5e-4-rpo1 --set dpo.max_steps=120 --set dpo.optim.lr=5e-4 --set dpo.rpo_alpha=1.0

Prints one table per seed and a summary line per seed (GREEN and finding F1 differences
with their intervals, mean words, distinct-report share) and writes ``bench.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections import Counter
from pathlib import Path

from mu2.demo.compare import compare_evals
from mu2.demo.config import make_demo_config
from mu2.demo.layout import DemoPaths
from mu2.demo.pipeline import DPO_NAME, SFT_NAME, DemoPipeline
from mu2.demo.stages import StageRecord, StageRunner, config_hash


class SeedPaths(DemoPaths):
    """One shared SFT stage, pairs per seed, DPO / evaluations per seed and DPO setting."""

    def __init__(self, root: Path, home: Path, seed: int, tag: str = "") -> None:
        super().__init__(root, home, "dpo-bench")
        self.seed = seed
        self.tag = f"-{tag}" if tag else ""

    @property
    def prefs(self) -> Path:
        return self.root / f"prefs-s{self.seed}"

    @property
    def dpo(self) -> Path:
        return self.root / f"dpo-s{self.seed}{self.tag}"

    @property
    def eval(self) -> Path:
        return self.root / f"eval-s{self.seed}"


def _upstream(src: Path, name: str) -> dict:
    done = json.loads((src / name / "done.json").read_text())
    return done


def _given(runner: StageRunner, name: str, title: str, outputs: dict, note: str = "") -> StageRecord:
    """A stage taken as it is from an earlier run (``--sft`` / ``--pairs``), keyed by its path."""
    runner.hashes[name] = config_hash({"stage": name, "given": outputs})
    print(f"{title}: given ({next(iter(outputs.values()))})")
    return StageRecord(name, title, "reused", note=note, hash=runner.hashes[name], outputs=outputs)


def _count_pairs(path: Path) -> tuple[int, str]:
    if not path.is_file():
        raise SystemExit(f"--pairs: {path} does not exist")
    pairs = sum(1 for line in path.read_text().splitlines() if line.strip())
    skipped = Counter()
    sk = path.with_name(path.name.removesuffix(".jsonl") + ".skipped.jsonl")
    if sk.is_file():
        skipped.update(json.loads(line)["reason"] for line in sk.read_text().splitlines() if line)
    total = pairs + sum(skipped.values())
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())) or "none"
    return pairs, f"{pairs} pairs of {total} cases (given; skipped: {reasons})"


def _dpo_log(run: Path) -> list[dict]:
    """The DPO run's logged training steps (loss, reward margin and accuracy, log-probs)."""
    path = run / "metrics.jsonl"
    if not path.is_file():
        return []
    keys = ("step", "loss", "reward_margin", "reward_accuracy", "logp_chosen", "logp_rejected")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [{k: r[k] for k in keys if k in r} for r in rows if r.get("split") == "train"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--from", dest="src", type=Path, required=True,
                    help="finished demo folder (data/, clip/, lm/ with done.json)")  # fmt: skip
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="demo config key=value (sft.max_steps=100, dpo.rpo_alpha=1.0)")
    ap.add_argument("--tag", default="",
                    help="name of this DPO setting: its own dpo-s<seed>-<tag> / eval folders")
    ap.add_argument("--sft", type=Path,
                    help="an SFT model folder to start from instead of training SFT")
    ap.add_argument("--pairs",
                    help="pair files to train on instead of sampling, '{seed}' in the path")
    args = ap.parse_args()
    src, out = args.src.absolute(), args.out.absolute()
    out.mkdir(parents=True, exist_ok=True)
    # the data set and prepared-volume cache of the source run, used read-only / copied
    if not (out / "data").exists():
        (out / "data").symlink_to(src / "data")
    if not (out / "cache").exists():
        shutil.copytree(src / "cache", out / "cache")
    clip, lm, data = (_upstream(src, n) for n in ("clip", "lm", "data"))
    results = []
    for seed in args.seeds:
        cfg = make_demo_config("full", args.overrides)
        # the seed of the pairs' sampling and of DPO; SFT keeps the demo's seed (shared)
        cfg.prefs.set = [*cfg.prefs.set, f"seed={seed}"]
        cfg.dpo.set = [*cfg.dpo.set, f"seed={seed}"]
        paths = SeedPaths(out, out.parent, seed, args.tag)
        pipe = DemoPipeline(cfg, paths, force=False, echo=print)
        pipe.runner.hashes.update({"data": data["hash"], "clip": clip["hash"], "lm": lm["hash"]})
        if args.sft:
            final = str(args.sft.absolute())
            sft = _given(pipe.runner, "sft", "SFT", {"final_dir": final})
        else:
            sft = pipe.sft(clip["outputs"]["vision_path"], lm["outputs"]["final_dir"])
        first = out / f"eval-s{args.seeds[0]}" / "sft"
        if seed != args.seeds[0] and not (paths.eval / "sft").exists():
            shutil.copytree(first, paths.eval / "sft")  # the same SFT model, greedy: reuse
        pipe.evaluate("sft", sft.outputs["final_dir"], SFT_NAME)
        if args.pairs:
            path = Path(args.pairs.format(seed=seed)).absolute()
            n, note = _count_pairs(path)
            prefs = _given(pipe.runner, "prefs", "pairs", {"pairs_path": str(path), "pairs": n},
                           note)  # fmt: skip
        else:
            prefs = pipe.prefs(sft.outputs["final_dir"])
        dpo = pipe.dpo(sft.outputs["final_dir"], prefs.outputs["pairs_path"])
        name = "dpo" + paths.tag
        pipe.runner.hashes[name] = pipe.runner.hashes["dpo"]  # the evaluation's upstream stage
        pipe.evaluate(name, dpo.outputs["final_dir"], DPO_NAME)
        cmp = compare_evals(paths.eval / "sft", paths.eval / name, SFT_NAME, DPO_NAME,
                            n_resamples=cfg.eval.bootstrap, seed=seed)  # fmt: skip
        print(f"\n## seed {seed}: {prefs.note}\n")
        print(cmp.markdown() + "\n", flush=True)
        loss = _dpo_log(paths.dpo)
        results.append({"seed": seed, "pairs": prefs.outputs.get("pairs"), "tag": args.tag,
                        "prefs_note": prefs.note, "dpo_s": dpo.wall_s or dpo.first_wall_s,
                        "dpo_log": loss,
                        "sft": vars(cmp.base), "dpo": vars(cmp.other),
                        "green_diff": cmp.green_diff, "green_diff_ci": cmp.green_diff_ci,
                        "f1_diff": cmp.f1_diff, "f1_diff_ci": cmp.f1_diff_ci})  # fmt: skip
        name = f"bench-{args.tag}.json" if args.tag else "bench.json"
        (out / name).write_text(json.dumps({"overrides": args.overrides, "sft": str(args.sft),
                                            "pairs": args.pairs, "seeds": results}, indent=1))  # fmt: skip
    for r in results:
        rel = r["green_diff"] / r["sft"]["green"] if r["sft"]["green"] else float("nan")
        print(f"seed {r['seed']}: pairs {r['pairs']}; GREEN {r['sft']['green']:.3f} -> "
              f"{r['dpo']['green']:.3f} ({rel:+.1%}, diff CI {r['green_diff_ci']}); F1 "
              f"{r['sft']['f1']:.3f} -> {r['dpo']['f1']:.3f} (diff CI {r['f1_diff_ci']}); words "
              f"{r['sft']['mean_words']:.1f} -> {r['dpo']['mean_words']:.1f}; distinct "
              f"{r['sft']['distinct_share']:.2f} -> {r['dpo']['distinct_share']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
