"""make sweep's table and summary, from fake runs (the sweep itself takes half an hour)."""
import pytest

from tools import sweep


def fake_runs(gaps):
    runs = []
    for i, gap in enumerate(gaps):
        claims = [{"kind": "claim", "name": "04 gap", "value": gap, "at_least": -1.0,
                   "at_most": None,
                   "passed": gap >= -1.0},
                  {"kind": "speed", "name": "speed-up", "value": 2.0 + i / 10, "at_least": 1.7,
                   "at_most": 2.4,
                   "passed": True}]
        runs.append({"seed": i // 2, "threads": 1 + i % 2, "notebooks": {
            "04_fine_tuning": {"passed": gap >= -1.0, "seconds": 60.0, "claims": claims,
                               "error": None if gap >= -1.0 else "ClaimError: 04 gap"}}})
    return runs


def test_summary_gives_mean_sd_and_range():
    summary = sweep.summary(fake_runs([0.0, 0.5, 1.0, 0.5]))
    assert list(summary) == ["04 gap"], "speed notes are not claims"
    assert summary["04 gap"] == {"mean": 0.5, "sd": pytest.approx(0.3536, abs=1e-4), "min": 0.0,
                                 "max": 1.0, "n": 4}


def test_markdown_lists_runs_claims_and_failures():
    machine = {"date": "2026-11-25 12:00", "cpu": "Some CPU", "cores": 2, "python": "3.11",
               "torch": "2.4"}
    text = sweep.markdown(fake_runs([0.2, -1.5]), machine)
    assert "| 0 | 1 | pass (60 s) |" in text and "| 0 | 2 | **FAIL** (60 s) |" in text
    assert "**1 of 2 notebook runs passed.**" in text and "ClaimError: 04 gap" in text
    assert "| 04 | 04 gap | >= -1 | -1.5 | -0.65 | 0.2 | 1/2 |" in text
    assert "| 04 | speed-up | 1.7 to 2.4 |" in text and "Run time: 2 min" in text


def test_merge_replaces_only_the_notebooks_run_again():
    old = fake_runs([0.2, 0.4])
    for run in old:
        run["notebooks"]["05_global_pruning"] = {"passed": True, "seconds": 10.0, "claims": [],
                                                 "error": None}
    new = fake_runs([0.9, 0.8])
    merged = sweep.merge(old, new)
    assert [list(run["notebooks"]) for run in merged] == [["04_fine_tuning",
                                                           "05_global_pruning"]] * 2
    assert merged[0]["notebooks"]["04_fine_tuning"]["claims"][0]["value"] == 0.9
    assert merged[1]["notebooks"]["05_global_pruning"]["seconds"] == 10.0
    assert sweep.merge([], new) == new
