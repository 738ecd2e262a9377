"""tools/notebook_cells.py: the one repository URL, and the Colab links stamped from it."""

from pathlib import Path

from tools import notebook_cells as cells

ROOT = Path(__file__).resolve().parents[1]


def test_repository_url_is_kept_once():
    assert cells.REPO_URL.startswith("https://github.com/")
    files = [
        *ROOT.glob("*.toml"),
        *ROOT.glob("*.md"),
        *ROOT.glob("course_utils/*.py"),
        *ROOT.glob("tools/*.py"),
        *ROOT.glob("tests/*.py"),
        *ROOT.glob("instructors/*.md"),
    ]
    holders = [p.name for p in files if cells.REPO_URL in p.read_text()]
    assert holders == ["notebook_cells.py"], f"REPO_URL belongs in notebook_cells.py: {holders}"


def test_colab_links_derive_from_repo_url():
    assert cells.colab_url("00_start_here.ipynb") == (
        "https://colab.research.google.com/github/pruning-course/pytorch-pruning-course"
        "/blob/main/notebooks/00_start_here.ipynb"
    )
    assert cells.REPO_URL in cells.colab_install_line()
