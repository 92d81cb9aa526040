"""The bad-input corpus through `mu2 inspect`, `mu2 report` and `mu2 data check`.

In process (the CLI's ``main``), so 70-odd cases take seconds; one subprocess run of the
installed script checks the same contract end to end. An ``error`` case must give exit
code 2 and exactly one line on stderr that names the file and says how to fix it; an
``accept`` case must be read (exit 0), for the reason its builder documents.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from mu2.cli.main import main

MU2 = Path(sys.executable).parent / "mu2"
TRAIN_TEXTS = ["Describe the findings of the abdomen.", "The liver is normal. No ascites."]


def _run(argv: list[str], capfd) -> tuple[int, str, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            code = main(argv)
        except SystemExit as done:
            code = done.code
    out = capfd.readouterr()
    return int(code or 0), out.out, out.err


def _assert_one_line_error(code: int, err: str, path: Path, note: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("mu2: error: "), line
    assert str(path) in line and " -- fix: " in line, line
    assert note.lower() in line.lower(), (note, line)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from mu2.model import build

    out = tmp_path_factory.mktemp("corpus_model")
    build("tiny", preset="mu2", train_texts=TRAIN_TEXTS, seed=0).save_pretrained(out)
    return out


def test_corpus_is_large_and_mixed(corpus_cases):
    kinds = [c.expect for c in corpus_cases.values()]
    assert len(kinds) >= 65
    assert kinds.count("error") >= 50 and kinds.count("accept") >= 10
    assert all(c.note for c in corpus_cases.values())  # every acceptance says why


def test_inspect(corpus, corpus_cases, case_name, capfd):
    case, path = corpus_cases[case_name], corpus[case_name]
    code, out, err = _run(["inspect", str(path)], capfd)
    assert "Traceback" not in out + err
    if case.expect == "error":
        _assert_one_line_error(code, err, path, case.note)
        assert out == ""
    else:
        assert code == 0, err
        assert "shape:" in out


def test_report_refuses_before_loading_the_model(corpus, corpus_cases, error_case, capfd, tmp_path):
    # A model folder that cannot load: a bad scan must fail before the model is touched.
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    case, path = corpus_cases[error_case], corpus[error_case]
    code, out, err = _run(["report", str(path), "--model", str(model)], capfd)
    _assert_one_line_error(code, err, path, case.note)


def test_report_accepts(corpus, accept_case, tiny_model, capfd):
    path = corpus[accept_case]
    code, out, err = _run(
        # a region by force and non-CT allowed: these small volumes need not show the HU
        # landmarks of a region, and the content check is not what this corpus tests
        ["report", str(path), "--model", str(tiny_model), "--max-new-tokens", "2", "--json",
         "--region", "abdomen", "--force", "--allow-non-ct"],  # fmt: skip
        capfd,
    )
    assert code == 0, err
    assert "Traceback" not in err
    assert json.loads(out)["input"]["shape"]


def test_data_check_names_every_bad_image_with_a_fix(corpus, corpus_cases, tmp_path, capfd):
    rows = [
        {"id": name, "image": str(path), "question": "q?", "answer": "a.", "case_id": name}
        for name, path in corpus.items()
    ]
    jsonl = tmp_path / "corpus.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, err = _run(["data", "check", str(jsonl), "--quiet"], capfd)
    assert code == 1 and "Traceback" not in out + err
    for name, case in corpus_cases.items():
        hits = [ln for ln in out.splitlines() if f"row '{name}'" in ln]
        if case.expect == "error":
            assert len(hits) == 1, (name, out)
            assert str(corpus[name]) in hits[0] and "fix:" in hits[0], hits[0]
        else:
            assert hits == [], hits


def test_installed_script_on_the_gz_bomb(corpus):
    """The console script a user runs: one line, exit 2, no traceback, in one process."""
    path = corpus["nii_gz_bomb_512x512x1024"]
    proc = subprocess.run(
        [str(MU2), "inspect", str(path)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "compression bomb" in proc.stderr
    assert str(path) in proc.stderr
