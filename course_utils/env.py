"""One setup call for every notebook: seed, device, plot style, versions.

Introduced in 00_start_here.
"""

from __future__ import annotations

import datetime
import os
import platform
import random
import sys
from pathlib import Path

import torch

__all__ = [
    "project_dir",
    "course_seed",
    "course_threads",
    "in_colab",
    "pick_device",
    "seed_everything",
    "describe_device",
    "cpu_name",
    "machine_info",
    "setup",
]


def project_dir() -> Path:
    """The folder where ``data/`` and ``checkpoints/`` live: the folder the learner works in.

    ``COURSE_HOME`` when set (``make sweep`` gives each run a fresh one); else the course
    project that holds the current directory (the nearest folder, the current one or above,
    with a ``pyproject.toml`` and a ``notebooks/`` folder: a notebook runs in ``notebooks/``);
    else the current directory (Colab, a pip install). Never the folder the package was
    installed from: with an editable install from another checkout, the learner's files stay
    in the checkout they work in. ``setup()`` prints it.
    """
    if os.environ.get("COURSE_HOME"):
        return Path(os.environ["COURSE_HOME"])
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "notebooks").is_dir():
            return folder
    return here


def _whole_number(variable: str, default: int | None, minimum: int) -> int | None:
    value = os.environ.get(variable, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < minimum:
        raise ValueError(
            f"{variable}={value!r} must be a whole number >= {minimum}: "
            f"unset it or fix it, for example export {variable}={max(minimum, 1)}."
        )
    return int(value)


def course_seed() -> int:
    """The seed of this run: ``COURSE_SEED`` when set, else 0 (``make sweep`` varies it)."""
    return _whole_number("COURSE_SEED", 0, 0)


def course_threads() -> int | None:
    """Torch CPU threads asked for by ``COURSE_THREADS``, or None (torch's own default)."""
    return _whole_number("COURSE_THREADS", None, 1)


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules


def pick_device(prefer: str | torch.device | None = None) -> torch.device:
    """``cuda`` when present, else Apple ``mps``, else ``cpu``; ``prefer`` forces one."""
    prefer = prefer or os.environ.get("COURSE_DEVICE")
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int | None = None) -> None:
    """Seed Python, and PyTorch on every device, so a run repeats (default: ``course_seed()``)."""
    seed = course_seed() if seed is None else seed
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds CUDA and MPS


def describe_device(device: str | torch.device) -> str:
    """A line naming the device, with a hint when no GPU is on."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "mps (Apple GPU)"
    hint = (
        "Runtime > Change runtime type > T4 GPU to turn one on (optional)"
        if in_colab()
        else "everything in this course runs on a CPU in minutes"
    )
    return f"cpu: no GPU found; {hint}"


def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo, else platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, object]:
    """Where measured numbers come from: CPU, cores, threads, OS, versions, GPU (or None), date.

    ``make bench`` and ``make sweep`` print it with their tables.
    """
    gpu = None
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        gpu = f"{torch.cuda.get_device_name()} (compute capability {major}.{minor})"
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": gpu,
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
    }


def setup(
    seed: int | None = None, device: str | torch.device | None = None, quiet: bool = False
) -> torch.device:
    """Seed everything, choose the device, set the plot style, print versions; return device.

    ``seed`` defaults to ``course_seed()`` (``COURSE_SEED``, else 0); ``COURSE_THREADS``
    sets torch's CPU threads. ``make sweep`` varies both to prove the notebooks' claims.
    """
    seed = course_seed() if seed is None else seed
    seed_everything(seed)
    threads = course_threads()
    if threads:
        torch.set_num_threads(threads)
    device = pick_device(device)
    try:
        import matplotlib.pyplot as plt

        plt.rcParams.update(
            {
                "figure.dpi": 80,
                "figure.figsize": (6.4, 3.6),
                "axes.grid": True,
                "grid.alpha": 0.3,
                "axes.spines.top": False,
                "axes.spines.right": False,
            }
        )
    except ImportError:  # plotting is optional for scripts
        pass
    if not quiet:
        import torchvision

        print(
            f"Python {platform.python_version()} · torch {torch.__version__} · "
            f"torchvision {torchvision.__version__}"
        )
        print(
            f"Device: {describe_device(device)}{' · on Colab' if in_colab() else ''} · "
            f"seed {seed} · {torch.get_num_threads()} CPU threads"
        )
        print(f"Data and checkpoints in {project_dir()}")
    return device
