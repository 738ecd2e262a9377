"""Prove the notebooks' claims on more than one run: ``make sweep``.

    .venv/bin/python -m tools.sweep                       # seeds 0-4 x threads 1, 2: ten runs
    .venv/bin/python -m tools.sweep --seeds 7 --threads 3 --out /tmp/c.md --json /tmp/c.json
    .venv/bin/python -m tools.sweep --notebooks 06 --merge   # rerun 06, keep the other notebooks
    .venv/bin/python -m tools.sweep --rewrite     # only rewrite the table from the last JSON

Each run executes every notebook top to bottom in a fresh copy (its own empty ``COURSE_HOME``:
no ``checkpoints/``, no ``data/``) with ``COURSE_SEED`` and ``COURSE_THREADS`` set, and
collects what each ``claim`` and ``speed_note`` measured (``course_utils.claims``). Writes
``benchmarks/CLAIMS.md``: every claim with its bound and its min / median / max over the
runs, and whether every run passed; and ``course_utils/sweep_summary.json``, the spread of each
claim that ``claim(..., show=True)`` prints next to a learner's own figure (only when ``--out``
is that table: a check under other seeds with ``--out /tmp/...`` leaves both alone). Exits 1 if any
notebook failed in any run. ``--explore`` (choosing bounds) records every claim without stopping
and writes nothing but the JSON.
"""
import argparse
import json
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
SUMMARY = ROOT / "course_utils" / "sweep_summary.json"
EXPLORE = False


def run_notebook(path, workdir, seed, threads):
    """Execute one notebook in ``workdir``; return ``(passed, seconds, claims, error)``."""
    log = workdir / f"{path.stem}.claims.jsonl"
    env = dict(os.environ, COURSE_HOME=str(workdir), COURSE_SEED=str(seed),
               COURSE_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               COURSE_CLAIMS_LOG=str(log))
    if EXPLORE:
        env["COURSE_CLAIMS_EXPLORE"] = "1"
    start = time.perf_counter()
    done = subprocess.run(  # nbval, as `make test` runs it
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
         "--nbval-current-env", "--nbval-cell-timeout=900",
         "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg"), path.name],
        cwd=path.parent, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    claims = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    error = None
    if done.returncode:
        lines = [line for line in done.stdout.splitlines() if "Error" in line or "FAILED" in line]
        error = (lines[-1] if lines else done.stdout.strip().splitlines()[-1])[:300]
    return done.returncode == 0, seconds, claims, error


def run_all(notebooks, seeds, threads_list, save=None):
    """Every (seed, threads) run; ``save(runs)`` is called after each run, so none is lost."""
    runs = []
    for seed in seeds:
        for threads in threads_list:
            with tempfile.TemporaryDirectory(prefix=f"sweep-s{seed}-t{threads}-") as tmp:
                workdir = Path(tmp)
                shutil.copytree(ROOT / "notebooks", workdir / "notebooks",
                                ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
                run = {"seed": seed, "threads": threads, "notebooks": {}}
                for path in notebooks:
                    passed, seconds, claims, error = run_notebook(
                        workdir / "notebooks" / path.name, workdir, seed, threads)
                    run["notebooks"][path.stem] = {"passed": passed, "seconds": seconds,
                                                   "claims": claims, "error": error}
                    print(f"seed {seed} threads {threads} {path.stem}: "
                          f"{'pass' if passed else 'FAIL ' + str(error)} ({seconds:.0f} s)",
                          flush=True)
                runs.append(run)
                if save:
                    save(runs)
    return runs


def merge(old_runs, new_runs):
    """``old_runs`` with the notebooks that ``new_runs`` executed replaced, run by run."""
    fresh = {(run["seed"], run["threads"]): run for run in new_runs}
    merged = []
    for run in old_runs:
        new = fresh.pop((run["seed"], run["threads"]), None)
        notebooks = dict(run["notebooks"], **(new["notebooks"] if new else {}))
        merged.append(dict(run, notebooks=dict(sorted(notebooks.items()))))
    return merged + list(fresh.values())


def _bound(row):
    low, high = row["at_least"], row["at_most"]
    if low is not None and high is not None:
        return f"{low:g} to {high:g}"
    return f">= {low:g}" if low is not None else f"<= {high:g}"


def claims_table(runs, kind):
    """Rows ``(notebook, name, bound, values, passed)`` over all runs, in first-seen order."""
    table = {}
    for run in runs:
        for notebook, result in run["notebooks"].items():
            for row in result["claims"]:
                if row["kind"] != kind:
                    continue
                entry = table.setdefault((notebook, row["name"]), {"bound": _bound(row),
                                                                   "values": [], "passed": 0})
                entry["values"].append(row["value"])
                entry["passed"] += row["passed"]
    return table


def summary(runs):
    """``{claim name: {"mean", "sd", "min", "max", "n"}}`` over every run."""
    result = {}
    for (_, name), entry in claims_table(runs, "claim").items():
        values = entry["values"]
        result[name] = {"mean": statistics.fmean(values), "sd": statistics.pstdev(values),
                        "min": min(values), "max": max(values), "n": len(values)}
    return result


def total_seconds(runs):
    """The notebooks' run time added up over every run."""
    return sum(r["seconds"] for run in runs for r in run["notebooks"].values())


def markdown(runs, machine):
    n = len(runs)
    seconds = total_seconds(runs)
    notebooks = list(runs[0]["notebooks"]) if runs else []
    lines = [
        "# Claims: every asserted result, over the seed-and-thread sweep",
        "",
        f"Written by `make sweep` (`tools/sweep.py`) on {machine['date']}: {machine['cpu']}, "
        f"{machine['cores']} cores, Python {machine['python']}, torch {machine['torch']}. "
        f"{n} runs (seeds {sorted({r['seed'] for r in runs})} x torch threads "
        f"{sorted({r['threads'] for r in runs})}), each executing every notebook top to bottom in "
        f"a fresh copy with no `checkpoints/`. **Run time: {seconds / 60:.0f} min** on this "
        "machine, the notebooks' time added up (not part of `make test`).",
        "",
        "## Runs",
        "",
        "| seed | threads | " + " | ".join(notebooks) + " |",
        "|---|---|" + "---|" * len(notebooks),
    ]
    for run in runs:
        cells = [("pass" if r["passed"] else "**FAIL**") + f" ({r['seconds']:.0f} s)"
                 for r in run["notebooks"].values()]
        lines.append(f"| {run['seed']} | {run['threads']} | " + " | ".join(cells) + " |")
    failures = [(run["seed"], run["threads"], nb, r["error"]) for run in runs
                for nb, r in run["notebooks"].items() if not r["passed"]]
    lines += ["",
              f"**{n * len(notebooks) - len(failures)} of {n * len(notebooks)} notebook runs "
              "passed.**"]
    for seed, threads, nb, error in failures:
        lines.append(f"- seed {seed}, threads {threads}, {nb}: `{error}`")
    for kind, title, note in (
            ("claim", "Asserted claims",
             "Each is a `claim(...)` in the notebook: the run stops if it fails."),
            ("speed", "Speed notes (not asserted)",
             "A `speed_note(...)`: outside the usual range the "
             "notebook prints a note; it never fails. Targets are `make bench`'s.")):
        table = claims_table(runs, kind)
        lines += ["", f"## {title}", "", note, "",
                  "| notebook | claim | bound | min | median | max | runs within |",
                  "|---|---|---|---|---|---|---|"]
        for (notebook, name), entry in table.items():
            values = entry["values"]
            cell = name.replace("|", "\\|")  # a pipe would end the table cell
            lines.append(f"| {notebook[:2]} | {cell} | {entry['bound']} | {min(values):.4g} | "
                         f"{statistics.median(values):.4g} | {max(values):.4g} | "
                         f"{entry['passed']}/{len(values)} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--notebooks", nargs="+", default=None,
                        help="numbers, e.g. 04 05 (default: all)")
    parser.add_argument("--out", default=str(CLAIMS))
    parser.add_argument("--json", default=str(ROOT / "bench_results" / "sweep.json"))
    parser.add_argument("--explore", action="store_true", help="record claims without stopping")
    parser.add_argument("--merge", action="store_true",
                        help="replace only these notebooks' results in the last sweep (--json)")
    parser.add_argument("--rewrite", action="store_true",
                        help="run nothing: rewrite the table and summary from the last sweep "
                             "(--json)")
    args = parser.parse_args(argv)
    global EXPLORE
    EXPLORE = args.explore
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if args.notebooks:
        notebooks = [p for p in notebooks if p.name[:2] in args.notebooks]
    previous = json.loads(Path(args.json).read_text())["runs"] if args.merge or args.rewrite else []
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)

    def save(runs):
        Path(args.json).write_text(json.dumps({"runs": merge(previous, runs)}, indent=1))

    runs = merge(previous, [] if args.rewrite else run_all(notebooks, args.seeds, args.threads,
                                                           save))
    if not EXPLORE:
        Path(args.out).write_text(markdown(runs, machine_info()))
        if Path(args.out).resolve() == CLAIMS:  # the summary goes with the committed table
            SUMMARY.write_text(json.dumps(summary(runs), indent=1, sort_keys=True) + "\n")
    failed = sum(not r["passed"] for run in runs for r in run["notebooks"].values())
    print(f"Wrote {args.out}: {len(runs)} runs, {failed} failed notebook runs, "
          f"{total_seconds(runs) / 60:.1f} min of notebook time")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
