"""Claims: a bound that fails stops the notebook, a speed figure never does, both are recorded."""
import json

import pytest

from course_utils import claims
from course_utils.claims import ClaimError, claim, speed_note


@pytest.fixture
def log(tmp_path, monkeypatch):
    path = tmp_path / "claims.jsonl"
    monkeypatch.setenv("COURSE_CLAIMS_LOG", str(path))
    monkeypatch.delenv("COURSE_CLAIMS_EXPLORE", raising=False)
    return path


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_claim_within_bounds_returns_the_value_and_records_it(log):
    assert claim("gap", 0.4, at_least=0.0, at_most=1) == 0.4
    assert claim("drop", 2, at_most=3) == 2.0
    assert rows(log) == [
        {"kind": "claim", "name": "gap", "value": 0.4, "at_least": 0.0, "at_most": 1,
         "passed": True},
        {"kind": "claim", "name": "drop", "value": 2.0, "at_least": None, "at_most": 3,
         "passed": True}]


def test_claim_outside_bounds_raises_an_assertion_that_names_value_and_bound(log):
    with pytest.raises(ClaimError, match=r"95% sparse: this run measured -0\.7.*at least -0\.5"):
        claim("95% sparse", -0.7, at_least=-0.5)
    with pytest.raises(AssertionError, match="between 0 and 3"):
        claim("drop", 3.5, at_least=0, at_most=3)
    assert [r["passed"] for r in rows(log)] == [False, False], "failures are recorded too"


def test_claim_needs_a_bound():
    with pytest.raises(ValueError, match="give a bound"):
        claim("nothing", 1.0)


def test_explore_mode_records_without_stopping(log, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_CLAIMS_EXPLORE", "1")
    assert claim("gap", -5, at_least=0) == -5.0
    assert "[explore] gap" in capsys.readouterr().out and rows(log)[0]["passed"] is False


def test_show_prints_the_sweep_spread_next_to_this_run(monkeypatch, capsys):
    monkeypatch.setattr(claims, "sweep_summary", lambda: {
        "gap": {"mean": 0.5, "sd": 0.25, "min": 0.1, "max": 0.9, "n": 10}})
    claim("gap", 0.42, at_least=0, show=True)
    assert capsys.readouterr().out.strip() == (
        "gap: 0.42 in your run · make sweep, 10 runs: 0.50 ± 0.25 (from 0.10 to 0.90)")
    claim("other", 1.0, at_least=0, show=True)
    assert capsys.readouterr().out.strip() == "other: 1.00 in your run"


def test_the_shipped_summary_reads():
    assert claims.SUMMARY.is_file(), "course_utils/sweep_summary.json ships with the package"
    summary = claims.sweep_summary()
    assert len(summary) >= 30, "one entry per claim of the notebooks"
    for spread in summary.values():
        assert spread["min"] <= spread["mean"] <= spread["max"] and spread["n"] >= 1


def test_speed_note_prints_outside_its_range_and_never_raises(log, capsys):
    assert speed_note("the smaller MLP's speed-up", 2.0, usual=(1.7, 2.4)) == 2.0
    assert capsys.readouterr().out == ""
    speed_note("the smaller MLP's speed-up", 1.1, usual=(1.7, 2.4))
    out = capsys.readouterr().out
    assert out.startswith("Note: on your machine, the smaller MLP's speed-up is 1.10x")
    assert "1.7-2.4x" in out
    assert [r["kind"] for r in rows(log)] == ["speed", "speed"]


def test_every_claim_of_the_notebooks_was_proven_by_the_last_sweep():
    """A claim added or renamed in a notebook needs `make sweep` (or `--merge`) to prove it."""
    import re
    from pathlib import Path

    import nbformat
    root = Path(__file__).resolve().parents[1]
    table = (root / "benchmarks" / "CLAIMS.md").read_text()
    summary = claims.sweep_summary()
    names = []
    for path in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        source = "\n".join(c.source for c in cells if c.cell_type == "code")
        names += re.findall(r'claim\(\s*"([^"]+)"', source)
    assert len(names) >= 30 and len(set(names)) == len(names), "claim names are unique"
    # as the table escapes them
    cells = {name: "| " + name.replace("|", "\\|") + " |" for name in names}
    missing = [name for name in names if cells[name] not in table or name not in summary]
    assert not missing, f"run make sweep: not in CLAIMS.md or sweep_summary.json: {missing}"
    assert "FAIL" not in table, "every run of the last sweep passed"
