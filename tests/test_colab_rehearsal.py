"""The Colab route, rehearsed offline: what a learner who clicks a notebook's badge gets.

On Colab there is no checkout. Each notebook's setup cell runs
``%pip install --no-deps "course-utils @ git+<REPO_URL>"`` into Colab's own packages (an older
torch, ipywidgets 7.7.1, no ipympl), the working directory is an empty folder, and the data
arrive by torchvision download. This test does the same, without network:

- the kernel is the oldest-versions environment (``requirements-oldest.txt``), without
  ``course_utils`` installed; the setup cell's own ``%pip`` line installs it, with no package
  index (``PIP_NO_INDEX``): pip builds the package with the setuptools wheel that
  ``make test-colab`` saved beside the environment;
- git redirects ``REPO_URL`` to a bare repository holding the current tree (``url.insteadOf``),
  so the notebooks are not edited;
- the notebooks are copied alone into an empty folder;
- ``"google.colab" in sys.modules`` is true in the kernel (an IPython startup file);
- the Debian copy of the data is hidden (``COURSE_NO_SYSTEM_DATA``) and torchvision's download
  is pointed at a local HTTP server that serves the four files.

Run it with ``make test-colab``; ``make test`` skips it.
"""

import hashlib
import http.server
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import nbformat
import pytest

from tools.notebook_cells import REPO_URL

ROOT = Path(__file__).resolve().parents[1]
PYTHON = os.environ.get("COURSE_COLAB_PYTHON")
if not PYTHON:
    pytest.skip(
        "the Colab rehearsal runs with `make test-colab` (it needs the oldest-versions "
        "environment, .venv-oldest)",
        allow_module_level=True,
    )

DATA = Path("/usr/share/datasets/fashion-mnist")
FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]
ARTIFACTS = ROOT / "test-artifacts" / "colab"
WHEELS = Path(PYTHON).parents[1] / "wheels"  # the build backend, saved by make test-colab
STARTUP = """# Written by tests/test_colab_rehearsal.py: what Colab's kernel has.
import sys
import types

sys.modules["google.colab"] = types.ModuleType("google.colab")  # in_colab() is true

import torchvision.datasets  # the download goes to the local server, with its files' MD5s

torchvision.datasets.FashionMNIST.mirrors = ["{mirror}"]
torchvision.datasets.FashionMNIST.resources = {resources!r}
"""


def run_checked(*command, **kwargs):
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)


def bare_repository_of_this_tree(folder):
    """A bare git repository whose main branch is this checkout's tracked files, as they are now."""
    status = run_checked(
        "git", "status", "--porcelain", "--untracked-files=all", "course_utils", cwd=ROOT
    )
    untracked = [line[3:] for line in status.stdout.splitlines() if line.startswith("??")]
    if untracked:
        pytest.fail(f"git add {' '.join(untracked)}: the rehearsal installs git's copy of the tree")
    who = {
        f"GIT_{role}_{key}": value
        for role in ("AUTHOR", "COMMITTER")
        for key, value in (("NAME", "Colab rehearsal"), ("EMAIL", "rehearsal@localhost"))
    }
    snapshot = run_checked(
        "git",
        "stash",
        "create",
        cwd=ROOT,  # uncommitted edits too
        env={**os.environ, **who},
    ).stdout.strip()
    commit = snapshot or run_checked("git", "rev-parse", "HEAD", cwd=ROOT).stdout.strip()
    bare = folder / "course.git"
    run_checked("git", "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    run_checked("git", "push", "--quiet", str(bare), f"{commit}:refs/heads/main", cwd=ROOT)
    return bare


class Mirror(http.server.SimpleHTTPRequestHandler):
    served = []

    def log_message(self, *args):
        Mirror.served.append((self.command, self.path))


def serve(folder):
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: Mirror(*a, directory=str(folder))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """Run every notebook the Colab way; return (work folder, failures, requests, kernel env)."""
    if not all((DATA / name).is_file() for name in FILES):
        pytest.skip(f"needs the four Fashion-MNIST files in {DATA} (Debian dataset-fashion-mnist)")
    if not list(WHEELS.glob("setuptools-*.whl")):
        pytest.skip(f"no setuptools wheel in {WHEELS}: run make test-colab, which saves it")
    tmp = tmp_path_factory.mktemp("colab")
    resources = [(name, hashlib.md5((DATA / name).read_bytes()).hexdigest()) for name in FILES]
    server = serve(DATA)
    mirror = f"http://127.0.0.1:{server.server_address[1]}/"

    ipython = tmp / "ipython"
    (ipython / "profile_default" / "startup").mkdir(parents=True)
    (ipython / "profile_default" / "startup" / "00-colab.py").write_text(
        STARTUP.format(mirror=mirror, resources=resources)
    )
    gitconfig = tmp / "gitconfig"
    bare = bare_repository_of_this_tree(tmp)
    gitconfig.write_text(f'[url "file://{bare}"]\n\tinsteadOf = {REPO_URL}\n')

    work = tmp / "content"  # Colab's working directory, empty but for the notebooks
    work.mkdir()
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        shutil.copy(path, work / path.name)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "COURSE_HOME", "COURSE_DATA_DIR", "VIRTUAL_ENV")
    }
    env.update(
        GIT_CONFIG_GLOBAL=str(gitconfig),
        GIT_CONFIG_NOSYSTEM="1",
        IPYTHONDIR=str(ipython),
        COURSE_NO_SYSTEM_DATA="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(WHEELS),
    )
    uninstall = [PYTHON, "-m", "pip", "uninstall", "--quiet", "--yes", "course-utils"]
    subprocess.run(uninstall, env=env, capture_output=True)  # as on Colab: not installed yet
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    try:
        failed = {}
        for path in sorted(work.glob("*.ipynb")):
            done = subprocess.run(
                [
                    PYTHON,
                    "-m",
                    "jupyter",
                    "nbconvert",
                    "--to",
                    "notebook",
                    "--execute",
                    "--ExecutePreprocessor.timeout=900",
                    "--output-dir",
                    str(ARTIFACTS),
                    str(path),
                ],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
            )
            if done.returncode:
                failed[path.name] = done.stderr[-3000:]
        yield work, failed, list(Mirror.served), env
    finally:
        server.shutdown()
        subprocess.run(uninstall, env=env, capture_output=True)


def test_every_notebook_runs_the_colab_way(colab):
    _, failed, _, _ = colab
    assert not failed, "notebooks that failed on the Colab route:\n" + "\n\n".join(
        f"--- {name}\n{tail}" for name, tail in failed.items()
    )


def test_the_setup_cell_installed_the_helpers_from_git(colab):
    *_, env = colab
    setup = nbformat.read(ARTIFACTS / "00_start_here.ipynb", as_version=4).cells[2]
    shown = json.dumps(setup.outputs)
    assert f"git+{REPO_URL}" in setup.source and "restart the kernel" in shown, "%pip ran"
    assert "on Colab" in shown, "setup() saw Colab"
    where = subprocess.run(
        [PYTHON, "-c", "import course_utils; print(course_utils.__file__)"],
        capture_output=True,
        text=True,
        cwd="/",
        env=env,
    ).stdout
    assert "site-packages" in where and "/course_utils/" in where, f"installed by pip: {where}"


def test_the_data_came_by_download_into_the_working_folder(colab):
    work, _, served, _ = colab
    # torchvision asks twice per file: once for redirects, once for the file itself
    assert {Path(path).name for command, path in served if command == "GET"} == set(FILES)
    downloaded = (work / "data" / "FashionMNIST" / "raw").glob("*.gz")
    assert sorted(p.name for p in downloaded) == sorted(FILES)
    assert (work / "checkpoints").is_dir(), "checkpoints/ lives in the working folder"


def test_the_explorer_widget_is_built_with_ipywidgets_7(colab):
    nb = nbformat.read(ARTIFACTS / "03_validation.ipynb", as_version=4)
    views = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert views, "the SparsityExplorer produced a widget view"
    version = subprocess.run(
        [PYTHON, "-c", "import ipywidgets; print(ipywidgets.__version__)"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert version == "7.7.1", f"Colab's ipywidgets, not {version}"
