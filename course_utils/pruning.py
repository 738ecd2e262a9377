"""Small helpers around ``torch.nn.utils.prune``: what to prune, pruned copies, schedules.

The pruning calls stay visible in the notebooks: ``pruned_copy`` is written out in
02_l1_unstructured_pruning and ``make_permanent`` in 07_from_masks_to_savings (the notebook
cells are marked ``# saved in course_utils.pruning`` and a test keeps both copies the same).
Counting zeros lives in ``measure`` (``sparsity``, ``sparsity_report``).

What the course knows about a model pruned with masks lives here, once: which layers it prunes
(``PRUNABLE``), whether a model or state_dict still carries masks (``prune.is_pruned`` for a
model, ``masked_keys`` for a state_dict, ``require_permanent`` to refuse one), the weight a masked
layer really uses (``effective_weight``), a copy of a masked model (``masked_copy``), putting a
new layer in place by its dotted name (``replace_module``), and silencing the BatchNorm channels
of pruned filters (``silence_batchnorm``, written out in 06_structured_pruning).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn as nn
import torch.nn.utils.prune as prune

__all__ = [
    "PRUNABLE",
    "prunable_weights",
    "pruned_copy",
    "make_permanent",
    "masked_keys",
    "require_permanent",
    "effective_weight",
    "masked_copy",
    "replace_module",
    "silence_batchnorm",
    "amount_for_target",
    "cubic_sparsity",
]

PRUNABLE = (nn.Linear, nn.Conv2d)
"""The layer types the course prunes (``prunable_weights``, ``sparsity_report``, the surgery)."""

MASK_SUFFIXES = ("_orig", "_mask")
"""What ``torch.nn.utils.prune`` adds to a pruned tensor's name (``weight_orig``, ``_mask``)."""


def prunable_weights(
    model: nn.Module, layer_types: tuple[type, ...] = PRUNABLE
) -> list[tuple[nn.Module, str]]:
    """The ``(module, 'weight')`` pairs that ``prune.global_unstructured`` expects."""
    return [(module, "weight") for module in model.modules() if isinstance(module, layer_types)]


# Written out in a notebook: keep this copy identical to it.
# fmt: off
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


# fmt: on


# Written out in a notebook: keep this copy identical to it.
# fmt: off
def make_permanent(model: nn.Module) -> nn.Module:
    """prune.remove on every pruned Linear and Conv2d weight: the zeros stay, masks and hooks go."""
    for module, name in prunable_weights(model):
        if prune.is_pruned(module):
            prune.remove(module, name)
    return model


# fmt: on


def masked_keys(state_dict: dict[str, Any]) -> list[str]:
    """The entries of ``state_dict`` that pruning masks add (``fc1.weight_orig``, ``..._mask``).

    Empty once pruning is permanent (``prune.remove``, ``make_permanent``). For a model, ask
    ``prune.is_pruned(model)``.
    """
    return [key for key in state_dict if key.endswith(MASK_SUFFIXES)]


def require_permanent(state: nn.Module | dict[str, Any]) -> None:
    """Raise ``ValueError`` while a model (or state_dict) still carries pruning masks.

    For the helpers that need the zeros in the weights themselves (compact files, sparse kernels).
    """
    keys = masked_keys(state.state_dict() if isinstance(state, nn.Module) else state)
    if keys:
        raise ValueError(
            f"the model still carries pruning masks ({', '.join(keys[:4])}): call "
            "prune.remove(module, 'weight') on each pruned layer first "
            "(make_permanent), so that the zeros are in the weights themselves "
            "(or work on a copy)."
        )


def effective_weight(module: nn.Module, name: str = "weight") -> torch.Tensor | None:
    """The tensor ``module`` uses for ``name``, pruning masks applied (None if it has none).

    For a tensor pruned with ``torch.nn.utils.prune`` this is ``name_orig * name_mask``, computed
    afresh (the cached ``module.weight`` can be one optimizer step old).
    """
    if hasattr(module, name + "_orig") and hasattr(module, name + "_mask"):
        return getattr(module, name + "_orig") * getattr(module, name + "_mask")
    return getattr(module, name, None)


def masked_copy(model: nn.Module) -> nn.Module:
    """``copy.deepcopy`` that also works on a model pruned with masks (the copy keeps them).

    A pruned module stores its masked ``weight`` as a computed (non-leaf) tensor, which
    ``deepcopy`` refuses; the copy gets a detached clone of it instead (its next forward pass
    recomputes it from ``weight_orig`` and ``weight_mask``).
    """
    memo = {}
    for module in model.modules():
        for name in list(vars(module)):
            value = vars(module)[name]
            if isinstance(value, torch.Tensor) and not value.is_leaf:
                memo[id(value)] = value.detach().clone()
    return copy.deepcopy(model, memo)


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` in place of ``model``'s submodule ``name`` (dotted: ``"block1.conv2"``)."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def silence_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Mask the scale and shift of ``bn`` for the filters of ``conv`` that masks removed.

    Those channels then output exactly 0, whatever BatchNorm's statistics. Introduced in
    06_structured_pruning.
    """
    channel_mask = conv.weight_mask.flatten(1).amax(dim=1)  # 1 = filter kept, 0 = pruned
    prune.custom_from_mask(bn, name="weight", mask=channel_mask)  # BatchNorm's scale and shift
    prune.custom_from_mask(bn, name="bias", mask=channel_mask)


def amount_for_target(current: float, target: float) -> float:
    """The ``amount`` that takes a tensor from ``current`` to ``target`` sparsity.

    Pruning again removes a fraction of what *remains*: from 20% to 50% is
    ``(0.5 - 0.2) / (1 - 0.2) = 0.375``.
    """
    if not (0 <= current < 1 and 0 <= target < 1):
        raise ValueError(
            f"Sparsities are fractions in [0, 1): got current={current}, target={target}."
        )
    if target < current:
        raise ValueError(
            f"Pruning cannot lower sparsity from {current} to {target}; "
            "start again from the unpruned model instead."
        )
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
        raise ValueError(
            f"Sparsities are fractions in [0, 1) with initial <= final: got "
            f"initial={initial}, final={final}."
        )
    return final + (initial - final) * (1 - step / n_steps) ** 3
