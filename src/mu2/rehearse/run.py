"""``mu2 rehearse --out DIR``: the paper recipe end to end, on real formats, at CPU size.

Inside ``DIR`` the rehearsal writes what a user downloads (``models/Llama-3.2-1B-Instruct``,
``models/M3D-CLIP/pretrained_ViT.bin``, a GREEN judge folder; stand-ins from
:mod:`mu2.rehearse.assets`) and the raw data sets (``raw/amos-mm``, ``raw/ct-rate``), then
runs the user's commands from ``DIR``, so the relative paths of the paper configs resolve
there: ``mu2 data convert`` and ``mu2 data check``, ``mu2 train sft`` (also as two CPU
processes under ``accelerate launch``), ``mu2 prefs build``, ``mu2 train dpo``,
``mu2 eval`` and ``mu2 report``, each with the paper config and size overrides only. Every
stage is a separate process (as a user runs it); its output goes to ``DIR/logs/``.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mu2.errors import Mu2Error
from mu2.rehearse.config import RehearseConfig

LLM_DIR = "models/Llama-3.2-1B-Instruct"  # configs/sft/paper.yaml model.llm_path
VIT_FILE = "models/M3D-CLIP/pretrained_ViT.bin"  # configs/sft/paper.yaml model.vision_path
JUDGE_DIR = "models/GREEN-RadLlama2-7b"  # configs/prefs/paper.yaml green_backend hf:...
JUDGE_NOTE = "judge stand-in: GREEN scores mean nothing"


class StageFailed(Exception):
    """A stage's command failed or its output did not pass the stage's check."""


@dataclass
class StageResult:
    name: str
    ok: bool
    seconds: float
    checked: str


class Rehearsal:
    def __init__(self, out: Path, configs: Path, cfg: RehearseConfig):
        self.out = out.absolute()
        self.configs = configs.absolute()
        self.cfg = cfg
        self.logs = self.out / "logs"
        self.results: list[StageResult] = []

    # -- running commands -------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                    "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"})  # fmt: skip
        return env

    def command(self, name: str, args: list[str], launcher: list[str] | None = None) -> str:
        """Run ``mu2 ARGS`` (or under ``launcher``) in DIR; its stdout, or StageFailed."""
        self.logs.mkdir(parents=True, exist_ok=True)
        cmd = [*(launcher or [sys.executable]), "-m", "mu2.cli.main", *args]
        log = self.logs / f"{name}.log"
        with open(log, "a") as err:
            err.write("$ " + " ".join(cmd) + "\n")
            err.flush()
            try:
                proc = subprocess.run(
                    cmd, cwd=self.out, env=self._env(), stdout=subprocess.PIPE, stderr=err,
                    text=True, timeout=self.cfg.stage_timeout_s,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                raise StageFailed(f"timed out after {self.cfg.stage_timeout_s} s (log {log})") from None
            err.write(proc.stdout)
        if proc.returncode != 0:
            tail = log.read_text().strip().splitlines()[-3:]
            raise StageFailed(f"exit {proc.returncode}: {' | '.join(tail)} (log {log})")
        return proc.stdout

    def config(self, stage: str) -> str:
        path = self.configs / stage / "paper.yaml"
        if not path.is_file():
            raise StageFailed(f"{path} not found")
        return str(path)

    def stage(self, name: str, fn: Callable[[], str]) -> bool:
        t0 = time.perf_counter()
        try:
            checked, ok = fn(), True
        except (StageFailed, Mu2Error, OSError, ValueError, KeyError) as err:
            checked, ok = f"FAILED: {err}", False
        self.results.append(StageResult(name, ok, time.perf_counter() - t0, checked))
        print(f"[rehearse] {name}: {'ok' if ok else 'FAILED'} ({self.results[-1].seconds:.0f} s)",
              flush=True)  # fmt: skip
        return ok

    # -- stages ---------------------------------------------------------------------------
    def assets(self) -> str:
        from mu2.data.synthetic.synth import synthesize  # noqa: F401  (fail early if data extras miss)
        from mu2.rehearse.assets import write_judge, write_llm, write_m3d_vit
        from mu2.rehearse.cases import write_raw_data

        raw = write_raw_data(self.out / "raw", self.cfg.amos_train, self.cfg.amos_val,
                             self.cfg.ct_rate, self.cfg.seed)  # fmt: skip
        self.val_images = raw.amos_val_images
        texts = [line for p in (self.out / "raw" / "synth").glob("*.jsonl")
                 for line in p.read_text().splitlines()]  # fmt: skip
        write_llm(self.out / LLM_DIR, texts, self.cfg.llm, seed=self.cfg.seed)
        write_judge(self.out / JUDGE_DIR, texts, self.cfg.judge, seed=self.cfg.seed + 1)
        write_m3d_vit(self.out / VIT_FILE, self.cfg.vision_size, seed=self.cfg.seed)
        import torch

        keys = torch.load(self.out / VIT_FILE, weights_only=True)
        if "cls_token" not in keys or any(k.startswith("classification_head") for k in keys):
            raise StageFailed("ViT file is not in M3D's layout")
        return (f"Llama-style LM + byte-level BPE + Llama-3-style template; M3D-layout ViT "
                f"({len(keys)} tensors, cls_token, no head); AMOS-MM JSON "
                f"({self.cfg.amos_train}+{self.cfg.amos_val} cases), CT-RATE v1 raw + CSVs "
                f"({self.cfg.ct_rate})")  # fmt: skip

    def convert(self) -> str:
        amos = "raw/amos-mm/dataset.json"
        for split, name in (("training", "train"), ("validation", "val")):
            self.command("convert", ["data", "convert", amos, "--format", "amos-mm",
                                     "--split", split, "--out", f"data/amos-mm/{name}.jsonl"])  # fmt: skip
        self.command("convert", ["data", "convert", "raw/ct-rate", "--format", "ct-rate",
                                 "--out", "data/ct-rate/test.jsonl"])  # fmt: skip
        rows = _rows(self.out / "data/ct-rate/test.jsonl")
        if not rows or any(r.get("meta", {}).get("hu_already") is not False for r in rows):
            raise StageFailed("CT-RATE v1 rows not marked as raw stored values")
        n = len(_rows(self.out / "data/amos-mm/train.jsonl"))
        return f"{n} AMOS-MM train rows; {len(rows)} CT-RATE rows detected as raw (hu_already false)"

    def check(self) -> str:
        said = [self.command("check", ["data", "check", f]).strip().splitlines()[-1]
                for f in ("data/amos-mm/train.jsonl", "data/ct-rate/test.jsonl")]  # fmt: skip
        if not all(s.startswith("OK") for s in said):
            raise StageFailed("; ".join(said))
        return "train/val and CT-RATE: images readable through the row reader, no leakage"

    def sft(self) -> str:
        self.command("sft", ["train", "sft", "--config", self.config("sft"), *self.cfg.sft])
        final = self.out / "runs/sft-paper/final"
        conf = json.loads((final / "config.json").read_text())
        prep = _override(self.cfg.sft, "data.prep")
        if prep and conf.get("prep") != prep:
            raise StageFailed(f"saved model prep {conf.get('prep')!r}, trained on {prep!r}")
        log = (self.logs / "sft.log").read_text()
        if f"loaded vision weights from {VIT_FILE}" not in log:
            raise StageFailed("the M3D-layout ViT file was not loaded")
        steps = json.loads((final / "training_summary.json").read_text())["steps"]
        return f"{steps} steps, bf16 autocast; M3D ViT loaded strictly; model saved with prep {prep}"

    def sft_two_processes(self) -> str:
        port = _free_port()
        launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
                    "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
                    "--dynamo_backend", "no", "--main_process_port", str(port)]  # fmt: skip
        args = ["train", "sft", "--config", self.config("sft"), *self.cfg.sft,
                "output_dir=runs/sft-paper-2proc"]  # fmt: skip
        self.command("sft-2proc", args, launcher=launcher)
        summary = self.out / "runs/sft-paper-2proc/final/training_summary.json"
        procs = json.loads(summary.read_text())["processes"]
        if procs != 2:
            raise StageFailed(f"ran as {procs} process(es), not 2")
        return "accelerate launch --multi_gpu --num_processes 2: 2 CPU (gloo) ranks"

    def prefs(self) -> str:
        said = self.command("prefs", ["prefs", "build", "--config", self.config("prefs"),
                                      *self.cfg.prefs])  # fmt: skip
        pairs = self.out / "runs/prefs-paper/pairs.jsonl"
        n = len(_rows(pairs)) if pairs.is_file() else 0
        if n == 0:
            raise StageFailed(f"no pairs written: {said.strip()}")
        judge = {r["judge"] for r in _rows(pairs)}
        return f"{n} pairs via the hf: judge {sorted(judge)} ({JUDGE_NOTE})"

    def dpo(self) -> str:
        self.command("dpo", ["train", "dpo", "--config", self.config("dpo"), *self.cfg.dpo])
        metrics = [json.loads(x) for x in (self.out / "runs/dpo-paper/metrics.jsonl")
                   .read_text().splitlines() if x.strip()]  # fmt: skip
        first = next(m for m in metrics if m.get("split") == "train")
        if abs(first["loss"] - math.log(2)) > 1e-6:
            raise StageFailed(f"step-1 loss {first['loss']} != log 2: policy and reference differ")
        return f"step-1 loss = log 2 (bf16 policy and reference agree); {len(metrics)} log rows"

    def evaluate(self) -> str:
        rows = []
        for split in ("data/amos-mm/val.jsonl", "data/ct-rate/test.jsonl"):
            rows += _predict(self.out / "runs/dpo-paper/final", self.out / split,
                             self.out / "runs/cache/eval", self.cfg.eval_max_new_tokens)  # fmt: skip
        pred = self.out / "runs/eval/predictions.jsonl"
        pred.parent.mkdir(parents=True, exist_ok=True)
        pred.write_text("".join(json.dumps(r) + "\n" for r in rows))
        self.command("eval", ["eval", "--pred", str(pred.relative_to(self.out)), "--metrics",
                              self.cfg.eval_metrics, "--green-backend", f"hf:{JUDGE_DIR}",
                              "--bootstrap", "0", "--quiet"])  # fmt: skip
        metrics = json.loads((self.out / "runs/eval/predictions_eval/metrics.json").read_text())
        return f"{len(rows)} predictions (AMOS-MM val + CT-RATE v1); {self.cfg.eval_metrics} ({JUDGE_NOTE}); keys {sorted(metrics)[:4]}"

    def report(self) -> str:
        image = os.path.relpath(self.val_images[0], self.out)
        said = self.command("report", ["report", image, "--model", "runs/dpo-paper/final",
                                       "--json", "--max-new-tokens",
                                       str(self.cfg.report_max_new_tokens)])  # fmt: skip
        result = json.loads(said[said.index("{") :])
        if not result.get("sections"):
            raise StageFailed("report has no sections")
        return f"{len(result['sections'])} region section(s) from a raw AMOS-MM NIfTI"

    # -- the whole run --------------------------------------------------------------------
    def run(self) -> bool:
        stages: list[tuple[str, Callable[[], str]]] = [
            ("assets + raw data", self.assets),
            ("mu2 data convert", self.convert),
            ("mu2 data check", self.check),
            ("mu2 train sft", self.sft),
        ]
        if self.cfg.two_process:
            stages.append(("sft, 2 processes", self.sft_two_processes))
        stages += [
            ("mu2 prefs build", self.prefs),
            ("mu2 train dpo", self.dpo),
            ("mu2 eval", self.evaluate),
            ("mu2 report", self.report),
        ]
        optional = {"sft, 2 processes", "mu2 eval", "mu2 report"}  # nothing later needs them
        blocked = False
        for name, fn in stages:
            if blocked:
                self.results.append(StageResult(name, False, 0.0, "not run: a stage before failed"))
                continue
            blocked = not self.stage(name, fn) and name not in optional
        return all(r.ok for r in self.results)

    def table(self) -> str:
        lines = ["| stage | status | time | what was checked |", "|---|---|---|---|"]
        for r in self.results:
            status = "ok" if r.ok else "FAILED"
            lines.append(f"| {r.name} | {status} | {r.seconds:.0f} s | {r.checked} |")
        total = sum(r.seconds for r in self.results)
        lines.append(f"| total | {'ok' if all(r.ok for r in self.results) else 'FAILED'} "
                     f"| {total:.0f} s | sizes only differ from the paper configs |")  # fmt: skip
        return "\n".join(lines)


def _predict(model_dir: Path, jsonl: Path, cache: Path, max_new_tokens: int) -> list[dict]:
    """Greedy report rows {id, prediction, reference, region, dataset} of one split.

    Frames come through the training pipeline with the model's own preparation, reports
    through the SFT recipe's batched generation (as the benchmark's prediction files).
    """
    from mu2.engine.dataset import CTCaseDataset, prepare_fn
    from mu2.model import Mu2ForConditionalGeneration
    from mu2.train.sampling import generate_reports

    model = Mu2ForConditionalGeneration.from_pretrained(model_dir).eval()
    prepare, key = prepare_fn(str(model.config.prep))
    data = CTCaseDataset(jsonl, prepare, cache="disk", cache_dir=cache, cache_key=key,
                         required=("id", "image", "question", "answer"))  # fmt: skip
    items = [data[i] for i, r in enumerate(data.rows) if r.get("task", "report") == "report"]
    texts = generate_reports(model, model.processor, [it["frames"] for it in items],
                             [it["question"] for it in items], device="cpu",
                             max_new_tokens=max_new_tokens)  # fmt: skip
    return [{"id": str(it["id"]), "prediction": text, "reference": it["answer"],
             **{k: it[k] for k in ("region", "dataset") if k in it}}
            for it, text in zip(items, texts, strict=True)]  # fmt: skip


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _override(overrides: list[str], key: str) -> str | None:
    for item in overrides:
        k, _, v = item.partition("=")
        if k == key:
            return v
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rehearse(out: Path, configs: Path, cfg: RehearseConfig) -> tuple[bool, str]:
    """Run every stage; (all passed, the markdown table). The table is also in DIR/rehearsal.md."""
    if not (configs / "sft" / "paper.yaml").is_file():
        raise Mu2Error(
            f"paper configs not found under {configs}",
            fix="run from the repository root or pass --configs PATH/TO/configs",
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise Mu2Error(f"--out {out} is not empty", fix="pass a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    rehearsal = Rehearsal(out, configs, cfg)
    ok = rehearsal.run()
    table = rehearsal.table()
    (rehearsal.out / "rehearsal.md").write_text(table + "\n")
    return ok, table
