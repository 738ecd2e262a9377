"""Interactive figures built from ipywidgets (7.7 and 8) and the inline matplotlib backend.

Introduced in 03_validation. No ipympl needed: each change of a control redraws a small
static figure inside an ``Output`` widget (``ipywidgets.interactive_output``).
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch.nn as nn
from IPython.display import display

from .plots import plot_weight_masks
from .training import accuracy

__all__ = ["SparsityExplorer"]

METHODS = (("L1 (magnitude)", "l1"), ("random", "random"))


class SparsityExplorer(widgets.VBox):
    """A sparsity slider and a method choice that re-prune a copy and show accuracy and masks.

    ``prune_fn(model, amount, method)`` returns a pruned *copy* of ``model`` (the notebook
    writes it, so the pruning calls stay visible); ``amount`` is a fraction, ``method`` one
    of the values of ``methods``. Each change prints ``"<method>: validation accuracy at
    <s>% sparsity: <acc>%"`` and draws the ``fc1`` masks of a few neurons as 28x28 images.

    The controls are ``explorer.slider`` (sparsity in percent) and ``explorer.method``;
    ``explorer.result`` holds the last outcome (``sparsity``, ``method``, ``accuracy``,
    ``model``). The first result is computed when the explorer is created, so setting
    ``explorer.slider.value = 90`` in a later cell updates ``explorer.result`` even without
    a browser (under nbval). Introduced in 03_validation.
    """

    def __init__(
        self,
        prune_fn: Callable[[nn.Module, float, str], nn.Module],
        model: nn.Module,
        loader: Iterable,
        sparsity: int = 50,
        step: int = 5,
        max_sparsity: int = 95,
        methods: Sequence[tuple[str, str]] = METHODS,
        neurons: Sequence[int] = (0, 1, 2, 3, 4, 5),
        layer: str = "fc1",
    ) -> None:
        if not callable(prune_fn):
            raise TypeError(
                "prune_fn must be a function (model, amount, method) -> pruned copy, "
                f"not {type(prune_fn).__name__}."
            )
        whole = all(isinstance(v, int) for v in (sparsity, step, max_sparsity))
        if not whole or not 0 <= sparsity <= max_sparsity < 100 or max_sparsity < 1:
            raise ValueError(
                "sparsity, step and max_sparsity are whole percentages (50 for "
                f"50%), with 0 <= sparsity <= max_sparsity < 100: got sparsity="
                f"{sparsity!r}, step={step!r}, max_sparsity={max_sparsity!r}."
            )
        if not hasattr(model, layer):
            raise ValueError(
                f"{type(model).__name__} has no layer {layer!r} to draw; pass "
                "layer= the name of a Linear layer with 784 inputs."
            )
        super().__init__()
        self.prune_fn, self.model, self.loader = prune_fn, model, loader
        self.neurons, self.layer = tuple(neurons), layer
        self.labels = {value: name for name, value in methods}
        self.result = None
        self.slider = widgets.IntSlider(
            value=sparsity,
            min=0,
            max=max_sparsity,
            step=step,
            description="sparsity (%)",
            continuous_update=False,
            style={"description_width": "initial"},
        )
        self.method = widgets.ToggleButtons(options=list(methods), description="method")
        output = widgets.interactive_output(
            self._update, {"sparsity": self.slider, "method": self.method}
        )
        self.children = [widgets.HBox([self.slider, self.method]), output]

    def _update(self, sparsity: int, method: str) -> None:
        pruned = self.prune_fn(self.model, sparsity / 100, method)
        acc = accuracy(pruned, self.loader)
        self.result = {
            "sparsity": sparsity / 100,
            "method": method,
            "accuracy": acc,
            "model": pruned,
        }
        print(f"{self.labels[method]}: validation accuracy at {sparsity}% sparsity: {acc:.2f}%")
        weight = getattr(pruned, self.layer).weight
        fig = plot_weight_masks(
            weight,
            rows=self.neurons,
            title=f"{self.layer} weights kept (black) at {sparsity}% sparsity",
        )
        display(fig)
        plt.close(fig)
