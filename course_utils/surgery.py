"""Structured-pruning surgery: a smaller model without the pruned neurons or channels.

``torch.nn.utils.prune.ln_structured`` only *masks* whole rows (neurons) or filters
(channels); the tensors keep their shape, so the model is no smaller and no faster. Surgery
carries the pruning through, with two primitives named like Torch-Pruning's
``prune_conv_out_channels`` / ``prune_conv_in_channels`` (which take the indices to *remove*
and edit in place; ours take the indices to *keep* and return a new, mask-free layer):

    fc1 = keep_outputs(model.fc1, keep)   # Linear rows, Conv2d filters, BatchNorm2d channels
    fc2 = keep_inputs(model.fc2, keep)    # columns of a Linear, input channels of a Conv2d

``remove_pruned_units(masked_model, example_input)`` applies them to a whole plain chain of
Linear / Conv2d (+ BatchNorm2d) layers, and checks its own work: it traces the model on
``example_input`` and refuses anything that is not a plain chain (a skip connection, a
layer used twice, layers defined in another order than forward runs them), and it never
returns a model whose outputs differ from the masked one's. Skip connections,
concatenations and shared layers need a dependency graph: Torch-Pruning (notebook 08).

Introduced in 06_structured_pruning; 08_pruning_a_residual_network uses the primitives on
a residual block and shows where ``remove_pruned_units`` stops.
"""
from __future__ import annotations

import contextlib
import copy
from typing import Sequence

import torch
import torch.nn as nn

__all__ = ["SurgeryError", "kept_indices", "keep_outputs", "keep_inputs", "remove_pruned_units"]

TORCH_PRUNING_HINT = ("Prune coupled layers as one group with Torch-Pruning "
                      "(torch_pruning.DependencyGraph / tp.pruner.BasePruner; notebook 08).")


class SurgeryError(RuntimeError):
    """``remove_pruned_units`` refused a model, or could not reproduce its outputs."""


def _current(module, name):
    """The tensor ``module`` uses for ``name``, pruning masks applied (None if absent).

    For a module pruned with ``torch.nn.utils.prune`` this is ``name_orig * name_mask``,
    computed afresh (the cached ``module.weight`` can be one optimizer step old).
    """
    if hasattr(module, name + "_orig") and hasattr(module, name + "_mask"):
        return getattr(module, name + "_orig") * getattr(module, name + "_mask")
    return getattr(module, name, None)


def kept_indices(tensor: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Indices along ``dim`` of the slices of ``tensor`` that hold at least one non-zero.

    Pass a weight (``model.fc1.weight``) or a pruning mask (``model.fc1.weight_mask``);
    ``dim=0`` gives the surviving neurons of a Linear layer or filters of a Conv2d.
    Introduced in 06_structured_pruning.
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError("kept_indices needs a tensor (a weight or a mask), not "
                        f"{type(tensor).__name__}.")
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


def _check_idxs(idxs, size, what):
    idxs = torch.as_tensor(idxs, dtype=torch.long).flatten().cpu()
    if idxs.numel() == 0:
        raise ValueError(f"idxs is empty: the {what} needs at least one unit left.")
    if int(idxs.min()) < 0 or int(idxs.max()) >= size:
        raise ValueError(f"idxs holds indices outside 0..{size - 1} (the {what}).")
    if len(torch.unique(idxs)) != idxs.numel():
        raise ValueError("idxs holds the same index twice; pass each kept unit once.")
    return torch.sort(idxs).values


def _plain_conv(conv):
    if conv.groups != 1:
        raise SurgeryError(f"a grouped or depthwise Conv2d (groups={conv.groups}) ties its input "
                           "and output channels together. " + TORCH_PRUNING_HINT)


@torch.no_grad()
def _batchnorm(bn, idxs):
    ref = bn.running_mean if bn.running_mean is not None else _current(bn, "weight")
    if ref is None:
        raise SurgeryError("a BatchNorm2d without affine parameters or running statistics has "
                           "nothing to keep.")
    k = idxs.to(ref.device)
    new = nn.BatchNorm2d(len(idxs), eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
                         track_running_stats=bn.track_running_stats, device=ref.device,
                         dtype=ref.dtype)
    if bn.affine:
        new.weight.copy_(_current(bn, "weight")[k])
        new.bias.copy_(_current(bn, "bias")[k])
    if bn.track_running_stats:
        new.running_mean.copy_(bn.running_mean[k])
        new.running_var.copy_(bn.running_var[k])
        new.num_batches_tracked.copy_(bn.num_batches_tracked)
    return new.train(bn.training)


@torch.no_grad()
def keep_outputs(layer: nn.Module, idxs: Sequence[int] | torch.Tensor) -> nn.Module:
    """A new ``layer`` that keeps only the output units ``idxs`` (any order, each once).

    The rows (and biases) of an ``nn.Linear``, the filters of an ``nn.Conv2d``, the
    channels (scale, shift, running statistics) of an ``nn.BatchNorm2d``. Pruning masks are
    applied; the new layer is plain. Torch-Pruning's ``prune_conv_out_channels`` /
    ``prune_linear_out_channels`` do the same in place, given the indices to remove.
    Introduced in 06_structured_pruning.
    """
    if isinstance(layer, nn.BatchNorm2d):
        return _batchnorm(layer, _check_idxs(idxs, layer.num_features, "BatchNorm2d's channels"))
    weight, bias = _current(layer, "weight"), _current(layer, "bias")
    if isinstance(layer, nn.Linear):
        k = _check_idxs(idxs, layer.out_features, "Linear's outputs").to(weight.device)
        new = nn.Linear(layer.in_features, len(k), bias=bias is not None,
                        device=weight.device, dtype=weight.dtype)
    elif isinstance(layer, nn.Conv2d):
        _plain_conv(layer)
        k = _check_idxs(idxs, layer.out_channels, "Conv2d's output channels").to(weight.device)
        new = nn.Conv2d(layer.in_channels, len(k), layer.kernel_size, stride=layer.stride,
                        padding=layer.padding, dilation=layer.dilation, bias=bias is not None,
                        padding_mode=layer.padding_mode, device=weight.device, dtype=weight.dtype)
    else:
        raise TypeError("keep_outputs handles nn.Linear, nn.Conv2d and nn.BatchNorm2d, not "
                        f"{type(layer).__name__}.")
    new.weight.copy_(weight[k])
    if bias is not None:
        new.bias.copy_(bias[k])
    return new.train(layer.training)


@torch.no_grad()
def keep_inputs(layer: nn.Module, idxs: Sequence[int] | torch.Tensor) -> nn.Module:
    """A new ``layer`` that reads only the inputs ``idxs``: what the previous layer kept.

    The columns of an ``nn.Linear``, the input channels of an ``nn.Conv2d`` (a BatchNorm2d's
    inputs are its channels: same as ``keep_outputs``). The bias is unchanged: what the
    removed inputs contributed is simply dropped, which is exact when they were zero.
    Torch-Pruning's ``prune_conv_in_channels`` / ``prune_linear_in_channels`` do the same
    in place. Introduced in 06_structured_pruning.
    """
    if isinstance(layer, nn.BatchNorm2d):
        return keep_outputs(layer, idxs)
    weight, bias = _current(layer, "weight"), _current(layer, "bias")
    if isinstance(layer, nn.Linear):
        k = _check_idxs(idxs, layer.in_features, "Linear's inputs").to(weight.device)
        new = nn.Linear(len(k), layer.out_features, bias=bias is not None,
                        device=weight.device, dtype=weight.dtype)
    elif isinstance(layer, nn.Conv2d):
        _plain_conv(layer)
        k = _check_idxs(idxs, layer.in_channels, "Conv2d's input channels").to(weight.device)
        new = nn.Conv2d(len(k), layer.out_channels, layer.kernel_size, stride=layer.stride,
                        padding=layer.padding, dilation=layer.dilation, bias=bias is not None,
                        padding_mode=layer.padding_mode, device=weight.device, dtype=weight.dtype)
    else:
        raise TypeError("keep_inputs handles nn.Linear, nn.Conv2d and nn.BatchNorm2d, not "
                        f"{type(layer).__name__}.")
    new.weight.copy_(weight[:, k])
    if bias is not None:
        new.bias.copy_(bias)
    return new.train(layer.training)


# --- remove_pruned_units: trace, plan, shrink, verify ----------------------------------------

_WEIGHTED = (nn.Linear, nn.Conv2d)


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


def _has_own_state(module):
    return any(True for _ in module.parameters(recurse=False)) or \
        any(b is not None for b in module.buffers(recurse=False))


def _trace(model, example_input):
    """Run ``model`` (a copy: eval mode, autograd on) and record every call of a layer with state.

    Returns the call order, and per Linear/Conv2d/BatchNorm2d its input (a detached copy) and
    the autograd nodes of its input and output, the model output and the traced input.
    """
    calls, seen = [], {"input": {}, "in_fn": {}, "out_fn": {}}
    names = {module: name for name, module in model.named_modules()}

    def hook(module, args, output):
        name = names[module]
        calls.append(name)
        if isinstance(module, (*_WEIGHTED, nn.BatchNorm2d)) and isinstance(output, torch.Tensor):
            seen["input"][name] = args[0].detach().clone()
            seen["in_fn"][name] = args[0].grad_fn
            seen["out_fn"][name] = output.grad_fn  # now, before an in-place op replaces it

    handles = [m.register_forward_hook(hook) for m in model.modules() if _has_own_state(m)]
    x = example_input.detach().clone()
    if x.is_floating_point():
        x.requires_grad_(True)
    try:
        with torch.enable_grad():
            out = model.eval()(x)
    finally:
        for handle in handles:
            handle.remove()
    return calls, seen, out, x


def _depends_on(start, stop, forbidden, x):
    """What ``start``'s autograd graph reaches without passing through ``stop``, if forbidden.

    ``forbidden`` maps autograd nodes (other layers' outputs) to a description; reaching the
    model input ``x`` itself also counts. Returns the first description met, else None.
    """
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node is None or node in seen or node is stop:
            continue
        seen.add(node)
        if node in forbidden:
            return forbidden[node]
        if getattr(node, "variable", None) is x:
            return "the model input"
        todo.extend(fn for fn, _ in node.next_functions)
    return None


def _plan(model, example_input):
    """The chain's groups ``(layer, [layers between], next_layer)`` and the traced inputs.

    Raises ``SurgeryError`` for anything that is not a plain chain of known layers.
    """
    kind = type(model).__name__
    calls, seen, out, x = _trace(_deepcopy(model), example_input)
    defined = [name for name, m in model.named_modules() if _has_own_state(m)]
    for name in defined:
        module = model.get_submodule(name)
        if not isinstance(module, (*_WEIGHTED, nn.BatchNorm2d)):
            raise SurgeryError(f"{kind}.{name} is a {type(module).__name__}: remove_pruned_units "
                               "only knows nn.Linear, nn.Conv2d and nn.BatchNorm2d. "
                               + TORCH_PRUNING_HINT)
        if isinstance(module, nn.Conv2d):
            _plain_conv(module)
        count = calls.count(name)
        if count > 1:
            raise SurgeryError(f"{kind}.{name} runs {count} times in one forward pass (a shared "
                               "layer): removing its units changes every place that uses it, and "
                               "this helper only follows plain chains. " + TORCH_PRUNING_HINT)
        if count == 0:
            raise SurgeryError(f"{kind}.{name} never runs on example_input: is it the right input "
                               "for this model? remove_pruned_units only shrinks layers it can "
                               "check.")
    if calls != defined:
        i = next(i for i, (a, b) in enumerate(zip(calls, defined)) if a != b)
        raise SurgeryError(f"{kind} defines {defined[i]} before {calls[i]}, but forward runs "
                           f"{calls[i]} first. remove_pruned_units pairs each layer with the next "
                           "one defined, so the layers must be defined in the order forward runs "
                           "them (as in an nn.Sequential). Reorder the definitions, or: "
                           + TORCH_PRUNING_HINT)
    weighted = [n for n in calls if isinstance(model.get_submodule(n), _WEIGHTED)]
    if len(weighted) < 2:
        raise SurgeryError(f"{kind} has fewer than two Linear/Conv2d layers: nothing to shrink.")
    if not isinstance(out, torch.Tensor):
        raise SurgeryError(f"{kind} returns a {type(out).__name__}; remove_pruned_units needs a "
                           "model that returns one tensor.")
    outputs = {seen["out_fn"][n]: f"the output of {n}" for n in weighted}
    plan = []
    for producer, consumer in zip(weighted, weighted[1:] + [None]):
        start = out.grad_fn if consumer is None else seen["in_fn"][consumer]
        stop = seen["out_fn"][producer]
        others = {node: what for node, what in outputs.items()
                  if node is not stop and node is not None}
        bad = _depends_on(start, stop, others, x)
        if bad is not None:
            where = "the model's output" if consumer is None else f"the input of {consumer}"
            raise SurgeryError(f"{kind} is not a plain chain: {where} depends on {bad}, not only "
                               f"on {producer}: a skip connection (as in a residual block) or a "
                               "branch. The channels on both sides are tied together and must go "
                               "as one group, which remove_pruned_units cannot do. "
                               + TORCH_PRUNING_HINT)
        if consumer is not None:
            between = calls[calls.index(producer) + 1:calls.index(consumer)]
            plan.append((producer, between, consumer))
    return plan, seen["input"]


def _removed_value(producer, consumer, layer, x, keep, channels):
    """What the removed units send to ``layer`` (its input ``x``): one constant per removed input.

    Returns ``(kept input indices, removed input indices, constants)``; raises
    ``SurgeryError`` when a removed unit's output is not constant, or when it is a non-zero
    constant that a zero-padded Conv2d cannot absorb into its bias.
    """
    removed = torch.ones(channels, dtype=torch.bool)
    removed[keep] = False
    if isinstance(layer, nn.Linear):
        if layer.in_features % channels:
            raise SurgeryError(f"{consumer} has {layer.in_features} inputs, not a multiple of the "
                               f"{channels} units of {producer}.")
        per = layer.in_features // channels  # > 1 when a Flatten of C x H x W sits in between
        cols = (torch.arange(channels)[:, None] * per + torch.arange(per)).flatten()
        kept_cols, removed_cols = cols.reshape(channels, per)[~removed].flatten(), \
            cols.reshape(channels, per)[removed].flatten()
        # (examples, removed inputs)
        slices = x.reshape(-1, layer.in_features)[:, removed_cols.to(x.device)]
    else:
        if layer.in_channels != channels:
            raise SurgeryError(f"{consumer} reads {layer.in_channels} channels but {producer} "
                               f"makes {channels}: something between them changes the channels.")
        kept_cols, removed_cols = (~removed).nonzero().flatten(), removed.nonzero().flatten()
        # (examples x pixels, removed)
        slices = x[:, removed_cols.to(x.device)].transpose(0, 1).flatten(1).T
    if removed_cols.numel() == 0:
        return kept_cols, removed_cols, None
    low, high = slices.amin(dim=0), slices.amax(dim=0)
    if bool(((high - low) > 1e-5 * (1 + slices.abs().amax(dim=0))).any()):
        raise SurgeryError(f"the pruned units of {producer} do not output a constant on "
                           f"example_input (as seen by {consumer}): something between the layers "
                           "moves or mixes units (a permutation, a reshape), or feeds them. "
                           "remove_pruned_units only removes units whose whole weight row or "
                           "filter is zero, in a plain chain. " + TORCH_PRUNING_HINT)
    constants = slices.mean(dim=0)
    if isinstance(layer,
                  nn.Conv2d) and bool((constants != 0).any()) and layer.padding_mode == "zeros" \
            and any(p != 0 for p in _padding(layer)):
        n = int((constants != 0).sum())
        raise SurgeryError(
            f"{n} pruned channel(s) of {producer} still output a non-zero constant (the BatchNorm "
            f"shift, a bias, or the activation of 0), and {consumer} pads its input with zeros: at "
            "the image border it sees the padding instead of that constant, so no bias can absorb "
            "it and the smaller model would differ. Make the pruned channels output exactly zero "
            "first, as notebook 06 does: mask the BatchNorm scale and shift of the same channels, "
            "`prune.custom_from_mask(bn, 'weight', mask); prune.custom_from_mask(bn, 'bias', "
            "mask)` with `mask = conv.weight_mask.flatten(1).any(dim=1).float()` (or the conv's "
            "bias when no BatchNorm follows). Fine-tune after that if accuracy drops.")
    return kept_cols, removed_cols, constants


def _padding(conv):
    if isinstance(conv.padding, str):
        return (0,) if conv.padding == "valid" else (1,)
    return conv.padding


@torch.no_grad()
def _fold(new_layer, old_layer, removed_cols, constants):
    """Add to ``new_layer``'s bias what the removed inputs (constant ``constants``) contributed."""
    if constants is None or not bool((constants != 0).any()):
        return new_layer
    weight = _current(old_layer, "weight")
    cols = removed_cols.to(weight.device)
    constants = constants.to(weight.dtype)
    if isinstance(old_layer, nn.Linear):
        extra = weight[:, cols] @ constants
    else:  # a constant input channel adds sum(W[:, c]) * value to every pixel (no zero padding)
        extra = weight[:, cols].sum(dim=(2, 3)) @ constants
    if new_layer.bias is None:
        new_layer.bias = nn.Parameter(torch.zeros_like(extra))
    new_layer.bias.add_(extra)
    return new_layer


def _unit_dim(module, tensor):
    return tensor.dim() - 1 if isinstance(module, nn.Linear) else 1


@torch.no_grad()
def _verify(kind, masked, small, example_input, keeps, rtol, atol):
    """Raise ``SurgeryError`` naming the first layer whose (kept) output differs."""
    def record(model):
        got, handles = {}, []
        for name, module in model.named_modules():
            if isinstance(module, (*_WEIGHTED, nn.BatchNorm2d)):
                handles.append(module.register_forward_hook(
                    lambda m, a, o, name=name: got.setdefault(name, o.detach().clone())))
        try:
            got["(model output)"] = model.eval()(example_input)
        finally:
            for h in handles:
                h.remove()
        return got

    reference = record(masked)
    try:
        result = record(small)
    except Exception as err:
        raise SurgeryError(f"the smaller {kind} does not run on example_input "
                           f"({type(err).__name__}: {err}): not returned. Something between the "
                           "layers depends on the number of units? "
                           + TORCH_PRUNING_HINT) from err
    for name, ref in reference.items():
        new = result.get(name)
        if name in keeps and new is not None and new.shape != ref.shape:
            ref = ref.index_select(_unit_dim(masked.get_submodule(name), ref),
                                   keeps[name].to(ref.device))
        if new is None or new.shape != ref.shape:
            raise SurgeryError(f"the smaller {kind} gives {name} an output of another shape than "
                               "expected: not returned. " + TORCH_PRUNING_HINT)
        tolerance = atol * max(1.0, float(ref.abs().max()))
        if not torch.allclose(new, ref, rtol=rtol, atol=tolerance):
            diff = float((new - ref).abs().max())
            raise SurgeryError(f"the smaller {kind} computes other outputs than the masked one "
                               f"from {name} on (largest difference {diff:.3g} on example_input): "
                               "not returned. Something between the layers mixes units (a reshape, "
                               "a channel shuffle, a custom function)? " + TORCH_PRUNING_HINT)


@contextlib.contextmanager
def _full_precision():
    """No TF32 rounding on a GPU while checking: a float32 comparison must mean float32."""
    matmul, cudnn = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    try:
        torch.set_float32_matmul_precision("highest")
        torch.backends.cudnn.allow_tf32 = False
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = cudnn
        torch.set_float32_matmul_precision(matmul)


def remove_pruned_units(model: nn.Module, example_input: torch.Tensor, rtol: float = 1e-4,
                        atol: float = 1e-5) -> nn.Module:
    """A smaller copy of ``model`` without the neurons/channels that structured pruning zeroed.

    ``model`` must be a plain chain of ``nn.Linear`` / ``nn.Conv2d`` layers (BatchNorm2d,
    activations, pooling, flattening, dropout in between), defined in the order ``forward``
    runs them. A unit is removed when its whole weight row (Linear) or filter (Conv2d) is
    zero, pruning masks applied: ``keep_outputs`` drops it, with its BatchNorm entries, and
    ``keep_inputs`` drops what the next layer read from it. The constant a removed unit
    still emitted (``activation(bias)``, whatever the activation) is measured on
    ``example_input`` and folded into the next layer's bias.

    Self-checked: the model is traced on ``example_input`` (a batch it accepts) and refused,
    with a ``SurgeryError`` that says why, when it is not a plain chain (skip connection,
    shared layer, definition order != forward order) or when a zero-padded conv follows a
    pruned channel that is not exactly zero. Then both models run on ``example_input`` in
    eval mode, and a ``SurgeryError`` names the first layer whose output differs beyond
    ``rtol``/``atol`` (with TF32 turned off on GPUs meanwhile): a wrong model is never
    returned. ``model`` is left unchanged; the copy carries no pruning masks. Introduced in
    06_structured_pruning.
    """
    with _full_precision():
        return _remove_pruned_units(model, example_input, rtol, atol)


def _remove_pruned_units(model, example_input, rtol, atol):
    kind = type(model).__name__
    plan, inputs = _plan(model, example_input)
    small = _deepcopy(model)
    keeps, news = {}, {}
    for producer, between, consumer in plan:
        layer = model.get_submodule(producer)
        keep = kept_indices(_current(layer, "weight").detach(), dim=0).cpu()
        keeps[producer] = keep
        channels = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
        news[producer] = keep_outputs(news.get(producer, layer), keep)
        for name in between:  # BatchNorm2d layers
            keeps[name] = keep
            news[name] = keep_outputs(model.get_submodule(name), keep)
        nxt = model.get_submodule(consumer)
        kept_cols, removed_cols, constants = _removed_value(producer, consumer, nxt,
                                                            inputs[consumer],
                                                            keep, channels)
        news[consumer] = _fold(keep_inputs(nxt, kept_cols), nxt, removed_cols, constants)
    for name, new in news.items():
        _replace(small, name, new)
    modes = {name: m.training for name, m in model.named_modules()}
    try:
        _verify(kind, model, small, example_input, keeps, rtol, atol)
    finally:
        for name, m in model.named_modules():
            m.training = modes[name]
        for name, m in small.named_modules():
            m.training = modes.get(name, m.training)
    return small
