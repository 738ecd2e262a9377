"""Measuring, in one place: parameters, sparsity, file sizes, FLOPs and speed.

FLOPs come from PyTorch's ``torch.utils.flop_counter.FlopCounterMode``; times from
``torch.utils.benchmark`` (``Timer``, ``Measurement``, ``Compare``). Speed is always compared
side by side in one run: warm-up, interleaved rounds, the median, and ratios against the first
entry. Introduced in 02_l1_unstructured_pruning (sparsity, file size); FLOPs and timing in
06_structured_pruning.
"""

from __future__ import annotations

import io
import logging
from functools import partial
from typing import Any, Callable

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from .pruning import PRUNABLE, masked_copy

# torch.utils.benchmark imports torch.utils.cpp_extension, which warns "No CUDA runtime is found"
# on machines with CUDA's compiler but no GPU; nothing here compiles C++, so keep that quiet
# (torch 2.5 and newer log it; older versions print it, and the note stays).
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
from torch.utils import benchmark  # noqa: E402

__all__ = [
    "count_parameters",
    "sparsity",
    "sparsity_report",
    "file_size",
    "count_macs",
    "compare_speed",
    "compare_throughput",
    "cpu_copy",
    "cpu_throughput",
]


def count_parameters(model: nn.Module, nonzero: bool = False) -> int:
    """Number of parameters of ``model`` (only the non-zero ones with ``nonzero=True``).

    Counts what the forward pass uses: for a module pruned with ``torch.nn.utils.prune``,
    the masked ``weight`` rather than ``weight_orig``.
    """
    total = 0
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            tensor = getattr(module, name[:-5]) if name.endswith("_orig") else param
            total += int((tensor != 0).sum()) if nonzero else tensor.numel()
    return total


def sparsity(tensor: torch.Tensor) -> float:
    """Fraction of exact zeros in a tensor (0.0 to 1.0)."""
    return float((tensor == 0).sum()) / tensor.numel()


def sparsity_report(
    model: nn.Module, layer_types: tuple[type, ...] = PRUNABLE, quiet: bool = False
) -> dict[str, tuple[int, int]]:
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
            share = 100 * zeros / total
            print(f"{name:<{width}}  {zeros:>7,} / {total:>7,} zeros  ({share:6.2f}%)")
    return rows


def file_size(obj: nn.Module | dict[str, Any]) -> int:
    """Bytes that ``torch.save(obj)`` writes (a model is saved through its state_dict)."""
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.tell()


def count_macs(model: nn.Module, example_input: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass on ``example_input``, from ``FlopCounterMode``.

    ``FlopCounterMode`` counts 2 floating-point operations (a multiply and an add) for each
    multiply-accumulate of the matrix products and convolutions; this returns half its total.
    Masked zeros still count: a mask does not skip any arithmetic. Puts ``model`` in eval mode.
    """
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.eval()(example_input)
    return counter.get_total_flops() // 2


def _synchronizer(device: str | torch.device) -> Callable[[], None]:
    """A function that waits for ``device`` to finish its queued work (a no-op on the CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.synchronize
    if device.type == "mps":
        return torch.mps.synchronize
    return lambda: None


def compare_speed(
    functions: dict[str, Callable[[], Any]],
    *,
    warmup: int = 3,
    repeats: int = 15,
    threads: int | None = None,
    label: str = "",
    device: str | torch.device = "cpu",
) -> dict[str, dict[str, Any]]:
    """Time several zero-argument callables side by side with ``torch.utils.benchmark``.

    One ``benchmark.Timer`` per function (``threads`` CPU threads, torch's current number by
    default); after ``warmup`` calls each, every one of ``repeats`` rounds times each function
    once, in turn (interleaved, so a busy machine slows all of them alike), waiting for the GPU
    to finish. ``Timer.timeit(1)`` makes two untimed calls before the timed one, so every timed
    call is a warm one. Returns ``{name: {"median_s", "speedup", "measurement"}}``: ``speedup`` is
    relative to the first entry, ``measurement`` a ``benchmark.Measurement`` (give a list of
    them to ``benchmark.Compare`` for a table).
    """
    if not functions:
        raise ValueError("Give at least one function to time.")
    if int(repeats) < 1 or int(warmup) < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, not {repeats!r} and {warmup!r}.")
    threads = threads or torch.get_num_threads()
    sync = _synchronizer(device)
    timers = {
        name: benchmark.Timer(
            "fn(); sync()",
            globals={"fn": fn, "sync": sync},
            label=label,
            sub_label=f"median of {repeats}",
            description=name,
            num_threads=threads,
        )
        for name, fn in functions.items()
    }
    rounds = {name: [] for name in functions}
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                for fn in functions.values():
                    fn()
            sync()
            for _ in range(repeats):
                for name, timer in timers.items():
                    rounds[name].append(timer.timeit(1))
    finally:
        torch.set_num_threads(previous_threads)
    measurements = {name: benchmark.Measurement.merge(ms)[0] for name, ms in rounds.items()}
    first = next(iter(measurements.values())).median
    return {
        name: {"median_s": m.median, "speedup": first / m.median, "measurement": m}
        for name, m in measurements.items()
    }


def compare_throughput(
    models: dict[str, nn.Module],
    example_input: torch.Tensor,
    *,
    warmup: int = 3,
    repeats: int = 15,
    threads: int | None = None,
    label: str = "",
) -> dict[str, dict[str, Any]]:
    """Inference throughput of several models on the same batch, side by side (``compare_speed``).

    Returns ``{name: {"median_s", "speedup", "items_per_s", "measurement"}}``; ``speedup`` is
    relative to the first model. The models are put in eval mode.
    """
    calls = {name: partial(model.eval(), example_input) for name, model in models.items()}
    results = compare_speed(
        calls,
        warmup=warmup,
        repeats=repeats,
        threads=threads,
        label=label,
        device=example_input.device,
    )
    for row in results.values():
        row["items_per_s"] = len(example_input) / row["median_s"]
    return results


def cpu_copy(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` on the CPU; the original stays on its device.

    A model pruned with masks is copied with its masks (``course_utils.pruning.masked_copy``).
    """
    if any(buffer.layout != torch.strided for buffer in model.buffers()):
        raise ValueError(
            "a model with sparse layers (CSRLinear) cannot be copied: build it from "
            "a CPU copy of the dense model instead, to_csr_model(cpu_copy(model))."
        )
    return masked_copy(model).cpu().eval()


def cpu_throughput(
    models: dict[str, nn.Module],
    images: torch.Tensor,
    *,
    batch_size: int = 256,
    warmup: int = 3,
    repeats: int = 15,
    threads: int | None = None,
    label: str = "",
) -> dict[str, dict[str, Any]]:
    """``compare_throughput`` on the CPU, on one batch of ``images``, whatever ``device`` is.

    Models on another device are timed as CPU copies (``cpu_copy``), so they stay where they
    are. ``threads`` CPU threads (torch's current number by default). CPU numbers are the
    honest ones for small models: a GPU hides their differences behind launch overheads.
    """
    batch = images[:batch_size]
    on_cpu = {}
    for name, model in models.items():
        device = _device_of(model)
        on_cpu[name] = model if device.type == "cpu" else cpu_copy(model)
    return compare_throughput(
        on_cpu, batch.cpu(), warmup=warmup, repeats=repeats, threads=threads, label=label
    )


def _device_of(model: nn.Module) -> torch.device:
    tensor = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), torch.empty(0))
    return tensor.device
