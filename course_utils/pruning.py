"""Small helpers around ``torch.nn.utils.prune``: what to prune, pruned copies, schedules.

The pruning calls stay visible in the notebooks: ``pruned_copy`` is written out in
02_l1_unstructured_pruning and ``make_permanent`` in 07_from_masks_to_savings (the notebook
cells are marked ``# saved in course_utils.pruning`` and a test keeps both copies the same).
Counting zeros lives in ``measure`` (``sparsity``, ``sparsity_report``).
"""
from __future__ import annotations

import copy

import torch.nn as nn
import torch.nn.utils.prune as prune

__all__ = ["prunable_weights", "pruned_copy", "make_permanent", "amount_for_target",
           "cubic_sparsity"]


def prunable_weights(model: nn.Module,
                     layer_types: tuple[type, ...] = (nn.Linear,
                                                      nn.Conv2d)) -> list[tuple[nn.Module, str]]:
    """The ``(module, 'weight')`` pairs that ``prune.global_unstructured`` expects."""
    return [(module, "weight") for module in model.modules() if isinstance(module, layer_types)]


def pruned_copy(model: nn.Module, amount: float, method: str = "l1",
                layers: list[str] | None = None, globally: bool = False) -> nn.Module:
    """A copy of `model` with `amount` of its weights pruned by masks; `model` stays dense.

    method: "l1" prunes the smallest |weights|, "random" a random draw. layers: the names of
    the layers to prune (default: every Linear and Conv2d). globally=True ranks the weights of
    all those layers together, one threshold for all (notebook 05), instead of pruning the
    same fraction of each layer.
    """
    if method not in ("l1", "random"):
        raise ValueError(f"method must be 'l1' or 'random', not {method!r}.")
    pruned = copy.deepcopy(model)
    if layers is None:
        parameters_to_prune = prunable_weights(pruned)
    else:
        parameters_to_prune = [(pruned.get_submodule(name), "weight") for name in layers]
    if globally:
        how = prune.L1Unstructured if method == "l1" else prune.RandomUnstructured
        prune.global_unstructured(parameters_to_prune, pruning_method=how, amount=amount)
    else:
        for module, name in parameters_to_prune:
            if method == "l1":
                prune.l1_unstructured(module, name=name, amount=amount)
            else:
                prune.random_unstructured(module, name=name, amount=amount)
    return pruned


def make_permanent(model: nn.Module) -> nn.Module:
    """prune.remove on every pruned Linear and Conv2d weight: the zeros stay, masks and hooks go."""
    for module, name in prunable_weights(model):
        if prune.is_pruned(module):
            prune.remove(module, name)
    return model


def amount_for_target(current: float, target: float) -> float:
    """The ``amount`` that takes a tensor from ``current`` to ``target`` sparsity.

    Pruning again removes a fraction of what *remains*: from 20% to 50% is
    ``(0.5 - 0.2) / (1 - 0.2) = 0.375``.
    """
    if not (0 <= current < 1 and 0 <= target < 1):
        raise ValueError(f"Sparsities are fractions in [0, 1): got current={current}, "
                         f"target={target}.")
    if target < current:
        raise ValueError(f"Pruning cannot lower sparsity from {current} to {target}; "
                         "start again from the unpruned model instead.")
    return (target - current) / (1 - current)


def cubic_sparsity(step: int, n_steps: int, final: float, initial: float = 0.0) -> float:
    """Sparsity after ``step`` of ``n_steps`` pruning steps on the cubic schedule of Zhu & Gupta.

    ``s = final + (initial - final) * (1 - step / n_steps) ** 3`` (Zhu & Gupta 2017, "To prune,
    or not to prune"): big steps first, while many redundant weights remain, then ever smaller
    ones. Step 0 gives ``initial``, step ``n_steps`` gives ``final``. Introduced in 04_fine_tuning.
    """
    if int(n_steps) != n_steps or n_steps < 1:
        raise ValueError(f"n_steps must be a positive whole number, not {n_steps!r}.")
    if not 0 <= step <= n_steps:
        raise ValueError(f"step must lie between 0 and n_steps={n_steps}, not {step!r}.")
    if not (0 <= initial < 1 and 0 <= final < 1) or final < initial:
        raise ValueError(f"Sparsities are fractions in [0, 1) with initial <= final: got "
                         f"initial={initial}, final={final}.")
    return final + (initial - final) * (1 - step / n_steps) ** 3
