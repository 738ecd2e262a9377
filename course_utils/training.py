"""Training loops and the article's ``validate``: train, validate, predict, accuracy.

Introduced in 01_model_definition (``validate`` is taught in 03_validation). Saving and loading
models lives in ``checkpoints``.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from .env import course_seed

__all__ = [
    "validate",
    "predict",
    "accuracy",
    "train",
    "fine_tune",
    "BASELINE_EPOCHS",
    "BASELINE_EPOCHS_BY_MODEL",
    "baseline_epochs",
    "train_baseline",
]

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]
"""Anything that yields ``(images, labels)`` batches: a ``TensorLoader`` or a ``DataLoader``."""


# Written out in a notebook: keep this copy identical to it.
# fmt: off
def validate(model: nn.Module, val_loader, criterion: nn.Module) -> float:
    """The article's validation loop: the average loss over the batches of ``val_loader``."""
    model.eval()
    validation_loss = 0.0
    with torch.no_grad():
        for images, labels in val_loader:
            outputs = model(images)
            loss = criterion(outputs, labels)
            validation_loss += loss.item()
    return validation_loss / len(val_loader)


# fmt: on


@torch.no_grad()
def predict(model: nn.Module, loader: Batches) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted classes and true labels for every example of ``loader`` (two tensors)."""
    model.eval()
    preds, labels = [], []
    for images, target in loader:
        preds.append(model(images).argmax(dim=1))
        labels.append(target)
    return torch.cat(preds), torch.cat(labels)


def accuracy(model: nn.Module, loader: Batches) -> float:
    """Accuracy in percent of ``model`` on every example of ``loader``."""
    preds, labels = predict(model, loader)
    return 100.0 * (preds == labels).float().mean().item()


def train(
    model: nn.Module,
    train_loader: Batches,
    val_loader: Batches | None = None,
    epochs: int = 10,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 0.01,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    criterion: nn.Module | None = None,
    desc: str = "training",
    on_epoch_end: Callable[[int], None] | None = None,
) -> dict[str, list[float]]:
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
            bar.set_postfix(
                loss=f"{history['train_loss'][-1]:.3f}", val_acc=f"{history['val_acc'][-1]:.2f}%"
            )
    return history


def fine_tune(
    model: nn.Module,
    train_loader: Batches,
    epochs: int = 1,
    lr: float = 0.01,
    weight_decay: float = 0.0,
    cosine: bool = False,
    seed: int | None = None,
    desc: str = "fine-tuning",
) -> nn.Module:
    """Fine-tune ``model`` in place with the article's loop (``train``), SGD with momentum 0.9.

    ``cosine=True`` adds a cosine learning-rate schedule over the ``epochs``; ``seed`` seeds
    torch first (else the run continues the notebook's random stream). Returns ``model``.
    Used from 05_global_pruning on.
    """
    if seed is not None:
        torch.manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs) if cosine else None
    )
    train(model, train_loader, epochs=epochs, optimizer=optimizer, scheduler=scheduler, desc=desc)
    return model


BASELINE_EPOCHS = 15
"""Epochs of a baseline whose class is not listed in ``BASELINE_EPOCHS_BY_MODEL``."""

BASELINE_EPOCHS_BY_MODEL = {"Net": 15, "SmallCNN": 2, "SmallResNet": 3}
"""Epochs per model class: the CNN's epoch costs ten of the MLP's, two are enough for 06;
the ResNet of 08 gets three."""


def baseline_epochs(model_or_class: nn.Module | type) -> int:
    """How many epochs ``train_baseline`` trains this model (or model class) for."""
    cls = model_or_class if isinstance(model_or_class, type) else type(model_or_class)
    return BASELINE_EPOCHS_BY_MODEL.get(cls.__name__, BASELINE_EPOCHS)


def train_baseline(
    model: nn.Module,
    train_loader: Batches,
    val_loader: Batches,
    epochs: int | None = None,
    seed: int | None = None,
) -> dict[str, list[float]]:
    """The recipe of every baseline: SGD with momentum and a cosine schedule.

    ``epochs`` defaults to ``baseline_epochs(model)``: 15 for ``Net``, 2 for ``SmallCNN``, 3 for
    ``SmallResNet``; ``seed`` to ``course_seed()``.
    """
    seed = course_seed() if seed is None else seed
    epochs = baseline_epochs(model) if epochs is None else epochs
    if int(epochs) < 1:
        raise ValueError(f"epochs must be a positive whole number, not {epochs!r}.")
    torch.manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    return train(
        model,
        train_loader,
        val_loader,
        epochs=epochs,
        optimizer=optimizer,
        scheduler=scheduler,
        desc=f"baseline {type(model).__name__}",
    )
