"""Structured-pruning surgery, the primitives: a new layer without the pruned units.

``torch.nn.utils.prune.ln_structured`` only *masks* whole rows (neurons) or filters
(channels); the tensors keep their shape, so the model is no smaller and no faster. Surgery
carries the pruning through, with two primitives named like Torch-Pruning's
``prune_conv_out_channels`` / ``prune_conv_in_channels`` (which take the indices to *remove*
and edit in place; ours take the indices to *keep* and return a new, mask-free layer):

    fc1 = keep_outputs(model.fc1, keep)   # Linear rows, Conv2d filters, BatchNorm2d channels
    fc2 = keep_inputs(model.fc2, keep)    # columns of a Linear, input channels of a Conv2d

One table, ``_LAYERS``, says for each layer type how to build a copy of other sizes; both
primitives read it. ``course_utils.chain.remove_pruned_units`` applies them to a whole plain chain
and checks its own work. Introduced in 06_structured_pruning; 08_pruning_a_residual_network uses
the primitives on a residual block.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from .pruning import effective_weight

__all__ = ["SurgeryError", "kept_indices", "keep_outputs", "keep_inputs"]

TORCH_PRUNING_HINT = (
    "Prune coupled layers as one group with Torch-Pruning "
    "(torch_pruning.DependencyGraph / tp.pruner.BasePruner; notebook 08)."
)


class SurgeryError(RuntimeError):
    """Surgery refused a layer or a model, or could not reproduce its outputs."""


def kept_indices(tensor: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Indices along ``dim`` of the slices of ``tensor`` that hold at least one non-zero.

    Pass a weight (``model.fc1.weight``) or a pruning mask (``model.fc1.weight_mask``);
    ``dim=0`` gives the surviving neurons of a Linear layer or filters of a Conv2d.
    Introduced in 06_structured_pruning.
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(
            f"kept_indices needs a tensor (a weight or a mask), not {type(tensor).__name__}."
        )
    if tensor.dim() == 0:
        raise ValueError("kept_indices needs a tensor with at least one dimension.")
    dim = dim % tensor.dim()
    other = [d for d in range(tensor.dim()) if d != dim]
    alive = (tensor != 0).any(dim=tuple(other)) if other else tensor != 0
    keep = alive.nonzero().flatten()
    if keep.numel() == 0:
        raise ValueError(
            f"Every slice along dim {dim} is zero: nothing would be left. "
            "Prune a smaller amount (keep at least one neuron or channel)."
        )
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
        raise SurgeryError(
            f"a grouped or depthwise Conv2d (groups={conv.groups}) ties its input "
            "and output channels together. " + TORCH_PRUNING_HINT
        )


def _linear(layer, n_in, n_out, bias, weight):
    return nn.Linear(n_in, n_out, bias=bias, device=weight.device, dtype=weight.dtype)


def _conv2d(layer, n_in, n_out, bias, weight):
    return nn.Conv2d(
        n_in,
        n_out,
        layer.kernel_size,
        stride=layer.stride,
        padding=layer.padding,
        dilation=layer.dilation,
        bias=bias,
        padding_mode=layer.padding_mode,
        device=weight.device,
        dtype=weight.dtype,
    )


# layer type: (what its outputs are, what its inputs are, a new layer of other sizes). The weight
# of both is (outputs, inputs, ...): keep_outputs selects along dim 0, keep_inputs along dim 1.
_LAYERS = {
    nn.Linear: ("Linear's outputs", "Linear's inputs", _linear),
    nn.Conv2d: ("Conv2d's output channels", "Conv2d's input channels", _conv2d),
}


@torch.no_grad()
def _batchnorm(bn, idxs):
    ref = bn.running_mean if bn.running_mean is not None else effective_weight(bn, "weight")
    if ref is None:
        raise SurgeryError(
            "a BatchNorm2d without affine parameters or running statistics has nothing to keep."
        )
    k = idxs.to(ref.device)
    new = nn.BatchNorm2d(
        len(idxs),
        eps=bn.eps,
        momentum=bn.momentum,
        affine=bn.affine,
        track_running_stats=bn.track_running_stats,
        device=ref.device,
        dtype=ref.dtype,
    )
    if bn.affine:
        new.weight.copy_(effective_weight(bn, "weight")[k])
        new.bias.copy_(effective_weight(bn, "bias")[k])
    if bn.track_running_stats:
        new.running_mean.copy_(bn.running_mean[k])
        new.running_var.copy_(bn.running_var[k])
        new.num_batches_tracked.copy_(bn.num_batches_tracked)
    return new.train(bn.training)


@torch.no_grad()
def _keep(layer, idxs, dim, caller):
    """A new ``layer`` keeping the slices ``idxs`` of its weight along ``dim`` (0: outputs)."""
    if isinstance(layer, nn.BatchNorm2d):  # its inputs are its outputs: its channels
        return _batchnorm(layer, _check_idxs(idxs, layer.num_features, "BatchNorm2d's channels"))
    kind = next((entry for cls, entry in _LAYERS.items() if isinstance(layer, cls)), None)
    if kind is None:
        raise TypeError(
            f"{caller} handles nn.Linear, nn.Conv2d and nn.BatchNorm2d, not {type(layer).__name__}."
        )
    if isinstance(layer, nn.Conv2d):
        _plain_conv(layer)
    weight, bias = effective_weight(layer, "weight"), effective_weight(layer, "bias")
    k = _check_idxs(idxs, weight.shape[dim], kind[dim]).to(weight.device)
    sizes = [weight.shape[1], weight.shape[0]]  # (inputs, outputs)
    sizes[1 - dim] = len(k)
    new = kind[2](layer, *sizes, bias is not None, weight)
    new.weight.copy_(weight.index_select(dim, k))
    if bias is not None:
        new.bias.copy_(bias[k] if dim == 0 else bias)
    return new.train(layer.training)


def keep_outputs(layer: nn.Module, idxs: Sequence[int] | torch.Tensor) -> nn.Module:
    """A new ``layer`` that keeps only the output units ``idxs`` (any order, each once).

    The rows (and biases) of an ``nn.Linear``, the filters of an ``nn.Conv2d``, the
    channels (scale, shift, running statistics) of an ``nn.BatchNorm2d``. Pruning masks are
    applied; the new layer is plain. Torch-Pruning's ``prune_conv_out_channels`` /
    ``prune_linear_out_channels`` do the same in place, given the indices to remove.
    Introduced in 06_structured_pruning.
    """
    return _keep(layer, idxs, 0, "keep_outputs")


def keep_inputs(layer: nn.Module, idxs: Sequence[int] | torch.Tensor) -> nn.Module:
    """A new ``layer`` that reads only the inputs ``idxs``: what the previous layer kept.

    The columns of an ``nn.Linear``, the input channels of an ``nn.Conv2d`` (a BatchNorm2d's
    inputs are its channels: same as ``keep_outputs``). The bias is unchanged: what the
    removed inputs contributed is simply dropped, which is exact when they were zero.
    Torch-Pruning's ``prune_conv_in_channels`` / ``prune_linear_in_channels`` do the same
    in place. Introduced in 06_structured_pruning.
    """
    return _keep(layer, idxs, 1, "keep_inputs")
