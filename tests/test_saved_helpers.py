"""One source for every helper (d2l's ``#@save`` rule, checked).

A helper a notebook teaches is written out in the notebook cell that teaches it, and that cell
starts with ``# saved in course_utils.<module>``; the module holds the same source, which later
notebooks and ``benchmarks/`` import. These tests fail when the two copies drift apart, and when
any function or class is defined twice across the notebooks, ``course_utils``, ``benchmarks/``
and ``tools/``.
"""
import ast
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
TAUGHT = {"Net", "validate", "pruned_copy", "make_permanent", "mask_2_4"}
SCRIPT_ENTRY_POINTS = {"main"}  # every script has one


def python_source(cell_source):
    """A code cell without its IPython lines (``%pip``, ``!ls``), which are not Python."""
    return "\n".join(line[:len(line) - len(line.lstrip())] + "pass"
                     if line.lstrip().startswith(("%", "!")) else line
                     for line in cell_source.splitlines())


def top_level_definitions(source):
    """``{name: source text}`` of the functions and classes defined at the top of ``source``."""
    tree = ast.parse(source)
    return {node.name: ast.get_source_segment(source, node) for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def saved_cells():
    for path in NOTEBOOKS:
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            first_line = cell.source.split("\n", 1)[0]
            if cell.cell_type == "code" and MARKER.match(first_line):
                yield f"{path.name}[{index}]", MARKER.match(first_line).group(1), cell.source


SAVED = list(saved_cells())


def test_every_taught_helper_is_saved():
    names = {name for _, _, source in SAVED
             for name in top_level_definitions(python_source(source))}
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
            problems.append(f"{name} in {where} differs from {module_name}.{name}: "
                            "copy one onto the other")
    return problems


@pytest.mark.parametrize("where, module_name, source", SAVED, ids=[where for where, _, _ in SAVED])
def test_saved_helper_matches_its_module(where, module_name, source):
    assert not drift(where, module_name, source)


def definition_sites():
    """``{name: [where it is defined]}``; a saved notebook cell and its module count once."""
    sites = defaultdict(list)
    saved = {(name, module) for _, module, source in SAVED
             for name in top_level_definitions(python_source(source))}
    for path in sorted((ROOT / "course_utils").glob("*.py")):
        for name in top_level_definitions(path.read_text()):
            sites[name].append(f"course_utils/{path.name}")
    for folder in ("benchmarks", "tools"):
        for path in sorted((ROOT / folder).glob("*.py")):
            for name in top_level_definitions(path.read_text()):
                sites[name].append(f"{folder}/{path.name}")
    for path in NOTEBOOKS:
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type != "code" or "solution" in cell.metadata.get("tags", []):
                continue  # a solution redefines the learner's answer on purpose
            marker = MARKER.match(cell.source.split("\n", 1)[0])
            for name in top_level_definitions(python_source(cell.source)):
                if marker and (name, marker.group(1)) in saved:
                    continue  # the module's copy is already listed
                sites[name].append(f"{path.name}[{index}]")
    return sites


def test_no_helper_is_defined_twice():
    twice = {name: where for name, where in definition_sites().items()
             if len(where) > 1 and name not in SCRIPT_ENTRY_POINTS}
    assert not twice, f"defined more than once (import it instead): {twice}"


def test_the_drift_test_can_fail():
    where, module_name, source = next(cell for cell in SAVED if "def pruned_copy" in cell[2])
    edited = source.replace("pruned = copy.deepcopy(model)", "pruned = model")
    assert edited != source and drift(where, module_name, edited), "an edited copy is caught"
    assert drift(where, "course_utils.measure", source), "so is a helper missing from its module"
