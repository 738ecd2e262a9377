"""The baselines every notebook starts from: the shipped reference files, or a trained fall-back.

The reference baselines ship with the package in ``baselines/`` (made by
``python -m tools.train_reference_baselines``, verified by ``baselines/SHA256SUMS``):
``load_baseline`` loads them. Without a valid reference it trains one (minutes) and caches it in
``checkpoints/``. The file I/O (atomic writes, checked loads) is ``course_utils.checkpoints``'s.
Introduced in 01_model_definition.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from . import training
from .checkpoints import checkpoint_dir, load_checkpoint, save_checkpoint
from .data import get_loaders
from .models import Net

__all__ = ["REFERENCE_DIR", "reference_path", "reference_sha256", "load_reference", "load_baseline"]

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
        raise ValueError(
            f"the reference checkpoint {path} is missing or damaged (SHA-256 "
            f"{digest[:12]}...). Reinstall the course (pip install -e .) or restore "
            f"it with git checkout -- {path.parent.name}/{path.name}."
        )
    return load_checkpoint(model_class(), path, device)


def load_baseline(
    model_class: type | None = None,
    device: str | torch.device = "cpu",
    loaders: tuple | None = None,
    retrain: bool = False,
    path: str | os.PathLike[str] | None = None,
) -> nn.Module:
    """The trained baseline every notebook starts from, in eval mode on ``device``; may train.

    By default the reference checkpoint shipped with the package (the same model on every
    machine, so one-shot pruning results match the notebooks' stored outputs): a load, no
    training. With ``retrain=True``, a ``path``, or a class without a (valid) reference, the
    model trained with ``train_baseline`` and cached in ``checkpoints/``: when that file is
    missing, damaged or wrong-shaped, this **trains for minutes** (a printed line says so, and a
    warning says why). Introduced in 01_model_definition (``Net``) and 06_structured_pruning
    (``SmallCNN``).
    """
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
    print(
        f"Training a {model_class.__name__} baseline with train_baseline "
        f"({training.baseline_epochs(model_class)} epochs: minutes on a CPU); it is saved to "
        f"{path} for next time.",
        flush=True,
    )
    torch.manual_seed(0)
    model = model_class().to(device)
    train_loader, val_loader, _ = loaders or get_loaders(flatten=flatten, device=device)
    training.train_baseline(model, train_loader, val_loader)
    save_checkpoint({k: v.cpu() for k, v in model.state_dict().items()}, path)
    return model.eval()
