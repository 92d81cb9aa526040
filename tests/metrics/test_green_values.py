"""GREEN counts and corpus numbers with known values, computed by hand in each test."""

from __future__ import annotations

import json

import pytest

from mu2.metrics.green import parse_answer
from mu2.metrics.green.score import score_answers

CATS = {
    "a": "False report of a finding in the candidate",
    "b": "Missing a finding present in the reference",
    "c": "Misidentification of a finding's anatomic location/position",
    "d": "Misassessment of the severity of a finding",
    "e": "Mentioning a comparison that isn't in the reference",
    "f": "Omitting a comparison detailing a change from a prior study",
}


def _answer(sig: dict[str, int], matched: int, insig: dict[str, int] | None = None) -> str:
    lines = ["[Explanation]:", "Short.", ""]
    lines += ["[Clinically Significant Errors]:"]
    lines += [f"({c}) {CATS[c]}: {sig.get(c, 0)}." for c in CATS]
    lines += ["", "[Clinically Insignificant Errors]:"]
    lines += [f"({c}) {CATS[c]}: {(insig or {}).get(c, 0)}." for c in CATS]
    lines += ["", "[Matched Findings]:", f"{matched}. x.", ""]
    return "\n".join(lines)


def test_two_lines_of_one_category_keep_the_later_after_sorting() -> None:
    # The published client sorts the category lines and lets a later one overwrite: the
    # line read last is "(a) ...: 3." (": 3." sorts after ": 1."), although it comes first.
    text = (
        "[Clinically Significant Errors]:\n"
        f"(a) {CATS['a']}: 3. x; y; z.\n"
        f"(b) {CATS['b']}: 2. p; q.\n"
        f"(a) {CATS['a']}: 1. w.\n"
        "\n[Matched Findings]:\n4. m.\n"
    )
    answer = parse_answer(text)
    assert answer.significant == {"a": 3, "b": 2, "c": 0, "d": 0, "e": 0, "f": 0}
    assert answer.score == 4 / (4 + 3 + 2)


def test_every_category_and_section_is_read_into_its_own_slot() -> None:
    sig = {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6}
    insig = {"a": 6, "b": 5, "c": 4, "d": 3, "e": 2, "f": 1}
    answer = parse_answer(_answer(sig, 7, insig))
    assert answer.significant == sig and answer.insignificant == insig
    assert answer.matched == 7
    assert answer.score == 7 / (7 + 21)
    assert answer.to_dict() == {
        "matched": 7,
        "significant": sig,
        "insignificant": insig,
        "score": 7 / 28,
    }


def test_numbered_lines_map_to_letters_in_order() -> None:
    text = "[Clinically Significant Errors]:\n" + "\n".join(
        f"({i}) {CATS[c]}: {i}." for i, c in enumerate(CATS, start=1)
    )
    text += "\n\n[Matched Findings]:\n2. m."
    answer = parse_answer(text)
    assert answer.significant == {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6}
    assert answer.score == 2 / 23


def test_matched_count_reads_multi_digit_numbers() -> None:
    assert parse_answer("[Matched Findings]:\n12. a; b.").matched == 12
    assert parse_answer("[Matched Findings]:\nabout 12. a.").matched == 0  # must open it


def test_corpus_mean_population_sd_and_zero_error_share(tmp_path) -> None:
    answers = [
        _answer({"a": 1}, 1),  # 1 / 2
        _answer({}, 3),  # 1
        _answer({"a": 2, "b": 1}, 1),  # 1 / 4
        "unreadable",  # 0
    ]
    result = score_answers(answers, "judge-x", ids=["p", "q", "r", "s"])
    scores = [0.5, 1.0, 0.25, 0.0]
    mean = sum(scores) / 4
    sd = (sum((s - mean) ** 2 for s in scores) / 4) ** 0.5  # population sd
    assert result.scores.tolist() == scores
    assert result.mean == pytest.approx(mean) and result.sd == pytest.approx(sd)
    share = result.zero_error_share
    assert share == {"a": 0.5, "b": 0.75, "c": 1.0, "d": 1.0, "e": 1.0, "f": 1.0}
    assert result.summary() == {
        "judge": "judge-x",
        "n": 4,
        "mean": pytest.approx(mean),
        "sd": pytest.approx(sd),
        "zero_error_share": share,
    }
    sub = result.subset([2, 0])
    assert sub.ids == ["r", "p"] and sub.scores.tolist() == [0.25, 0.5]
    assert sub.answers == [answers[2], answers[0]] and sub.judge == "judge-x"
    rows = [json.loads(x) for x in result.save_answers(tmp_path).read_text().splitlines()]
    assert [r["id"] for r in rows] == ["p", "q", "r", "s"]
    assert [r["score"] for r in rows] == scores
    assert rows[2]["significant"]["a"] == 2 and rows[2]["answer"] == answers[2]
    assert all(r["judge"] == "judge-x" for r in rows)


def test_empty_corpus_and_default_ids() -> None:
    empty = score_answers([], "j")
    assert empty.mean == 0.0 and empty.sd == 0.0 and empty.summary()["n"] == 0
    assert score_answers(["a", "b"], "j").ids == ["0", "1"]


def test_clean_answer_keeps_the_text_after_the_last_markers() -> None:
    from mu2.metrics.green.parse import clean_answer

    assert clean_answer("p<|assistant|>q<|assistant|>r") == "r"
    assert clean_answer("intro [Explanation]: one [Explanation]: two") == " two"
    assert clean_answer("a</s>b<unk>c") == "abc"
    # an answer that echoes the prompt's format block keeps the piece after the FIRST marker
    echoed = "[Explanation]: mine\n[Explanation]:\n    <Explanation>\n"
    assert clean_answer(echoed) == " mine\n"


def test_green_corpus_pairs_ids_and_writes_nested_folders(tmp_path) -> None:
    from mu2.metrics.green import make_judge
    from mu2.metrics.green.score import ANSWERS_FILE, green_corpus

    judge = make_judge("rules")
    ref = "Small left pleural effusion."
    out = tmp_path / "a" / "b"
    result = green_corpus(judge, [ref, ref], [ref, ref], ids=["x", "y"], out_dir=out)
    assert result.ids == ["x", "y"] and result.scores.tolist() == [1.0, 1.0]
    rows = [json.loads(x) for x in (out / ANSWERS_FILE).read_text().splitlines()]
    assert [r["id"] for r in rows] == ["x", "y"]
    with pytest.raises(ValueError):  # never a silent truncation of a shorter list
        green_corpus(judge, [ref, ref], [ref])


def test_saving_mismatched_lists_fails_instead_of_dropping_rows(tmp_path) -> None:
    from mu2.metrics.green.score import GreenResult

    bad = GreenResult(judge="j", ids=["a"], answers=["x", "y"], parsed=[parse_answer("x")] * 2)
    with pytest.raises(ValueError):
        bad.save_answers(tmp_path)
