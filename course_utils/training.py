"""Training, the article's ``validate``, accuracy, and the cached baseline.

Introduced in 01_model_definition.
"""
import os
import tempfile
import warnings

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from .env import project_dir


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


def train_baseline(model, train_loader, val_loader, epochs=None, seed=0):
    """The recipe of every cached baseline: SGD with momentum and a cosine schedule.

    ``epochs`` defaults to ``baseline_epochs(model)``: 15 for ``Net``, 2 for ``SmallCNN``.
    """
    epochs = baseline_epochs(model) if epochs is None else epochs
    if int(epochs) < 1:
        raise ValueError(f"epochs must be a positive whole number, not {epochs!r}.")
    torch.manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    return train(model, train_loader, val_loader, epochs=epochs, optimizer=optimizer,
                 scheduler=scheduler, desc=f"baseline {type(model).__name__}")


def load_baseline(model_class=None, device="cpu", loaders=None, retrain=False, path=None):
    """The trained baseline: loaded from ``checkpoints/`` or trained and saved when missing.

    A missing, damaged or wrong-shaped checkpoint is rebuilt (with a warning), training
    ``baseline_epochs(model_class)`` epochs. Returns the model on ``device`` in eval mode.
    Introduced in 01_model_definition (``Net``) and 06_structured_pruning (``SmallCNN``).
    """
    from .data import get_loaders
    from .models import Net
    model_class = model_class or Net
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
