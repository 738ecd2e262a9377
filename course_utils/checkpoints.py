"""Model files: atomic writes and loads with clear errors (file I/O only).

Nothing here trains or knows a model class: the baselines every notebook starts from (the shipped
reference files, their SHA-256, the training fall-back) are ``course_utils.baseline``'s. Models
the course trains itself are cached in ``checkpoints/``. Introduced in 01_model_definition.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from .env import project_dir

__all__ = ["checkpoint_dir", "atomic_write", "save_checkpoint", "load_checkpoint"]


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


def load_checkpoint(
    model: nn.Module, path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> nn.Module:
    """Load a state_dict file into ``model``; a clear error if it does not fit.

    Uses ``torch.load(weights_only=True, map_location=device)``. Raises ``ValueError``
    when the file is damaged or was saved from another architecture.
    """
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:
        raise ValueError(
            f"{path} is not a readable checkpoint ({type(err).__name__}). "
            "Delete it and train again."
        ) from err
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    expected = model.state_dict()
    if not isinstance(state, dict) or set(state) != set(expected):
        got = sorted(state)[:4] if isinstance(state, dict) else type(state).__name__
        raise ValueError(
            f"{path} was saved from another architecture: its keys {got}... do not "
            f"match {type(model).__name__}'s {sorted(expected)[:4]}.... "
            "Load it into the model it came from, or delete it and train again."
        )
    wrong = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
        for k, v in state.items()
        if v.shape != expected[k].shape
    ]
    if wrong:
        raise ValueError(
            f"{path} does not fit {type(model).__name__}: "
            + "; ".join(wrong)
            + ". Delete it and train again, or build the model with those shapes."
        )
    model.load_state_dict(state)
    return model.to(device)
