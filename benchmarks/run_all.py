"""The course's results table, measured on this machine: ``make bench``.

    .venv/bin/python -m benchmarks.run_all               # make bench: about 2-4 minutes on 2 cores
    .venv/bin/python -m benchmarks.run_all --reference   # maintainers: refresh the README's table

Measures, side by side in one run:

1. the data pipeline: one training epoch with the course loaders against a per-sample
   ``DataLoader`` + ``ToTensor`` pipeline (``benchmarks/data_pipeline.py``);
2. structured pruning (notebooks 06 and 08): half the hidden neurons of the MLP, half the channels
   of the small CNN and of the small ResNet (Torch-Pruning) removed, CPU throughput at batch 256
   against the dense model, with the MAC ratio, and the accuracy after a short fine-tune;
3. compact storage (notebook 07): dense state_dict file against bitmask + gzip at 90/95/98%;
4. accuracy against sparsity for layer-wise and global L1 pruning (notebooks 03-05), in one shot
   and after one epoch of fine-tuning;
5. the transformer of notebook 09: validation perplexity of ``TinyGPT`` after one-shot magnitude,
   Wanda and SparseGPT pruning at 50% and 2:4, the seconds each method takes, and the model with
   half its heads and MLP neurons removed: its CPU speed-up next to its MAC ratio;
6. deployment (notebook 10): the dense and the half-width CNN exported to ONNX and timed in ONNX
   Runtime against eager PyTorch (each speed-up with the MAC ratio beside it), static int8 of the
   half-width CNN (accuracy and file size), and the compression budget of the 95%-sparse ``Net``
   (bitmask + int8 + lzma against the dense file, with its accuracy);
7. on a CUDA GPU, if there is one: the structured speed-ups there, and 2:4 semi-structured
   sparsity (compute capability 8.0+). Without one it says it measured the CPU only.

Writes ``bench_results/results.json`` (everything, machine-readable) and
``bench_results/results.md``, and prints the table: your machine's figures. It changes no tracked
file. ``--reference`` (for maintainers, on the reference machine) also copies the table to
``benchmarks/RESULTS.md`` and into the README's Results section (between its ``results`` markers).
"""

import argparse
import copy
import json
import lzma
import math
import shutil
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.utils.prune as prune

from benchmarks.data_pipeline import run as data_pipeline_run
from course_utils import SmallCNN, SmallResNet, TinyGPT, accuracy, get_loaders, load_baseline
from course_utils.baseline import load_reference
from course_utils.chain import remove_pruned_units
from course_utils.data import load_shakespeare
from course_utils.deploy import ImageBatches, OrtModel, dequantized, export_onnx, int8_state
from course_utils.env import machine_info
from course_utils.language_model import evaluate_lm
from course_utils.lm_pruning import (
    PRUNERS,
    calibration_windows,
    head_scores,
    mlp_neuron_scores,
    prune_transformer,
    shrink_transformer,
)
from course_utils.measure import (
    compare_speed,
    compare_throughput,
    count_macs,
    count_parameters,
    cpu_throughput,
    file_size,
)
from course_utils.pruning import make_permanent, prunable_weights, pruned_copy, silence_batchnorm
from course_utils.sparse_kernels import mask_2_4, semi_structured_status, to_semi_structured
from course_utils.storage import to_bytes
from course_utils.training import fine_tune

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench_results"
COMMITTED_TABLE = ROOT / "benchmarks" / "RESULTS.md"
SPARSITIES = (0.5, 0.8, 0.9, 0.95, 0.98)
STORAGE_SPARSITIES = (0.9, 0.95, 0.98)


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def structured_mlp(baseline):
    """Half the neurons of fc1 and fc2 masked by L2 norm (notebook 06), then removed."""
    masked = copy.deepcopy(baseline)
    prune.ln_structured(masked.fc1, name="weight", amount=0.5, n=2, dim=0)
    prune.ln_structured(masked.fc2, name="weight", amount=0.5, n=2, dim=0)
    # any input: the surgery checks itself on it
    example = torch.randn(256, 784, device=masked.fc1.weight.device)
    return remove_pruned_units(masked, example)


def structured_cnn(cnn):
    """Half of each conv's filters masked by L2 norm, BatchNorm too (notebook 06), then removed."""
    masked = copy.deepcopy(cnn)
    convs = [m for m in masked.features if isinstance(m, nn.Conv2d)]
    norms = [m for m in masked.features if isinstance(m, nn.BatchNorm2d)]
    for conv, bn in zip(convs, norms):
        prune.ln_structured(conv, name="weight", amount=0.5, n=2, dim=0)
        silence_batchnorm(conv, bn)
    # any input: the surgery checks itself on it
    example = torch.randn(64, 1, 28, 28, device=convs[0].weight.device)
    return remove_pruned_units(masked, example)


def structured_resnet(resnet, example):
    """Half the channels of every group removed by Torch-Pruning, filter L2 norm (notebook 08)."""
    import torch_pruning as tp

    model = copy.deepcopy(resnet).eval()
    pruner = tp.pruner.BasePruner(
        model,
        example[:1],
        importance=tp.importance.MagnitudeImportance(p=2),
        pruning_ratio=0.5,
        ignored_layers=[model.fc],
    )
    pruner.step()
    return model


def speed_row(dense, small, images, repeats):
    """CPU throughput of ``small`` against ``dense`` at batch 256, and the MAC ratio."""
    speed = cpu_throughput({"dense": dense, "pruned": small}, images, warmup=10, repeats=repeats)
    mac_ratio = count_macs(dense, images[:1]) / count_macs(small, images[:1])
    params = (count_parameters(dense), count_parameters(small))
    return {
        "speedup": speed["pruned"]["speedup"],
        "mac_ratio": mac_ratio,
        "dense_ms": 1e3 * speed["dense"]["median_s"],
        "pruned_ms": 1e3 * speed["pruned"]["median_s"],
        "parameters": params,
    }


def bench_structured(device, repeats_mlp=300, repeats_cnn=30):
    log("structured pruning: MLP")
    train_loader, _, test_loader = get_loaders(device=device)
    baseline = load_baseline(device=device)
    small = structured_mlp(baseline)
    mlp = speed_row(baseline, small, test_loader.images, repeats_mlp)
    mlp["dense_acc"] = accuracy(baseline, test_loader)
    mlp["acc_before"] = accuracy(small, test_loader)
    fine_tune(small, train_loader, epochs=5, cosine=True, weight_decay=5e-4)
    mlp["acc_after"], mlp["fine_tune"] = accuracy(small, test_loader), "5 epochs"

    log("structured pruning: CNN")
    cnn_train, _, cnn_test = get_loaders(flatten=False, device=device)
    cnn = load_baseline(SmallCNN, device=device)
    cnn_small = structured_cnn(cnn)
    cnn_row = speed_row(cnn, cnn_small, cnn_test.images, repeats_cnn)
    cnn_row["dense_acc"] = accuracy(cnn, cnn_test)
    cnn_row["acc_before"] = accuracy(cnn_small, cnn_test)
    fine_tune(cnn_small, cnn_train, epochs=1)
    cnn_row["acc_after"], cnn_row["fine_tune"] = accuracy(cnn_small, cnn_test), "1 epoch"

    log("structured pruning: ResNet (Torch-Pruning)")
    resnet = load_baseline(SmallResNet, device=device)
    resnet_small = structured_resnet(resnet, cnn_test.images[:8])
    resnet_row = speed_row(resnet, resnet_small, cnn_test.images, repeats_cnn)
    resnet_row["dense_acc"] = accuracy(resnet, cnn_test)
    resnet_row["acc_before"] = accuracy(resnet_small, cnn_test)
    fine_tune(resnet_small, cnn_train, epochs=2, cosine=True, weight_decay=5e-4)
    resnet_row["acc_after"], resnet_row["fine_tune"] = accuracy(resnet_small, cnn_test), "2 epochs"
    return {"mlp": mlp, "cnn": cnn_row, "resnet": resnet_row}, (baseline, small, cnn, cnn_small)


def bench_storage(baseline):
    log("compact storage at 90/95/98%")
    rows = {}
    for sparsity in STORAGE_SPARSITIES:
        model = make_permanent(pruned_copy(baseline, sparsity, globally=True))
        dense = file_size(model)
        compact = len(to_bytes(model, layout="bitmask", compress=True))
        csr = len(to_bytes(model, layout="csr", compress=True))
        rows[str(sparsity)] = {
            "dense_bytes": dense,
            "compact_bytes": compact,
            "ratio": dense / compact,
            "csr_gzip_bytes": csr,
            "csr_ratio": dense / csr,
        }
    return rows


def bench_accuracy(baseline, device):
    log("accuracy against sparsity (layer-wise and global, one epoch of fine-tuning each)")
    train_loader, _, test_loader = get_loaders(device=device)
    rows = {"dense": accuracy(baseline, test_loader)}
    for method in ("layer-wise", "global"):
        for sparsity in SPARSITIES:
            torch.manual_seed(0)
            model = pruned_copy(baseline, sparsity, globally=(method == "global"))
            before = accuracy(model, test_loader)
            fine_tune(model, train_loader, epochs=1)
            rows[f"{method} {sparsity}"] = {
                "method": method,
                "sparsity": sparsity,
                "one_shot": before,
                "fine_tuned": accuracy(model, test_loader),
            }
    return rows


def bench_transformer(repeats=15):
    """TinyGPT (notebook 09): one-shot pruning at 50% and 2:4, and half the heads and neurons."""
    corpus = load_shakespeare()
    dense = load_reference(TinyGPT).eval()
    calibration, targets = calibration_windows(corpus, count=64, seed=0)
    rows = {"dense": {"ppl": math.exp(evaluate_lm(dense, corpus))}}
    for method in PRUNERS:
        for key, pattern in (("50%", {"sparsity": 0.5}), ("2:4", {"n_m": (2, 4)})):
            pruned, seconds = prune_transformer(dense, calibration, method, **pattern)
            rows[f"{method} {key}"] = {
                "ppl": math.exp(evaluate_lm(pruned, corpus)),
                "seconds": seconds,
            }
    scores = head_scores(dense, calibration, targets)
    neurons = mlp_neuron_scores(dense, calibration)
    keep_heads = [row.argsort(descending=True)[:2].sort().values.tolist() for row in scores]
    keep_neurons = [row.argsort(descending=True)[:256].sort().values.tolist() for row in neurons]
    small = shrink_transformer(dense, keep_heads, keep_neurons)
    speed = compare_throughput({"dense": dense, "small": small}, calibration[:32], repeats=repeats)
    rows["structured"] = {
        "speedup": speed["small"]["speedup"],
        "mac_ratio": count_macs(dense, calibration[:1]) / count_macs(small, calibration[:1]),
        "parameters": [count_parameters(dense), count_parameters(small)],
        "ppl": math.exp(evaluate_lm(small, corpus)),
    }
    return rows


def bench_deployment(models, repeats=30):
    """Notebook 10: eager PyTorch vs ONNX Runtime, int8 after pruning, the compression budget."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    baseline, _, cnn, cnn_small = (copy.deepcopy(m).cpu().eval() for m in models)
    train_loader, _, test_loader = get_loaders()
    cnn_train, _, cnn_test = get_loaders(flatten=False)
    out = {}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        log("deployment: eager PyTorch vs ONNX Runtime (SmallCNN, dense and half-width)")
        runtime = {}
        for name, model in (("dense", cnn), ("half", cnn_small)):
            runtime[name] = OrtModel(export_onnx(model, cnn_test.images, folder / f"{name}.onnx"))
        speed = cpu_throughput(
            {"eager dense": cnn, "eager half": cnn_small, "ort dense": runtime["dense"],
             "ort half": runtime["half"]},
            cnn_test.images, warmup=10, repeats=repeats,
        )  # fmt: skip
        alone = cpu_throughput(
            {"ort dense": runtime["dense"], "ort half": runtime["half"]},
            cnn_test.images, warmup=10, repeats=repeats,
        )  # fmt: skip
        median = {name: row["median_s"] for name, row in speed.items()}
        out["mac_ratio"] = count_macs(cnn, cnn_test.images[:1]) / count_macs(
            cnn_small, cnn_test.images[:1]
        )
        out["eager_speedup"] = median["eager dense"] / median["eager half"]
        out["ort_speedup"] = median["ort dense"] / median["ort half"]
        out["ort_speedup_alone"] = alone["ort half"]["speedup"]
        out["ort_over_eager_dense"] = median["eager dense"] / median["ort dense"]
        out["ms"] = {name: 1e3 * value for name, value in median.items()}

        log("deployment: static int8 (QDQ) of the half-width CNN")
        draw = torch.randperm(len(cnn_train.images), generator=torch.Generator().manual_seed(0))
        int8_path = folder / "half_int8.onnx"
        quantize_static(
            runtime["half"].path, int8_path, ImageBatches(cnn_train.images[draw[:1024]]),
            quant_format=QuantFormat.QDQ, per_channel=True, weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
        )  # fmt: skip
        out["half_fp32_acc"] = accuracy(cnn_small, cnn_test)
        out["half_int8_acc"] = accuracy(OrtModel(int8_path), cnn_test)
        out["bytes"] = {
            "dense fp32": (folder / "dense.onnx").stat().st_size,
            "half fp32": runtime["half"].path.stat().st_size,
            "half int8": int8_path.stat().st_size,
        }

    log("deployment: the compression budget of the 95%-sparse Net")
    net95 = pruned_copy(baseline, 0.95, globally=True)
    torch.manual_seed(0)
    fine_tune(net95, train_loader, epochs=2, lr=0.01, cosine=True)
    make_permanent(net95)
    packed = lzma.compress(to_bytes(int8_state(net95), compress=False), preset=9)
    dense_bytes = file_size(baseline)
    out["budget"] = {
        "dense_bytes": dense_bytes,
        "packed_bytes": len(packed),
        "ratio": dense_bytes / len(packed),
        "dense_acc": accuracy(baseline, test_loader),
        "pruned_acc": accuracy(net95, test_loader),
        "int8_acc": accuracy(dequantized(net95), test_loader),
    }
    return out


def bench_cuda(models):
    """Structured speed-ups on the GPU and 2:4 kernels (compute capability 8.0+)."""
    device = torch.device("cuda")
    baseline, small, cnn, cnn_small = models
    out = {"device": torch.cuda.get_device_name(device)}
    log(f"CUDA: structured speed-ups on {out['device']}")
    _, _, test_loader = get_loaders(device=device)
    _, _, cnn_test = get_loaders(flatten=False, device=device)
    for name, dense, pruned, images in (
        ("mlp", baseline, small, test_loader.images),
        ("cnn", cnn, cnn_small, cnn_test.images),
    ):
        dense = copy.deepcopy(dense).to(device).eval()
        pruned = copy.deepcopy(pruned).to(device).eval()
        speed = compare_throughput(
            {"dense": dense, "pruned": pruned}, images[:4096], warmup=10, repeats=50
        )
        out[f"{name}_speedup_batch_4096"] = speed["pruned"]["speedup"]

    ok, why = semi_structured_status(device)
    out["semi_structured"] = why
    if not ok:
        log(f"CUDA: skipping 2:4 ({why})")
        return out
    log("CUDA: 2:4 semi-structured sparsity")
    train_loader, _, test_loader = get_loaders(device=device)
    model = copy.deepcopy(baseline).to(device)
    for module, name in prunable_weights(model):
        prune.custom_from_mask(module, name=name, mask=mask_2_4(module.weight))
    out["2:4_acc_one_shot"] = accuracy(model, test_loader)
    fine_tune(model, train_loader, epochs=2)
    out["2:4_acc_fine_tuned"] = accuracy(model, test_loader)
    make_permanent(model)
    dense16 = copy.deepcopy(model).half().eval()
    sparse16, report = to_semi_structured(model)
    out["2:4_layers"] = report
    x16 = test_loader.images.half()
    speed = compare_speed(
        {"dense": lambda: dense16(x16), "2:4": lambda: sparse16(x16)},
        warmup=10,
        repeats=50,
        device=device,
    )
    out["2:4_net_speedup_batch_10000"] = speed["2:4"]["speedup"]
    big = nn.Linear(4096, 4096).half().to(device).eval()  # random weights: only the speed matters
    with torch.no_grad():
        big.weight.mul_(mask_2_4(big.weight))
    big_sparse, _ = to_semi_structured(big)
    xb = torch.randn(4096, 4096, dtype=torch.float16, device=device)
    speed = compare_speed(
        {"dense": lambda: big(xb), "2:4": lambda: big_sparse(xb)},
        warmup=10,
        repeats=50,
        device=device,
    )
    out["2:4_layer_4096_speedup"] = speed["2:4"]["speedup"]
    return out


def _pct(value):
    return f"{value:.2f}%"


def markdown_report(results):
    """The results as Markdown: one small table per measurement, and the machine they ran on."""
    m = results["machine"]
    gpu = m["gpu"] or "none"
    lines = [
        f"Measured with `make bench` on {m['date']}: {m['cpu']}, {m['cores']} cores "
        f"({m['torch_threads']} torch threads), {m['os']}, Python {m['python']}, "
        f"torch {m['torch']}; GPU: {gpu}. Total time {results['seconds']:.0f} s.",
        "",
    ]
    d = results["data_pipeline"]
    slow, fast = d["epoch_seconds"].values()
    lines += [
        "| Measurement | Result |",
        "|---|---|",
        "| Data pipeline: one epoch of `Net`, course loaders vs per-sample `DataLoader` + "
        f"`ToTensor` (median of {d['repeats']}) | **{d['speedup']:.1f}x** faster ({fast:.2f} "
        f"s vs {slow:.2f} s) |",
    ]
    for key, label, goal in (
        ("mlp", "MLP, 50% of hidden neurons removed", 1.7),
        ("cnn", "SmallCNN, 50% of channels removed", 2.5),
        ("resnet", "SmallResNet, 50% of channels removed by Torch-Pruning", None),
    ):
        r = results["structured"].get(key)
        if r is None:
            continue
        target = (
            ""
            if goal is None
            else (f" (target >= {goal:g}x: {'met' if r['speedup'] >= goal else 'not met here'})")
        )
        lines.append(
            f"| {label}: CPU throughput at batch 256{target} | **{r['speedup']:.2f}x** "
            f"(MAC ratio: {r['mac_ratio']:.2f}x); {r['parameters'][1]:,} of "
            f"{r['parameters'][0]:,} parameters; test accuracy {_pct(r['dense_acc'])} "
            f"dense, {_pct(r['acc_after'])} after {r['fine_tune']} of fine-tuning |"
        )
    for sparsity, r in results["storage"].items():
        lines.append(
            f"| {float(sparsity):.0%}-sparse `Net` (global L1), bitmask + gzip vs dense "
            f"state_dict | **{r['ratio']:.1f}x** smaller ({r['compact_bytes'] / 1e3:.0f} "
            f"KB vs {r['dense_bytes'] / 1e3:.0f} KB; CSR + gzip {r['csr_ratio']:.1f}x) |"
        )
    gpt = results.get("transformer")
    if gpt:
        cells = []
        for method in ("magnitude", "wanda", "sparsegpt"):
            half, pattern = gpt[f"{method} 50%"], gpt[f"{method} 2:4"]
            cells.append(
                f"{method} {half['ppl']:.2f} / {pattern['ppl']:.2f} ({half['seconds']:.1f} s)"
            )
        r = gpt["structured"]
        lines += [
            f"| TinyGPT (notebook 09), validation perplexity at 50% / 2:4 (seconds to prune "
            f"at 50%), dense {gpt['dense']['ppl']:.2f} | {'; '.join(cells)} |",
            f"| TinyGPT with half its heads and MLP neurons removed: CPU throughput, 32 "
            f"windows of 64 characters | **{r['speedup']:.2f}x** (MAC ratio: "
            f"{r['mac_ratio']:.2f}x); {r['parameters'][1]:,} of {r['parameters'][0]:,} "
            f"parameters; perplexity {r['ppl']:.2f} before any recovery |",
        ]
    dep = results.get("deployment")
    if dep:
        share = dep["ort_speedup"] / dep["mac_ratio"]
        b = dep["bytes"]
        cost = dep["half_fp32_acc"] - dep["half_int8_acc"]
        smaller = b["half fp32"] / b["half int8"]
        met = cost <= 0.5 and smaller >= 3
        budget = dep["budget"]
        lines += [
            "| SmallCNN, 50% of channels removed, in ONNX Runtime vs eager PyTorch (batch 256; "
            f"target: at least 80% of the MAC ratio: {'met' if share >= 0.8 else 'not met here'}) "
            f"| ONNX Runtime **{dep['ort_speedup']:.2f}x** over its dense model "
            f"({100 * share:.0f}% of the MAC ratio {dep['mac_ratio']:.2f}x; "
            f"{dep['ort_speedup_alone']:.2f}x timed without PyTorch), eager PyTorch "
            f"{dep['eager_speedup']:.2f}x ({100 * dep['eager_speedup'] / dep['mac_ratio']:.0f}%); "
            f"ONNX Runtime over eager PyTorch, dense: {dep['ort_over_eager_dense']:.2f}x |",
            "| Half-width SmallCNN + static int8 (QDQ, ONNX Runtime; target: within 0.5 point "
            f"of fp32 and at least 3x smaller: {'met' if met else 'not met here'}) "
            f"| {_pct(dep['half_int8_acc'])} vs {_pct(dep['half_fp32_acc'])} fp32 "
            f"({-cost:+.2f} points); file **{smaller:.1f}x** smaller than the half-width fp32 "
            f"file ({b['half int8'] / 1e3:.0f} KB vs {b['half fp32'] / 1e3:.0f} KB), "
            f"{b['dense fp32'] / b['half int8']:.1f}x smaller than the dense fp32 file |",
            "| Compression budget, `Net` 95% sparse (2 epochs of fine-tuning) + int8 weights + "
            f"lzma vs dense state_dict (Deep Compression: 40x for LeNet-300-100 on MNIST) | "
            f"**{budget['ratio']:.1f}x** smaller ({budget['packed_bytes'] / 1e3:.0f} KB vs "
            f"{budget['dense_bytes'] / 1e3:.0f} KB); test accuracy {_pct(budget['dense_acc'])} "
            f"dense, {_pct(budget['pruned_acc'])} pruned, {_pct(budget['int8_acc'])} int8 |",
        ]
    acc = results["accuracy"]
    lines += [
        "",
        f"Test accuracy of `Net` (dense: {_pct(acc['dense'])}) after L1 pruning, in one shot "
        "and after one epoch of fine-tuning (SGD, momentum 0.9, lr 0.01):",
        "",
        "| Sparsity | Layer-wise, one shot | Layer-wise, +1 epoch | Global, one shot | "
        "Global, +1 epoch |",
        "|---|---|---|---|---|",
    ]
    for sparsity in SPARSITIES:
        lw, gl = acc[f"layer-wise {sparsity}"], acc[f"global {sparsity}"]
        lines.append(
            f"| {sparsity:.0%} | {_pct(lw['one_shot'])} | {_pct(lw['fine_tuned'])} | "
            f"{_pct(gl['one_shot'])} | {_pct(gl['fine_tuned'])} |"
        )
    cuda = results.get("cuda")
    lines.append("")
    if cuda is None:
        lines.append("No CUDA GPU on this machine: everything above was measured on the CPU only.")
    else:
        text = (
            f"On the GPU ({cuda['device']}), batch 4096: structured MLP "
            f"{cuda['mlp_speedup_batch_4096']:.2f}x, structured CNN "
            f"{cuda['cnn_speedup_batch_4096']:.2f}x. "
        )
        if "2:4_net_speedup_batch_10000" in cuda:
            text += (
                "2:4 semi-structured sparsity (fp16): `Net` "
                f"{_pct(cuda['2:4_acc_fine_tuned'])} after 2 epochs, speed-up "
                f"{cuda['2:4_net_speedup_batch_10000']:.2f}x at batch 10,000; one 4096 x 4096 "
                f"layer {cuda['2:4_layer_4096_speedup']:.2f}x."
            )
        else:
            text += f"2:4 not measured: {cuda['semi_structured']}"
        lines.append(text)
    lines += [
        "",
        "Reproduce: `make bench` (writes `bench_results/results.json` and `results.md`). "
        "Speed-ups are ratios measured side by side in one run (warm-up, repeats, median); "
        "absolute times depend on the machine and on what else runs on it.",
    ]
    return "\n".join(lines) + "\n"


def write_outputs(results, folder=RESULTS_DIR, committed=None):
    """Write results.json and results.md into ``folder``; copy the Markdown to ``committed``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    (folder / "results.md").write_text(markdown_report(results))
    if committed is not None:
        shutil.copyfile(folder / "results.md", committed)
    return folder / "results.json", folder / "results.md"


README = ROOT / "README.md"
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def update_readme(markdown, readme=README):
    """Put ``markdown`` between the results markers of the README (its Results section)."""
    text = Path(readme).read_text()
    if README_START not in text or README_END not in text:
        raise ValueError(f"{readme} has no {README_START} ... {README_END} markers to fill.")
    head, rest = text.split(README_START, 1)
    tail = rest.split(README_END, 1)[1]
    Path(readme).write_text(f"{head}{README_START}\n{markdown}{README_END}{tail}")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Measure the course's results table on this machine."
    )
    parser.add_argument(
        "--reference",
        action="store_true",
        help="also refresh benchmarks/RESULTS.md and the README's table (maintainers)",
    )
    reference = parser.parse_args(argv).reference
    start = time.perf_counter()
    results = {"machine": machine_info()}
    log(f"machine: {results['machine']}")
    train_device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    log("data pipeline (three epochs with each pipeline)")
    results["data_pipeline"] = data_pipeline_run()
    log(f"data pipeline: {results['data_pipeline']['speedup']:.1f}x")

    # CPU timings always run on CPU copies; training runs on the GPU when there is one
    results["structured"], models = bench_structured(train_device)
    for key, r in results["structured"].items():
        log(
            f"structured {key}: {r['speedup']:.2f}x (MAC ratio {r['mac_ratio']:.2f}x), "
            f"accuracy {r['dense_acc']:.2f}% -> {r['acc_after']:.2f}%"
        )
    results["storage"] = bench_storage(models[0])
    results["accuracy"] = bench_accuracy(models[0], train_device)
    log("transformer (notebook 09): one-shot pruning and the smaller model")
    results["transformer"] = bench_transformer()
    results["deployment"] = bench_deployment(models)
    d = results["deployment"]
    log(
        f"deployment: ONNX Runtime {d['ort_speedup']:.2f}x, eager {d['eager_speedup']:.2f}x "
        f"(MAC ratio {d['mac_ratio']:.2f}x); budget {d['budget']['ratio']:.1f}x"
    )

    if torch.cuda.is_available():
        results["cuda"] = bench_cuda(models)
    else:
        results["cuda"] = None
        log("no CUDA GPU: measured the CPU only")
    results["seconds"] = time.perf_counter() - start
    json_path, md_path = write_outputs(results, committed=COMMITTED_TABLE if reference else None)
    if reference:
        update_readme(md_path.read_text())
    print()
    print(md_path.read_text())
    also = (
        f", {COMMITTED_TABLE.relative_to(ROOT)} and the README's Results section"
        if reference
        else ""
    )
    log(
        f"wrote {json_path.relative_to(ROOT)}, {md_path.relative_to(ROOT)}{also} in "
        f"{results['seconds']:.0f} s"
    )


if __name__ == "__main__":
    main()
