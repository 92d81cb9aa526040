"""`mu2 demo`: from nothing to a trained, evaluated, saved embedded model, in stages.

    data -> stage 0 (vision pretraining) -> SFT [-> SFT without stage 0] -> preference
    pairs -> DPO -> evaluation on the test split -> save to $MU2_HOME/models/<name> ->
    example reports with heat maps -> summary

Every stage calls the library's own entry point (``synthesize``, ``run_clip``,
``run_sft``, ``build_pairs``, ``run_dpo``, ``evaluate``, ``ReportGenerator``); this module
only wires their configs together and keeps the bookkeeping (:mod:`mu2.demo.stages`):
a second run reuses every stage whose config is unchanged, unless ``force``.

The folder layout is in :mod:`mu2.demo.layout`.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mu2.config import to_dict
from mu2.demo.config import DemoConfig
from mu2.demo.layout import SUMMARY_MD, DemoPaths, default_out, where_things_are
from mu2.demo.stages import StageRecord, StageRunner, cpu_seconds
from mu2.demo.summary import summary_markdown, target_check
from mu2.engine.durable import swap_into_place
from mu2.errors import Mu2Error
from mu2.generate.home import mu2_home
from mu2.recipes.profile import build_recipe, recipe_values
from mu2.recipes.runner import RunOptions, recipe_class, run_stage, run_wiring

log = logging.getLogger(__name__)

DEMO_JSON = "demo.json"
PROVENANCE_FILE = "mu2_demo.json"
# Row names of the result tables.
SFT_NAME, DPO_NAME, SCRATCH_NAME = "SFT", "SFT+DPO", "SFT without stage 0"


@dataclass
class DemoResult:
    paths: DemoPaths
    records: list[StageRecord]
    results: dict[str, dict[str, Any]]  # table row name -> metrics.json
    kinds: list[str]
    summary: str
    places: dict[str, str]
    notes: list[str] = field(default_factory=list)

    @property
    def target_met(self) -> bool:
        """The per-finding target, for the final model (SFT+DPO, else SFT)."""
        final = self.results.get(DPO_NAME) or self.results.get(SFT_NAME)
        return final is not None and target_check(final, self.kinds).met


# Settings that change how fast a stage runs, not what it produces: left out of the hash,
# so that e.g. another thread count reuses the finished stages.
SPEED_ONLY_KEYS = ("num_threads", "tensorboard")


def _material(cfg: Any) -> dict[str, Any]:
    """What decides a stage's output: its recipe config without the speed-only settings."""
    return {k: v for k, v in to_dict(cfg).items() if k not in SPEED_ONLY_KEYS}


class DemoPipeline:
    """The stages of one demo run (see the module docstring)."""

    def __init__(
        self, cfg: DemoConfig, paths: DemoPaths, force: bool, echo: Callable[[str], None]
    ) -> None:
        self.cfg = cfg
        self.paths = paths
        self.notes: list[str] = []
        self.comparison: str | None = None
        """SFT vs SFT+DPO table (mu2.demo.compare), once both are evaluated."""
        self.question_table = ""  # markdown of the saved model's question dependence
        lm = 1 if cfg.lm.enabled else 0
        total = 10 + lm + ((2 + lm) if cfg.ablate_stage0 else 0)
        self.runner = StageRunner(total, force, echo)

    def _wiring(self, stage: str, out: Path | None) -> dict[str, Any]:
        """Output folder, seed, device, threads and checkpoint switches of a demo stage."""
        c = self.cfg
        opts = RunOptions(device=c.device, num_threads=c.num_threads, tensorboard=c.tensorboard,
                          save_every=c.checkpoint_every, resume="auto", eval_every=0)  # fmt: skip
        return run_wiring(stage, out, c.seed, opts)

    def _recipe(self, stage: str, wiring: dict[str, Any]) -> Any:
        """The stage's recipe YAML <- the demo's wiring <- the profile's ``set`` list."""
        return build_recipe(recipe_class(stage), self.cfg.stage(stage), wiring, where=stage)

    def _cache(self) -> dict[str, Any]:
        return {"data.cache": "disk", "data.cache_dir": str(self.paths.cache)}

    # ---- stages ------------------------------------------------------------------------
    def data(self) -> StageRecord:
        from mu2.data.synthetic.synth import synthesize
        from mu2.data.synthetic.synth_config import config_dict, make_config

        d = self.cfg.data
        synth = make_config(d.preset, d.size, overrides=[*d.overrides, f"split={list(d.split)}"])
        out = self.paths.synth

        def run() -> dict[str, Any]:
            # New volumes: the prepared-volume cache (keyed by file and mtime) would only grow.
            shutil.rmtree(self.paths.cache, ignore_errors=True)
            manifest = synthesize(
                out, d.n, d.seed, synth, workers=d.workers, save_labels=d.save_labels,
                preset=d.preset, size=d.size,
            )  # fmt: skip
            splits = ", ".join(f"{k} {v['cases']}" for k, v in manifest["splits"].items())
            return {
                "manifest_path": str(out / "manifest.json"),
                "kinds": list(synth.kinds),
                "note": f"{d.n} cases ({splits})",
            }

        material = {"n": d.n, "seed": d.seed, "labels": d.save_labels, "synth": config_dict(synth)}
        return self.runner.run("data", "synthetic benchmark", self.paths.data, material, run)

    def _data_file(self, split: str) -> str:
        return str(self.paths.synth / f"{split}.jsonl")

    def clip(self) -> StageRecord:
        cfg = self._recipe("clip", {
            **self._wiring("clip", self.paths.clip), **self._cache(),
            "data.train": self._data_file("train"), "data.val": self._data_file("val"),
            "data.test": self._data_file("test"),
        })  # fmt: skip

        def run() -> dict[str, Any]:
            final = run_stage("clip", cfg)
            return {"vision_path": str(final / "vision.safetensors"), "final_dir": str(final)}

        return self.runner.run(
            "clip", "stage 0: vision pretraining", self.paths.clip, _material(cfg), run, ("data",)
        )

    def lm(self, vision: str | None, scratch: bool = False) -> StageRecord:
        out = self.paths.lm_scratch if scratch else self.paths.lm
        cfg = self._recipe("lm", {
            **self._wiring("lm", out), "model.vision_path": vision,
            "data.train": self._data_file("train"),
        })  # fmt: skip

        def run() -> dict[str, Any]:
            final = run_stage("lm", cfg)
            summary = json.loads((final / "training_summary.json").read_text())
            note = f"loss {summary['first_loss']:.2f} -> {summary['final_loss']:.2f}"
            return {"final_dir": str(final), "note": note}

        name, title = (
            ("lm-scratch", "LM pretraining without stage 0 (ablation)")
            if scratch
            else ("lm", "LM pretraining (findings in the image block)")
        )
        upstream = ("data",) if scratch else ("data", "clip")
        return self.runner.run(name, title, out, _material(cfg), run, upstream)

    def sft(self, vision: str | None, init_from: str | None, scratch: bool = False) -> StageRecord:
        out = self.paths.scratch if scratch else self.paths.sft
        # What the recipe and the profile ask for, before the demo's wiring decides on it.
        asked = recipe_values(recipe_class("sft"), self.cfg.sft)
        freeze_vision = bool(asked["model"]["freeze_vision"]) and not scratch
        wiring = {
            **self._wiring("sft", out), **self._cache(),
            # The findings-code loss needs an LLM that reads the code (the LM stage).
            **({} if init_from else {"code_weight": 0.0}),
            "cache_vision": freeze_vision and not asked["data"]["augment"],
            # Grounding reads the label maps (data.save_labels).
            **({} if self.cfg.data.save_labels else {"ground_weight": 0.0}),
            "model.vision_path": None if init_from else vision, "model.init_from": init_from,
            "model.freeze_vision": freeze_vision,
            # A fresh LLM (no LM stage) must train.
            "model.freeze_llm": bool(asked["model"]["freeze_llm"]) and init_from is not None,
            "data.train": self._data_file("train"), "data.val": self._data_file("val"),
        }  # fmt: skip
        cfg = self._recipe("sft", wiring)

        def run() -> dict[str, Any]:
            return {"final_dir": str(run_stage("sft", cfg))}

        name, title = (
            ("sft-scratch", "SFT without stage 0 (ablation)") if scratch else ("sft", "SFT")
        )
        lm = ("lm-scratch",) if scratch else ("lm",)
        upstream = (("data",) if scratch else ("data", "clip")) + (lm if init_from else ())
        return self.runner.run(name, title, out, _material(cfg), run, upstream)

    def prefs(self, sft_final: str) -> StageRecord:
        out = self.paths.prefs / "pairs.jsonl"
        cfg = self._recipe("prefs", {
            **self._wiring("prefs", None), "model": sft_final, "data": self._data_file("train"),
            "out": str(out),
        })  # fmt: skip

        def run() -> dict[str, Any]:
            summary = run_stage("prefs", cfg)
            pairs = (
                sum(1 for line in out.read_text().splitlines() if line.strip())
                if out.is_file()
                else 0
            )
            skipped = ", ".join(f"{k} {v}" for k, v in sorted(summary.skipped.items())) or "none"
            return {"pairs_path": str(out) if pairs else "", "pairs": pairs,
                    "note": f"{pairs} pairs of {summary.total} cases ({summary.tie_broken} "
                            f"ranked by error count at equal GREEN; skipped: {skipped}); "
                            f"judge: {summary.judge}"}  # fmt: skip

        return self.runner.run(
            "prefs",
            "preference pairs (GREEN-ranked)",
            self.paths.prefs,
            _material(cfg),
            run,
            ("sft",),
        )

    def dpo(self, sft_final: str, pairs: str) -> StageRecord:
        cfg = self._recipe("dpo", {
            **self._wiring("dpo", self.paths.dpo), **self._cache(),
            "model.sft_model": sft_final, "data.train": pairs, "data.val": None,
        })  # fmt: skip

        def run() -> dict[str, Any]:
            return {"final_dir": str(run_stage("dpo", cfg))}

        return self.runner.run("dpo", "DPO", self.paths.dpo, _material(cfg), run, ("sft", "prefs"))

    def evaluate(self, model_stage: str, model_dir: str, name: str) -> StageRecord:
        from mu2.demo.predict import PREDICTIONS_FILE, predict_test, score

        e = self.cfg.eval
        out = self.paths.eval / model_stage

        def run() -> dict[str, Any]:
            rows = predict_test(
                model_dir, self._data_file("test"), out / PREDICTIONS_FILE,
                cache_dir=self.paths.cache, batch_size=e.batch_size,
                max_new_tokens=e.max_new_tokens, max_cases=e.max_cases,
                device=self.cfg.device, label=f"test reports ({name})", vqa=e.vqa,
            )  # fmt: skip
            result = score(
                rows, out, name=name, metrics=e.metrics, bootstrap=e.bootstrap,
                green_backend=e.green_backend, missing_java=e.missing_java,
                seed=self.cfg.seed, device=self.cfg.device,
            )  # fmt: skip
            pf = result.per_finding
            note = f"{result.n} test reports"
            if pf is not None:
                note += f"; distinct {pf.distinct_share:.2f}, finding F1 {pf.f1:.2f}"
            if result.vqa is not None:
                note += f"; VQA accuracy {result.vqa.overall.accuracy:.2f}"
            return {"metrics_path": str(out / "metrics.json"), "table_path": str(out / "table.md"),
                    "name": name, "note": note}  # fmt: skip

        material = {"eval": to_dict(e), "model": model_dir, "test": self._data_file("test")}
        return self.runner.run(
            f"eval-{model_stage}", f"evaluate {name} on the test split", out, material, run,
            (model_stage, "data"),
        )  # fmt: skip

    def save(self, source_stage: str, source: str) -> StageRecord:
        dest = self.paths.model

        def run() -> dict[str, Any]:
            tmp = dest.with_name(dest.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(source, tmp)
            (tmp / PROVENANCE_FILE).write_text(
                json.dumps({"profile": self.cfg.profile, "source": source,
                            "demo_output": str(self.paths.root)}, indent=1) + "\n"
            )  # fmt: skip
            _name_card(tmp, dest.name, self.cfg.profile)
            swap_into_place(tmp, dest)  # never a moment without a model
            return {"model_dir": str(dest), "note": f"from {source_stage}"}

        return self.runner.run(
            "save", f"save the final model to {dest}", self.paths.save,
            {"source": source, "dest": str(dest)}, run, (source_stage,),
        )  # fmt: skip

    def examples(self) -> StageRecord:
        from mu2.demo.examples import ExampleCase, find_real_ct, pick_test_cases, write_examples

        r = self.cfg.reports
        cases = pick_test_cases(Path(self._data_file("test")), r.cases)
        real = find_real_ct(r.real_ct)
        if r.real_ct and (real is None or not real.is_file()):
            raise Mu2Error("reports.real_ct not found", path=r.real_ct, fix="pass an existing CT")
        if real is None:
            self.notes.append(
                "real CT sample not found (the package is installed without the repository's "
                "tests/data): its example report was skipped"
            )
        else:
            cases.append(ExampleCase("real_ct", real))

        def run() -> dict[str, Any]:
            written = write_examples(
                self.paths.model, cases, self.paths.examples, r.max_new_tokens, self.cfg.device
            )
            return {"cases": written, "examples_dir": str(self.paths.examples),
                    "note": f"{len(written)} scans"}  # fmt: skip

        material = {"reports": to_dict(r), "cases": [str(c.image) for c in cases]}
        return self.runner.run(
            "examples", "example reports with heat maps", self.paths.examples, material, run,
            ("save", "data"),
        )  # fmt: skip

    def question_dependence(self) -> StageRecord:
        """Chest vs abdomen question on each test scan: does the heat map follow the question?"""
        from mu2.generate.question_dependence import question_dependence, split_scans
        from mu2.model import Mu2ForConditionalGeneration

        out = self.paths.eval / "question-dependence"

        def run() -> dict[str, Any]:
            scans = split_scans(self.paths.synth, "test")
            net = Mu2ForConditionalGeneration.from_pretrained(self.paths.model).eval()
            try:
                result = question_dependence(net, net.processor, scans)
            except Mu2Error as err:  # e.g. a preset whose test scans are asked one region only
                self.notes.append(f"question dependence not measured: {err}")
                return {"table": "", "note": "skipped"}
            s = result.summary()
            out.mkdir(parents=True, exist_ok=True)
            (out / "question_dependence.json").write_text(json.dumps(s, indent=1) + "\n")
            corr = ", ".join(f"{k} r {v:.2f}" for k, v in s["heat_corr"].items())
            return {"table": result.table(), "note": f"{s['scans']} scans; {corr}"}

        material = {"model": str(self.paths.model), "test": self._data_file("test")}
        return self.runner.run(
            "question-dependence", "question dependence of the heat maps", out, material, run,
            ("save", "data"),
        )  # fmt: skip

    # ---- the whole run -------------------------------------------------------------------
    def run(self) -> tuple[dict[str, dict[str, Any]], list[str]]:
        data = self.data()
        kinds = list(data.outputs["kinds"])
        clip = self.clip()
        vision = clip.outputs["vision_path"]
        lm = self.lm(vision).outputs["final_dir"] if self.cfg.lm.enabled else None
        sft = self.sft(vision, lm)
        scratch = None
        if self.cfg.ablate_stage0:
            lm0 = self.lm(None, scratch=True).outputs["final_dir"] if lm else None
            scratch = self.sft(None, lm0, scratch=True)
        prefs = self.prefs(sft.outputs["final_dir"])
        final_stage, final_dir = "sft", sft.outputs["final_dir"]
        if prefs.outputs.get("pairs", 0) > 0:
            dpo = self.dpo(sft.outputs["final_dir"], prefs.outputs["pairs_path"])
            final_stage, final_dir = "dpo", dpo.outputs["final_dir"]
        else:
            self.runner.skip("dpo", "DPO", "no preference pairs (every case skipped)")
            self.notes.append("DPO skipped: no preference pairs; the saved model is the SFT model")
        evals = [self.evaluate("sft", sft.outputs["final_dir"], SFT_NAME)]
        if final_stage == "dpo":
            evals.append(self.evaluate("dpo", final_dir, DPO_NAME))
        else:
            self.runner.skip("eval-dpo", f"evaluate {DPO_NAME}", "no DPO model")
        if scratch is not None:
            evals.append(self.evaluate("sft-scratch", scratch.outputs["final_dir"], SCRATCH_NAME))
        self.save(final_stage, final_dir)
        self.examples()
        self.question_table = self.question_dependence().outputs.get("table", "")
        results = {}
        for rec in evals:
            metrics = json.loads(Path(rec.outputs["metrics_path"]).read_text())
            results[rec.outputs["name"]] = metrics
            if "meteor" in self.cfg.eval.metrics and "meteor" not in metrics.get("labels", {}):
                self.notes.append(f"{rec.outputs['name']}: METEOR skipped (no Java runtime found)")
        if final_stage == "dpo":
            from mu2.demo.compare import compare_evals

            self.comparison = compare_evals(
                self.paths.eval / "sft", self.paths.eval / "dpo", SFT_NAME, DPO_NAME,
                n_resamples=self.cfg.eval.bootstrap, seed=self.cfg.seed,
            ).markdown()  # fmt: skip
        return results, kinds


def run_demo(
    cfg: DemoConfig,
    out: str | Path | None = None,
    home: str | Path | None = None,
    force: bool = False,
    echo: Callable[[str], None] = log.info,
) -> DemoResult:
    """Run (or reuse) every stage, then write ``summary.md`` and ``demo.json``."""
    home_dir = Path(home).expanduser() if home is not None else mu2_home()
    root = Path(out).expanduser() if out is not None else default_out(home_dir, cfg.profile)
    paths = DemoPaths(root.absolute(), home_dir.absolute(), cfg.model_name)
    paths.root.mkdir(parents=True, exist_ok=True)
    (paths.root / "demo_config.json").write_text(json.dumps(to_dict(cfg), indent=1) + "\n")
    threads = torch.get_num_threads()
    wall0, cpu0 = time.perf_counter(), cpu_seconds()
    pipeline = DemoPipeline(cfg, paths, force, echo)
    try:
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        results, kinds = pipeline.run()
    finally:
        torch.set_num_threads(threads)
    wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
    places = where_things_are(paths, pipeline.runner.records, home is not None)
    summary = summary_markdown(
        profile=cfg.profile, places=places, results=results, kinds=kinds,
        records=pipeline.runner.records, total_wall_s=wall, total_cpu_s=cpu,
        notes=pipeline.notes, comparison=pipeline.comparison,
        question_dependence=pipeline.question_table,
    )  # fmt: skip
    (paths.root / SUMMARY_MD).write_text(summary)
    result = DemoResult(paths, pipeline.runner.records, results, kinds, summary, places,
                        pipeline.notes)  # fmt: skip
    (paths.root / DEMO_JSON).write_text(
        json.dumps(
            {
                "profile": cfg.profile,
                "total_wall_s": round(wall, 2),
                "total_cpu_s": round(cpu, 2),
                "stages": [r.to_dict() for r in pipeline.runner.records],
                "places": places,
                "target_met": result.target_met,
                "kinds": kinds,
                "notes": pipeline.notes,
            },
            indent=1,
        )
        + "\n"
    )
    return result


def _name_card(model_dir: Path, name: str, profile: str) -> None:
    """The saved demo model's card carries its final name and the demo profile."""
    from mu2.model.card import CARD_FILE, load_card, save_card

    if not (model_dir / CARD_FILE).is_file():
        return
    card = load_card(model_dir)
    card.name = name
    card.recipe.append({"stage": "demo", "profile": profile})
    save_card(card, model_dir)
