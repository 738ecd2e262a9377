"""Training, the article's ``validate``, accuracy, checkpoints and the reference baselines.

Introduced in 01_model_definition.
"""
import hashlib
import os
import tempfile
import warnings
from pathlib import Path

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from .env import course_seed, project_dir


def validate(model, val_loader, criterion):
    """The article's validation loop: the average loss over the batches of ``val_loader``."""
    model.eval()
    validation_loss = 0.0
    with torch.no_grad():
        for images, labels in val_loader:
            outputs = model(images)
            loss = criterion(outputs, labels)
            validation_loss += loss.item()
    return validation_loss / len(val_loader)


@torch.no_grad()
def predict(model, loader):
    """Predicted classes and true labels for every example of ``loader`` (two tensors)."""
    model.eval()
    preds, labels = [], []
    for images, target in loader:
        preds.append(model(images).argmax(dim=1))
        labels.append(target)
    return torch.cat(preds), torch.cat(labels)


def accuracy(model, loader):
    """Accuracy in percent of ``model`` on every example of ``loader``."""
    preds, labels = predict(model, loader)
    return 100.0 * (preds == labels).float().mean().item()


def train(model, train_loader, val_loader=None, epochs=10, optimizer=None, lr=0.01,
          scheduler=None, criterion=None, desc="training", on_epoch_end=None):
    """Train for ``epochs`` with a progress bar; return the history as a dict of lists.

    The inner loop is the article's fine-tuning loop. Default optimizer: the article's
    ``SGD(lr=0.01)``; pass your own ``optimizer`` (and ``scheduler``) to change it.
    ``on_epoch_end(epoch)`` runs after each epoch (for example, a pruning step).
    """
    criterion = criterion or nn.CrossEntropyLoss()
    optimizer = optimizer or torch.optim.SGD(model.parameters(), lr=lr)
    history = {"epoch": [], "train_loss": [], "val_loss": [], "val_acc": []}
    bar = tqdm(range(epochs), desc=desc, unit="epoch")
    for epoch in bar:
        model.train()
        running_loss = 0.0
        for images, labels in train_loader:
            optimizer.zero_grad()
            outputs = model(images)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        if scheduler is not None:
            scheduler.step()
        if on_epoch_end is not None:
            on_epoch_end(epoch)
        history["epoch"].append(epoch + 1)
        history["train_loss"].append(running_loss / len(train_loader))
        if val_loader is not None:
            history["val_loss"].append(validate(model, val_loader, criterion))
            history["val_acc"].append(accuracy(model, val_loader))
            bar.set_postfix(loss=f"{history['train_loss'][-1]:.3f}",
                            val_acc=f"{history['val_acc'][-1]:.2f}%")
    return history


def checkpoint_dir():
    """The course's ``checkpoints/`` folder (created when first needed)."""
    path = project_dir() / "checkpoints"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_checkpoint(obj, path):
    """``torch.save`` through a temporary file and an atomic rename: never half-written."""
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_checkpoint(model, path, device="cpu"):
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


BASELINE_EPOCHS = 15
"""Epochs of a baseline whose class is not listed in ``BASELINE_EPOCHS_BY_MODEL``."""

BASELINE_EPOCHS_BY_MODEL = {"Net": 15, "SmallCNN": 2, "SmallResNet": 3}
"""Epochs per model class: the CNN's epoch costs ten of the MLP's, two are enough for 06;
the ResNet of 08 gets three."""


def baseline_epochs(model_or_class):
    """How many epochs ``train_baseline`` trains this model (or model class) for."""
    cls = model_or_class if isinstance(model_or_class, type) else type(model_or_class)
    return BASELINE_EPOCHS_BY_MODEL.get(cls.__name__, BASELINE_EPOCHS)


def train_baseline(model, train_loader, val_loader, epochs=None, seed=None):
    """The recipe of every baseline: SGD with momentum and a cosine schedule.

    ``epochs`` defaults to ``baseline_epochs(model)``: 15 for ``Net``, 2 for ``SmallCNN``, 3 for
    ``SmallResNet``;
    ``seed`` to ``course_seed()``.
    """
    seed = course_seed() if seed is None else seed
    epochs = baseline_epochs(model) if epochs is None else epochs
    if int(epochs) < 1:
        raise ValueError(f"epochs must be a positive whole number, not {epochs!r}.")
    torch.manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    return train(model, train_loader, val_loader, epochs=epochs, optimizer=optimizer,
                 scheduler=scheduler, desc=f"baseline {type(model).__name__}")


REFERENCE_DIR = Path(__file__).with_name("baselines")
"""The reference baselines shipped with the package (``tools/train_reference_baselines.py``)."""


def reference_path(model_class):
    """The shipped reference checkpoint of ``model_class``, or None when none is shipped."""
    path = REFERENCE_DIR / f"{model_class.__name__.lower()}_baseline.pt"
    return path if path.name in reference_sha256() else None


def reference_sha256():
    """``{file name: SHA-256}`` of the reference checkpoints, read from ``baselines/SHA256SUMS``."""
    sums = REFERENCE_DIR / "SHA256SUMS"
    if not sums.is_file():
        return {}
    pairs = (line.split() for line in sums.read_text().splitlines() if line.strip())
    return {name: digest for digest, name in pairs}


def load_reference(model_class, device="cpu"):
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


def load_baseline(model_class=None, device="cpu", loaders=None, retrain=False, path=None):
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
    model_class = model_class or Net
    if not retrain and path is None and reference_path(model_class) is not None:
        try:
            return load_reference(model_class, device).eval()
        except ValueError as err:
            warnings.warn(f"Training a baseline instead: {err}")
    flatten = model_class is Net
    path = path or checkpoint_dir() / f"{model_class.__name__.lower()}_baseline.pt"
    model = model_class()
    if os.path.exists(path) and not retrain:
        try:
            return load_checkpoint(model, path, device).eval()
        except ValueError as err:
            warnings.warn(f"Rebuilding the baseline: {err}")
    torch.manual_seed(0)
    model = model_class().to(device)
    train_loader, val_loader, _ = loaders or get_loaders(flatten=flatten, device=device)
    train_baseline(model, train_loader, val_loader)
    save_checkpoint({k: v.cpu() for k, v in model.state_dict().items()}, path)
    return model.eval()
