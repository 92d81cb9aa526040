"""Preference pairs: degenerate samples, best/worst choice, seeds, resumable output files."""

import json

from mu2.train.prefs import (
    case_groups,
    case_seed,
    choose_pair,
    degenerate_reason,
    done_ids,
    group_seed,
    merge_parts,
    skipped_path,
)


def test_degenerate_samples():
    assert degenerate_reason("", 3) == "empty"
    assert degenerate_reason("  . , ", 3) == "empty"
    assert degenerate_reason("Liver normal.", 3) == "short"
    assert degenerate_reason("The liver liver liver liver is big.", 3) == "loop"
    assert degenerate_reason("The liver is normal. The spleen is normal.", 3) is None


def test_choose_best_and_worst():
    assert choose_pair([0.2, 0.9, 0.1, 0.9]) == (1, 2)  # ties break toward the first sample
    assert choose_pair([0.0, 0.0]) == "best_zero"
    assert choose_pair([0.5, 0.5, 0.5]) == "tie"
    assert choose_pair([0.5]) == "degenerate"


def test_ties_broken_by_significant_errors_and_margin_filter():
    # equal GREEN: fewer significant errors is better, more is worse
    assert choose_pair([0.5, 0.5, 0.5], errors=[2, 1, 3]) == (1, 2)
    assert choose_pair([0.5, 0.5], errors=[1, 1]) == "tie"
    assert choose_pair([0.9, 0.5, 0.5], errors=[0, 1, 4]) == (0, 2)  # GREEN first
    assert choose_pair([0.0, 0.0], errors=[1, 2]) == "best_zero"
    assert choose_pair([0.6, 0.5], min_margin=0.2) == "small_margin"
    assert choose_pair([0.7, 0.5], min_margin=0.2) == (0, 1)
    assert choose_pair([0.5, 0.5], errors=[0, 1], min_margin=0.1) == "small_margin"


def test_case_seed_is_stable_and_distinct():
    assert case_seed(0, "case-1") == case_seed(0, "case-1")
    assert len({case_seed(s, c) for s in (0, 1) for c in ("a", "b")}) == 4
    assert 0 <= case_seed(7, "x") < 2**63


def test_sampling_groups_are_fixed_runs_of_cases():
    rows = [{"id": str(i)} for i in range(7)]
    assert [[r["id"] for r in g] for g in case_groups(rows, 3)] == [
        ["0", "1", "2"], ["3", "4", "5"], ["6"]
    ]  # fmt: skip
    assert group_seed(0, ["a"]) == case_seed(0, "a")  # one case per group: its own seed
    assert group_seed(0, ["a", "b"]) != group_seed(0, ["b", "a"]) != group_seed(1, ["a", "b"])


def test_resume_reads_outputs_and_drops_a_cut_line(tmp_path):
    out = tmp_path / "pairs.jsonl"
    out.write_text(json.dumps({"id": "a"}) + "\n" + '{"id": "b", "cho')  # killed mid-write
    skipped_path(out).write_text(json.dumps({"id": "c", "reason": "tie"}) + "\n")
    (tmp_path / "pairs.jsonl.part1").write_text(json.dumps({"id": "d"}) + "\n")
    assert done_ids(out) == {"a", "c", "d"}
    assert out.read_text() == json.dumps({"id": "a"}) + "\n"  # the broken tail is gone
    merge_parts(out)
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["a", "d"]
    assert not (tmp_path / "pairs.jsonl.part1").exists()


def test_rank_samples_breaks_ties_with_the_judges_error_counts():
    from mu2.metrics.green import make_judge
    from mu2.train.prefs import rank_samples

    ref = "The spleen is unremarkable. The pancreas is normal. Mild ascites. Cholelithiasis."
    two_errors = "The spleen is unremarkable. The pancreas is normal. Moderate ascites."  # 2/4
    one_error = "Cholelithiasis. Moderate ascites."  # 1/2
    judge = make_judge("rules")
    samples = [two_errors, one_error]
    assert rank_samples(samples, ref, judge, min_length=1).skip == "tie"
    ranked = rank_samples(samples, ref, judge, min_length=1, tie_break="errors")
    assert (ranked.chosen, ranked.rejected) == (one_error, two_errors)
    assert ranked.chosen_green == ranked.rejected_green == 0.5 and ranked.tie_broken
    assert (ranked.chosen_errors, ranked.rejected_errors) == (1, 2)
    strict = rank_samples(samples, ref, judge, min_length=1, tie_break="errors", min_margin=0.1)
    assert strict.skip == "small_margin"
