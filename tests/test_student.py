"""The student edition is complete, solution-free and output-free; exercises and checks remain."""
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from make_student import is_solution, make_student  # noqa: E402


def test_student_edition(tmp_path):
    written = make_student(tmp_path / "student")
    originals = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert [p.name for p in written] == [p.name for p in originals], "every notebook is there"
    for original_path, student_path in zip(originals, written):
        original = nbformat.read(original_path, as_version=4)
        student = nbformat.read(student_path, as_version=4)
        solutions = [c for c in original.cells if is_solution(c)]
        assert solutions, f"{original_path.name} has no solution cells to remove"
        assert not any(is_solution(c) for c in student.cells)
        sources = [c.source for c in student.cells]
        for cell in solutions:
            assert cell.source not in sources, "a solution survived"
        kept = [c.source for c in original.cells if not is_solution(c)]
        assert sources[1:] == kept[1:], "everything else, exercises and checks included, stays"
        assert "Student edition" in student.cells[0].source
        for cell in student.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None
        nbformat.validate(student)


def test_regenerated_not_hand_edited(tmp_path):
    out = tmp_path / "student"
    make_student(out)
    (out / "stray.ipynb").write_text("{}")
    make_student(out)
    assert not (out / "stray.ipynb").exists()
