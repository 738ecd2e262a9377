"""The pip and conda routes install the same packages; the project's own files are consistent."""

import re
from pathlib import Path

import tomllib
import torch

from course_utils import env

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}  # PyPI name -> conda-forge name where they differ


def _requirement(spec):
    name, bound = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", spec.strip()).groups()
    return name.lower(), bound.replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + project["optional-dependencies"]["test"]
    pip = dict(_requirement(s) for s in specs)
    text = (ROOT / "environment.yml").read_text().split("dependencies:", 1)[1]
    conda_lines = re.findall(r"^  - ([A-Za-z][^\s#]*)\s*$", text, re.M)
    conda = dict(_requirement(s) for s in conda_lines if not s.startswith(("python", "pip")))
    expected = {CONDA_NAMES.get(name, name): bound for name, bound in pip.items()}
    assert conda == expected, "environment.yml and pyproject.toml list different packages"
    assert "-e ." in (ROOT / "environment.yml").read_text()


def test_lower_bounds_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec in project["dependencies"] + project["optional-dependencies"]["test"]:
        assert "==" not in spec and "<" not in spec, f"no pins or caps: {spec}"


def test_device_selection(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert env.pick_device().type == "cpu"
    monkeypatch.delenv("COURSE_DEVICE")
    assert env.pick_device("cpu").type == "cpu"
    assert "no GPU" in env.describe_device("cpu")


def test_setup_seeds_and_prints(capsys):
    import torch

    device = env.setup(seed=3)
    first = torch.rand(3)
    env.setup(seed=3, quiet=True)
    assert torch.equal(first, torch.rand(3))
    out = capsys.readouterr().out
    assert "torch" in out and "Device:" in out and isinstance(device, torch.device)


def test_seed_and_threads_come_from_the_environment(monkeypatch):
    import torch

    monkeypatch.delenv("COURSE_SEED", raising=False)
    monkeypatch.delenv("COURSE_THREADS", raising=False)
    assert env.course_seed() == 0 and env.course_threads() is None
    monkeypatch.setenv("COURSE_SEED", "3")
    monkeypatch.setenv("COURSE_THREADS", "1")
    before = torch.get_num_threads()
    try:
        env.setup(quiet=True)
        assert torch.get_num_threads() == 1
        first = torch.rand(3)
        env.seed_everything(3)
        assert torch.equal(first, torch.rand(3)), "setup() seeded with COURSE_SEED"
    finally:
        torch.set_num_threads(before)


def test_bad_seed_or_threads_say_how_to_fix(monkeypatch):
    import pytest

    monkeypatch.setenv("COURSE_SEED", "one")
    with pytest.raises(ValueError, match="COURSE_SEED='one' must be a whole number >= 0"):
        env.course_seed()
    monkeypatch.setenv("COURSE_THREADS", "0")
    with pytest.raises(ValueError, match="COURSE_THREADS='0'.*export COURSE_THREADS=1"):
        env.course_threads()


def test_course_home_moves_data_and_checkpoints(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_HOME", str(tmp_path))
    from course_utils.checkpoints import checkpoint_dir
    from course_utils.data import course_data_dir

    assert env.project_dir() == tmp_path
    assert course_data_dir() == tmp_path / "data" and checkpoint_dir() == tmp_path / "checkpoints"


def test_project_dir_follows_the_folder_the_learner_works_in(monkeypatch, tmp_path):
    """Not the checkout the package was installed from (issue 20): the project above the
    current directory, else the current directory."""
    monkeypatch.delenv("COURSE_HOME", raising=False)
    project = tmp_path / "my-course"
    (project / "notebooks").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\n")
    monkeypatch.chdir(project / "notebooks")
    assert env.project_dir() == project.resolve()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert env.project_dir() == elsewhere.resolve()


def test_the_oldest_environment_tests_the_lower_bounds():
    """requirements-oldest.txt pins each package at pyproject's lower bound (same minor release)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    bounds = dict(_requirement(s) for s in project["dependencies"])
    pins = dict(
        line.split("==")
        for line in (ROOT / "requirements-oldest.txt").read_text().split()
        if "==" in line
    )
    # ipywidgets: Colab's kernel has 7.7.1; JupyterLab 4 itself needs 7.8+ to draw widgets.
    colab_only = {"ipywidgets"}
    for name, bound in bounds.items():
        assert name in pins, f"requirements-oldest.txt does not pin {name}"
        low = tuple(int(x) for x in bound.removeprefix(">=").split(".")[:2])
        pinned = tuple(int(x) for x in pins[name].split(".")[:2])
        ok = pinned == low or (name in colab_only and pinned < low)
        assert ok, f"{name}: {pins[name]} vs {bound}"


def test_machine_info_names_the_cpu_and_the_versions():
    info = env.machine_info()
    assert info["cpu"] == env.cpu_name() and info["cpu"]
    assert info["cores"] >= 1 and info["torch"] == torch.__version__
    assert info["gpu"] is None or "compute capability" in info["gpu"]
