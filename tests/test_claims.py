"""Claims: a bound that fails stops the notebook, a speed figure never does, both are recorded."""

import json

import pytest

from course_utils import claims
from course_utils.claims import ClaimError, claim, sanity, speed_note


@pytest.fixture
def log(tmp_path, monkeypatch):
    path = tmp_path / "claims.jsonl"
    monkeypatch.setenv("COURSE_CLAIMS_LOG", str(path))
    monkeypatch.delenv("COURSE_CLAIMS_EXPLORE", raising=False)
    return path


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_claim_within_bounds_records_it_and_prints_nothing(log, capsys):
    assert claim("gap", 0.4, at_least=0.0, at_most=1, says="A beats B") is None, (
        "a cell that ends with a claim shows no bare number"
    )
    claim("drop", 2, at_most=3)
    assert capsys.readouterr().out == ""
    assert rows(log) == [
        {
            "kind": "claim",
            "name": "gap",
            "value": 0.4,
            "at_least": 0.0,
            "at_most": 1,
            "passed": True,
            "says": "A beats B",
        },
        {
            "kind": "claim",
            "name": "drop",
            "value": 2.0,
            "at_least": None,
            "at_most": 3,
            "passed": True,
            "says": "",
        },
    ]


def test_claim_outside_bounds_raises_an_assertion_that_names_value_and_bound(log):
    with pytest.raises(
        ClaimError,
        match=r"95% sparse: this run measured -0\.7.*at least -0\.5 "
        r"\(within half a point of dense\)",
    ):
        claim("95% sparse", -0.7, at_least=-0.5, says="within half a point of dense")
    with pytest.raises(AssertionError, match="between 0 and 3"):
        claim("drop", 3.5, at_least=0, at_most=3)
    assert [r["passed"] for r in rows(log)] == [False, False], "failures are recorded too"


def test_claim_needs_a_bound():
    with pytest.raises(ValueError, match="give a bound"):
        claim("nothing", 1.0)


def test_sanity_asserts_with_its_reason_and_is_recorded_apart(log):
    sanity("masked speed-up", 0.8, at_most=1.2, why="masks skip no arithmetic")
    with pytest.raises(AssertionError, match="should hold because masks skip no arithmetic"):
        sanity("masked speed-up", 1.5, at_most=1.2, why="masks skip no arithmetic")
    with pytest.raises(ValueError, match="say why"):
        sanity("masked speed-up", 0.8, at_most=1.2)
    assert [(r["kind"], r["passed"], r["says"]) for r in rows(log)] == [
        ("sanity", True, "masks skip no arithmetic"),
        ("sanity", False, "masks skip no arithmetic"),
    ]


def test_a_timing_sanity_check_prints_a_note_instead_of_stopping(log, capsys):
    sanity("masked speed-up", 1.3, at_most=1.25, why="masks skip no arithmetic", timing=True)
    assert capsys.readouterr().out.startswith(
        "Note: masked speed-up measured 1.30, outside at most 1.25"
    )
    assert rows(log)[0]["passed"] is False, "the sweep still sees it"


def test_explore_mode_records_without_stopping(log, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_CLAIMS_EXPLORE", "1")
    claim("gap", -5, at_least=0)
    assert "[explore] gap" in capsys.readouterr().out and rows(log)[0]["passed"] is False


def test_show_prints_the_sweep_spread_next_to_this_run(monkeypatch, capsys):
    monkeypatch.setattr(
        claims,
        "sweep_summary",
        lambda: {"gap": {"mean": 0.5, "sd": 0.25, "min": 0.1, "max": 0.9, "n": 10}},
    )
    claim("gap", 0.42, at_least=0, show=True)
    assert capsys.readouterr().out.strip() == (
        "gap: 0.42 in your run · make sweep, 10 runs: 0.50 ± 0.25 (from 0.10 to 0.90)"
    )
    claim("other", 1.0, at_least=0, show=True)
    assert capsys.readouterr().out.strip() == "other: 1.00 in your run"


def test_the_shipped_summary_reads():
    assert claims.SUMMARY.is_file(), "course_utils/sweep_summary.json ships with the package"
    summary = claims.sweep_summary()
    assert len(summary) >= 30, "one entry per claim of the notebooks"
    for spread in summary.values():
        # fmean of ten equal floats can round one ulp above them
        assert spread["min"] - 1e-9 <= spread["mean"] <= spread["max"] + 1e-9
        assert spread["n"] >= 1


def test_speed_note_prints_outside_its_range_and_never_raises(log, capsys):
    speed_note("the smaller MLP's speed-up", 2.0, usual=(1.7, 2.4))
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


def test_every_claim_states_its_sentence_and_can_fail():
    """Guide section 3, "A bound states its sentence": a claim whose worst run sits more than
    8 sweep sd inside its bound, and farther inside than the effect itself, would pass if its
    sentence were false; make it a `sanity(...)` check with its reason, or tighten the bound
    to the sentence (or the sentence to the sweep)."""
    from tools import sweep

    summary = claims.sweep_summary()
    silent = [name for name, spread in summary.items() if not spread.get("says")]
    assert not silent, f"give these claims says='the sentence they back': {silent}"
    outside = {
        name: spread["distance"] for name, spread in summary.items() if spread["distance"] < 0
    }
    assert not outside, f"a run of the sweep fell outside these bounds (by): {outside}"
    loose = {
        name: f"{spread['slack_sd']:.1f} sd, {spread['distance']:.3g} from the bound, "
        f"effect {spread['median']:.3g}"
        for name, spread in summary.items()
        if sweep.unfalsifiable(spread)
    }
    assert not loose, f"these bounds cannot fail: {loose}"


FLIP_L1 = '''import torch.nn.utils.prune as _prune
_l1_unstructured = _prune.l1_unstructured


def _largest_first(module, name, amount, importance_scores=None):
    """The sign of the criterion flipped: prune the LARGEST magnitudes."""
    weight = getattr(module, name).detach()
    return _l1_unstructured(module, name, amount, importance_scores=1 / (weight.abs() + 1e-12))


_prune.l1_unstructured = _largest_first
'''


def test_a_headline_claim_fails_when_its_result_is_flipped(tmp_path, monkeypatch):
    """The negative test: flip notebook 02's criterion (L1 prunes the largest weights instead of
    the smallest) just before its headline cell; the claim "L1 beats every random draw" must stop
    the notebook. A claim that still passed would not state its sentence. (About 10 s.)"""
    from pathlib import Path

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    root = Path(__file__).resolve().parents[1]
    path = root / "notebooks" / "02_l1_unstructured_pruning.ipynb"
    nb = nbformat.read(path, as_version=4)
    headline = next(
        i for i, c in enumerate(nb.cells) if 'claim("02 L1 minus the best random draw' in c.source
    )
    nb.cells = nb.cells[:headline] + [nbformat.v4.new_code_cell(FLIP_L1), nb.cells[headline]]
    for var in ("COURSE_CLAIMS_EXPLORE", "COURSE_CLAIMS_LOG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COURSE_HOME", str(tmp_path))
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    with pytest.raises(CellExecutionError) as failure:
        client.execute()
    assert "ClaimError" in str(failure.value)
    assert "02 L1 minus the best random draw" in str(failure.value)
