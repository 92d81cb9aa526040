"""GREEN answers are read with the published rules."""

from __future__ import annotations

from mu2.metrics.green import parse_answer

# The worked example of the protocol: matched 1, significant errors 2 + 1 + 2.
WORKED_EXAMPLE = """[Clinically Significant Errors]:
(a) False report of a finding in the candidate: 2. Large right hilar lung mass; Radiation fibrosis.
(b) Missing a finding present in the reference: 1. New focal airspace opacities.
(c) Misidentification of a finding's anatomic location/position: 2. Pneumonia in the right lobes; Left retrocardiac opacity.
(d) Misassessment of the severity of a finding: 0.
(e) Mentioning a comparison that isn't in the reference: 0.
(f) Omitting a comparison detailing a change from a prior study: 0.

[Matched Findings]:
1. Small left effusion.
"""


def test_worked_example_scores_one_sixth() -> None:
    answer = parse_answer(WORKED_EXAMPLE)
    assert answer.matched == 1
    assert answer.significant == {"a": 2, "b": 1, "c": 2, "d": 0, "e": 0, "f": 0}
    assert answer.score == 1 / 6


def test_text_before_last_assistant_tag_and_explanation_is_ignored() -> None:
    # A prompt echo before the answer holds numbers that must not be read.
    text = (
        "<|user|>\n[Matched Findings]:\n9. x</s>\n<|assistant|>\n</s>\n<|assistant|>\n"
        "[Explanation]:\nThe candidate misses one finding.\n\n" + WORKED_EXAMPLE + "</s><unk>"
    )
    assert parse_answer(text).score == 1 / 6


def test_insignificant_errors_are_counted_but_do_not_enter_the_score() -> None:
    text = WORKED_EXAMPLE.replace(
        "[Matched Findings]",
        "[Clinically Insignificant Errors]:\n(d) Misassessment of the severity of a finding: 3. "
        "a; b; c.\n\n[Matched Findings]",
    )
    answer = parse_answer(text)
    assert answer.insignificant["d"] == 3
    assert answer.score == 1 / 6


def test_no_matched_findings_scores_zero_even_without_errors() -> None:
    text = "[Clinically Significant Errors]:\n(a) False report: 0.\n\n[Matched Findings]:\n0."
    assert parse_answer(text).score == 0.0
    assert parse_answer("[Matched Findings]:\nNo matched findings.").score == 0.0


def test_body_starting_with_no_counts_zero() -> None:
    text = "[Clinically Significant Errors]:\nNo errors. (a) x: 4.\n\n[Matched Findings]:\n2. a; b."
    answer = parse_answer(text)
    assert sum(answer.significant.values()) == 0
    assert answer.score == 1.0


def test_section_body_ends_at_first_blank_line() -> None:
    text = (
        "[Clinically Significant Errors]:\n(a) False report: 1. x.\n\n(b) Missing: 5. y.\n\n"
        "[Matched Findings]:\n3. a; b; c."
    )
    answer = parse_answer(text)
    assert answer.significant["a"] == 1 and answer.significant["b"] == 0
    assert answer.score == 3 / 4


def test_numbered_fallback_categories() -> None:
    text = (
        "[Clinically Significant Errors]:\n(1) False report: 1. x.\n(6) Omitting: 2. y; z.\n\n"
        "[Matched Findings]:\n1. a."
    )
    answer = parse_answer(text)
    assert answer.significant["a"] == 1 and answer.significant["f"] == 2
    assert answer.score == 1 / 4


def test_count_needs_colon_space_before_and_period_after() -> None:
    text = "[Clinically Significant Errors]:\n(a) False report:3 x.\n(b) Missing: 2 y\n\n[Matched Findings]:\n1. a."
    answer = parse_answer(text)
    assert answer.significant["a"] == 0 and answer.significant["b"] == 0


def test_matched_count_must_open_the_section() -> None:
    assert parse_answer("[Matched Findings]:\nThere are 2. a; b.").matched == 0
    assert parse_answer("[Matched Findings]: 2. a; b.").matched == 2


def test_unparseable_answers_score_zero() -> None:
    for text in ("", "I cannot judge these reports.", "[Matched Findings]:", "<unk></s>"):
        assert parse_answer(text).score == 0.0


def test_echoed_format_block_keeps_published_quirk() -> None:
    # The reference client keeps the text after the FIRST [Explanation]: when the answer
    # repeats the prompt's format block; the real answer after it is then not read.
    echoed = "[Explanation]:\n    <Explanation>\n\n    [Matched Findings]:\n    <n>. a\n"
    answer = parse_answer(echoed + "[Explanation]:\nok\n\n[Matched Findings]:\n2. a; b.")
    assert answer.matched == 0
