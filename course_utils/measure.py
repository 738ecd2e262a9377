"""Honest measurements: parameters, sparsity, file sizes, FLOPs and speed ratios.

Speed is always compared side by side in one run: warm-up, several interleaved repeats,
the median, and ratios against the first entry. Introduced in 00_start_here (data speed)
and used from 06_structured_pruning on.
"""
import io
import statistics
import time

import torch
import torch.nn as nn


def count_parameters(model, nonzero=False):
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


def file_size(obj):
    """Bytes that ``torch.save(obj)`` writes (a model is saved through its state_dict)."""
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.tell()


def count_flops(model, example_input):
    """Multiply-accumulates of one forward pass through the Linear and Conv2d layers."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Linear):
            total += output.numel() * module.in_features
        else:  # Conv2d
            kernel = module.kernel_size[0] * module.kernel_size[1]
            total += output.numel() * kernel * module.in_channels // module.groups

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Linear, nn.Conv2d))]
    try:
        with torch.no_grad():
            model.eval()(example_input)
    finally:
        for handle in handles:
            handle.remove()
    return total


def _synchronize(device):
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def compare_speed(functions, warmup=3, repeats=15, device="cpu"):
    """Time several zero-argument callables side by side; return rows of results.

    Each repeat calls every function once, in turn (interleaved, so a busy machine slows
    all of them alike). Returns ``{name: {"median_s": ..., "speedup": ...}}`` where
    ``speedup`` is relative to the first entry.
    """
    if not functions:
        raise ValueError("Give at least one function to time.")
    times = {name: [] for name in functions}
    with torch.inference_mode():
        for _ in range(warmup):
            for fn in functions.values():
                fn()
        _synchronize(device)
        for _ in range(repeats):
            for name, fn in functions.items():
                start = time.perf_counter()
                fn()
                _synchronize(device)
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    first = next(iter(medians.values()))
    return {name: {"median_s": m, "speedup": first / m} for name, m in medians.items()}


def compare_throughput(models, example_input, warmup=3, repeats=15):
    """Inference throughput of several models on the same batch, side by side.

    Returns ``{name: {"median_s", "speedup", "items_per_s"}}``; ``speedup`` is relative to
    the first model. The models are put in eval mode.
    """
    for model in models.values():
        model.eval()
    results = compare_speed({name: (lambda m=m: m(example_input)) for name, m in models.items()},
                            warmup, repeats, example_input.device)
    for row in results.values():
        row["items_per_s"] = len(example_input) / row["median_s"]
    return results


def speed_table(results):
    """The results of ``compare_speed``/``compare_throughput`` as aligned text."""
    width = max(len(name) for name in results)
    lines = [f"{'':<{width}}  {'median':>10}  {'speed-up':>8}"]
    lines += [f"{name:<{width}}  {row['median_s'] * 1e3:>8.2f}ms  {row['speedup']:>7.2f}x"
              for name, row in results.items()]
    return "\n".join(lines)
