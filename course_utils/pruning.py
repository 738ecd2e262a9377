"""Small helpers around ``torch.nn.utils.prune``: which tensors to prune, how sparse they are.

The pruning calls themselves stay in the notebooks. Introduced in 02_l1_unstructured_pruning.
"""
import torch.nn as nn


def prunable_weights(model, layer_types=(nn.Linear, nn.Conv2d)):
    """The ``(module, 'weight')`` pairs that ``prune.global_unstructured`` expects."""
    return [(module, "weight") for module in model.modules() if isinstance(module, layer_types)]


def sparsity(tensor):
    """Fraction of exact zeros in a tensor (0.0 to 1.0)."""
    return float((tensor == 0).sum()) / tensor.numel()


def sparsity_report(model, layer_types=(nn.Linear, nn.Conv2d), quiet=False):
    """Per-layer and total sparsity of the weights; prints a table, returns the numbers.

    Returns ``{layer name: (zeros, total)}`` with a ``"total"`` entry. Reads ``weight``, so
    it sees the masks of ``torch.nn.utils.prune`` as well as zeros made permanent.
    """
    rows = {}
    for name, module in model.named_modules():
        if isinstance(module, layer_types):
            weight = module.weight
            rows[name] = (int((weight == 0).sum()), weight.numel())
    rows["total"] = (sum(z for z, _ in rows.values()), sum(n for _, n in rows.values()))
    if not quiet:
        width = max(len(name) for name in rows)
        for name, (zeros, total) in rows.items():
            print(f"{name:<{width}}  {zeros:>7,} / {total:>7,} zeros  ({100 * zeros / total:6.2f}%)")
    return rows


def amount_for_target(current, target):
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


def cubic_sparsity(step, n_steps, final, initial=0.0):
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
