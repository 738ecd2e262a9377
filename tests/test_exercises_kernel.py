"""What a learner sees of a wrong answer, in a real kernel (issue 21).

Every check of ``course_utils.exercises`` gets wrong answers of several kinds (a wrong number,
the wrong type, the wrong split, units off by 100, upside down, None where it applies), each in its
own cell of one notebook executed by nbclient, the way JupyterLab, Colab and nbconvert run it. The
displayed output of each cell (stream text, and an error's name, value and traceback) must hold a
hint and nothing else: neither the expected value nor any line of the check function's source.
The same kernel then accepts a right answer per check, and runs notebook 04's lottery cells after
a wrong ticket. One kernel, small models built once: a few seconds.
"""

import ast
import inspect
import json
import re
from pathlib import Path

import nbformat
import pytest

from course_utils import exercises as ex

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;]*m")

# Built once in the kernel; EXPECTED holds each check's right answers (values that must never
# be displayed by a wrong one), computed the way the worked solutions compute them.
SETUP = r"""
import copy, json, math
import torch
import torch.nn as nn
from torch.nn.utils import prune
from course_utils import exercises as ex
from course_utils.data import TensorLoader, class_names
from course_utils.measure import count_macs, count_parameters
from course_utils.models import Net, SmallResNet
from course_utils.pruning import amount_for_target, cubic_sparsity
from course_utils.training import accuracy

torch.manual_seed(0)
net = Net()
g = torch.Generator().manual_seed(1)
images = torch.randn(400, 784, generator=g)
images = (images - images.mean()) / images.std() * 0.99969 - 3.26e-4
labels = torch.randint(0, 10, (400,), generator=g)
loader = TensorLoader(images[:300], labels[:300], batch_size=64)
other = TensorLoader(images[300:], labels[300:], batch_size=64)        # "the wrong split"
sneaker = class_names().index("Sneaker")
sneakers = int((loader.labels == sneaker).sum())
mean, std = loader.images.mean().item(), loader.images.std().item()
history = {"val_loss": [0.5, 0.2888], "val_acc": [80.0, 89.84]}

masked40 = copy.deepcopy(net)
for layer in (masked40.fc1, masked40.fc2, masked40.fc3):
    prune.l1_unstructured(layer, "weight", amount=0.2)
twice = copy.deepcopy(net)
for layer in (twice.fc1, twice.fc2, twice.fc3):
    prune.l1_unstructured(layer, "weight", amount=0.4)
    prune.remove(layer, "weight")

sparsities = [0, 20, 40, 60, 80]
curve = {"l1": {0: 90.0, 20: 89.9, 40: 89.5, 60: 89.1, 80: 85.0},
         "random": {0: 90.0, 20: 88.0, 40: 80.0, 60: 60.0, 80: 30.0}}
only_fc2 = copy.deepcopy(net)
prune.l1_unstructured(only_fc2.fc2, "weight", amount=0.95)
fc2_acc = accuracy(only_fc2, loader)
fc2_other = accuracy(only_fc2, other)
dense_acc = accuracy(net, loader)

targets = [cubic_sparsity(t, 4, 0.9) for t in range(1, 5)]
amounts = [amount_for_target(a, b) for a, b in zip([0.0] + targets, targets)]
total = net.fc2.weight.numel()
counts = [round(t * total) for t in targets]
count_amounts = [b - a for a, b in zip([0] + counts, counts)]

final = Net()
for layer in (final.fc1, final.fc2, final.fc3):
    prune.l1_unstructured(layer, "weight", amount=0.95)
    prune.remove(layer, "weight")
def ticket_from(seed, source=final):
    torch.manual_seed(seed)
    ticket = Net()
    for name in ("fc1", "fc2", "fc3"):
        prune.custom_from_mask(getattr(ticket, name), "weight",
                               mask=(getattr(source, name).weight != 0).float())
    return ticket
other_final = copy.deepcopy(net)
for layer in (other_final.fc1, other_final.fc2, other_final.fc3):
    prune.l1_unstructured(layer, "weight", amount=0.95)
    prune.remove(layer, "weight")

magnitude = copy.deepcopy(net)
prune.global_unstructured([(getattr(magnitude, n), "weight") for n in ("fc1", "fc2", "fc3")],
                          pruning_method=prune.L1Unstructured, amount=0.9)
results = {(0.9, "global"): {"model": magnitude, "before": accuracy(magnitude, loader)}}
taylor = copy.deepcopy(net)
scores = {(getattr(taylor, n), "weight"): torch.rand_like(getattr(taylor, n).weight)
          for n in ("fc1", "fc2", "fc3")}
prune.global_unstructured(list(scores), pruning_method=prune.L1Unstructured, amount=0.9,
                          importance_scores=scores)
taylor_acc = accuracy(taylor, loader)
taylor_better = taylor_acc > results[0.9, "global"]["before"]
taylor80 = copy.deepcopy(net)
prune.global_unstructured([(getattr(taylor80, n), "weight") for n in ("fc1", "fc2", "fc3")],
                          pruning_method=prune.L1Unstructured, amount=0.8)
levels = [0.8, 0.9, 0.95, 0.98]
after = {(s, "global"): {"after": a, "before": b}
         for s, a, b in zip(levels, [89.5, 88.9, 87.0, 80.0], [89.6, 88.0, 70.0, 40.0])}

masked = copy.deepcopy(net)
prune.ln_structured(masked.fc1, "weight", amount=0.5, n=2, dim=0)
l1 = copy.deepcopy(net)
prune.ln_structured(l1.fc1, "weight", amount=0.5, n=1, dim=0)
overlap = int(((l1.fc1.weight_mask[:, 0] == 0) & (masked.fc1.weight_mask[:, 0] == 0)).sum())

x = torch.randn(1, 784)
params75 = (784 * 64 + 64) + (64 * 32 + 32) + (32 * 10 + 10)
ratio75 = count_macs(net, x) / (784 * 64 + 64 * 32 + 32 * 10)
param_ratio75 = count_parameters(net) / params75

weight = torch.randn(64, 100, generator=g)
weight[weight.abs() < 1.5] = 0
kept = int((weight != 0).sum())
bitmask = math.ceil(weight.numel() / 8) + 4 * kept
to_save = copy.deepcopy(net)
prune.global_unstructured([(getattr(to_save, n), "weight") for n in ("fc1", "fc2", "fc3")],
                          pruning_method=prune.L1Unstructured, amount=0.9)
not_loaded, reloaded = Net(), Net()
for name in ("fc1", "fc2", "fc3"):
    prune.identity(getattr(not_loaded, name), "weight")
    prune.identity(getattr(reloaded, name), "weight")
reloaded.load_state_dict(to_save.state_dict())
permanent = copy.deepcopy(net)
for layer in (permanent.fc1, permanent.fc2, permanent.fc3):
    prune.l1_unstructured(layer, "weight", amount=0.2)
    prune.remove(layer, "weight")
w24 = torch.randn(16, 8, generator=g)
def rows(w):
    groups = w.abs().reshape(w.shape[0], -1, 4)
    return torch.zeros_like(groups).scatter_(-1, groups.topk(2, dim=-1).indices,
                                             1.0).reshape(w.shape)
def columns(w):
    return rows(w.t()).t()

resnet_quarter = count_parameters(SmallResNet(channels=(12, 24)))
resnet_dense = count_parameters(SmallResNet())

from course_utils.data import load_shakespeare
from course_utils.language_model import evaluate_lm
from course_utils.lm_pruning import (calibration_windows, head_scores, input_grams, keep_mask,
                                     prune_transformer)
from course_utils.models import TinyGPT
torch.manual_seed(0)
gpt = TinyGPT(context=16, width=32, n_layer=2, n_head=2, mlp_width=64).eval()
corpus = load_shakespeare()
calib, calib_targets = calibration_windows(corpus, count=8, context=16, seed=0)
with torch.no_grad():
    hidden1 = gpt.blocks[0](gpt.tok_emb(calib) + gpt.pos_emb(torch.arange(16)))
fc1_weight = gpt.blocks[1].fc.weight.abs()
wanda_fc1 = keep_mask(fc1_weight * input_grams(gpt.blocks[1], hidden1)["fc"].diagonal().sqrt(),
                      0.5, per_row=True)
magnitude_fc1 = keep_mask(fc1_weight, 0.5)
head_sc = head_scores(gpt, calib, calib_targets)
gated, removable, gpt_loss = copy.deepcopy(gpt), 0, evaluate_lm(gpt, corpus)
for count, flat in enumerate(head_sc.flatten().argsort().tolist(), start=1):
    gated.blocks[flat // 2].attn.head_gate[flat % 2] = 0.0
    if evaluate_lm(gated, corpus) - gpt_loss > 0.10:
        break
    removable = count
ppl48 = math.exp(evaluate_lm(prune_transformer(gpt, calib, "sparsegpt", n_m=(4, 8))[0], corpus))
ppl24 = math.exp(evaluate_lm(prune_transformer(gpt, calib, "sparsegpt", n_m=(2, 4))[0], corpus))
better48 = ppl48 < ppl24

import pathlib, tempfile
from onnxruntime.quantization import QuantType, quantize_dynamic
from course_utils.deploy import export_onnx
onnx_dir = pathlib.Path(tempfile.mkdtemp())
sparse90 = copy.deepcopy(net)
prune.global_unstructured([(getattr(sparse90, n), "weight") for n in ("fc1", "fc2", "fc3")],
                          pruning_method=prune.L1Unstructured, amount=0.9)
for name in ("fc1", "fc2", "fc3"):
    prune.remove(getattr(sparse90, name), "weight")
from onnxruntime.quantization import QuantFormat, quantize_static
from course_utils.deploy import ImageBatches
def static_int8(source, target, weight_type=QuantType.QInt8):
    quantize_static(source, target, ImageBatches(images[:256]), quant_format=QuantFormat.QDQ,
                    per_channel=True, weight_type=weight_type, activation_type=QuantType.QUInt8)
    return target
fp32_file = export_onnx(sparse90, images, onnx_dir / "sparse90.onnx")
int8_file = static_int8(fp32_file, onnx_dir / "sparse90_int8.onnx")
uint8_file = static_int8(fp32_file, onnx_dir / "sparse90_uint8.onnx", QuantType.QUInt8)
import onnx
from onnx import numpy_helper
if not any(numpy_helper.to_array(t).dtype.name == "uint8" and len(t.dims) == 2
           for t in onnx.load(uint8_file).graph.initializer):
    uint8_file = fp32_file  # an older onnxruntime kept these weights signed: no wrong case here
dynamic_file = onnx_dir / "sparse90_dynamic.onnx"
quantize_dynamic(fp32_file, dynamic_file, weight_type=QuantType.QInt8)
dense_int8_file = static_int8(export_onnx(net, images, onnx_dir / "dense.onnx"),
                              onnx_dir / "dense_int8.onnx")
pt_file = onnx_dir / "sparse90.pt"
torch.save(sparse90.state_dict(), pt_file)
with torch.no_grad():  # int8 may flip a near tie: judge on the clearest predictions, as labels
    top2 = sparse90(images).topk(2, dim=1)
margin = top2.values[:, 0] - top2.values[:, 1]
clear = margin > margin.quantile(0.5)
clear_loader = TensorLoader(images[clear], top2.indices[clear, 0], batch_size=64)

EXPECTED = {
    "check_sneaker_count": [sneakers],
    "check_normalisation": [mean, std],
    "check_parameter_count": [235146],
    "check_validation_metrics": [0.2888, 89.84],
    "check_second_amount": [0.375, 9830],
    "check_permanent": [],
    "check_max_free": [60],
    "check_fc2_sensitivity": [fc2_acc],
    "check_cubic_amounts": amounts + count_amounts,
    "check_lottery_ticket": [],
    "check_taylor_pruning": [taylor_acc],
    "check_max_sparsity": [0.9],
    "check_norm_overlap": [overlap],
    "check_quarter_model": [params75, ratio75],
    "check_bitmask_bytes": [bitmask],
    "check_reloaded": [],
    "check_mask_2_4_outputs": [],
    "check_residual_group": ["block2.conv2", "block3.conv2"],
    "check_pruned_resnet_parameters": [resnet_quarter, "12, 24", "(12,24)"],
    "check_wanda_mask": [],
    "check_heads_removable": [removable],
    "check_n_m_pattern": [ppl48, ppl24],
    "check_break_even": [0.125, "1/8", "1 / 8", "12.5"],
    "check_int8_mlp": [],
}
print(json.dumps(EXPECTED))
"""

# (check, arguments after the answer, wrong answers): each wrong answer is an expression of the
# kernel's names; "None" cases that only half-answer must say "Not answered yet".
WRONG = {
    "check_sneaker_count": (
        ", loader",
        [
            "sneakers + 1",
            "'many'",
            "[sneakers]",
            "loader.labels == sneaker",
            "int((other.labels == sneaker).sum())",
            "len(loader.labels)",
            "sneakers * 100",
            "sneakers / 100",
            "1 / sneakers",
            "float('nan')",
            "sneakers + 0.5",
            "{'n': sneakers}",
        ],
    ),
    "check_normalisation": (
        ", loader",
        [
            "std, mean",
            "mean + 0.1, std",
            "mean, std * 1.1",
            "0.0, 1.0",
            "0, 1",
            "round(mean, 4), round(std, 4)",
            "loader.images.mean(dim=1), std",
            "'zero', 1",
            "other.images.mean().item(), other.images.std().item()",
            "mean * 100, std * 100",
            "mean, 1 / std",
            "mean, None",
            "[mean], [std]",
        ],
    ),
    "check_parameter_count": (
        "",
        [
            "235147",
            "784 * 256 + 256 * 128 + 128 * 10",
            "'235146'",
            "2351.46",
            "235146.5",
            "nn.Linear(3, 4)",
            "[235146]",
            "1 / 235146",
            "23514600",
            "torch.ones(3)",
        ],
    ),
    "check_validation_metrics": (
        ", history",
        [
            "0.2888, 0.8984",
            "89.84, 0.2888",
            "0.2888, 89.72",
            "0.30, 89.84",
            "'low', 89.84",
            "0.2888, None",
            "torch.tensor([0.2888, 0.1]), 89.84",
            "0.2888, 8984.0",
            "1 / 0.2888, 89.84",
            "0.2888, 100 - 89.84",
        ],
    ),
    "check_second_amount": (
        ", net",
        [
            "0.3",
            "0.5",
            "0.4",
            "1.5",
            "9830.0",
            "16384",
            "-5",
            "40_000",
            "'0.375'",
            "[0.375]",
            "37.5",
            "1 / 0.375",
            "0.37",
            "torch.ones(2)",
            "True",
            "float('inf')",
            "1 - 0.375",
        ],
    ),
    "check_permanent": (
        ", net",
        [
            "net",
            "masked40",
            "twice",
            "'model'",
            "nn.Linear(784, 256)",
            "Net()",
            "masked40.state_dict()",
        ],
    ),
    "check_max_free": (
        ", curve, sparsities, 90.0",
        ["40", "0.6", "80", "'60'", "6000", "[60]", "20", "0", "1 / 60", "60.5"],
    ),
    "check_fc2_sensitivity": (
        ", net, loader",
        [
            "fc2_acc + 1",
            "fc2_acc / 100",
            "str(fc2_acc)",
            "torch.ones(3)",
            "dense_acc",
            "fc2_other",
            "100 - fc2_acc",
            "fc2_acc * 100",
            "[fc2_acc]",
        ],
    ),
    "check_cubic_amounts": (
        ", net",
        [
            "targets",
            "[round(a, 3) for a in amounts]",
            "[round(a, 2) for a in amounts]",
            "[0.225] * 4",
            "amounts[:3]",
            "'abc'",
            "[100 * a for a in amounts]",
            "amounts[::-1]",
            "[1 / a for a in amounts]",
            "[total] * 4",
            "[None] * 4",
            "[-a for a in amounts]",
            "{0: amounts[0]}",
            "[1 - a for a in amounts]",
            "[float(c) for c in count_amounts]",
        ],
    ),
    "check_lottery_ticket": (
        ", final",
        [
            "Net()",
            "ticket_from(1)",
            "ticket_from(0, other_final)",
            "'ticket'",
            "final",
            "nn.Linear(3, 4)",
            "[ticket_from(0)]",
        ],
    ),
    "check_taylor_pruning": (
        ", results, loader",
        [
            "taylor, taylor_acc, not taylor_better",
            "taylor, taylor_acc + 2, taylor_better",
            "taylor, taylor_acc / 100, taylor_better",
            "taylor, taylor_acc, 'yes'",
            "magnitude, taylor_acc, taylor_better",
            "taylor80, taylor_acc, taylor_better",
            "'model', taylor_acc, taylor_better",
            "taylor, str(taylor_acc), taylor_better",
            "taylor, None, taylor_better",
            "net, taylor_acc, taylor_better",
        ],
    ),
    "check_max_sparsity": (
        ", after, levels, 89.8",
        ["0.8", "90", "0.95", "'0.9'", "1 / 0.9", "0.98", "[0.9]", "0.1", "9000", "-0.9"],
    ),
    "check_norm_overlap": (
        ", net, masked",
        [
            "overlap - 1",
            "128",
            "overlap / 128",
            "str(overlap)",
            "l1.fc1.weight_mask",
            "overlap * 100",
            "256 - overlap",
            "1 / overlap",
            "float(overlap) + 0.5",
        ],
    ),
    "check_quarter_model": (
        ", net, x",
        [
            "params75 + 10, ratio75",
            "params75, param_ratio75",
            "params75, 1 / ratio75",
            "params75, 1 / param_ratio75",
            "params75, round(ratio75, 2)",
            "params75, 100 * ratio75",
            "params75, 1 - 1 / ratio75",
            "str(params75), ratio75",
            "params75, None",
            "params75 * 100, ratio75",
            "count_parameters(net), ratio75",
            "params75, 'four'",
            "params75, torch.ones(2)",
        ],
    ),
    "check_bitmask_bytes": (
        ", weight",
        [
            "weight.numel() + 4 * kept",
            "math.ceil(weight.numel() / 8) + kept",
            "math.ceil(weight.numel() / 8)",
            "bitmask + 1",
            "bitmask * 8",
            "bitmask / 8",
            "str(bitmask)",
            "bitmask + 0.5",
            "1 / bitmask",
            "weight.numel() * 4",
        ],
    ),
    "check_reloaded": (
        ", to_save, loader",
        [
            "Net()",
            "not_loaded",
            "'reloaded'",
            "nn.Linear(3, 4)",
            "masked40",
            "to_save.state_dict()",
        ],
    ),
    "check_mask_2_4_outputs": (
        ", w24",
        [
            "rows",
            "torch.ones_like",
            "lambda w: 1 - columns(w)",
            "lambda w: 1 / 0",
            "lambda w: columns(w)[:4]",
            "lambda w: columns(w).tolist()",
            "lambda w: rows(w.t())",
            "lambda w: 'mask'",
        ],
    ),
    "check_residual_group": (
        "",
        [
            "['block2.conv2', 'block3.conv2']",
            "['down.0', 'block2.conv2']",
            "['down.0', 'block2.conv2', 'block3.conv2', 'block2.conv1']",
            "'down.0'",
            "[0, 1]",
            "5",
            "['down.0']",
            "{'down.0': 1}",
            "['down.0', None]",
            "['down.0', 'fc']",
        ],
    ),
    "check_pruned_resnet_parameters": (
        "",
        [
            "resnet_quarter + 1",
            "resnet_dense",
            "resnet_quarter + 0.5",
            "str(resnet_quarter)",
            "resnet_quarter * 100",
            "resnet_dense - resnet_quarter",
            "0.75",
            "SmallResNet()",
            "[resnet_quarter]",
        ],
    ),
    "check_wanda_mask": (
        ", gpt, calib",
        [
            "~wanda_fc1",
            "magnitude_fc1",
            "wanda_fc1.float()",
            "wanda_fc1[:4]",
            "'mask'",
            "keep_mask(fc1_weight, 0.5, per_row=True)",
            "torch.ones_like(wanda_fc1)",
            "[True]",
        ],
    ),
    "check_heads_removable": (
        ", gpt, corpus, head_sc",
        ["removable + 1", "'two'", "-1", "1.5", "[removable]", "100", "removable * 100"],
    ),
    "check_n_m_pattern": (
        ", gpt, corpus, calib",
        [
            "ppl48 + 5, better48",
            "math.log(ppl48), better48",
            "ppl48 * 100, better48",
            "'low', better48",
            "ppl48, not better48",
            "ppl48, 'yes'",
            "1 / ppl48, better48",
            "torch.ones(2), better48",
        ],
    ),
    "check_break_even": (
        "",
        ["1 / 32", "7 / 8", "12.5", "0.2", "0.1", "0.14", "'one eighth'", "[0.125]", "-0.125", "8"],
    ),
    "check_int8_mlp": (
        ", sparse90, clear_loader",
        [
            "str(onnx_dir / 'missing.onnx')",
            "fp32_file",
            "dynamic_file",
            "uint8_file",
            "dense_int8_file",
            "pt_file",
            "42",
            "sparse90",
            "[int8_file]",
        ],
    ),
}

RIGHT = {
    "check_sneaker_count": "sneakers, loader",
    "check_normalisation": "mean, std, loader",
    "check_parameter_count": "235146",
    "check_validation_metrics": "0.2888, 89.84, history",
    "check_second_amount": "9830, net",
    "check_permanent": "permanent, net",
    "check_max_free": "60, curve, sparsities, 90.0",
    "check_fc2_sensitivity": "fc2_acc, net, loader",
    "check_cubic_amounts": "amounts, net",
    "check_lottery_ticket": "ticket_from(0), final",
    "check_taylor_pruning": "taylor, taylor_acc, taylor_better, results, loader",
    "check_max_sparsity": "0.9, after, levels, 89.8",
    "check_norm_overlap": "overlap, net, masked",
    "check_quarter_model": "params75, ratio75, net, x",
    "check_bitmask_bytes": "bitmask, weight",
    "check_reloaded": "reloaded, to_save, loader",
    "check_mask_2_4_outputs": "columns, w24",
    "check_residual_group": "['down.0', 'block2.conv2', 'block3.conv2']",
    "check_pruned_resnet_parameters": "resnet_quarter",
    "check_wanda_mask": "wanda_fc1, gpt, calib",
    "check_heads_removable": "removable, gpt, corpus, head_sc",
    "check_n_m_pattern": "ppl48, better48, gpt, corpus, calib",
    "check_break_even": "1 / 8",
    "check_int8_mlp": "int8_file, sparse90, clear_loader",
}

CHECKS = sorted(name for name in dir(ex) if name.startswith("check_") and name != "check_close")


def test_every_check_has_cases():
    """A check added to exercises.py (notebook 09's) must get its wrong answers here."""
    assert sorted(WRONG) == CHECKS and sorted(RIGHT) == CHECKS


def _displayed(cell):
    """What the front end shows of a cell: streams, results, and an error's name, value and
    traceback (JupyterLab draws the traceback; other front ends the name and value)."""
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            parts += [output.ename, output.evalue, *output.traceback]
        else:
            parts.append(str(output.get("data", {}).get("text/plain", "")))
    return ANSI.sub("", "\n".join(parts))


def _renderings(value):
    """The ways a value could be shown: as given, with thousands separators, rounded."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, int):
        return {f"{value}", f"{value:,}"}
    shown = {f"{value}", f"{value:.4g}", f"{value:.3f}", f"{value:.4f}"}
    if abs(value) >= 1:
        shown.add(f"{value:.2f}")
    return shown


# Source lines a hint may quote because the exercise's own text gives them already.
GIVEN = {"torch.manual_seed(0)"}  # 04 Ex2: "The baseline started from torch.manual_seed(0); Net()"


def _source_lines(name):
    """The check's own lines worth hiding: code and hint fragments, not brackets or blank lines."""
    lines = inspect.getsource(getattr(ex, name)).splitlines()
    return {
        line.strip()
        for line in lines
        if len(line.strip()) >= 12 and not line.strip().startswith("@")
    } - GIVEN


@pytest.fixture(scope="module")
def executed():
    """One kernel: the setup, then every wrong answer, every right answer, and notebook 04's
    lottery cells after a wrong ticket."""
    from nbclient import NotebookClient

    cells = [nbformat.v4.new_code_cell(SETUP)]
    cases = []
    for name in CHECKS:
        rest, answers = WRONG[name]
        for answer in answers:
            cells.append(
                nbformat.v4.new_code_cell(
                    f"from course_utils.exercises import {name}\n{name}({answer}{rest})"
                )
            )
            cases.append((name, answer, cells[-1]))
    rights = []
    for name in CHECKS:
        cells.append(nbformat.v4.new_code_cell(f"ex.{name}({RIGHT[name]})"))
        rights.append((name, cells[-1]))
    nb = nbformat.v4.new_notebook(cells=cells + _lottery_cells())
    NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(ROOT)}},
    ).execute()
    assert not any(o.output_type == "error" for o in nb.cells[0].outputs), _displayed(nb.cells[0])
    expected = json.loads(nb.cells[0].outputs[-1].text.strip().splitlines()[-1])
    return expected, cases, rights, nb.cells[-3:]


def _lottery_cells():
    """Notebook 04's answer cell (with a wrong ticket typed in), its check, and the experiment."""
    nb = nbformat.read(ROOT / "notebooks" / "04_fine_tuning.ipynb", as_version=4)
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    answer = next(s for s in sources if s.startswith("ticket = None"))
    check = next(
        s
        for s in sources
        if "ticket_ok = check_lottery_ticket" in s and s.startswith("from course_utils")
    )
    experiment = next(s for s in sources if s.startswith("if not ticket_ok"))
    return [
        nbformat.v4.new_code_cell(
            "device, layers, final_model = torch.device('cpu'), ('fc1', 'fc2', 'fc3'), final\n"
            + answer.replace("ticket = None", "ticket = ticket_from(1)  # the wrong seed")
        ),
        nbformat.v4.new_code_cell(check),
        nbformat.v4.new_code_cell(experiment),
    ]


def test_a_wrong_answer_shows_a_hint_and_nothing_else(executed):
    expected, cases, _, _ = executed
    problems = []
    for name, answer, cell in cases:
        shown = _displayed(cell)
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if not errors:
            if not shown.startswith("Not answered yet: ") or "None" not in answer:
                problems.append(f"{name}({answer}): not judged wrong: {shown!r}")
            continue
        error = errors[0]
        if error.ename != "ExerciseCheckError" or not error.evalue.startswith("Not yet: "):
            problems.append(f"{name}({answer}): {error.ename} instead of a hint: {shown!r}")
            continue
        lines = [ANSI.sub("", line) for line in error.traceback]
        if not lines[0].startswith("Not yet: ") or len(lines) != 2:
            problems.append(f"{name}({answer}): the traceback is more than the hint: {lines}")
        for value in expected[name]:
            if isinstance(value, str) and value in answer.replace("'", ""):
                continue  # a name the learner typed may be shown back
            for text in _renderings(value):
                if re.search(rf"(?<![\w.]){re.escape(text)}(?![\w])", shown):
                    problems.append(f"{name}({answer}) shows the expected {text}: {shown!r}")
        for line in _source_lines(name):
            if line in shown:
                problems.append(f"{name}({answer}) shows its source line {line!r}")
    assert not problems, "\n".join(problems)


def test_a_right_answer_is_still_accepted(executed):
    _, _, rights, _ = executed
    for name, cell in rights:
        shown = _displayed(cell)
        assert shown.startswith("Correct! ") and "Error" not in shown, f"{name}: {shown!r}"


def test_the_lottery_experiment_waits_for_a_right_ticket(executed):
    """04: after a WRONG ticket the check stops, and the experiment cell says what to do instead
    of failing with NameError: name 'ticket_ok' is not defined (issue 21)."""
    *_, (answer, check, experiment) = executed
    assert not answer.outputs
    assert [o.ename for o in check.outputs if o.output_type == "error"] == ["ExerciseCheckError"]
    shown = _displayed(experiment)
    assert "Solve Exercise 2 first" in shown and "Error" not in shown, shown


def _assigned(source):
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython magics (%pip) in a setup cell
        return set()
    return {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


@pytest.mark.parametrize(
    "path", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.name
)
def test_a_verdict_kept_in_a_name_exists_when_the_check_raises(path):
    """A check cell that keeps its verdict (``ticket_ok = check_...(...)``) raises before the
    assignment on a wrong answer: an earlier cell (the answer cell) must define the name too."""
    nb = nbformat.read(path, as_version=4)
    code = [
        c
        for c in nb.cells
        if c.cell_type == "code" and "solution" not in c.metadata.get("tags", [])
    ]
    for i, cell in enumerate(code):
        if "course_utils.exercises import" not in cell.source:
            continue
        for name in _assigned(cell.source):
            assert any(name in _assigned(c.source) for c in code[:i]), (
                f"{path.name}: `{name}` is defined only when the check passes"
            )
