"""Structured-pruning surgery: rebuild smaller layers without the pruned neurons or channels.

``torch.nn.utils.prune.ln_structured`` only *masks* whole rows (neurons) or filters
(channels); the tensors keep their shape, so the model is no smaller and no faster. These
helpers carry the pruning through: they build new ``nn.Linear`` / ``nn.Conv2d`` /
``nn.BatchNorm2d`` layers holding only the kept units, and drop the matching input columns
(or input channels) of the next layer. Introduced in 06_structured_pruning; used by 07.

A removed unit whose weights are zero still outputs a constant, ``activation(bias)``
(after BatchNorm, ``activation(BN(bias))``). The helpers fold that constant into the next
layer's bias, so the smaller model computes exactly what the masked model computed (in eval
mode). The one exception is a next ``Conv2d`` with zero padding: its border pixels see the
padding instead of the constant, so mask the BatchNorm scale and shift too (the channel then
outputs exactly zero), as notebook 06 does.

Only plain chains of layers are handled. Skip connections, concatenations and shared layers
need a dependency graph: use Torch-Pruning (https://github.com/VainF/Torch-Pruning).

    small = remove_pruned_units(masked_model)     # Net, SmallCNN or any plain chain
    keep = kept_indices(model.fc1.weight_mask)    # which neurons survive
    fc1, fc2 = shrink_linear_pair(model.fc1, model.fc2, keep)
    conv, bn, nxt = shrink_conv_block(conv, bn, next_layer, keep)
"""
import copy

import torch
import torch.nn as nn

__all__ = ["kept_indices", "shrink_linear_pair", "shrink_conv_block", "chain_plan",
           "remove_pruned_units"]


def _current(module, name):
    """The tensor ``module`` uses for ``name``, pruning masks applied (None if absent).

    For a module pruned with ``torch.nn.utils.prune`` this is ``name_orig * name_mask``,
    computed afresh (the cached ``module.weight`` can be one optimizer step old).
    """
    if hasattr(module, name + "_orig") and hasattr(module, name + "_mask"):
        return getattr(module, name + "_orig") * getattr(module, name + "_mask")
    return getattr(module, name, None)


def kept_indices(tensor, dim=0):
    """Indices along ``dim`` of the slices of ``tensor`` that hold at least one non-zero.

    Pass a weight (``model.fc1.weight``) or a pruning mask (``model.fc1.weight_mask``);
    ``dim=0`` gives the surviving neurons of a Linear layer or filters of a Conv2d.
    Introduced in 06_structured_pruning.
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"kept_indices needs a tensor (a weight or a mask), not {type(tensor).__name__}.")
    if tensor.dim() == 0:
        raise ValueError("kept_indices needs a tensor with at least one dimension.")
    dim = dim % tensor.dim()
    other = [d for d in range(tensor.dim()) if d != dim]
    alive = (tensor != 0).any(dim=tuple(other)) if other else tensor != 0
    keep = alive.nonzero().flatten()
    if keep.numel() == 0:
        raise ValueError(f"Every slice along dim {dim} is zero: nothing would be left. "
                         "Prune a smaller amount (keep at least one neuron or channel).")
    return keep


def _check_keep(keep, size, what):
    keep = torch.as_tensor(keep, dtype=torch.long).flatten().cpu()
    if keep.numel() == 0:
        raise ValueError(f"keep is empty: {what} needs at least one unit left.")
    if int(keep.min()) < 0 or int(keep.max()) >= size:
        raise ValueError(f"keep holds indices outside 0..{size - 1} (the units of {what}).")
    if len(torch.unique(keep)) != keep.numel():
        raise ValueError("keep holds the same index twice; pass each kept unit once.")
    return torch.sort(keep).values


def _next_input_columns(next_layer, keep, channels):
    """Which input slices of ``next_layer`` belong to the kept units, and its layout."""
    if isinstance(next_layer, nn.Linear):
        if next_layer.in_features % channels:
            raise ValueError(f"next layer has {next_layer.in_features} inputs, not a multiple of "
                             f"the {channels} units being pruned: is it really the next layer?")
        per = next_layer.in_features // channels  # >1 when a Flatten of CxHxW sits in between
        cols = (keep[:, None] * per + torch.arange(per)).flatten()
        return cols, per
    if isinstance(next_layer, nn.Conv2d):
        if next_layer.groups != 1:
            raise NotImplementedError("grouped or depthwise convolutions need a dependency graph: "
                                      "use Torch-Pruning (torch_pruning.DependencyGraph).")
        if next_layer.in_channels != channels:
            raise ValueError(f"next Conv2d has {next_layer.in_channels} input channels but the "
                             f"pruned layer has {channels} outputs: is it really the next layer?")
        return keep, None
    raise TypeError(f"the next layer must be nn.Linear or nn.Conv2d, not {type(next_layer).__name__}.")


@torch.no_grad()
def _shrink_next(next_layer, keep, channels, constant):
    """A copy of ``next_layer`` reading only the kept inputs; ``constant`` (per unit) folded in."""
    cols, per = _next_input_columns(next_layer, keep, channels)
    device = next_layer.weight.device
    cols = cols.to(device)
    weight = _current(next_layer, "weight")
    bias = _current(next_layer, "bias")
    removed = torch.ones(channels, dtype=torch.bool, device=device)
    removed[keep.to(device)] = False
    fold = None
    if constant is not None and bool((constant[removed] != 0).any()):
        const = torch.where(removed, constant, torch.zeros_like(constant))
        if isinstance(next_layer, nn.Linear):
            fold = weight @ const.repeat_interleave(per)
        else:  # a constant input channel adds W[:, c].sum() * value to every (interior) pixel
            fold = weight.sum(dim=(2, 3)) @ const
    if isinstance(next_layer, nn.Linear):
        new = nn.Linear(len(cols), next_layer.out_features, bias=bias is not None or fold is not None,
                        device=device, dtype=weight.dtype)
        new.weight.copy_(weight[:, cols])
    else:
        c = next_layer
        new = nn.Conv2d(len(cols), c.out_channels, c.kernel_size, stride=c.stride, padding=c.padding,
                        dilation=c.dilation, groups=1, bias=bias is not None or fold is not None,
                        padding_mode=c.padding_mode, device=device, dtype=weight.dtype)
        new.weight.copy_(weight[:, cols])
    if new.bias is not None:
        new.bias.copy_(bias if bias is not None else torch.zeros_like(new.bias))
        if fold is not None:
            new.bias.add_(fold)
    return new


def _apply(activation, x):
    return x if activation is None else activation(x)


@torch.no_grad()
def shrink_linear_pair(fc, next_fc, keep, activation=torch.relu):
    """New ``(fc, next_fc)`` keeping only the neurons ``keep`` of ``fc`` and their inputs in ``next_fc``.

    ``fc`` loses the rows (and biases) of the other neurons; ``next_fc`` loses the matching
    input columns. The constant ``activation(bias)`` each removed neuron still emitted is
    folded into ``next_fc``'s bias, so the result equals the masked model when the removed
    rows were zero. ``next_fc`` may also be a ``Conv2d``. Pruning masks are applied and
    the new layers are plain (no masks). Introduced in 06_structured_pruning.
    """
    if not isinstance(fc, nn.Linear):
        raise TypeError(f"shrink_linear_pair expects an nn.Linear first, not {type(fc).__name__}; "
                        "use shrink_conv_block for Conv2d layers.")
    keep = _check_keep(keep, fc.out_features, "fc")
    weight, bias = _current(fc, "weight"), _current(fc, "bias")
    device = weight.device
    new_fc = nn.Linear(fc.in_features, len(keep), bias=bias is not None, device=device, dtype=weight.dtype)
    new_fc.weight.copy_(weight[keep.to(device)])
    if bias is not None:
        new_fc.bias.copy_(bias[keep.to(device)])
    constant = _apply(activation, bias) if bias is not None else None
    new_next = _shrink_next(next_fc, keep, fc.out_features, constant)
    new_fc.train(fc.training)
    new_next.train(next_fc.training)
    return new_fc, new_next


@torch.no_grad()
def shrink_conv_block(conv, bn, next_layer, keep, activation=torch.relu):
    """New ``(conv, bn, next_layer)`` keeping only the output channels ``keep`` of ``conv``.

    ``conv`` loses the other filters, ``bn`` (or None) the matching scale, shift and running
    statistics, and ``next_layer`` (a Conv2d, or a Linear after pooling or flattening) the
    matching input channels. A removed channel's constant output, ``activation(bn(bias))``
    with the running statistics, is folded into ``next_layer``'s bias (exact after pooling
    and for a Linear; see the module notes for a padded Conv2d). Introduced in
    06_structured_pruning.
    """
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"shrink_conv_block expects an nn.Conv2d first, not {type(conv).__name__}.")
    if conv.groups != 1:
        raise NotImplementedError("grouped or depthwise convolutions need a dependency graph: "
                                  "use Torch-Pruning (torch_pruning.DependencyGraph).")
    if bn is not None and (not isinstance(bn, nn.BatchNorm2d) or bn.num_features != conv.out_channels):
        raise ValueError(f"bn must be the nn.BatchNorm2d({conv.out_channels}) that follows conv, "
                         f"or None; got {bn!r}.")
    keep = _check_keep(keep, conv.out_channels, "conv")
    weight, bias = _current(conv, "weight"), _current(conv, "bias")
    device = weight.device
    k = keep.to(device)
    new_conv = nn.Conv2d(conv.in_channels, len(keep), conv.kernel_size, stride=conv.stride,
                         padding=conv.padding, dilation=conv.dilation, bias=bias is not None,
                         padding_mode=conv.padding_mode, device=device, dtype=weight.dtype)
    new_conv.weight.copy_(weight[k])
    if bias is not None:
        new_conv.bias.copy_(bias[k])
    constant = bias if bias is not None else torch.zeros(conv.out_channels, device=device, dtype=weight.dtype)
    new_bn = None
    if bn is not None:
        new_bn = nn.BatchNorm2d(len(keep), eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
                                track_running_stats=bn.track_running_stats, device=device,
                                dtype=weight.dtype)
        gamma, beta = _current(bn, "weight"), _current(bn, "bias")
        if bn.affine:
            new_bn.weight.copy_(gamma[k])
            new_bn.bias.copy_(beta[k])
        if bn.track_running_stats:
            new_bn.running_mean.copy_(bn.running_mean[k])
            new_bn.running_var.copy_(bn.running_var[k])
            new_bn.num_batches_tracked.copy_(bn.num_batches_tracked)
            constant = (constant - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps)
        else:
            constant = torch.zeros_like(constant)  # batch statistics: a constant channel normalises to 0
        if bn.affine:
            constant = constant * gamma + beta
        new_bn.train(bn.training)
    new_conv.train(conv.training)
    new_next = _shrink_next(next_layer, keep, conv.out_channels, _apply(activation, constant))
    new_next.train(next_layer.training)
    return new_conv, new_bn, new_next


def chain_plan(model):
    """The groups ``remove_pruned_units`` shrinks in a plain chain of layers, by module name.

    Walks the Linear, Conv2d and BatchNorm2d modules in the order they were defined and
    pairs each weight layer (with the BatchNorm right after it, if any) with the next one:
    ``Net`` gives ``[("fc1", "fc2"), ("fc2", "fc3")]``. The last layer (the classes) is never
    shrunk. Only valid when ``forward`` runs the layers in that order, one after the other.
    Introduced in 06_structured_pruning.
    """
    layers = [(name, m) for name, m in model.named_modules()
              if isinstance(m, (nn.Linear, nn.Conv2d, nn.BatchNorm2d))]
    plan = []
    for i, (name, module) in enumerate(layers):
        if isinstance(module, nn.BatchNorm2d):
            continue
        rest = layers[i + 1:]
        bn = rest[0][0] if rest and isinstance(rest[0][1], nn.BatchNorm2d) else None
        following = [n for n, m in rest if not isinstance(m, nn.BatchNorm2d)]
        if not following:
            break
        plan.append((name, bn, following[0]) if bn else (name, following[0]))
    if not plan:
        raise ValueError(f"{type(model).__name__} has fewer than two Linear/Conv2d layers: nothing to shrink.")
    return plan


def _deepcopy(model):
    """``copy.deepcopy`` that also works on a model carrying pruning masks.

    A pruned module stores its masked ``weight`` as a computed (non-leaf) tensor, which
    ``deepcopy`` refuses; give the copy a detached clone of it instead.
    """
    memo = {}
    for module in model.modules():
        for name in list(vars(module)):
            value = vars(module)[name]
            if isinstance(value, torch.Tensor) and not value.is_leaf:
                memo[id(value)] = value.detach().clone()
    return copy.deepcopy(model, memo)


def _replace(model, name, new):
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def remove_pruned_units(model, plan=None, activation=torch.relu):
    """A smaller copy of ``model`` without the neurons/channels that structured pruning zeroed.

    For each group of ``plan`` (default: ``chain_plan(model)``), a 2-tuple
    ``(layer, next_layer)`` or a 3-tuple ``(conv, bn, next_layer)`` of module names, the
    kept units are the non-zero rows/filters of ``layer``'s (masked) weight; the layers are
    rebuilt with ``shrink_linear_pair`` / ``shrink_conv_block``. ``model`` itself is left
    unchanged; the copy has no pruning masks and computes the same outputs in eval mode.
    Introduced in 06_structured_pruning.
    """
    small = _deepcopy(model)
    for group in plan if plan is not None else chain_plan(model):
        if len(group) == 2:
            first, next_name = group
            bn_name = None
        elif len(group) == 3:
            first, bn_name, next_name = group
        else:
            raise ValueError(f"each plan group is (layer, next) or (conv, bn, next), not {group!r}.")
        layer, nxt = small.get_submodule(first), small.get_submodule(next_name)
        keep = kept_indices(_current(layer, "weight"), dim=0)
        if isinstance(layer, nn.Linear) and bn_name is None:
            new_layer, new_next = shrink_linear_pair(layer, nxt, keep, activation)
        else:
            bn = small.get_submodule(bn_name) if bn_name else None
            new_layer, new_bn, new_next = shrink_conv_block(layer, bn, nxt, keep, activation)
            if bn_name:
                _replace(small, bn_name, new_bn)
        _replace(small, first, new_layer)
        _replace(small, next_name, new_next)
    return small
