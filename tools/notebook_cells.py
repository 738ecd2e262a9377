"""The Colab badge and install line of every notebook, derived from REPO_URL (kept here only).

    python -m tools.notebook_cells          # re-stamp badges and Colab lines in notebooks/
    python -m tools.notebook_cells --check  # exit 1 if any notebook is out of date

Authors also import ``title_cell`` and ``setup_cell`` when writing a new notebook.
"""

import re
import sys
from pathlib import Path

import nbformat

REPO_URL = "https://github.com/pruning-course/pytorch-pruning-course"
"""The course's repository: the Colab badges and the Colab install line derive from it."""

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
BADGE_RE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)")
INSTALL_RE = re.compile(r'%pip install -q[^"\n]*"course-utils @ git\+[^"]*"')


def colab_url(notebook: str) -> str:
    """The 'Open in Colab' address of a notebook, derived from REPO_URL."""
    path = REPO_URL.replace("https://github.com/", "")
    return f"https://colab.research.google.com/github/{path}/blob/main/notebooks/{notebook}"


def colab_badge(notebook: str) -> str:
    """The Markdown of the 'Open in Colab' badge for a notebook file name."""
    return (
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"({colab_url(notebook)})"
    )


def colab_install_line() -> str:
    """The pip line the setup cell runs on Colab (``--no-deps``: Colab ships torch & co)."""
    return f'%pip install -q --no-deps "course-utils @ git+{REPO_URL}"'


def title_cell(notebook, title, summary):
    """``# NN · Title``, the badge, and one sentence on what the learner will be able to do."""
    number = notebook[:2]
    return nbformat.v4.new_markdown_cell(
        f"# {number} · {title}\n\n{colab_badge(notebook)}\n\n{summary}"
    )


def setup_source(imports=""):
    """The setup cell: install on Colab, then one ``setup()`` call (seed, device, versions)."""
    lines = [
        "import sys",
        'if "google.colab" in sys.modules:  # on Colab: install the course helpers first',
        f"    {colab_install_line()}",
        "",
    ]
    if imports:
        lines += [imports.strip(), ""]
    lines += ["from course_utils import setup", "device = setup()"]
    return "\n".join(lines)


def setup_cell(imports=""):
    return nbformat.v4.new_code_cell(setup_source(imports))


def stamp(path, write=True):
    """Rewrite the badge and the Colab install line of one notebook; True if it changed."""
    nb = nbformat.read(path, as_version=4)
    before = [c.source for c in nb.cells]
    for cell in nb.cells:
        cell.source = BADGE_RE.sub(lambda m: colab_badge(path.name), cell.source)
        cell.source = INSTALL_RE.sub(lambda m: colab_install_line(), cell.source)
    changed = before != [c.source for c in nb.cells]
    if changed and write:
        nbformat.write(nb, path)
    return changed


if __name__ == "__main__":
    check_only = "--check" in sys.argv
    stale = [
        p.name for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) if stamp(p, not check_only)
    ]
    if stale:
        print(("Out of date: " if check_only else "Stamped: ") + ", ".join(stale))
    sys.exit(1 if stale and check_only else 0)
