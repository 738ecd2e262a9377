"""Sparse kernels: weights stored so that inference can skip their zeros. Introduced in 07.

Three helpers of 07_from_masks_to_savings live here: ``mask_2_4`` (written out in the notebook,
``# saved in course_utils.sparse_kernels``) and two ways to let a sparse weight skip its zeros:

- ``CSRLinear`` / ``to_csr_model``: the weight as a ``torch.sparse`` CSR matrix (any device,
  any sparsity pattern); pays only at high sparsity.
- ``semi_structured_status`` / ``to_semi_structured``: NVIDIA's 2:4 sparse tensor cores through
  ``torch.sparse.to_sparse_semi_structured`` (CUDA, compute capability 8.0+, fp16 weights that
  are already 2:4 sparse).

Time them against the dense model with ``course_utils.measure.compare_speed``.
"""

from __future__ import annotations

import copy
import warnings

import torch
import torch.nn as nn

from .pruning import replace_module, require_permanent

__all__ = ["mask_2_4", "CSRLinear", "to_csr_model", "semi_structured_status", "to_semi_structured"]


# Written out in a notebook: keep this copy identical to it.
# fmt: off
def mask_2_4(weight: torch.Tensor) -> torch.Tensor:
    """1 for the 2 largest |weights| of every group of 4 consecutive inputs, 0 for the others."""
    groups = weight.detach().abs().reshape(weight.shape[0], -1, 4)  # (out, in / 4, 4)
    keep = groups.topk(2, dim=-1).indices
    return torch.zeros_like(groups).scatter_(-1, keep, 1.0).reshape(weight.shape)


# fmt: on


class CSRLinear(nn.Module):
    """Inference-only copy of an ``nn.Linear`` whose weight is a ``torch.sparse`` CSR matrix.

    ``forward`` computes ``bias + W @ x.T`` with a sparse-dense product, then transposes back:
    the same result as the dense layer (to float rounding). The weight and bias are buffers, so
    ``.to(device)`` moves them; a sparse tensor cannot be deep-copied, so copy the dense model.
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"CSRLinear copies an nn.Linear, not {type(linear).__name__}.")
        weight = linear.weight.detach()  # for a masked layer, the masked weight
        self.in_features, self.out_features = linear.in_features, linear.out_features
        with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            self.register_buffer("weight", weight.to_sparse_csr())
        bias = linear.bias
        bias = bias.detach() if bias is not None else weight.new_zeros(linear.out_features)
        self.register_buffer("bias", bias[:, None].contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, self.weight, x.T).T

    def extra_repr(self) -> str:
        nnz = self.weight.values().numel()
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"nonzero={nnz} ({100 * nnz / (self.in_features * self.out_features):.1f}%)"
        )


def to_csr_model(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in which every ``nn.Linear`` is a ``CSRLinear`` (for inference only).

    Make pruning permanent first (``prune.remove``), or the copy keeps a masked weight anyway.
    The copy stays on the model's device; to time it on the CPU, build it from a CPU copy:
    ``to_csr_model(cpu_copy(model))`` (a sparse model cannot be copied afterwards).
    """
    require_permanent(model)
    sparse = copy.deepcopy(model).eval()
    for name, module in list(sparse.named_modules()):
        if isinstance(module, nn.Linear):
            replace_module(sparse, name, CSRLinear(module))
    return sparse


def semi_structured_status(device: str | torch.device) -> tuple[bool, str]:
    """``(True, description)`` when 2:4 sparse kernels run on ``device``, else ``(False, why)``."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return False, (
            "no CUDA GPU here: 2:4 semi-structured kernels need an NVIDIA GPU of "
            "compute capability 8.0 or newer (A100, L4, H100...)."
        )
    major, minor = torch.cuda.get_device_capability(device)
    name = torch.cuda.get_device_name(device)
    if major < 8:
        return False, (
            f"{name} has compute capability {major}.{minor}; 2:4 semi-structured "
            "kernels need 8.0 or newer (on Colab, choose an L4 or A100, not a T4)."
        )
    if not hasattr(torch.sparse, "to_sparse_semi_structured"):
        return False, f"torch {torch.__version__} has no torch.sparse.to_sparse_semi_structured."
    return True, f"{name}, compute capability {major}.{minor}"


def to_semi_structured(model: nn.Module) -> tuple[nn.Module, dict[str, str]]:
    """A half-precision copy of ``model`` with its 2:4-sparse Linear weights on sparse tensor cores.

    Every ``nn.Linear`` whose weight the kernels accept (2:4 sparse, shape a multiple of the
    backend's block: 16x16 for cuSPARSELt, 32x64 for CUTLASS) is converted with
    ``torch.sparse.to_sparse_semi_structured``; the others stay dense fp16. Returns
    ``(copy, {layer name: "2:4" or the reason it stayed dense})``. Needs ``semi_structured_status``
    to be true for the model's device; the weights must already follow the 2:4 pattern.
    """
    from torch.sparse import to_sparse_semi_structured

    require_permanent(model)
    fast = copy.deepcopy(model).half().eval()
    report = {}
    for name, module in fast.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        weight = module.weight.detach()
        if weight.shape[1] % 4 or (weight != 0).reshape(len(weight), -1, 4).sum(-1).max() > 2:
            report[name] = "dense: the weight is not 2:4 sparse"
            continue
        try:
            module.weight = nn.Parameter(
                to_sparse_semi_structured(weight.contiguous()), requires_grad=False
            )
            report[name] = "2:4"
        except RuntimeError as err:  # shape or dtype the backend does not support
            report[name] = f"dense: {str(err).splitlines()[0]}"
    return fast, report
