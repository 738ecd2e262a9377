"""Structured-pruning surgery on a whole plain chain: ``remove_pruned_units``, self-verifying.

``remove_pruned_units(masked_model, example_input)`` applies the primitives of
``course_utils.surgery`` (``keep_outputs``, ``keep_inputs``) to a plain chain of Linear /
Conv2d (+ BatchNorm2d) layers: it traces the model, plans the pairs of layers, measures the
constant each removed unit still emitted and folds it into the next bias, then verifies. It
refuses anything that is not a plain chain (a skip connection, a layer used twice, layers
defined in another order than forward runs them), and it never returns a model whose outputs
differ from the masked one's. Skip connections, concatenations and shared layers need a
dependency graph: Torch-Pruning (notebook 08).

Introduced in 06_structured_pruning; 08_pruning_a_residual_network shows where it stops.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn as nn

from .pruning import PRUNABLE, effective_weight, masked_copy, replace_module
from .surgery import (
    TORCH_PRUNING_HINT,
    SurgeryError,
    _plain_conv,
    keep_inputs,
    keep_outputs,
    kept_indices,
)

__all__ = ["SurgeryError", "remove_pruned_units"]


def _has_own_state(module):
    return any(True for _ in module.parameters(recurse=False)) or any(
        b is not None for b in module.buffers(recurse=False)
    )


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
        if isinstance(module, (*PRUNABLE, nn.BatchNorm2d)) and isinstance(output, torch.Tensor):
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
    calls, seen, out, x = _trace(masked_copy(model), example_input)
    defined = [name for name, m in model.named_modules() if _has_own_state(m)]
    for name in defined:
        module = model.get_submodule(name)
        if not isinstance(module, (*PRUNABLE, nn.BatchNorm2d)):
            raise SurgeryError(
                f"{kind}.{name} is a {type(module).__name__}: remove_pruned_units "
                "only knows nn.Linear, nn.Conv2d and nn.BatchNorm2d. " + TORCH_PRUNING_HINT
            )
        if isinstance(module, nn.Conv2d):
            _plain_conv(module)
        count = calls.count(name)
        if count > 1:
            raise SurgeryError(
                f"{kind}.{name} runs {count} times in one forward pass (a shared "
                "layer): removing its units changes every place that uses it, and "
                "this helper only follows plain chains. " + TORCH_PRUNING_HINT
            )
        if count == 0:
            raise SurgeryError(
                f"{kind}.{name} never runs on example_input: is it the right input "
                "for this model? remove_pruned_units only shrinks layers it can "
                "check."
            )
    if calls != defined:
        i = next(i for i, (a, b) in enumerate(zip(calls, defined)) if a != b)
        raise SurgeryError(
            f"{kind} defines {defined[i]} before {calls[i]}, but forward runs "
            f"{calls[i]} first. remove_pruned_units pairs each layer with the next "
            "one defined, so the layers must be defined in the order forward runs "
            "them (as in an nn.Sequential). Reorder the definitions, or: " + TORCH_PRUNING_HINT
        )
    weighted = [n for n in calls if isinstance(model.get_submodule(n), PRUNABLE)]
    if len(weighted) < 2:
        raise SurgeryError(f"{kind} has fewer than two Linear/Conv2d layers: nothing to shrink.")
    if not isinstance(out, torch.Tensor):
        raise SurgeryError(
            f"{kind} returns a {type(out).__name__}; remove_pruned_units needs a "
            "model that returns one tensor."
        )
    outputs = {seen["out_fn"][n]: f"the output of {n}" for n in weighted}
    plan = []
    for producer, consumer in zip(weighted, weighted[1:] + [None]):
        start = out.grad_fn if consumer is None else seen["in_fn"][consumer]
        stop = seen["out_fn"][producer]
        others = {
            node: what for node, what in outputs.items() if node is not stop and node is not None
        }
        bad = _depends_on(start, stop, others, x)
        if bad is not None:
            where = "the model's output" if consumer is None else f"the input of {consumer}"
            raise SurgeryError(
                f"{kind} is not a plain chain: {where} depends on {bad}, not only "
                f"on {producer}: a skip connection (as in a residual block) or a "
                "branch. The channels on both sides are tied together and must go "
                "as one group, which remove_pruned_units cannot do. " + TORCH_PRUNING_HINT
            )
        if consumer is not None:
            between = calls[calls.index(producer) + 1 : calls.index(consumer)]
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
            raise SurgeryError(
                f"{consumer} has {layer.in_features} inputs, not a multiple of the "
                f"{channels} units of {producer}."
            )
        per = layer.in_features // channels  # > 1 when a Flatten of C x H x W sits in between
        cols = (torch.arange(channels)[:, None] * per + torch.arange(per)).flatten()
        kept_cols, removed_cols = (
            cols.reshape(channels, per)[~removed].flatten(),
            cols.reshape(channels, per)[removed].flatten(),
        )
        # (examples, removed inputs)
        slices = x.reshape(-1, layer.in_features)[:, removed_cols.to(x.device)]
    else:
        if layer.in_channels != channels:
            raise SurgeryError(
                f"{consumer} reads {layer.in_channels} channels but {producer} "
                f"makes {channels}: something between them changes the channels."
            )
        kept_cols, removed_cols = (~removed).nonzero().flatten(), removed.nonzero().flatten()
        # (examples x pixels, removed)
        slices = x[:, removed_cols.to(x.device)].transpose(0, 1).flatten(1).T
    if removed_cols.numel() == 0:
        return kept_cols, removed_cols, None
    low, high = slices.amin(dim=0), slices.amax(dim=0)
    if bool(((high - low) > 1e-5 * (1 + slices.abs().amax(dim=0))).any()):
        raise SurgeryError(
            f"the pruned units of {producer} do not output a constant on "
            f"example_input (as seen by {consumer}): something between the layers "
            "moves or mixes units (a permutation, a reshape), or feeds them. "
            "remove_pruned_units only removes units whose whole weight row or "
            "filter is zero, in a plain chain. " + TORCH_PRUNING_HINT
        )
    constants = slices.mean(dim=0)
    if (
        isinstance(layer, nn.Conv2d)
        and bool((constants != 0).any())
        and layer.padding_mode == "zeros"
        and any(p != 0 for p in _padding(layer))
    ):
        n = int((constants != 0).sum())
        raise SurgeryError(
            f"{n} pruned channel(s) of {producer} still output a non-zero constant (the BatchNorm "
            f"shift, a bias, or the activation of 0), and {consumer} pads its input with zeros: at "
            "the image border it sees the padding instead of that constant, so no bias can absorb "
            "it and the smaller model would differ. Make the pruned channels output exactly zero "
            "first, as notebook 06 does: `silence_batchnorm(conv, bn)` (course_utils.pruning) "
            "masks the BatchNorm scale and shift of the same channels with "
            "prune.custom_from_mask (or mask the conv's bias the same way when no BatchNorm "
            "follows). Fine-tune after that if accuracy drops."
        )
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
    weight = effective_weight(old_layer, "weight")
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
            if isinstance(module, (*PRUNABLE, nn.BatchNorm2d)):
                handles.append(
                    module.register_forward_hook(
                        lambda m, a, o, name=name: got.setdefault(name, o.detach().clone())
                    )
                )
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
        raise SurgeryError(
            f"the smaller {kind} does not run on example_input "
            f"({type(err).__name__}: {err}): not returned. Something between the "
            "layers depends on the number of units? " + TORCH_PRUNING_HINT
        ) from err
    for name, ref in reference.items():
        new = result.get(name)
        if name in keeps and new is not None and new.shape != ref.shape:
            ref = ref.index_select(
                _unit_dim(masked.get_submodule(name), ref), keeps[name].to(ref.device)
            )
        if new is None or new.shape != ref.shape:
            raise SurgeryError(
                f"the smaller {kind} gives {name} an output of another shape than "
                "expected: not returned. " + TORCH_PRUNING_HINT
            )
        tolerance = atol * max(1.0, float(ref.abs().max()))
        if not torch.allclose(new, ref, rtol=rtol, atol=tolerance):
            diff = float((new - ref).abs().max())
            raise SurgeryError(
                f"the smaller {kind} computes other outputs than the masked one "
                f"from {name} on (largest difference {diff:.3g} on example_input): "
                "not returned. Something between the layers mixes units (a reshape, "
                "a channel shuffle, a custom function)? " + TORCH_PRUNING_HINT
            )


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


def remove_pruned_units(
    model: nn.Module, example_input: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-5
) -> nn.Module:
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
    small = masked_copy(model)
    keeps, news = {}, {}
    for producer, between, consumer in plan:
        layer = model.get_submodule(producer)
        keep = kept_indices(effective_weight(layer, "weight").detach(), dim=0).cpu()
        keeps[producer] = keep
        channels = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
        news[producer] = keep_outputs(news.get(producer, layer), keep)
        for name in between:  # BatchNorm2d layers
            keeps[name] = keep
            news[name] = keep_outputs(model.get_submodule(name), keep)
        nxt = model.get_submodule(consumer)
        kept_cols, removed_cols, constants = _removed_value(
            producer, consumer, nxt, inputs[consumer], keep, channels
        )
        news[consumer] = _fold(keep_inputs(nxt, kept_cols), nxt, removed_cols, constants)
    for name, new in news.items():
        replace_module(small, name, new)
    modes = {name: m.training for name, m in model.named_modules()}
    try:
        _verify(kind, model, small, example_input, keeps, rtol, atol)
    finally:
        for name, m in model.named_modules():
            m.training = modes[name]
        for name, m in small.named_modules():
            m.training = modes.get(name, m.training)
    return small
