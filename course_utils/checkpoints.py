"""Model files: atomic saves, loads with clear errors, and the baselines every notebook starts from.

The reference baselines ship with the package in ``baselines/`` (made by
``tools/train_reference_baselines.py``, verified by ``baselines/SHA256SUMS``); models the course
trains itself are cached in ``checkpoints/``. Introduced in 01_model_definition.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from .env import project_dir

__all__ = ["checkpoint_dir", "atomic_write", "save_checkpoint", "load_checkpoint", "REFERENCE_DIR",
           "reference_path", "reference_sha256", "load_reference", "load_baseline"]


def checkpoint_dir() -> Path:
    """The course's ``checkpoints/`` folder (created when first needed)."""
    path = project_dir() / "checkpoints"
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], Any]) -> None:
    """Call ``write(temporary_path)``, then rename the file to ``path``: never half-written.

    The temporary file lies in the same folder (created if needed), so the rename is atomic; it
    is removed when ``write`` fails, and an existing ``path`` stays as it was.
    """
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_checkpoint(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` through a temporary file and an atomic rename: never half-written."""
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load_checkpoint(model: nn.Module, path: str | os.PathLike[str],
                    device: str | torch.device = "cpu") -> nn.Module:
    """Load a state_dict file into ``model``; a clear error if it does not fit.

    Uses ``torch.load(weights_only=True, map_location=device)``. Raises ``ValueError``
    when the file is damaged or was saved from another architecture.
    """
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:
        raise ValueError(f"{path} is not a readable checkpoint ({type(err).__name__}). "
                         "Delete it and train again.") from err
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    expected = model.state_dict()
    if not isinstance(state, dict) or set(state) != set(expected):
        got = sorted(state)[:4] if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{path} was saved from another architecture: its keys {got}... do not "
                         f"match {type(model).__name__}'s {sorted(expected)[:4]}.... "
                         "Load it into the model it came from, or delete it and train again.")
    wrong = [f"{k}: file {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
             for k, v in state.items() if v.shape != expected[k].shape]
    if wrong:
        raise ValueError(f"{path} does not fit {type(model).__name__}: " + "; ".join(wrong)
                         + ". Delete it and train again, or build the model with those shapes.")
    model.load_state_dict(state)
    return model.to(device)


REFERENCE_DIR = Path(__file__).with_name("baselines")
"""The reference baselines shipped with the package (``tools/train_reference_baselines.py``)."""


def reference_path(model_class: type) -> Path | None:
    """The shipped reference checkpoint of ``model_class``, or None when none is shipped."""
    path = REFERENCE_DIR / f"{model_class.__name__.lower()}_baseline.pt"
    return path if path.name in reference_sha256() else None


def reference_sha256() -> dict[str, str]:
    """``{file name: SHA-256}`` of the reference checkpoints, read from ``baselines/SHA256SUMS``."""
    sums = REFERENCE_DIR / "SHA256SUMS"
    if not sums.is_file():
        return {}
    pairs = (line.split() for line in sums.read_text().splitlines() if line.strip())
    return {name: digest for digest, name in pairs}


def load_reference(model_class: type, device: str | torch.device = "cpu") -> nn.Module:
    """Load the shipped reference baseline of ``model_class``, verified by its SHA-256.

    Raises ``ValueError`` when the file is missing or damaged.
    """
    path = reference_path(model_class)
    if path is None:
        raise ValueError(f"no reference baseline is shipped for {model_class.__name__}.")
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"
    if digest != reference_sha256()[path.name]:
        raise ValueError(f"the reference checkpoint {path} is missing or damaged (SHA-256 "
                         f"{digest[:12]}...). Reinstall the course (pip install -e .) or restore "
                         f"it with git checkout -- {path.parent.name}/{path.name}.")
    return load_checkpoint(model_class(), path, device)


def load_baseline(model_class: type | None = None, device: str | torch.device = "cpu",
                  loaders: tuple | None = None, retrain: bool = False,
                  path: str | os.PathLike[str] | None = None) -> nn.Module:
    """The trained baseline every notebook starts from, in eval mode on ``device``.

    By default the reference checkpoint shipped with the package (the same model on every
    machine, so one-shot pruning results match the notebooks' stored outputs). With
    ``retrain=True``, a ``path``, or a class without a reference, the model trained with
    ``train_baseline`` and cached in ``checkpoints/`` (a missing, damaged or wrong-shaped
    file is rebuilt, with a warning). Introduced in 01_model_definition (``Net``) and
    06_structured_pruning (``SmallCNN``).
    """
    from .data import get_loaders
    from .models import Net
    from .training import train_baseline
    model_class = model_class or Net
    if not retrain and path is None and reference_path(model_class) is not None:
        try:
            return load_reference(model_class, device).eval()
        except ValueError as err:
            warnings.warn(f"Training a baseline instead: {err}", stacklevel=2)
    flatten = model_class is Net
    path = path or checkpoint_dir() / f"{model_class.__name__.lower()}_baseline.pt"
    model = model_class()
    if os.path.exists(path) and not retrain:
        try:
            return load_checkpoint(model, path, device).eval()
        except ValueError as err:
            warnings.warn(f"Rebuilding the baseline: {err}", stacklevel=2)
    torch.manual_seed(0)
    model = model_class().to(device)
    train_loader, val_loader, _ = loaders or get_loaders(flatten=flatten, device=device)
    train_baseline(model, train_loader, val_loader)
    save_checkpoint({k: v.cpu() for k, v in model.state_dict().items()}, path)
    return model.eval()
