"""make sweep's table and summary, from fake runs (the sweep itself takes half an hour)."""

import math

import pytest


@pytest.fixture(scope="module")
def sweep():
    from tools import sweep as module  # the script, run as python -m tools.sweep

    return module


def fake_runs(gaps, cpu="Some CPU, 2 cores"):
    runs = []
    for i, gap in enumerate(gaps):
        claims = [
            {
                "kind": "claim",
                "name": "04 gap",
                "value": gap,
                "at_least": -1.0,
                "at_most": None,
                "passed": gap >= -1.0,
                "says": "A is not behind B",
            },
            {
                "kind": "sanity",
                "name": "masked speed-up",
                "value": 0.9,
                "at_least": None,
                "at_most": 1.2,
                "passed": True,
                "says": "masks skip no arithmetic",
            },
            {
                "kind": "speed",
                "name": "speed-up",
                "value": 2.0 + i / 10,
                "at_least": 1.7,
                "at_most": 2.4,
                "passed": True,
            },
        ]
        runs.append(
            {
                "cpu": cpu,
                "seed": i // 2,
                "threads": 1 + i % 2,
                "notebooks": {
                    "04_fine_tuning": {
                        "passed": gap >= -1.0,
                        "seconds": 60.0,
                        "claims": claims,
                        "error": None if gap >= -1.0 else "ClaimError: 04 gap",
                    }
                },
            }
        )
    return runs


def test_summary_gives_spread_bound_sentence_and_slack(sweep):
    summary = sweep.summary(fake_runs([0.0, 0.5, 1.0, 0.5]))
    assert list(summary) == ["04 gap"], "speed notes and sanity checks are not claims"
    gap = summary["04 gap"]
    assert {k: gap[k] for k in ("mean", "min", "median", "max", "n")} == {
        "mean": 0.5,
        "min": 0.0,
        "median": 0.5,
        "max": 1.0,
        "n": 4,
    }
    assert gap["sd"] == pytest.approx(0.4082, abs=1e-4), "the sample sd"
    assert gap["at_least"] == -1.0 and gap["at_most"] is None and gap["says"] == "A is not behind B"
    assert gap["distance"] == 1.0 and gap["slack_sd"] == pytest.approx(1 / 0.4082, abs=1e-3)
    assert gap["cpus"] == ["Some CPU, 2 cores"]


def test_slack_is_the_worst_run_to_the_bound_in_sd(sweep):
    assert sweep.slack([1.0, 2.0, 3.0], 0.0, None) == (1.0, 1.0)
    assert sweep.slack([1.0, 2.0, 3.0], None, 4.0) == (1.0, 1.0)
    assert sweep.slack([1.0, 2.0, 3.0], 0.5, 3.5) == (0.5, 0.5), "the nearer side"
    assert sweep.slack([1.0, 2.0, 3.0], 1.5, None)[0] == -0.5, "outside: negative"
    assert sweep.slack([2.0, 2.0], 0.0, None) == (2.0, math.inf), "no spread"


def test_a_bound_far_beyond_the_effect_and_eight_sd_cannot_fail(sweep):
    # the lottery claim as it was: "ahead by more than a point", bound >= -1, runs 1.42 to 2.06
    values = [1.42, 1.5, 1.55, 1.6, 1.62, 1.62, 1.7, 1.8, 1.9, 2.06]
    summary = sweep.summary(fake_runs(values))["04 gap"]
    assert sweep.unfalsifiable(summary), "the sentence could be false and the bound still pass"
    assert "**cannot fail**" in sweep.markdown(fake_runs(values), MACHINE)
    # the bound that states it: ahead by more than a point
    tight = fake_runs(values)
    for run in tight:
        run["notebooks"]["04_fine_tuning"]["claims"][0]["at_least"] = 1.0
    assert not sweep.unfalsifiable(sweep.summary(tight)["04 gap"])


MACHINE = {
    "date": "2026-11-25 12:00",
    "cpu": "Some CPU",
    "cores": 2,
    "python": "3.11",
    "torch": "2.4",
}


def test_markdown_lists_cpus_runs_claims_sanity_and_failures(sweep):
    runs = fake_runs([0.2, -1.5]) + fake_runs([0.3], cpu="Other CPU, 2 cores")
    text = sweep.markdown(runs, MACHINE)
    assert "Some CPU, 2 cores: 2 runs (seeds [0] x torch threads [1, 2]); " in text
    assert "Other CPU, 2 cores: 1 runs (seeds [0] x torch threads [1])" in text
    assert "| Some CPU, 2 cores | 0 | 1 | pass (60 s) |" in text
    assert "| Some CPU, 2 cores | 0 | 2 | **FAIL** (60 s) |" in text
    assert "**2 of 3 notebook runs passed.**" in text and "ClaimError: 04 gap" in text
    assert "| 04 | 04 gap | A is not behind B | >= -1 | -1.5 | 0.2 | 0.3 | -0.5 sd | 2/3 |" in text
    assert "| 04 | masked speed-up | masks skip no arithmetic | <= 1.2 |" in text
    assert "| 04 | speed-up | 1.7 to 2.4 |" in text and "Run time: 3 min" in text


def test_merge_replaces_only_the_notebooks_run_again_on_the_same_cpu(sweep):
    old = fake_runs([0.2, 0.4])
    for run in old:
        run["notebooks"]["05_global_pruning"] = {
            "passed": True,
            "seconds": 10.0,
            "claims": [],
            "error": None,
        }
    new = fake_runs([0.9, 0.8])
    merged = sweep.merge(old, new)
    assert [list(run["notebooks"]) for run in merged] == [
        ["04_fine_tuning", "05_global_pruning"]
    ] * 2
    assert merged[0]["notebooks"]["04_fine_tuning"]["claims"][0]["value"] == 0.9
    assert merged[1]["notebooks"]["05_global_pruning"]["seconds"] == 10.0
    assert sweep.merge([], new) == new
    other = fake_runs([0.1, 0.3], cpu="Other CPU, 2 cores")
    both = sweep.merge(old, other)
    assert len(both) == 4, "another CPU's runs are added, never replaced"
    assert both[0]["notebooks"]["04_fine_tuning"]["claims"][0]["value"] == 0.2


def test_too_few_runs_are_shown_but_not_judged(sweep):
    # two runs give no usable sd: the same far bound is not judged until the full sweep
    values = [1.42, 1.5]
    entry = sweep.summary(fake_runs(values))["04 gap"]
    assert entry["n"] == 2 and not sweep.unfalsifiable(entry)
    text = sweep.markdown(fake_runs(values), MACHINE)
    assert "not judged (2 runs)" in text and "Not every notebook" not in text
    partial = fake_runs(values)
    for run in partial:  # 05 ran twice, 04 only in the first run
        run["notebooks"]["05_global_pruning"] = run["notebooks"]["04_fine_tuning"]
    del partial[1]["notebooks"]["04_fine_tuning"]
    assert "**Not every notebook ran in every run**: 04 in 1 of 2." in sweep.markdown(
        partial, MACHINE
    )
