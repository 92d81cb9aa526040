"""``mu2 rehearse``: the paper recipe end to end (slow), and its stand-ins (fast).

The stand-ins are checked through the real consumers: the M3D-layout ViT file through
mu2's strict loader, the GREEN judge stand-in through the ``hf:`` judge backend and the
published answer parser.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mu2.rehearse.assets import LMShape, write_judge, write_m3d_vit

ROOT = Path(__file__).resolve().parents[2]
MU2 = Path(sys.executable).parent / "mu2"
REPORTS = [
    "The liver is normal in size. No focal lesion.",
    "Small right pleural effusion. The lungs are otherwise clear.",
    "Splenomegaly. Moderate ascites in the pelvis.",
    "A 2 cm hypodense lesion in the left kidney.",
    "No ascites. The pancreas and gallbladder are unremarkable.",
    "Bilateral pleural effusions with adjacent atelectasis.",
]


def test_m3d_layout_vit_file_loads_strictly_into_the_tower(tmp_path):
    import torch

    from mu2.model import vision_config
    from mu2.model.vision import VisionTower, load_vision_weights

    path = write_m3d_vit(tmp_path / "pretrained_ViT.bin", "tiny")
    state = torch.load(path, weights_only=True)
    assert "cls_token" in state and not any(k.startswith("classification_head") for k in state)
    load_vision_weights(VisionTower(vision_config("tiny")), path, strict=True)


def test_judge_stand_in_answers_parse_and_differ_between_candidates(tmp_path):
    from mu2.metrics.green.backends import make_judge
    from mu2.metrics.green.parse import parse_answer

    folder = write_judge(tmp_path / "GREEN-RadLlama2-7b", REPORTS * 20, LMShape(vocab_size=400))
    judge = make_judge(f"hf:{folder}", progress=False)
    pairs = [(REPORTS[0], cand) for cand in REPORTS[1:]] + [(REPORTS[1], REPORTS[2])]
    answers = judge.answers(pairs)
    scores = [parse_answer(a).score for a in answers]
    assert all(0 < s <= 1 for s in scores), answers  # every answer is a readable GREEN answer
    assert len(set(scores)) > 1, scores  # candidates are told apart: pairs are not all ties


def test_rehearse_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "old.txt").write_text("x")
    proc = subprocess.run(
        [str(MU2), "rehearse", "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "is not empty" in proc.stderr


@pytest.mark.slow  # the whole recipe in fresh processes: ~4-5 min on 2 shared CPU cores
def test_rehearse_runs_the_paper_recipe_end_to_end(tmp_path):
    out = tmp_path / "rehearsal"
    proc = subprocess.run(
        [str(MU2), "rehearse", "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = (out / "rehearsal.md").read_text()
    for stage in ("mu2 data convert", "mu2 data check", "mu2 train sft", "sft, 2 processes",
                  "mu2 prefs build", "mu2 train dpo", "mu2 eval", "mu2 report"):  # fmt: skip
        assert f"| {stage} | ok |" in table, table
    pairs = [json.loads(x) for x in (out / "runs/prefs-paper/pairs.jsonl").read_text().splitlines()]
    assert pairs and all(p["chosen_green"] > p["rejected_green"] for p in pairs)
    assert {p["judge"] for p in pairs} == {"hf:GREEN-RadLlama2-7b"}  # the hf: judge path
    assert (out / "runs/dpo-paper/final/config.json").is_file()
