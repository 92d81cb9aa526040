"""Data set expansion: rules backend, LLM backend over local HTTP, guard rails, leakage, CLI."""

from __future__ import annotations

import random
import re

import pytest
import typer
from typer.testing import CliRunner

from mu2.cli.data_augment import add_augment_command
from mu2.data.expansion.augment import TextAugmentConfig, augment_rows, check_augmented_leakage
from mu2.data.expansion.augment_guard import non_english_script, qa_drop_reason, rewrite_drop_reason
from mu2.data.expansion.rewrite_rules import RulesBackend, qualifiers
from mu2.data.schema import read_jsonl, write_jsonl
from mu2.errors import Mu2Error
from mu2.findings.catalogue import REGIONS, Finding
from mu2.findings.extract import extract_findings, extract_report
from mu2.findings.roundtrip import random_findings
from mu2.findings.writer import write_question, write_report


def make_row(i: int, region: str, findings: list[Finding], rng: random.Random) -> dict:
    return {
        "id": f"c{i}-{region}",
        "case_id": f"c{i}",
        "image": f"images/c{i}.nii.gz",
        "question": write_question(region, rng),
        "answer": write_report(findings, region, rng),
        "findings": [f.to_dict() for f in findings],
        "region": region,
        "task": "report",
        "dataset": "synth",
    }


def synthetic_rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        region = REGIONS[i % len(REGIONS)]
        rows.append(make_row(i, region, random_findings(region, rng), rng))
    return rows


CYST_AND_FAT = [
    Finding("kidney", "renal_cyst", side="left", size_mm=18.0),
    Finding("liver", "fatty_liver", severity="moderate"),
]


def findings_of(row: dict) -> list[tuple]:
    return sorted(
        (f.finding, f.side, f.size_mm, f.severity, f.count, f.extra.get("comparison"))
        for f in extract_findings(row["answer"], row["region"])
    )


# --- rules backend -----------------------------------------------------------------------


def test_rules_rewrites_keep_every_finding() -> None:
    rows = synthetic_rows(60)
    out, summary = augment_rows(rows, RulesBackend(), TextAugmentConfig(rewrites=4, qa=3))
    assert out[: len(rows)] == rows  # originals first, untouched
    by_id = {r["id"]: r for r in rows}
    rewrites = [r for r in out if r.get("augmented") == "rewrite"]
    # Short all-normal reports have few phrasings that claim exactly as much.
    assert summary.rewrites_kept == len(rewrites) >= 0.7 * 4 * len(rows)
    # The backend only offers redraws that read back the same: the guard drops none.
    assert summary.rewrites_dropped == {} and summary.qa_dropped == {}
    for rw in rewrites:
        src = by_id[rw["source_id"]]
        assert findings_of(rw) == findings_of(src), (src["answer"], rw["answer"])
        assert rw["answer"] != src["answer"]
        assert qualifiers(rw["answer"]) == qualifiers(src["answer"])
        assert {k: rw[k] for k in ("case_id", "image", "question", "region", "findings")} == {
            k: src[k] for k in ("case_id", "image", "question", "region", "findings")
        }
    texts = [(r["source_id"], r["answer"]) for r in rewrites]
    assert len(set(texts)) == len(texts)
    qa = [r for r in out if r.get("augmented") == "qa"]
    assert qa and all(r["task"] == "vqa" and r["source_id"] in by_id for r in qa)
    assert summary.rows_out == len(out) == len(rows) + len(rewrites) + len(qa)
    assert len({r["id"] for r in out}) == len(out)


def test_rules_rewrites_vary_with_seed_and_repeat_without() -> None:
    rows = synthetic_rows(6)
    a, _ = augment_rows(rows, RulesBackend(), TextAugmentConfig(rewrites=2, qa=2, seed=1))
    b, _ = augment_rows(rows, RulesBackend(), TextAugmentConfig(rewrites=2, qa=2, seed=1))
    c, _ = augment_rows(rows, RulesBackend(), TextAugmentConfig(rewrites=2, qa=2, seed=2))
    assert a == b and a != c


def test_rerun_on_its_own_output_adds_nothing() -> None:
    once, _ = augment_rows(synthetic_rows(3), RulesBackend(), TextAugmentConfig())
    twice, summary = augment_rows(once, RulesBackend(), TextAugmentConfig())
    assert twice == once and summary.sources_skipped == {"already_augmented": 3}


def test_rules_keep_sentences_outside_the_catalogue_verbatim() -> None:
    extra = "Degenerative changes of the lumbar spine with osteophytes."
    row = make_row(0, "abdomen", CYST_AND_FAT, random.Random(3))
    row["answer"] += " " + extra
    out, summary = augment_rows([row], RulesBackend(), TextAugmentConfig(rewrites=3, qa=0))
    assert summary.rewrites_kept == 3
    assert all(extra in r["answer"] for r in out[1:])


def test_rules_never_add_a_claim_the_source_did_not_make() -> None:
    row = make_row(0, "chest", [], random.Random(0))
    row["answer"] = "No pleural effusion. There is a 6 mm pulmonary nodule in the right lung."
    out, _ = augment_rows([row], RulesBackend(), TextAugmentConfig(rewrites=8, qa=0))
    assert len(out) > 1
    for r in out[1:]:
        assert "pneumothorax" not in r["answer"] and "noncalcified" not in r["answer"]
        assert "lobe" not in r["answer"]  # "right lung" never becomes a particular lobe


def test_rules_qa_pairs_follow_the_findings() -> None:
    row = make_row(0, "abdomen", CYST_AND_FAT, random.Random(0))
    out, summary = augment_rows([row], RulesBackend(), TextAugmentConfig(rewrites=0, qa=50))
    pairs = {r["question"]: r["answer"] for r in out[1:]}
    assert summary.qa_dropped == {} and len(pairs) == summary.qa_kept
    side = [a for q, a in pairs.items() if "side" in q]
    assert side == ["Left."]
    assert [a for q, a in pairs.items() if "left renal cyst" in q] == ["18 mm."]
    assert [a for q, a in pairs.items() if "severe" in q or "severity" in q] == ["Moderate."]
    assert pairs["What are the findings in the abdomen?"] == row["answer"]
    yes = [q for q, a in pairs.items() if a.startswith("Yes")]
    no = [q for q, a in pairs.items() if a == "No."]
    assert sorted(f.finding for q in yes for f in extract_findings(q)) == [
        "fatty_liver",
        "renal_cyst",
    ]
    assert "gallstone" in {f.finding for q in no for f in extract_findings(q)}


def test_qa_does_not_repeat_questions_the_case_already_has() -> None:
    row = make_row(0, "abdomen", CYST_AND_FAT, random.Random(0))
    first, _ = augment_rows([row], RulesBackend(), TextAugmentConfig(rewrites=0, qa=50))
    vqa = [{**r, "augmented": None, "id": f"v{i}"} for i, r in enumerate(first[1:])]
    out, summary = augment_rows([row, *vqa], RulesBackend(), TextAugmentConfig(rewrites=0, qa=50))
    assert summary.qa_kept == 0 and summary.qa_dropped["duplicate"] == len(vqa) > 5
    assert len(out) == 1 + len(vqa)


# --- guard rails ----------------------------------------------------------------------------

SOURCE = (
    "There is a 2.0 cm simple cyst in the left kidney. Moderate hepatic steatosis. "
    "A 6 mm nodule is noted in the right lower lobe. No ascites."
)


@pytest.mark.parametrize(
    ("rewrite", "reason"),
    [
        ("The left kidney contains a cyst, measuring 20 mm. The liver shows moderate diffuse "
         "fatty infiltration. A 6 mm nodule is seen in the right lower lobe. No free fluid.", None),
        ("Short.", "too_short"),
        ("左肾囊肿 2.0 cm。中度脂肪肝。右肺下叶 6 mm 结节。无腹水。", "non_english"),
        ("Киста левой почки 2.0 см. Умеренный стеатоз печени. Узел 6 мм. Асцита нет.",
         "non_english"),
        (SOURCE.upper(), "duplicate"),
        (SOURCE.replace("left kidney", "right kidney"), "finding_moved"),
        (SOURCE.replace("right lower lobe", "right upper lobe"), "finding_moved"),
        (SOURCE.replace("2.0 cm", "3.0 cm"), "finding_changed"),
        (SOURCE.replace("Moderate", "Severe"), "finding_changed"),
        (SOURCE.replace("Moderate hepatic steatosis. ", ""), "finding_lost"),
        (SOURCE + " There is splenomegaly.", "finding_added"),
        (SOURCE.replace("No ascites.", "The pancreas is unremarkable."),
         "normal_statement_changed"),
    ],
)  # fmt: skip
def test_rewrite_guard_rails(rewrite: str, reason: str | None) -> None:
    source = extract_report(SOURCE, "abdomen")
    got = rewrite_drop_reason(
        rewrite,
        SOURCE,
        source,
        "abdomen",
        seen={SOURCE.lower()},
        min_length=20,
        size_tolerance_mm=1.0,
    )
    assert got == reason


@pytest.mark.parametrize(
    ("question", "answer", "reason"),
    [
        ("Is there a renal cyst?", "Yes, in the left kidney.", None),
        ("Is there a renal cyst?", "No.", "answer_contradicts_report"),
        ("Is there ascites?", "No.", None),
        ("Is there ascites?", "Yes.", "answer_contradicts_report"),
        ("How large is the cyst?", "The left renal cyst measures 20 mm.", None),
        ("How large is the cyst?", "The right renal cyst measures 20 mm.", "answer_contradicts_report"),
        ("How large is the cyst?", "It is 4 cm, a left renal cyst.", "answer_contradicts_report"),
        ("What about the liver?", "There is no hepatic steatosis.", "answer_contradicts_report"),
        ("肝脏?", "中度脂肪肝。", "non_english"),
        ("", "Yes.", "empty"),
    ],
)  # fmt: skip
def test_qa_guard_rails(question: str, answer: str, reason: str | None) -> None:
    source = extract_report(SOURCE, "abdomen")
    got = qa_drop_reason(question, answer, source, "abdomen", seen=set(), size_tolerance_mm=1.0)
    assert got == reason


@pytest.mark.parametrize(
    ("text", "foreign"),
    [
        ("A 5 mm nodule, ± 1 mm, 20° angle, 10 µm, café-au-lait spot.", False),
        ("Mild hydronephrosis (grade α).", False),
        ("肝脏大小正常", True),
        ("The liver is normal，no lesion", True),  # fullwidth comma from a CJK keyboard
        ("Печень не увеличена", True),
        ("肝臓は正常です", True),
        ("간은 정상입니다", True),
    ],
)
def test_non_english_script(text: str, foreign: bool) -> None:
    assert non_english_script(text) is foreign


def test_extractor_disagreeing_with_findings_field_skips_the_row() -> None:
    row = make_row(0, "abdomen", CYST_AND_FAT, random.Random(0))
    row["findings"] = [Finding("spleen", "splenomegaly").to_dict()]  # not what the text says
    out, summary = augment_rows([row], RulesBackend(), TextAugmentConfig(rewrites=2, qa=2))
    assert out == [row] and summary.sources_skipped["extractor_disagrees_with_findings"] == 1


# --- leakage -------------------------------------------------------------------------------


def test_leakage_check_catches_a_paraphrase_in_another_split() -> None:
    rows = synthetic_rows(4)
    out, _ = augment_rows(rows, RulesBackend(), TextAugmentConfig(rewrites=1, qa=1))
    aug = [r for r in out if r.get("augmented")]
    train = [r for r in out if r["id"] in (rows[0]["id"], rows[1]["id"])]
    train += [r for r in aug if r["source_id"] in (rows[0]["id"], rows[1]["id"])]
    test = [r for r in out if r not in train]
    assert check_augmented_leakage({"train": train, "test": test}) == []

    moved = next(r for r in aug if r["source_id"] == rows[0]["id"])
    problems = check_augmented_leakage({"train": [r for r in train if r is not moved],
                                        "test": [*test, moved]})  # fmt: skip
    assert len(problems) == 1
    assert moved["id"] in problems[0] and "'train'" in problems[0] and "leakage" in problems[0]

    orphan = {**moved, "source_id": "nowhere"}
    assert "in no split" in check_augmented_leakage({"train": [orphan]})[0]


# --- CLI --------------------------------------------------------------------------------------


def cli() -> typer.Typer:
    app = typer.Typer()
    data = typer.Typer()
    add_augment_command(data)
    app.add_typer(data, name="data")
    return app


def test_cli_rules_writes_originals_plus_augmented_rows(tmp_path) -> None:
    rows = synthetic_rows(9)
    src = write_jsonl(rows, tmp_path / "in" / "train.jsonl")
    out = tmp_path / "out" / "aug.jsonl"
    args = ["data", "augment", str(src), "--out", str(out), "--rewrites", "2", "--qa", "2"]
    result = CliRunner().invoke(cli(), [*args, "--no-progress"])
    assert result.exit_code == 0, result.output
    assert re.search(r"rewrites: kept \d+ of \d+ checked \(18 requested\)", result.output)
    got = read_jsonl(out)
    assert [r.id for r in got[: len(rows)]] == [r["id"] for r in rows]
    assert {r.extra["augmented"] for r in got[len(rows) :]} == {"rewrite", "qa"}
    # Relative image paths still point at the same files from the new folder.
    assert got[0].image == "../in/images/c0.nii.gz"


@pytest.mark.parametrize(
    ("setup", "extra", "message"),
    [
        ("missing", [], "JSONL file not found"),
        ("bad_line", [], "line 2: not valid JSON"),
        ("ok", ["--llm", "gpt4"], "--llm 'gpt4' is not a backend"),
        ("ok", ["--llm", "openai:localhost:8000"], "not an http"),
        ("ok", ["--rewrites", "-1"], "--rewrites must be >= 0"),
        ("ok", ["--llm", "openai:http://127.0.0.1:9", "--concurrency", "0"], "--concurrency"),
    ],
)
def test_cli_bad_input_is_a_user_error(tmp_path, setup: str, extra: list, message: str) -> None:
    path = tmp_path / "in.jsonl"
    if setup != "missing":
        write_jsonl(synthetic_rows(2), path)
    if setup == "bad_line":
        lines = path.read_text().splitlines()
        path.write_text(lines[0] + "\n" + lines[1][:-5] + "\n")
    args = ["data", "augment", str(path), "--out", str(tmp_path / "o.jsonl"), *extra]
    result = CliRunner().invoke(cli(), args)
    assert isinstance(result.exception, Mu2Error), result.output
    assert message in str(result.exception)


def test_mu2_data_augment_entry_point(tmp_path, capsys) -> None:
    from mu2.cli.main import main

    src = write_jsonl(synthetic_rows(3), tmp_path / "train.jsonl")
    out = tmp_path / "aug.jsonl"
    with pytest.raises(SystemExit) as done:  # typer's standalone mode exits on success
        main(["data", "augment", str(src), "--out", str(out), "--no-progress"])
    assert done.value.code == 0
    assert "rows out:" in capsys.readouterr().out and out.is_file()
    bad = ["data", "augment", str(tmp_path / "none.jsonl"), "--out", str(out)]
    assert main(bad) == 2
    assert "none.jsonl: JSONL file not found" in capsys.readouterr().err
