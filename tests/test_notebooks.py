"""Hygiene of every notebook (guide section 6): numbering, anatomy, links, badges, clean outputs.

nbval itself executes the notebooks; these tests read the committed files.
"""

import ast
import re
from pathlib import Path

import nbformat
import pytest
from helpers import digits

from course_utils import exercises
from tools.make_student import is_solution
from tools.notebook_cells import colab_badge, colab_install_line, stamp

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
SIZE_BUDGET = 1_500_000  # bytes per notebook, outputs included


def read(path):
    return nbformat.read(path, as_version=4)


def markdown_of(nb):
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]


def test_numbering_is_contiguous_and_snake_case():
    names = [p.name for p in NOTEBOOKS]
    assert names, "no notebooks found"
    for i, name in enumerate(names):
        assert re.fullmatch(rf"{i:02d}_[a-z0-9]+(_[a-z0-9]+)*\.ipynb", name), name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_anatomy(path):
    nb = read(path)
    cells = nb.cells
    title, objectives, setup = cells[0], cells[1], cells[2]
    assert title.cell_type == "markdown" and title.source.startswith(f"# {path.name[:2]} · ")
    assert colab_badge(path.name) in title.source, "the badge comes from tools/notebook_cells.py"
    assert "## Objectives" in objectives.source and re.search(
        r"Teaching \d+ min", objectives.source
    )
    assert setup.cell_type == "code"
    assert 'if "google.colab" in sys.modules:' in setup.source
    assert colab_install_line() in setup.source
    assert "device = setup()" in setup.source
    text = markdown_of(nb)
    for heading in ("## Key points", "## Exercises", "## Next"):
        assert heading in text, f"missing {heading}"
    assert len(re.findall(r"^### Exercise \d", text, flags=re.M)) >= 2, "at least two exercises"
    solutions = [c for c in code_cells(nb) if is_solution(c)]
    assert len(solutions) >= 2, "each exercise needs a worked solution cell tagged 'solution'"
    for cell in solutions:
        assert cell.metadata.get("jupyter", {}).get("source_hidden"), (
            "solutions start collapsed (JupyterLab)"
        )
        assert cell.metadata.get("cellView") == "form" and cell.source.startswith("#@title"), (
            "solutions start collapsed on Colab too: a form cell with a #@title line"
        )
    assert "check" in "".join(c.source for c in code_cells(nb)), "exercises need checks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_come_from_one_clean_run(path):
    nb = read(path)
    counts = [c.execution_count for c in code_cells(nb)]
    assert counts == list(range(1, len(counts) + 1)), f"re-execute top to bottom: {counts}"
    errors = [o for c in code_cells(nb) for o in c.outputs if o.output_type == "error"]
    assert not errors, "stored error output"
    assert path.stat().st_size <= SIZE_BUDGET, f"{path.stat().st_size} bytes > budget"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_checked_cells_and_claims(path):
    nb = read(path)
    sources = [c.source for c in code_cells(nb)]
    assert any(s.startswith("# NBVAL_CHECK_OUTPUT") for s in sources), (
        "mark at least one deterministic cell with # NBVAL_CHECK_OUTPUT"
    )


def _links(text):
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("path", [*NOTEBOOKS, ROOT / "README.md"], ids=lambda p: p.name)
def test_relative_links_resolve(path):
    text = markdown_of(read(path)) if path.suffix == ".ipynb" else path.read_text()
    for link in _links(text):
        if link.startswith(("http://", "https://", "#", "mailto:")):
            continue
        target = (path.parent / link.split("#")[0]).resolve()
        assert target.exists(), f"{path.name} links to missing {link}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_next_link_points_to_next_notebook(path):
    text = markdown_of(read(path))
    next_section = text.split("## Next", 1)[1]
    index = NOTEBOOKS.index(path)
    if index + 1 < len(NOTEBOOKS):
        assert NOTEBOOKS[index + 1].name in next_section
    assert "00_start_here.ipynb" in next_section or index == 0


def test_badges_and_colab_lines_are_stamped():
    stale = [p.name for p in NOTEBOOKS if stamp(p, write=False)]
    assert not stale, f"run python -m tools.notebook_cells: {stale}"


def test_course_map_lists_every_notebook():
    text = markdown_of(read(NOTEBOOK_DIR / "00_start_here.ipynb"))
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        assert f"]({path.name})" in text, f"00's map lacks {path.name}"
        assert f"notebooks/{path.name}" in readme, f"README's map lacks {path.name}"


# Exercises (guide section 3.6): the check judges the learner's own answer and gives nothing away.

CHECK_NAMES = {name for name in dir(exercises) if name.startswith("check")}


def _check_call(source):
    """The name of the course_utils.exercises function a check cell calls, or None if it is not
    one call (plus an optional import line, and an optional assignment of the verdict)."""
    statements = ast.parse(source).body
    if statements and isinstance(statements[0], ast.ImportFrom):
        if statements[0].module != "course_utils.exercises":
            return None
        statements = statements[1:]
    if len(statements) != 1 or not isinstance(statements[0], (ast.Expr, ast.Assign)):
        return None
    call = statements[0].value
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
        return None
    return call.func.id if call.func.id in CHECK_NAMES else None


def _last_call(source):
    last = ast.parse(source).body[-1]
    call = getattr(last, "value", None)
    return call.func.id if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) else None


def _output_text(cell):
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        parts.append(str(output.get("data", {}).get("text/plain", "")))
    return "".join(parts)


def _exercise_cells(nb):
    cells, inside = [], False
    for cell in nb.cells:
        if cell.cell_type == "markdown" and "## Exercises" in cell.source:
            inside = True
        if cell.cell_type == "markdown" and cell.source.startswith("## Next"):
            inside = False
        if inside:
            cells.append(cell)
    return cells


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercises_check_the_learner_and_give_nothing_away(path):
    nb = read(path)
    cells = _exercise_cells(nb)
    code = [c for c in cells if c.cell_type == "code" and c.source.strip()]
    checks = [c for c in code if not is_solution(c) and _check_call(c.source)]
    mandatory = [
        c
        for c in cells
        if c.cell_type == "markdown"
        for line in c.source.splitlines()
        if line.startswith("### Exercise") and "optional" not in line.lower()
    ]
    assert len(checks) >= len(mandatory) >= 2, "every exercise has a one-line check cell"
    for cell in code:
        if is_solution(cell):
            continue
        uses_checks = "course_utils.exercises" in cell.source or re.search(
            r"\bcheck\w*\(", cell.source
        )
        assert not uses_checks or _check_call(cell.source), (
            f"a check cell is one call to a course_utils.exercises function:\n{cell.source}"
        )
    for i, cell in enumerate(code):
        if not is_solution(cell):
            continue
        before = [c for c in code[:i] if not is_solution(c)]
        assert before and _check_call(before[-1].source), (
            "a solution comes after its check (Run All must not overwrite the answer):\n"
            f"{cell.source}"
        )
        assert _last_call(cell.source) == _check_call(before[-1].source), (
            "a solution ends with the same check, so the test suite proves it right"
        )
    for cell in checks + [c for c in code if is_solution(c)]:
        text = _output_text(cell)
        assert not digits(text), f"a check or solution output shows a number: {text!r}"
        assert "Traceback" not in text
    for cell in checks:
        assert "Not answered yet" in _output_text(cell) or "Correct!" in _output_text(cell), (
            "re-execute: the check cell has no stored verdict"
        )
