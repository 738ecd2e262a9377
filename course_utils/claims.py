"""The results the notebooks' prose states, checked on every run (guide section 3, "Claims").

``claim`` asserts that a measured quantity lies within the bound that states the sentence it
backs (``says=``): if the text says "A beats B", the bound is ``A - B > 0``, so the claim fails
when the sentence is false. ``sanity`` is for checks that hold by construction or physics (a
masked model is not faster than dense): a plain assertion with its reason, recorded apart and
never counted as a claim. ``speed_note`` prints a note when a speed figure falls outside its
usual range and never stops anything: speed depends on the machine. All three append what they
saw to the file named by ``COURSE_CLAIMS_LOG`` when it is set, which is how ``make sweep``
(``tools/sweep.py``) collects every claim of every run into ``benchmarks/CLAIMS.md``, and
writes the spread of each claim to ``sweep_summary.json`` beside this file, so that
``claim(..., show=True)`` can print your figure next to the sweep's. Introduced in
01_model_definition.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["ClaimError", "claim", "sanity", "speed_note", "sweep_summary"]


class ClaimError(AssertionError):
    """A result the notebook's text states did not hold in this run."""


def _bounds(at_least, at_most):
    if at_least is not None and at_most is not None:
        return f"between {at_least:g} and {at_most:g}"
    return f"at least {at_least:g}" if at_least is not None else f"at most {at_most:g}"


def _within(value, at_least, at_most):
    if at_least is None and at_most is None:
        raise ValueError("give a bound: at_least=..., at_most=... or both.")
    return (at_least is None or value >= at_least) and (at_most is None or value <= at_most)


SUMMARY = Path(__file__).with_name("sweep_summary.json")


def sweep_summary() -> dict[str, dict]:
    """``{claim name: {"mean", "sd", "min", "max", "n", ...}}`` from the last ``make sweep``."""
    try:
        return json.loads(SUMMARY.read_text())
    except (OSError, ValueError):
        return {}


def _record(**row):
    path = os.environ.get("COURSE_CLAIMS_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps(row) + "\n")


def _judge(kind, name, value, at_least, at_most, says):
    """Whether ``value`` is within its bound; recorded for ``make sweep`` either way."""
    passed = _within(value, at_least, at_most)
    _record(
        kind=kind,
        name=name,
        value=value,
        at_least=at_least,
        at_most=at_most,
        passed=passed,
        says=says,
    )
    return passed


def claim(
    name: str,
    value: float,
    at_least: float | None = None,
    at_most: float | None = None,
    show: bool = False,
    says: str = "",
) -> None:
    """Check that ``value`` is ``at_least`` and/or ``at_most``.

    ``name`` says what is measured, for example ``"04 95% sparse: test accuracy minus dense"``;
    ``says`` is the sentence of the text the bound states, in short (``"within half a point of
    dense"``): ``benchmarks/CLAIMS.md`` shows it next to the bound and the sweep's range.
    Raises ``ClaimError`` (an ``AssertionError``) naming the value and its bound when it fails.
    Returns nothing, so a cell that ends with a claim prints no bare number; ``show=True``
    prints this run's value, labelled, next to the spread the sweep measured.
    ``COURSE_CLAIMS_EXPLORE=1`` (``make sweep`` while choosing bounds) records without stopping.
    """
    value = float(value)
    passed = _judge("claim", name, value, at_least, at_most, says)
    if show:
        spread = sweep_summary().get(name)
        sweep = (
            (
                f" · make sweep, {spread['n']} runs: {spread['mean']:.2f} ± {spread['sd']:.2f} "
                f"(from {spread['min']:.2f} to {spread['max']:.2f})"
            )
            if spread
            else ""
        )
        print(f"{name}: {value:.2f} in your run{sweep}")
    if not passed and os.environ.get("COURSE_CLAIMS_EXPLORE"):
        print(f"[explore] {name}: {value:.4g} outside {_bounds(at_least, at_most)}")
    elif not passed:
        raise ClaimError(
            f"{name}: this run measured {value:.4g}, but the text claims "
            f"{_bounds(at_least, at_most)}{f' ({says})' if says else ''}. The bound held in every "
            "run of the course's seed-and-thread sweep (benchmarks/CLAIMS.md); please report your "
            "machine, seed and versions."
        )


def sanity(
    name: str,
    value: float,
    at_least: float | None = None,
    at_most: float | None = None,
    why: str = "",
    timing: bool = False,
) -> None:
    """A check that holds by construction or physics, not a result: assert it, say ``why``.

    Recorded apart from the claims (``make sweep`` lists it under "Sanity checks" with its
    reason, and no slack test applies). Raises ``AssertionError`` when it fails; returns and
    prints nothing. ``timing=True`` for a timing ratio: physics says it, but a busy machine can
    push one measurement past the bound, so a failure prints a note instead of stopping Run All
    (the sweep still records it).
    """
    if not why:
        raise ValueError("say why the check holds by construction or physics: why=...")
    value = float(value)
    passed = _judge("sanity", name, value, at_least, at_most, why)
    if not passed and timing:
        print(
            f"Note: {name} measured {value:.2f}, outside {_bounds(at_least, at_most)}, which "
            f"should hold because {why}. Timing noise (a busy machine) can do this: rerun the "
            "cell."
        )
    elif not passed:
        raise AssertionError(
            f"{name}: this run measured {value:.4g}, outside "
            f"{_bounds(at_least, at_most)}, which should hold because {why}."
        )


def speed_note(name: str, value: float, usual: tuple[float, float]) -> None:
    """Print a note when the speed ratio ``value`` is outside ``usual = (low, high)``.

    Speed-ups depend on the CPU, its load and its thread count: a surprising figure is a
    note for the learner, never a failure. ``make bench`` reports the course's targets.
    """
    low, high = usual
    value = float(value)
    usual_range = low <= value <= high
    _record(kind="speed", name=name, value=value, at_least=low, at_most=high, passed=usual_range)
    if not usual_range:
        print(
            f"Note: on your machine, {name} is {value:.2f}x; on the 2-core CPUs the course was "
            f"measured on it is usually {low:g}-{high:g}x. Speed depends on the processor, "
            "its load and its threads: rerun the cell, or compare with `make bench`."
        )
