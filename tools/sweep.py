"""Prove the notebooks' claims on more than one run: ``make sweep``.

    .venv/bin/python -m tools.sweep                       # seeds 0-4 x threads 1, 2: ten runs
    .venv/bin/python -m tools.sweep --seeds 7 --threads 3 --out /tmp/c.md --json /tmp/c.json
    .venv/bin/python -m tools.sweep --notebooks 06 --merge   # rerun 06, keep the other notebooks
    .venv/bin/python -m tools.sweep --merge       # a full sweep on another CPU, added to the table
    .venv/bin/python -m tools.sweep --rewrite     # only rewrite the table from the last JSON

Each run executes every notebook top to bottom in a fresh copy (its own empty ``COURSE_HOME``:
no ``checkpoints/``, no ``data/``) with ``COURSE_SEED`` and ``COURSE_THREADS`` set, and
collects what each ``claim``, ``sanity`` check and ``speed_note`` measured
(``course_utils.claims``). Every run records the CPU it ran on. The runs are kept in
``benchmarks/sweep_runs.json`` (committed, ``--json``): ``--merge`` replaces only the runs of the
same CPU, seed and threads, and only the notebooks run again, so a sweep on another CPU (the
machines are sometimes Intel, sometimes AMD) adds its runs to the table instead of replacing it.
Writes ``benchmarks/CLAIMS.md``: every claim with the sentence it backs, its bound, its
min / median / max over all runs and CPUs, its slack (the distance from the worst run to the
bound, in sweep standard deviations), and whether every run passed; and
``course_utils/sweep_summary.json``, the spread of each claim that ``claim(..., show=True)``
prints next to a learner's own figure and that ``tests/test_claims.py`` checks for slack (only
when ``--out`` is that table: a check under other seeds with ``--out /tmp/...`` leaves both
alone). Exits 1 if any notebook failed in any run. ``--explore`` (choosing bounds) records
every claim without stopping and writes nothing but the JSON.
"""

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from course_utils.env import machine_info

ROOT = Path(__file__).resolve().parents[1]


CLAIMS = ROOT / "benchmarks" / "CLAIMS.md"
RUNS = ROOT / "benchmarks" / "sweep_runs.json"
SUMMARY = ROOT / "course_utils" / "sweep_summary.json"
EXPLORE = False
UNFALSIFIABLE_SD = 8
"""A claim whose worst run sits more than this many sweep sd from its bound, and farther from it
than the effect itself (the median), could not fail in practice (``tests/test_claims.py``)."""

SLACK_MIN_RUNS = 5
"""Fewer runs than this give no usable sd: such a claim's slack is shown, but not judged."""


def run_notebook(path, workdir, seed, threads):
    """Execute one notebook in ``workdir``; return ``(passed, seconds, claims, error)``."""
    log = workdir / f"{path.stem}.claims.jsonl"
    env = dict(
        os.environ,
        COURSE_HOME=str(workdir),
        COURSE_SEED=str(seed),
        COURSE_THREADS=str(threads),
        OMP_NUM_THREADS=str(threads),
        COURSE_CLAIMS_LOG=str(log),
    )
    if EXPLORE:
        env["COURSE_CLAIMS_EXPLORE"] = "1"
    start = time.perf_counter()
    done = subprocess.run(  # nbval, as `make test` runs it
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--nbval-lax",
            "--nbval-current-env",
            "--nbval-cell-timeout=900",
            "--nbval-sanitize-with",
            str(ROOT / "tests" / "nbval_sanitize.cfg"),
            path.name,
        ],
        cwd=path.parent,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    claims = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    error = None
    if done.returncode:
        lines = [line for line in done.stdout.splitlines() if "Error" in line or "FAILED" in line]
        error = (lines[-1] if lines else done.stdout.strip().splitlines()[-1])[:300]
    return done.returncode == 0, seconds, claims, error


def run_all(notebooks, seeds, threads_list, save=None, cpu="unknown CPU"):
    """Every (seed, threads) run; ``save(runs)`` is called after each run, so none is lost."""
    runs = []
    for seed in seeds:
        for threads in threads_list:
            with tempfile.TemporaryDirectory(prefix=f"sweep-s{seed}-t{threads}-") as tmp:
                workdir = Path(tmp)
                shutil.copytree(
                    ROOT / "notebooks",
                    workdir / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"),
                )
                run = {"cpu": cpu, "seed": seed, "threads": threads, "notebooks": {}}
                for path in notebooks:
                    passed, seconds, claims, error = run_notebook(
                        workdir / "notebooks" / path.name, workdir, seed, threads
                    )
                    run["notebooks"][path.stem] = {
                        "passed": passed,
                        "seconds": seconds,
                        "claims": claims,
                        "error": error,
                    }
                    print(
                        f"seed {seed} threads {threads} {path.stem}: "
                        f"{'pass' if passed else 'FAIL ' + str(error)} ({seconds:.0f} s)",
                        flush=True,
                    )
                runs.append(run)
                if save:
                    save(runs)
    return runs


def _key(run):
    return run.get("cpu", "unknown CPU"), run["seed"], run["threads"]


def merge(old_runs, new_runs):
    """``old_runs`` with the notebooks that ``new_runs`` executed replaced, run by run.

    A run is one CPU, seed and thread count: runs on another CPU are added, never replaced.
    """
    fresh = {_key(run): run for run in new_runs}
    merged = []
    for run in old_runs:
        new = fresh.pop(_key(run), None)
        notebooks = dict(run["notebooks"], **(new["notebooks"] if new else {}))
        merged.append(dict(run, notebooks=dict(sorted(notebooks.items()))))
    return merged + list(fresh.values())


def _bound(row):
    low, high = row["at_least"], row["at_most"]
    if low is not None and high is not None:
        return f"{low:g} to {high:g}"
    return f">= {low:g}" if low is not None else f"<= {high:g}"


def claims_table(runs, kind):
    """Rows ``(notebook, name) -> entry`` over all runs, in first-seen order.

    An entry holds the bound as the latest run recorded it (``bound``, ``at_least``,
    ``at_most``), the sentence (``says``), the values of every run and how many of them are
    within that bound (runs merged from an earlier sweep are judged by today's bound).
    """
    table = {}
    for run in runs:
        for notebook, result in run["notebooks"].items():
            for row in result["claims"]:
                if row["kind"] != kind:
                    continue
                entry = table.setdefault((notebook, row["name"]), {"values": []})
                entry.update(
                    bound=_bound(row),
                    at_least=row["at_least"],
                    at_most=row["at_most"],
                    says=row.get("says", ""),
                )
                entry["values"].append(row["value"])
    for entry in table.values():
        low, high = entry["at_least"], entry["at_most"]
        entry["passed"] = sum(
            (low is None or v >= low) and (high is None or v <= high) for v in entry["values"]
        )
    return table


def slack(values, at_least, at_most):
    """``(distance, in_sd)``: how far the worst value sits inside its bound, in value units and
    in standard deviations of the values (negative: outside; ``inf`` when they never vary)."""
    sides = []
    if at_least is not None:
        sides.append(min(values) - at_least)
    if at_most is not None:
        sides.append(at_most - max(values))
    distance = min(sides)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    if sd > 0:
        return distance, distance / sd
    return distance, math.copysign(math.inf, distance) if distance else 0.0


def unfalsifiable(entry):
    """True when a claim's slack is so large that it could not fail in practice: its worst
    run is more than ``UNFALSIFIABLE_SD`` sweep sd inside the bound *and* farther inside than
    the effect itself (the median). Eight sd: a shift that, for a normal spread, ten runs would
    show with a probability below 1e-14; the effect: a bound farther than the result would hold
    if the result were zero or of the other sign, so it cannot state the sentence."""
    if entry["n"] < SLACK_MIN_RUNS:
        return False  # an sd of one or two runs says nothing; the full sweep judges it
    distance, in_sd = entry["distance"], entry["slack_sd"]
    return in_sd > UNFALSIFIABLE_SD and distance > abs(entry["median"])


def summary(runs):
    """``{claim name: {"mean", "sd", "min", "median", "max", "n", bound, says, slack}}``."""
    result = {}
    for (_, name), entry in claims_table(runs, "claim").items():
        values = entry["values"]
        distance, in_sd = slack(values, entry["at_least"], entry["at_most"])
        result[name] = {
            "mean": statistics.fmean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values),
            "median": statistics.median(values),
            "max": max(values),
            "n": len(values),
            "at_least": entry["at_least"],
            "at_most": entry["at_most"],
            "says": entry["says"],
            "distance": distance,
            "slack_sd": in_sd,
            "cpus": sorted(
                {
                    run.get("cpu", "unknown CPU")
                    for run in runs
                    if any(
                        row["name"] == name
                        for r in run["notebooks"].values()
                        for row in r["claims"]
                    )
                }
            ),
        }
    return result


def total_seconds(runs):
    """The notebooks' run time added up over every run."""
    return sum(r["seconds"] for run in runs for r in run["notebooks"].values())


def _cpus(runs):
    cpus = {}
    for run in runs:
        cpu = run.get("cpu", "unknown CPU")
        cpus.setdefault(cpu, {"seeds": set(), "threads": set(), "runs": 0})
        cpus[cpu]["seeds"].add(run["seed"])
        cpus[cpu]["threads"].add(run["threads"])
        cpus[cpu]["runs"] += 1
    return cpus


def _slack_cell(entry, distance, in_sd):
    runs = len(entry["values"])
    if runs < SLACK_MIN_RUNS and distance >= 0:
        return f"not judged ({runs} run{'s' if runs > 1 else ''})"
    if not math.isfinite(in_sd):
        return "no spread"
    flag = (
        " **cannot fail**"
        if unfalsifiable(
            {
                "distance": distance,
                "slack_sd": in_sd,
                "median": statistics.median(entry["values"]),
                "n": runs,
            }
        )
        else ""
    )
    return f"{in_sd:.1f} sd{flag}"


def _partial(runs):
    """A sentence naming the notebooks that ran in fewer runs than the others, or ''."""
    counts = {}
    for run in runs:
        for notebook in run["notebooks"]:
            counts[notebook] = counts.get(notebook, 0) + 1
    most = max(counts.values(), default=0)
    fewer = [f"{nb[:2]} in {n} of {len(runs)}" for nb, n in sorted(counts.items()) if n < most]
    return f"**Not every notebook ran in every run**: {', '.join(fewer)}. " if fewer else ""


def markdown(runs, machine):
    seconds = total_seconds(runs)
    notebooks = sorted({nb for run in runs for nb in run["notebooks"]})
    covered = "; ".join(
        f"{cpu}: {c['runs']} runs (seeds {sorted(c['seeds'])} x torch threads "
        f"{sorted(c['threads'])})"
        for cpu, c in _cpus(runs).items()
    )
    lines = [
        "# Claims: every asserted result, over the seed-and-thread sweep",
        "",
        f"Written by `make sweep` (`tools/sweep.py`) on {machine['date']}, Python "
        f"{machine['python']}, torch {machine['torch']}, from the runs kept in "
        "`benchmarks/sweep_runs.json`. **What the sweep covers**: " + covered + ". Each run "
        "executes every notebook top to bottom in a fresh copy with no `checkpoints/`, from the "
        "one shipped reference baseline; the seed (`COURSE_SEED`) sets the training batch order, "
        "every random draw a comparison depends on (random pruning, re-initialisations, models "
        "trained from scratch) and the calibration sets; the thread count sets torch's CPU "
        "threads. Not covered: GPUs, other thread counts, other baselines, and CPUs not listed. "
        + _partial(runs)
        + f"**Run time: {seconds / 60:.0f} min** of notebook time added up (not part of "
        "`make test`).",
        "",
        "## Runs",
        "",
        "| CPU | seed | threads | " + " | ".join(notebooks) + " |",
        "|---|---|---|" + "---|" * len(notebooks),
    ]
    for run in runs:
        cells = []
        for nb in notebooks:
            r = run["notebooks"].get(nb)
            cells.append(
                "-"
                if r is None
                else ("pass" if r["passed"] else "**FAIL**") + f" ({r['seconds']:.0f} s)"
            )
        lines.append(
            f"| {run.get('cpu', 'unknown CPU')} | {run['seed']} | {run['threads']} | "
            + " | ".join(cells)
            + " |"
        )
    failures = [
        (run["seed"], run["threads"], nb, r["error"])
        for run in runs
        for nb, r in run["notebooks"].items()
        if not r["passed"]
    ]
    total = sum(len(run["notebooks"]) for run in runs)
    lines += ["", f"**{total - len(failures)} of {total} notebook runs passed.**"]
    for seed, threads, nb, error in failures:
        lines.append(f"- seed {seed}, threads {threads}, {nb}: `{error}`")
    lines += [
        "",
        "## Asserted claims",
        "",
        "Each is a `claim(...)` in the notebook: the run stops if it fails. *Says*: the "
        "sentence of the text its bound states. *Slack*: the distance from the worst run "
        "to the bound, in standard deviations of the sweep's values; more than "
        f"{UNFALSIFIABLE_SD} sd and farther than the effect itself (the median) marks a "
        "bound that **cannot fail** (`tests/test_claims.py` rejects it).",
        "",
        "| notebook | claim | says | bound | min | median | max | slack | runs within |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (notebook, name), entry in claims_table(runs, "claim").items():
        values = entry["values"]
        distance, in_sd = slack(values, entry["at_least"], entry["at_most"])
        cell, says = (text.replace("|", "\\|") for text in (name, entry["says"]))
        lines.append(
            f"| {notebook[:2]} | {cell} | {says} | {entry['bound']} | "
            f"{min(values):.4g} | {statistics.median(values):.4g} | {max(values):.4g} | "
            f"{_slack_cell(entry, distance, in_sd)} | {entry['passed']}/{len(values)} |"
        )
    for kind, title, note in (
        (
            "sanity",
            "Sanity checks (not claims)",
            "A `sanity(...)`: holds by construction or physics, for the reason given; "
            "asserted, but not a result of the course.",
        ),
        (
            "speed",
            "Speed notes (not asserted)",
            "A `speed_note(...)`: outside the usual range the "
            "notebook prints a note; it never fails. Targets are `make bench`'s.",
        ),
    ):
        table = claims_table(runs, kind)
        if not table:
            continue
        why = " why |" if kind == "sanity" else ""
        lines += [
            "",
            f"## {title}",
            "",
            note,
            "",
            f"| notebook | check |{why} bound | min | median | max | runs within |",
            "|---|---|---|---|---|---|" + ("---|" * (2 if why else 1)),
        ]
        for (notebook, name), entry in table.items():
            values = entry["values"]
            cell = name.replace("|", "\\|")  # a pipe would end the table cell
            reason = f" {entry['says']} |" if why else ""
            lines.append(
                f"| {notebook[:2]} | {cell} |{reason} {entry['bound']} | "
                f"{min(values):.4g} | {statistics.median(values):.4g} | "
                f"{max(values):.4g} | {entry['passed']}/{len(values)} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--notebooks", nargs="+", default=None, help="numbers, e.g. 04 05 (default: all)"
    )
    parser.add_argument("--out", default=str(CLAIMS))
    parser.add_argument(
        "--json",
        default=None,
        help="the runs, kept between sweeps (default benchmarks/sweep_runs.json; "
        "with --explore, bench_results/sweep_explore.json)",
    )
    parser.add_argument("--explore", action="store_true", help="record claims without stopping")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the runs of --json: replace only the same CPU, seed and "
        "threads, and only the notebooks run again; add the others",
    )
    parser.add_argument(
        "--rewrite",
        action="store_true",
        help="run nothing: rewrite the table and summary from the last sweep (--json)",
    )
    args = parser.parse_args(argv)
    global EXPLORE
    EXPLORE = args.explore
    if args.json is None:  # exploring never overwrites the committed runs
        args.json = str(ROOT / "bench_results" / "sweep_explore.json" if EXPLORE else RUNS)
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if args.notebooks:
        notebooks = [p for p in notebooks if p.name[:2] in args.notebooks]
    previous = json.loads(Path(args.json).read_text())["runs"] if args.merge or args.rewrite else []
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)

    def save(runs):
        Path(args.json).write_text(json.dumps({"runs": merge(previous, runs)}, indent=1))

    machine = machine_info()
    cpu = f"{machine['cpu']}, {machine['cores']} cores"
    runs = merge(
        previous,
        [] if args.rewrite else run_all(notebooks, args.seeds, args.threads, save, cpu=cpu),
    )
    if not EXPLORE:
        Path(args.out).write_text(markdown(runs, machine))
        if Path(args.out).resolve() == CLAIMS:  # the summary goes with the committed table
            SUMMARY.write_text(json.dumps(summary(runs), indent=1, sort_keys=True) + "\n")
    failed = sum(not r["passed"] for run in runs for r in run["notebooks"].values())
    print(
        f"Wrote {args.json if EXPLORE else args.out}: {len(runs)} runs, {failed} failed "
        f"notebook runs, {total_seconds(runs) / 60:.1f} min of notebook time"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
