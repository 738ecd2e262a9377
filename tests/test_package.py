"""The shape of course_utils: one module per job, each with ``__all__``; typed public functions."""

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import course_utils

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(p.stem for p in (ROOT / "course_utils").glob("*.py") if p.stem != "__init__")
UNHINTED = {("training.validate", "val_loader")}  # the article's signature, as taught in 03


def test_the_package_docstring_lists_every_module():
    for name in MODULES:
        assert f"``{name}``" in course_utils.__doc__, f"the package docstring does not list {name}"


@pytest.mark.parametrize("name", MODULES)
def test_all_lists_exactly_the_public_definitions(name):
    module = importlib.import_module(f"course_utils.{name}")
    assert hasattr(module, "__all__"), f"course_utils/{name}.py has no __all__"
    tree = ast.parse((ROOT / "course_utils" / f"{name}.py").read_text())
    defined = {
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")
    }
    unlisted = defined - set(module.__all__)
    assert not unlisted, f"public but not in __all__: {unlisted}"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"__all__ names what {name} lacks: {missing}"


def public_functions():
    for name in MODULES:
        module = importlib.import_module(f"course_utils.{name}")
        for attr in module.__all__:
            obj = getattr(module, attr)
            if inspect.isfunction(obj) and obj.__module__ == module.__name__:
                yield f"{name}.{attr}", obj
            elif inspect.isclass(obj) and obj.__module__ == module.__name__:
                for method in ("__init__", "forward"):
                    if method in vars(obj):
                        yield f"{name}.{attr}.{method}", vars(obj)[method]


@pytest.mark.parametrize(
    "where, function", list(public_functions()), ids=[where for where, _ in public_functions()]
)
def test_public_functions_have_type_hints(where, function):
    signature = inspect.signature(function)
    assert signature.return_annotation is not inspect.Signature.empty, f"{where}: no return type"
    for parameter in signature.parameters.values():
        if parameter.name in ("self", "args", "kwargs") or (where, parameter.name) in UNHINTED:
            continue
        assert parameter.annotation is not inspect.Parameter.empty, f"{where}({parameter.name})"


def course_imports():
    """``{module: {course_utils modules it imports}}``, read from the source (relative imports)."""
    graph = {}
    for name in MODULES:
        tree = ast.parse((ROOT / "course_utils" / f"{name}.py").read_text())
        needs = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                needs |= {node.module} if node.module else {a.name for a in node.names}
        graph[name] = needs & set(MODULES)
    return graph


def reachable(graph, start):
    seen, todo = set(), list(graph[start])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += graph[name]
    return seen


def test_modules_import_no_circle_and_files_sit_below_the_training_stack():
    graph = course_imports()
    circles = [name for name in MODULES if name in reachable(graph, name)]
    assert not circles, f"modules that import themselves through others: {circles}"
    training_stack = {"training", "data", "models", "baseline"}
    for low in ("checkpoints", "storage", "pruning", "surgery", "measure", "sparse_kernels"):
        above = reachable(graph, low) & training_stack
        assert not above, f"{low} should not need the training stack, but imports {above}"
