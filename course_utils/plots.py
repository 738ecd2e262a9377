"""Pictures the notebooks show: sample images, learning curves, mistakes, masks.

Thin wrappers around matplotlib; each returns the figure so a notebook can adjust it.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "show_images",
    "plot_history",
    "plot_confusion",
    "plot_weight_masks",
    "plot_weight_histogram",
    "plot_curves",
    "plot_per_class",
]


def _as_image(x):
    return x.detach().float().cpu().reshape(28, 28)


def show_images(
    images: torch.Tensor,
    labels: torch.Tensor,
    classes: Sequence[str],
    preds: torch.Tensor | None = None,
    ncols: int = 8,
    title: str | None = None,
) -> Figure:
    """A grid of 28x28 images captioned with their class (and prediction, when given)."""
    n = len(images)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.3 * ncols, 1.5 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(_as_image(images[i]), cmap="gray_r")
        truth = classes[int(labels[i])]
        if preds is None:
            ax.set_title(truth, fontsize=8)
        else:
            guess = classes[int(preds[i])]
            ax.set_title(
                f"{guess}\n(is {truth})",
                fontsize=7,
                color="tab:green" if guess == truth else "tab:red",
            )
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_history(history: dict[str, list[float]], title: str = "Learning curves") -> Figure:
    """Training loss, validation loss and validation accuracy per epoch (from ``train``)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.plot(history["epoch"], history["train_loss"], "o-", label="train loss")
    if history.get("val_loss"):
        left.plot(history["epoch"], history["val_loss"], "o-", label="validation loss")
        right.plot(history["epoch"], history["val_acc"], "o-", color="tab:green")
    left.set(xlabel="epoch", ylabel="cross-entropy")
    left.legend()
    right.set(xlabel="epoch", ylabel="validation accuracy (%)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion(
    preds: torch.Tensor,
    labels: torch.Tensor,
    classes: Sequence[str],
    title: str = "Confusion matrix (test set)",
) -> tuple[Figure, torch.Tensor]:
    """Confusion matrix as an image: rows are true classes, columns predictions."""
    k = len(classes)
    matrix = torch.zeros(k, k, dtype=torch.long)
    matrix.index_put_((labels.cpu(), preds.cpu()), torch.ones_like(labels.cpu()), accumulate=True)
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.imshow(matrix, cmap="Blues")
    ax.grid(False)
    for (i, j), v in zip(
        torch.cartesian_prod(torch.arange(k), torch.arange(k)).tolist(), matrix.flatten().tolist()
    ):
        ax.text(
            j,
            i,
            v,
            ha="center",
            va="center",
            fontsize=7,
            color="white" if v > matrix.max() / 2 else "black",
        )
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    return fig, matrix


def plot_weight_masks(
    weight: torch.Tensor, rows: Sequence[int] = (0, 1, 2, 3, 4, 5, 6, 7), title: str = "fc1 masks"
) -> Figure:
    """Rows of a 784-input weight (or mask) reshaped to 28x28: black is kept, white pruned."""
    fig, axes = plt.subplots(1, len(rows), figsize=(1.4 * len(rows), 1.7))
    for ax, r in zip(axes, rows):
        ax.imshow((_as_image(weight[r]) != 0).float(), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(f"neuron {r}", fontsize=8)
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_weight_histogram(
    weight: torch.Tensor,
    threshold: float | None = None,
    bins: int = 100,
    title: str = "|weight| of fc1",
) -> Figure:
    """Histogram of the absolute weights, with the pruning threshold as a red line (02)."""
    values = weight.detach().abs().flatten().float().cpu()
    fig, ax = plt.subplots(figsize=(6, 2.8))
    ax.hist(values.numpy(), bins=bins, color="tab:blue")
    if threshold is not None:
        pruned = 100 * float((values <= threshold).float().mean())
        ax.axvline(
            threshold,
            color="tab:red",
            lw=2,
            label=f"threshold {threshold:.4f}: {pruned:.0f}% of weights below",
        )
        ax.legend(fontsize=8)
    ax.set(xlabel="|weight|", ylabel="number of weights", title=title)
    fig.tight_layout()
    return fig


def plot_curves(
    curves: dict[str, tuple[Sequence[float], Sequence[float]]],
    reference: float | None = None,
    xlabel: str = "sparsity (%)",
    ylabel: str = "validation accuracy (%)",
    title: str | None = None,
    ax: Axes | None = None,
    marker: str = "o-",
) -> Figure:
    """Several curves on one axis: ``{label: (xs, ys)}``, optionally a dashed reference line.

    Used for accuracy against sparsity (03), layer sensitivity (03) and recovery curves (04).
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.2))
    for label, (xs, ys) in curves.items():
        ax.plot(list(xs), list(ys), marker, label=label, markersize=4)
    if reference is not None:
        ax.axhline(reference, color="gray", ls="--", lw=1, label="dense model")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax.figure


def plot_per_class(
    per_class: dict[str, Sequence[float]],
    classes: Sequence[str],
    title: str = "Per-class accuracy (test set)",
) -> Figure:
    """Grouped bars of per-class accuracy: ``{model label: 10 accuracies in %}`` (03)."""
    fig, ax = plt.subplots(figsize=(8, 3))
    width = 0.8 / len(per_class)
    for i, (label, values) in enumerate(per_class.items()):
        xs = [k + (i - (len(per_class) - 1) / 2) * width for k in range(len(classes))]
        ax.bar(xs, [float(v) for v in values], width=width, label=label)
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right", fontsize=8)
    ax.set(ylabel="accuracy (%)", title=title, ylim=(0, 105))
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig
