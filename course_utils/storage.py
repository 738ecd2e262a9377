"""Compact, lossless storage of unstructured-sparse state_dicts. Introduced in 07.

``torch.save`` writes every zero of a pruned weight as a full 4-byte float, so a 95%-sparse
model gives the same file as the dense one. These helpers store, for each sparse tensor, which
entries survive (a bitmask: 1 bit per entry, or CSR indices: one small integer per survivor)
and the surviving values only, then optionally gzip the whole file.

    save_sparse(model, "net95.ptz")                  # an nn.Module or a state_dict
    model.load_state_dict(load_sparse("net95.ptz"))  # the same numbers, exactly

Round trip: every tensor comes back equal (``torch.equal``) with its dtype and shape; a ``-0.0``
comes back as ``0.0``, which compares equal. The file is read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .checkpoints import atomic_write
from .pruning import require_permanent

__all__ = [
    "pack_bits",
    "unpack_bits",
    "encode_tensor",
    "decode_tensor",
    "to_bytes",
    "from_bytes",
    "save_sparse",
    "load_sparse",
]

FORMAT = "course_utils.storage/1"
LAYOUTS = ("bitmask", "csr")
_GZIP_MAGIC = b"\x1f\x8b"
_BIT_VALUES = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8)
_SHIFTS = torch.arange(8, dtype=torch.uint8)


def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    """A boolean tensor as bytes, 8 entries per byte (first entry in the lowest bit)."""
    flat = torch.as_tensor(mask).detach().flatten().cpu().to(torch.uint8)
    padding = (-flat.numel()) % 8
    if padding:
        flat = torch.cat([flat, flat.new_zeros(padding)])
    return (flat.view(-1, 8) * _BIT_VALUES).sum(dim=1, dtype=torch.uint8)


def unpack_bits(packed: torch.Tensor, numel: int) -> torch.Tensor:
    """The first ``numel`` entries of a ``pack_bits`` result, as a flat boolean tensor."""
    if packed.dtype != torch.uint8 or packed.dim() != 1 or packed.numel() * 8 < numel:
        raise ValueError(
            f"expected a flat uint8 tensor of at least {numel} bits, got "
            f"{packed.dtype} with shape {tuple(packed.shape)}: the file is damaged."
        )
    return ((packed[:, None] >> _SHIFTS) & 1).flatten()[:numel].bool()


def _smallest_index_dtype(upper):
    return torch.int16 if upper <= torch.iinfo(torch.int16).max else torch.int32


def encode_tensor(
    tensor: torch.Tensor, layout: str = "bitmask", min_sparsity: float = 0.05
) -> dict[str, Any]:
    """One tensor as a dict: its surviving values plus a bitmask or CSR indices, or kept dense.

    Floating-point and int8 tensors (weights, quantized weights of notebook 10) with at least
    ``min_sparsity`` zeros are encoded; others (biases of dense layers, integer buffers such as
    counters) stay dense, since an index costs more than it saves there.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}.")
    tensor = tensor.detach().cpu()
    weights = tensor.is_floating_point() or tensor.dtype == torch.int8
    if not weights or tensor.dim() == 0 or tensor.numel() == 0:
        return {"layout": "dense", "tensor": tensor.clone()}
    nonzero = tensor != 0
    if 1 - nonzero.sum().item() / tensor.numel() < min_sparsity:
        return {"layout": "dense", "tensor": tensor.clone()}
    shape = list(tensor.shape)
    if layout == "bitmask":
        return {
            "layout": "bitmask",
            "shape": shape,
            "bits": pack_bits(nonzero),
            "values": tensor[nonzero].clone(),
        }
    matrix = nonzero.reshape(shape[0], -1)  # a conv weight: one row per filter
    # CSR: where each row starts in the list of survivors, and each survivor's column. The smallest
    # integer type that fits is enough (torch's own sparse tensors use 8-byte int64 indices).
    crow = torch.cat([torch.zeros(1, dtype=torch.long), matrix.sum(dim=1).cumsum(0)])
    return {
        "layout": "csr",
        "shape": shape,
        "crow": crow.to(_smallest_index_dtype(matrix.numel())),
        "col": matrix.nonzero()[:, 1].to(_smallest_index_dtype(matrix.shape[1])),
        "values": tensor[nonzero].clone(),
    }


def decode_tensor(entry: dict[str, Any]) -> torch.Tensor:
    """The tensor ``encode_tensor`` encoded (zeros restored), on the CPU."""
    layout = entry.get("layout") if isinstance(entry, dict) else None
    if layout == "dense":
        return entry["tensor"]
    if layout not in LAYOUTS:
        raise ValueError(
            f"unknown tensor layout {layout!r}: the file is damaged or from another program."
        )
    shape, values = entry["shape"], entry["values"]
    numel = 1
    for size in shape:
        numel *= size
    if layout == "bitmask":
        mask = unpack_bits(entry["bits"], numel)
        if int(mask.sum()) != values.numel():
            raise ValueError(
                "the bitmask and the number of stored values disagree: the file is damaged."
            )
        dense = torch.zeros(numel, dtype=values.dtype)
        dense[mask] = values
        return dense.view(shape)
    crow, col = entry["crow"].long(), entry["col"].long()
    if (
        crow.numel() != shape[0] + 1
        or col.numel() != values.numel()
        or int(crow[-1]) != values.numel()
    ):
        raise ValueError("the CSR indices and the stored values disagree: the file is damaged.")
    rows = torch.repeat_interleave(torch.arange(shape[0]), crow.diff())
    dense = torch.zeros(shape[0], numel // shape[0], dtype=values.dtype)
    dense[rows, col] = values
    return dense.view(shape)


def _state_dict_of(state):
    if isinstance(state, nn.Module):
        state = state.state_dict()
    if not isinstance(state, dict):
        raise TypeError(
            "expected an nn.Module or a state_dict (a dict of tensors), got "
            f"{type(state).__name__}."
        )
    require_permanent(state)
    wrong = [key for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if wrong:
        raise TypeError(f"every value of the state_dict must be a tensor; {wrong[:4]} are not.")
    return state


def to_bytes(
    state: nn.Module | dict[str, torch.Tensor],
    layout: str = "bitmask",
    compress: bool = True,
    min_sparsity: float = 0.05,
) -> bytes:
    """The compact file's content for a model or state_dict (see ``save_sparse``)."""
    state = _state_dict_of(state)
    payload = {
        "format": FORMAT,
        "tensors": {
            key: encode_tensor(value, layout, min_sparsity) for key, value in state.items()
        },
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    return gzip.compress(data, compresslevel=9, mtime=0) if compress else data


def from_bytes(data: bytes, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The state_dict stored in ``data`` (the content ``to_bytes`` or ``save_sparse`` wrote)."""
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"from_bytes needs bytes, got {type(data).__name__}.")
    try:
        if bytes(data[:2]) == _GZIP_MAGIC:
            data = gzip.decompress(data)
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:
        why = f"{type(err).__name__}: {err}"
        raise ValueError(f"not a file written by save_sparse ({why}).") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(
            "not a file written by save_sparse: its format tag is missing. For a "
            "plain torch.save file use torch.load(path, weights_only=True)."
        )
    return {key: decode_tensor(entry).to(device) for key, entry in payload["tensors"].items()}


def save_sparse(
    state: nn.Module | dict[str, torch.Tensor],
    path: str | os.PathLike[str],
    layout: str = "bitmask",
    compress: bool = True,
    min_sparsity: float = 0.05,
) -> int:
    """Write a model's (or state_dict's) sparse tensors compactly; return the bytes written.

    Each floating-point tensor with at least ``min_sparsity`` zeros is stored as its surviving
    values plus a bitmask (``layout="bitmask"``, 1 bit per entry) or CSR indices
    (``layout="csr"``, a 16- or 32-bit column index per survivor); ``compress`` gzips the file.
    The file is written to a temporary name and renamed, so it is never half-written.
    """
    data = to_bytes(state, layout, compress, min_sparsity)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return len(data)


def load_sparse(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """The state_dict that ``save_sparse`` wrote to ``path``, every tensor on ``device``."""
    with open(path, "rb") as file:
        data = file.read()
    try:
        return from_bytes(data, device)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
