"""Post-training pruning of a transformer language model, with a little calibration data.

Notebook 09_pruning_a_transformer. One-shot unstructured pruning of every ``nn.Linear`` inside
the blocks of a ``TinyGPT`` (not the embeddings or the output head), by three criteria that all
read the same statistic of each layer's inputs, the Gram matrix ``X^T X`` of the calibration
activations:

- ``magnitude_prune_``: the smallest ``|W|`` of the whole layer (the data is not used);
- ``wanda_prune_`` (Sun et al., 2024; written out in the notebook): the smallest
  ``|W_ij| * ||x_j||`` of each output row, ``||x_j||`` read off the Gram matrix's diagonal;
- ``sparsegpt_prune_`` (Frantar & Alistarh, 2023): chooses and removes weights column by
  column and updates the remaining weights of each row to make up for the error, using the
  inverse of the Hessian ``H = 2 X^T X / n`` of the layer's squared error.

Each works to a sparsity (``keep_mask``: exact in every row or layer) or to an N:M pattern
(``n_m_mask``). ``prune_transformer`` calibrates block by block; ``shrink_transformer`` removes
attention heads and MLP neurons physically.
"""

from __future__ import annotations

import copy
import time
from typing import Callable, Sequence

import torch
import torch.nn as nn

from .data import CharCorpus
from .env import course_seed
from .language_model import lm_loss
from .models import TinyGPT
from .surgery import keep_inputs, keep_outputs

__all__ = [
    "BLOCK_LINEARS",
    "block_linears",
    "keep_mask",
    "n_m_mask",
    "magnitude_prune_",
    "wanda_prune_",
    "sparsegpt_prune_",
    "PRUNERS",
    "calibration_windows",
    "input_grams",
    "prune_transformer",
    "linear_sparsity",
    "head_scores",
    "mlp_neuron_scores",
    "shrink_transformer",
    "mask_like_shrunk",
]

BLOCK_LINEARS = ("attn.q", "attn.k", "attn.v", "attn.proj", "fc", "proj")
"""The six ``nn.Linear`` layers of a ``TransformerBlock``: the ones one-shot pruning touches."""


def _check_model(model: nn.Module) -> None:
    if not isinstance(getattr(model, "blocks", None), nn.ModuleList) or not all(
        hasattr(block, "attn") and hasattr(block, "fc") for block in model.blocks
    ):
        raise TypeError(
            f"{type(model).__name__} has no TinyGPT-style blocks (model.blocks[i] "
            "with .attn.q/.k/.v/.proj, .fc and .proj): these helpers prune a TinyGPT."
        )


def block_linears(block: nn.Module) -> dict[str, nn.Linear]:
    """``{name: layer}`` for the six linear layers of one block (``BLOCK_LINEARS``)."""
    return {name: block.get_submodule(name) for name in BLOCK_LINEARS}


def keep_mask(scores: torch.Tensor, sparsity: float, per_row: bool = False) -> torch.Tensor:
    """True for the weights to keep: all but the ``round(sparsity * n)`` smallest ``scores``.

    ``per_row=True`` counts in each output row (Wanda's comparison group), else over the whole
    layer; either way the sparsity is exact. Ties are broken by position.
    """
    if not 0 <= float(sparsity) < 1:
        raise ValueError(
            f"sparsity must be in [0, 1) (a fraction of the weights), not "
            f"{sparsity!r}: 0.5 removes half."
        )
    rows = scores if per_row else scores.reshape(1, -1)
    n_prune = round(float(sparsity) * rows.shape[1])
    keep = torch.ones_like(rows, dtype=torch.bool)
    if n_prune:
        keep.scatter_(1, rows.topk(n_prune, dim=1, largest=False).indices, False)
    return keep.reshape(scores.shape)


def n_m_mask(scores: torch.Tensor, n: int = 2, m: int = 4) -> torch.Tensor:
    """True for the ``n`` largest ``scores`` of every ``m`` consecutive inputs of each row.

    ``n_m_mask(weight.abs(), 2, 4)`` is notebook 07's ``mask_2_4`` (as booleans).
    """
    if not (isinstance(n, int) and isinstance(m, int) and 0 < n < m):
        raise ValueError(f"an N:M pattern keeps n of every m weights, 0 < n < m; got {n}:{m}.")
    if scores.dim() != 2 or scores.shape[1] % m:
        raise ValueError(
            f"a {n}:{m} pattern needs an input width that is a multiple of {m}; "
            f"this layer's weight is {tuple(scores.shape)}."
        )
    groups = scores.reshape(scores.shape[0], -1, m)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(-1, groups.topk(n, dim=-1).indices, True)
    return keep.reshape(scores.shape)


@torch.no_grad()
def magnitude_prune_(
    linear: nn.Linear,
    gram: torch.Tensor | None,
    sparsity: float = 0.5,
    n_m: tuple[int, int] | None = None,
) -> None:
    """Zero the smallest ``|W|`` of the whole layer (or of every N:M group); ``gram`` is unused."""
    scores = linear.weight.abs()
    keep = n_m_mask(scores, *n_m) if n_m else keep_mask(scores, sparsity)
    linear.weight.mul_(keep)


# saved in course_utils.lm_pruning
# Written out in a notebook: keep this copy identical to it.
# fmt: off
def wanda_prune_(linear: nn.Linear, gram: torch.Tensor, sparsity: float = 0.5,
                 n_m: tuple[int, int] | None = None) -> None:
    """Wanda: zero the weights with the smallest |W_ij| * ||x_j|| in each output row."""
    feature_norms = gram.diagonal().sqrt()                 # ||x_j||: one norm per input feature
    scores = linear.weight.detach().abs() * feature_norms  # broadcast over the output rows
    keep = n_m_mask(scores, *n_m) if n_m else keep_mask(scores, sparsity, per_row=True)
    with torch.no_grad():
        linear.weight.mul_(keep)


# fmt: on


@torch.no_grad()
def sparsegpt_prune_(
    linear: nn.Linear,
    gram: torch.Tensor,
    sparsity: float = 0.5,
    n_m: tuple[int, int] | None = None,
    block_size: int = 128,
    damp: float = 0.01,
) -> None:
    """SparseGPT (Frantar & Alistarh, 2023): prune column by column, fixing up the rest.

    1. The Hessian of the layer's squared error is ``H = 2 X^T X / n``; damp it (add
       ``damp`` times its mean diagonal) so it can be inverted.
    2. Take the upper Cholesky factor ``U`` of ``H^-1``: row ``i`` of ``U`` says how removing
       column ``i`` should move the columns after it (the OBS update, computed once).
    3. For each block of ``block_size`` columns, choose the weights to remove by the OBS
       saliency ``w^2 / U_ii^2`` (``U_ii^2`` is ``[H^-1]_ii`` given the columns already fixed),
       over all rows of the block at once (or per N:M group, as the walk reaches it);
    4. walk the block column by column: zero the chosen weights and subtract the error
       ``(w - q) / U_ii`` times row ``i`` of ``U`` from the columns after it (``err * U[i, i:]``);
    5. then apply the block's accumulated error to all later columns in one matrix product
       (the lazy update).
    """
    W = linear.weight.detach().clone().float()
    H = (2 * gram / max(1.0, float(gram.diagonal().max()))).clone().float()  # scale is irrelevant
    columns = W.shape[1]
    dead = H.diagonal() == 0  # inputs that are always 0: their weights go free
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    H += damp * H.diagonal().mean() * torch.eye(columns, device=H.device)
    U = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    for start in range(0, columns, block_size):
        end = min(start + block_size, columns)
        W1, U1 = W[:, start:end].clone(), U[start:end, start:end]
        errors = torch.zeros_like(W1)
        if n_m is None:
            pruned = ~keep_mask(W1**2 / U1.diagonal() ** 2, sparsity)
        else:
            pruned = torch.zeros_like(W1, dtype=torch.bool)
        for i in range(end - start):
            if n_m is not None and i % n_m[1] == 0:
                group = W1[:, i : i + n_m[1]] ** 2 / U1.diagonal()[i : i + n_m[1]] ** 2
                pruned[:, i : i + n_m[1]] = ~n_m_mask(group, *n_m)
            w, d = W1[:, i], U1[i, i]
            q = w.masked_fill(pruned[:, i], 0.0)
            errors[:, i] = (w - q) / d
            W1[:, i:] -= errors[:, i : i + 1] * U1[i : i + 1, i:]  # column i becomes q exactly
        W[:, start:end] = W1.masked_fill(pruned, 0.0)
        W[:, end:] -= errors @ U[start:end, end:]
    linear.weight.copy_(W.to(linear.weight.dtype))


PRUNERS: dict[str, Callable[..., None]] = {
    "magnitude": magnitude_prune_,
    "wanda": wanda_prune_,
    "sparsegpt": sparsegpt_prune_,
}
"""The one-shot criteria by name, each ``fn(linear, gram, sparsity, n_m)``."""


def calibration_windows(
    corpus: CharCorpus,
    count: int = 64,
    context: int = 64,
    seed: int | None = None,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random windows of *training* text (never validation) and their next characters.

    Drawn with ``seed``, by default ``course_seed()``, so ``make sweep`` varies the calibration
    set. One-shot pruning reads only the inputs; head scores need the targets too.
    """
    generator = torch.Generator().manual_seed(course_seed() if seed is None else seed)
    return corpus.batch(count, context, generator, split="train", device=device)


@torch.no_grad()
def input_grams(block: nn.Module, hidden: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run ``block`` on ``hidden`` and return ``{layer name: X^T X}`` of each linear's inputs."""
    grams, handles = {}, []
    for name, layer in block_linears(block).items():

        def record(_module, args, _output, name=name):
            x = args[0].reshape(-1, args[0].shape[-1]).float()
            grams[name] = grams.get(name, 0) + x.T @ x

        handles.append(layer.register_forward_hook(record))
    try:
        block(hidden)
    finally:
        for handle in handles:
            handle.remove()
    return grams


@torch.no_grad()
def prune_transformer(
    model: nn.Module,
    calibration: torch.Tensor,
    method: str = "sparsegpt",
    sparsity: float = 0.5,
    n_m: tuple[int, int] | None = None,
    sequential: bool = True,
) -> tuple[nn.Module, float]:
    """A pruned copy of ``model`` and the seconds it took: every block linear, one block at a time.

    Each block's six linears see the calibration windows' activations at their inputs (one
    forward pass collects ``input_grams``), are pruned by ``PRUNERS[method]``, and the block's
    outputs feed the next block. ``sequential=True`` (as in SparseGPT and Wanda) runs them
    through the already-pruned block, so later layers calibrate on the inputs they will get;
    ``sequential=False`` uses the dense model's activations throughout. Magnitude pruning reads
    no data and skips the calibration pass.
    """
    _check_model(model)
    if method not in PRUNERS:
        raise ValueError(f"unknown method {method!r}: choose one of {', '.join(PRUNERS)}.")
    if n_m is None:
        keep_mask(torch.zeros(1, 1), sparsity)  # checks the sparsity before any work
    start = time.perf_counter()
    pruned = copy.deepcopy(model).eval()
    ids = calibration.to(next(model.parameters()).device)
    hidden = pruned.tok_emb(ids) + pruned.pos_emb(torch.arange(ids.shape[1], device=ids.device))
    for block, dense_block in zip(pruned.blocks, model.blocks):
        if method == "magnitude":  # reads no data: no calibration pass needed
            for layer in block_linears(block).values():
                magnitude_prune_(layer, None, sparsity, n_m)
            continue
        for name, gram in input_grams(block, hidden).items():
            PRUNERS[method](block.get_submodule(name), gram, sparsity, n_m)
        hidden = (block if sequential else dense_block)(hidden)
    return pruned, time.perf_counter() - start


def linear_sparsity(model: nn.Module) -> float:
    """The fraction of zero weights over every block linear of ``model``."""
    _check_model(model)
    weights = [layer.weight for block in model.blocks for layer in block_linears(block).values()]
    return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)


def head_scores(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int = 8
) -> torch.Tensor:
    """Michel et al. (2019): ``|dLoss / d gate_h|`` summed over batches; ``(layers, heads)``.

    Each head's output is multiplied by a gate ``head_gate[h] = 1``; the gradient of the loss
    with respect to it estimates how much the loss would change if the head were removed.
    """
    _check_model(model)
    model.eval()
    gates = [block.attn.head_gate for block in model.blocks]
    scores = [torch.zeros_like(gate) for gate in gates]
    for gate in gates:
        gate.requires_grad_(True)
    try:
        for start in range(0, len(inputs), batch_size):
            chunk = slice(start, start + batch_size)
            loss = lm_loss(model, inputs[chunk], targets[chunk])
            for score, grad in zip(scores, torch.autograd.grad(loss, gates)):
                score += grad.abs()
    finally:
        for gate in gates:
            gate.requires_grad_(False)
    return torch.stack(scores)


@torch.no_grad()
def mlp_neuron_scores(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Per MLP neuron: mean ``|GELU(fc(x))_j|`` times the norm of its column of ``proj``.

    How much the neuron writes back to the residual stream, on the calibration windows.
    Returns ``(layers, mlp_width)``.
    """
    _check_model(model)
    model.eval()
    activity = []
    handles = [
        block.fc.register_forward_hook(
            lambda _m, _a, out: activity.append(torch.nn.functional.gelu(out).abs().mean((0, 1)))
        )
        for block in model.blocks
    ]
    try:
        model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack(
        [act * block.proj.weight.norm(dim=0) for act, block in zip(activity, model.blocks)]
    )


def _head_rows(heads: Sequence[int], n_head: int, head_dim: int) -> torch.Tensor:
    heads = [int(h) for h in heads]
    bad = [h for h in heads if not 0 <= h < n_head]
    if bad or len(set(heads)) != len(heads) or not heads:
        raise ValueError(
            f"heads to keep must be distinct indices in 0..{n_head - 1}, at least "
            f"one per layer; got {heads}."
        )
    return torch.cat([torch.arange(h * head_dim, (h + 1) * head_dim) for h in sorted(heads)])


def shrink_transformer(
    model: nn.Module, keep_heads: Sequence[Sequence[int]], keep_neurons: Sequence[Sequence[int]]
) -> nn.Module:
    """A smaller ``TinyGPT`` with only the heads and MLP neurons kept, one list per layer.

    A head is rows of ``q``, ``k``, ``v`` and columns of ``attn.proj``; an MLP neuron is a row
    of ``fc`` and a column of ``proj`` (``keep_outputs`` / ``keep_inputs`` of notebook 06).
    ``TinyGPT(**small.config)`` rebuilds the architecture, to load its state_dict.
    """
    _check_model(model)
    if len(keep_heads) != len(model.blocks) or len(keep_neurons) != len(model.blocks):
        raise ValueError(
            f"give one list of heads and one of neurons per layer ({len(model.blocks)} layers)."
        )
    small = copy.deepcopy(model)
    for block, heads, neurons in zip(small.blocks, keep_heads, keep_neurons):
        attn = block.attn
        rows = _head_rows(heads, attn.n_head, attn.head_dim)
        attn.q, attn.k, attn.v = (keep_outputs(layer, rows) for layer in (attn.q, attn.k, attn.v))
        attn.proj = keep_inputs(attn.proj, rows)
        attn.n_head = len(heads)
        attn.head_gate = attn.head_gate[sorted(int(h) for h in heads)]
        block.fc = keep_outputs(block.fc, torch.as_tensor(sorted(neurons)))
        block.proj = keep_inputs(block.proj, torch.as_tensor(sorted(neurons)))
    if isinstance(small, TinyGPT):
        small.config["heads"] = [len(h) for h in keep_heads]
        small.config["mlp_widths"] = [len(n) for n in keep_neurons]
    return small


@torch.no_grad()
def mask_like_shrunk(
    model: nn.Module, keep_heads: Sequence[Sequence[int]], keep_neurons: Sequence[Sequence[int]]
) -> nn.Module:
    """A same-size copy with the other heads gated to 0 and the other neurons' ``fc`` rows zeroed.

    It computes what ``shrink_transformer`` keeps (GELU(0) = 0), so the two can be compared.
    """
    masked = copy.deepcopy(model)
    for block, heads, neurons in zip(masked.blocks, keep_heads, keep_neurons):
        gate = torch.zeros_like(block.attn.head_gate)
        gate[list(heads)] = 1.0
        block.attn.head_gate = gate
        dead = torch.ones(block.fc.out_features, dtype=torch.bool)
        dead[list(neurons)] = False
        block.fc.weight[dead] = 0.0
        block.fc.bias[dead] = 0.0
    return masked
