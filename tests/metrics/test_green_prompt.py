"""The GREEN prompt is byte-identical to the published one."""

from __future__ import annotations

from pathlib import Path

from mu2.metrics.green import make_prompt, render_chat, truncate_report
from mu2.metrics.green.prompt import prompt_template

# An independent byte-exact copy of the published template (origin: tests/data/green/README.md)
SPEC_TEMPLATE = Path(__file__).parents[1] / "data" / "green" / "prompt-template.txt"

# The published prompt for reference "R R" and candidate "C", typed out in full.
EXPECTED = (
    "Objective: Evaluate the accuracy of a candidate radiology report in comparison to a "
    "reference radiology report composed by expert radiologists.\n\n"
    "    Process Overview: You will be presented with:\n\n"
    "    1. The criteria for making a judgment.\n"
    "    2. The reference radiology report.\n"
    "    3. The candidate radiology report.\n"
    "    4. The desired format for your assessment.\n\n"
    "    1. Criteria for Judgment:\n\n"
    "    For each candidate report, determine:\n\n"
    "    The count of clinically significant errors.\n"
    "    The count of clinically insignificant errors.\n\n"
    "    Errors can fall into one of these categories:\n\n"
    "    a) False report of a finding in the candidate.\n"
    "    b) Missing a finding present in the reference.\n"
    "    c) Misidentification of a finding's anatomic location/position.\n"
    "    d) Misassessment of the severity of a finding.\n"
    "    e) Mentioning a comparison that isn't in the reference.\n"
    "    f) Omitting a comparison detailing a change from a prior study.\n"
    "    Note: Concentrate on the clinical findings rather than the report's writing style. "
    "Evaluate only the findings that appear in both reports.\n\n"
    "    2. Reference Report:\n"
    "    R R\n\n"
    "    3. Candidate Report:\n"
    "    C\n\n"
    "    4. Reporting Your Assessment:\n\n"
    "    Follow this specific format for your output, even if no errors are found:\n"
    "    ```\n"
    "    [Explanation]:\n"
    "    <Explanation>\n\n"
    "    [Clinically Significant Errors]:\n"
    "    (a) <Error Type>: <The number of errors>. <Error 1>; <Error 2>; ...; <Error n>\n"
    "    ....\n"
    "    (f) <Error Type>: <The number of errors>. <Error 1>; <Error 2>; ...; <Error n>\n\n"
    "    [Clinically Insignificant Errors]:\n"
    "    (a) <Error Type>: <The number of errors>. <Error 1>; <Error 2>; ...; <Error n>\n"
    "    ....\n"
    "    (f) <Error Type>: <The number of errors>. <Error 1>; <Error 2>; ...; <Error n>\n\n"
    "    [Matched Findings]:\n"
    "    <The number of matched findings>. <Finding 1>; <Finding 2>; ...; <Finding n>\n"
    "    ```\n"
)


def test_prompt_is_byte_identical_to_the_published_one() -> None:
    # Whitespace inside a report collapses to single spaces (the 300-token truncation).
    assert make_prompt("R \n  R", "C") == EXPECTED


def test_packaged_template_matches_the_spec_file() -> None:
    assert prompt_template().encode() == SPEC_TEMPLATE.read_bytes()


def test_reports_are_cut_to_300_tokens() -> None:
    long = " ".join(f"w{i}" for i in range(400))
    assert truncate_report(long).split() == [f"w{i}" for i in range(300)]
    prompt = make_prompt(long, "short")
    assert "w299" in prompt and "w300" not in prompt


def test_placeholders_or_braces_inside_reports_are_kept_literally() -> None:
    prompt = make_prompt("a {candidate} b", "c {reference} {0}")
    assert "    a {candidate} b\n\n    3. Candidate Report:\n    c {reference} {0}\n" in prompt


def test_chat_wrapping_without_tokenizer() -> None:
    assert render_chat("P") == "<|user|>\nP</s>\n<|assistant|>\n</s>\n<|assistant|>\n"
