"""One source for every helper (d2l's ``#@save`` rule, checked).

A helper a notebook teaches is written out in the notebook cell that teaches it, and that cell
starts with ``# saved in course_utils.<module>``; the module holds the same source, which later
notebooks and ``benchmarks/`` import. These tests fail when the two copies drift apart, and when
any function or class is defined twice across the notebooks, ``course_utils``, ``benchmarks/``,
``tools/`` and ``tests/``: twice under one name, or one body twice under two names (compared as
normalised syntax trees: docstrings, annotations and the names of arguments and local variables
do not count).
"""

import ast
import copy
import importlib
import inspect
import re
from collections import defaultdict
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MARKER = re.compile(r"^# saved in (course_utils\.\w+)\s*$")
TAUGHT = {"Net", "validate", "pruned_copy", "make_permanent", "mask_2_4", "silence_batchnorm"}
SCRIPT_ENTRY_POINTS = {"main"}  # every script has one
FOLDERS = ("course_utils", "benchmarks", "tools", "tests")
MIN_BODY_NODES = 25  # smaller bodies (a one-line property, a fixture) may repeat by chance


def python_source(cell_source):
    """A code cell without its IPython lines (``%pip``, ``!ls``), which are not Python."""
    return "\n".join(
        line[: len(line) - len(line.lstrip())] + "pass"
        if line.lstrip().startswith(("%", "!"))
        else line
        for line in cell_source.splitlines()
    )


def top_level_nodes(source):
    """The functions and classes defined at the top of ``source``, as syntax-tree nodes."""
    return [
        node
        for node in ast.parse(source).body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    ]


def top_level_definitions(source):
    """``{name: source text}`` of the functions and classes defined at the top of ``source``."""
    return {node.name: ast.get_source_segment(source, node) for node in top_level_nodes(source)}


class _Normalise(ast.NodeTransformer):
    """Rename what a copy may rename (arguments, local names), drop docstrings and annotations."""

    def __init__(self):
        self.names = {}

    def _rename(self, name):
        return self.names.setdefault(name, f"_v{len(self.names)}")

    def visit_arg(self, node):
        return ast.arg(arg=self._rename(node.arg), annotation=None)

    def visit_Name(self, node):
        return ast.Name(id=self._rename(node.id), ctx=node.ctx)

    def _strip(self, node):
        body = node.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body = body[1:] or [ast.Pass()]
        node.body = body
        if hasattr(node, "returns"):
            node.returns = None
        node.name = "_"
        return self.generic_visit(node)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _strip

    def visit_AnnAssign(self, node):
        return self.generic_visit(
            ast.Assign(targets=[node.target], value=node.value, lineno=0)
            if node.value is not None
            else ast.Pass()
        )


def normalised_body(node):
    """A definition's syntax tree without its name, docstring, annotations and local names."""
    tree = _Normalise().visit(copy.deepcopy(node))
    return ast.dump(tree, annotate_fields=False)


def body_size(node):
    return sum(1 for _ in ast.walk(node))


def saved_cells():
    for path in NOTEBOOKS:
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            first_line = cell.source.split("\n", 1)[0]
            if cell.cell_type == "code" and MARKER.match(first_line):
                yield f"{path.name}[{index}]", MARKER.match(first_line).group(1), cell.source


SAVED = list(saved_cells())


def test_every_taught_helper_is_saved():
    names = {
        name for _, _, source in SAVED for name in top_level_definitions(python_source(source))
    }
    assert TAUGHT <= names, f"not marked '# saved in course_utils...': {sorted(TAUGHT - names)}"


def drift(where, module_name, source):
    """What differs between a saved notebook cell and its module (an empty list: nothing)."""
    module = importlib.import_module(module_name)
    definitions = top_level_definitions(python_source(source))
    if not definitions:
        return [f"{where} is marked as saved but defines nothing"]
    problems = []
    for name, text in definitions.items():
        if not hasattr(module, name):
            problems.append(f"{where} defines {name}, which {module_name} lacks")
        elif inspect.getsource(getattr(module, name)).rstrip() != text.rstrip():
            problems.append(
                f"{name} in {where} differs from {module_name}.{name}: copy one onto the other"
            )
    return problems


@pytest.mark.parametrize("where, module_name, source", SAVED, ids=[where for where, _, _ in SAVED])
def test_saved_helper_matches_its_module(where, module_name, source):
    assert not drift(where, module_name, source)


def python_files():
    """``{where: source}`` of every .py file of the course but the notebooks."""
    return {
        f"{folder}/{path.name}": path.read_text()
        for folder in FOLDERS
        for path in sorted((ROOT / folder).glob("*.py"))
    }


def definitions():
    """``[(where, node)]`` of every top-level function and class (a saved cell counts once)."""
    found = []
    saved = {
        (name, module)
        for _, module, source in SAVED
        for name in top_level_definitions(python_source(source))
    }
    for where, source in python_files().items():
        found += [(where, node) for node in top_level_nodes(source)]
    for path in NOTEBOOKS:
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type != "code" or "solution" in cell.metadata.get("tags", []):
                continue  # a solution redefines the learner's answer on purpose
            marker = MARKER.match(cell.source.split("\n", 1)[0])
            for node in top_level_nodes(python_source(cell.source)):
                if marker and (node.name, marker.group(1)) in saved:
                    continue  # the module's copy is already listed
                found.append((f"{path.name}[{index}]", node))
    return found


def is_fixture(node):
    return any("fixture" in ast.unparse(decorator) for decorator in node.decorator_list)


def repeated(found):
    """Names defined in more than one place, and bodies defined under more than one name."""
    by_name, by_body = defaultdict(list), defaultdict(list)
    for where, node in found:
        if node.name in SCRIPT_ENTRY_POINTS or node.name.startswith("test_"):
            continue  # one main per script; test names only need to be unique in their file
        if not is_fixture(node):  # pytest finds a fixture by name, file by file
            by_name[node.name].append(where)
        if body_size(node) >= MIN_BODY_NODES:
            by_body[normalised_body(node)].append(f"{node.name} in {where}")
    twice = {name: where for name, where in by_name.items() if len(where) > 1}
    copies = [where for where in by_body.values() if len(where) > 1]
    return twice, copies


def test_no_helper_is_defined_twice():
    twice, copies = repeated(definitions())
    assert not twice, f"defined more than once (import it instead): {twice}"
    assert not copies, f"the same body under other names (import it instead): {copies}"


def test_the_guard_sees_a_body_copied_under_a_new_name():
    module = (ROOT / "course_utils" / "sparse_kernels.py").read_text()
    original = next(node for node in top_level_nodes(module) if node.name == "mask_2_4")
    copied = ast.parse(
        ast.get_source_segment(module, original)
        .replace("def mask_2_4(weight", "def _rows_2_4(w")
        .replace("weight.", "w.")
    )
    assert normalised_body(copied.body[0]) == normalised_body(original)
    twice, copies = repeated(definitions() + [("tests/copy.py", copied.body[0])])
    assert not twice and copies == [
        ["mask_2_4 in course_utils/sparse_kernels.py", "_rows_2_4 in tests/copy.py"]
    ]
    other = ast.parse("def mask_2_4(weight):\n    return weight\n").body[0]
    assert repeated(definitions() + [("tests/other.py", other)])[0] == {
        "mask_2_4": ["course_utils/sparse_kernels.py", "tests/other.py"]
    }


def test_the_drift_test_can_fail():
    where, module_name, source = next(cell for cell in SAVED if "def pruned_copy" in cell[2])
    edited = source.replace("pruned = copy.deepcopy(model)", "pruned = model")
    assert edited != source and drift(where, module_name, edited), "an edited copy is caught"
    assert drift(where, "course_utils.measure", source), "so is a helper missing from its module"
