"""Measurement helpers: counts, sparsity, sizes, MACs (FlopCounterMode) and side-by-side timing."""

import time

import pytest
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune
from torch.utils import benchmark

from course_utils import Net, SmallCNN
from course_utils.measure import (
    compare_speed,
    compare_throughput,
    count_macs,
    count_parameters,
    cpu_copy,
    cpu_throughput,
    file_size,
    sparsity,
    sparsity_report,
)
from course_utils.pruning import prunable_weights
from course_utils.sparse_kernels import to_csr_model


def test_count_parameters_sees_masks():
    model = Net()
    assert count_parameters(model) == 235_146
    prune.l1_unstructured(model.fc1, "weight", amount=0.5)
    assert count_parameters(model) == 235_146, "weight_orig is not counted twice"
    assert count_parameters(model, nonzero=True) == 235_146 - 100_352


def test_file_size_of_dense_net():
    size = file_size(Net())
    assert 235_146 * 4 < size < 235_146 * 4 + 10_000


def hand_counted_macs(model, x):
    """The multiply-accumulates of every Linear and Conv2d, counted with forward hooks."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Linear):
            total += output.numel() * module.in_features
        else:
            kernel = module.kernel_size[0] * module.kernel_size[1]
            total += output.numel() * kernel * module.in_channels // module.groups

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Linear, nn.Conv2d))
    ]
    with torch.no_grad():
        model.eval()(x)
    for handle in handles:
        handle.remove()
    return total


def test_macs_linear_and_conv_match_a_hand_count():
    assert count_macs(Net(), torch.zeros(2, 784)) == 2 * (784 * 256 + 256 * 128 + 128 * 10)
    conv = nn.Conv2d(3, 8, 3, padding=1)
    assert count_macs(conv, torch.zeros(1, 3, 5, 5)) == 8 * 25 * 3 * 9
    x = torch.zeros(1, 1, 28, 28)
    assert count_macs(SmallCNN(), x) == hand_counted_macs(SmallCNN(), x) > 0
    grouped = nn.Conv2d(4, 8, 3, groups=2)
    assert count_macs(grouped, torch.zeros(1, 4, 6, 6)) == hand_counted_macs(
        grouped, torch.zeros(1, 4, 6, 6)
    )


def test_masks_skip_no_arithmetic():
    model = Net()
    prune.l1_unstructured(model.fc1, "weight", amount=0.9)
    assert count_macs(model, torch.zeros(1, 784)) == count_macs(Net(), torch.zeros(1, 784))


def test_compare_speed_ratios_and_measurements():
    results = compare_speed(
        {"slow": lambda: sum(range(20000)), "fast": lambda: None}, warmup=1, repeats=5, label="toy"
    )
    assert results["fast"]["speedup"] > 1.0, "relative to the first entry: faster is above 1"
    reverse = compare_speed(
        {"fast": lambda: None, "slow": lambda: sum(range(20000))}, warmup=1, repeats=5
    )
    assert reverse["slow"]["speedup"] < 1.0, "and slower below 1"
    measurement = results["fast"]["measurement"]
    assert isinstance(measurement, benchmark.Measurement) and len(measurement.times) == 5
    assert measurement.median == results["fast"]["median_s"]
    table = str(benchmark.Compare([row["measurement"] for row in results.values()]))
    assert "fast" in table and "slow" in table
    with pytest.raises(ValueError, match="at least one"):
        compare_speed({})
    with pytest.raises(ValueError, match="repeats"):
        compare_speed({"a": lambda: None}, repeats=0)


def test_compare_speed_restores_the_thread_count():
    threads = torch.get_num_threads()
    compare_speed({"a": lambda: None}, warmup=0, repeats=2, threads=1)
    assert torch.get_num_threads() == threads


class Sleeper(nn.Module):
    """A model that takes ``seconds`` per call, whatever the batch, and records what it saw."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds, self.seen = seconds, []

    def forward(self, x):
        self.seen.append((tuple(x.shape), x.device.type, self.training))
        time.sleep(self.seconds)
        return x


def test_compare_throughput_counts_items_per_second_in_eval_mode():
    x = torch.zeros(64, 784)
    model = Sleeper(0.01)
    results = compare_throughput({"sleeper": model}, x, warmup=1, repeats=3)
    assert 64 / 0.2 < results["sleeper"]["items_per_s"] <= 64 / 0.01, "64 images per 10 ms call"
    assert set(model.seen) == {((64, 784), "cpu", False)}


def test_cpu_throughput_times_one_batch_on_the_cpu():
    images = torch.zeros(300, 784)
    model = Sleeper(0.0)
    results = cpu_throughput(
        {"a": Net(), "b": model}, images, batch_size=256, threads=1, warmup=1, repeats=3
    )
    assert set(results) == {"a", "b"}
    assert set(model.seen) == {((256, 784), "cpu", False)}, "one batch of 256, on the CPU"


def test_cpu_copy_of_a_masked_model_is_independent():
    model = Net()
    prune.ln_structured(model.fc1, "weight", amount=0.5, n=2, dim=0)
    x = torch.randn(4, 784)
    assert not model.fc1.weight.is_leaf, "the masked weight is computed: deepcopy refuses it"
    copy = cpu_copy(model)
    with torch.no_grad():
        assert torch.equal(copy(x), model(x))
        copy.fc1.weight_orig.zero_()
    assert model.fc1.weight_orig.abs().sum() > 0, "the original is untouched"
    assert not copy.training


def test_cpu_copy_refuses_a_sparse_model_and_says_how():
    with pytest.raises(ValueError, match=r"to_csr_model\(cpu_copy\(model\)\)"):
        cpu_copy(to_csr_model(Net()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cpu_throughput_times_gpu_models_as_cpu_copies():
    dense, masked = Net().cuda(), Net().cuda()
    prune.ln_structured(masked.fc1, "weight", amount=0.5, n=2, dim=0)
    csr = to_csr_model(cpu_copy(dense))
    results = cpu_throughput(
        {"dense": dense, "masked": masked, "csr": csr},
        torch.randn(300, 784, device="cuda"),
        warmup=1,
        repeats=2,
    )
    assert set(results) == {"dense", "masked", "csr"}
    assert next(dense.parameters()).is_cuda and masked.fc1.weight_orig.is_cuda, "left on the GPU"


def test_sparsity_counts_exact_zeros():
    assert sparsity(torch.tensor([0.0, 1.0, 0.0, -2.0])) == 0.5
    assert sparsity(torch.ones(3)) == 0.0


def test_sparsity_report_sees_masks_and_exact_counts(capsys):
    torch.manual_seed(0)
    model = Net()
    for module, name in prunable_weights(model):
        prune.l1_unstructured(module, name=name, amount=0.2)
    rows = sparsity_report(model)
    assert rows["fc1"] == (40_141, 200_704)  # round(0.2 * 200,704)
    assert rows["fc2"] == (6_554, 32_768)
    assert rows["fc3"] == (256, 1_280)
    assert rows["total"] == (46_951, 234_752)
    assert "fc1" in capsys.readouterr().out
    assert sparsity_report(model, quiet=True) == rows


def test_sparsity_report_after_remove_is_unchanged():
    torch.manual_seed(0)
    model = Net()
    prune.l1_unstructured(model.fc2, name="weight", amount=0.5)
    before = sparsity_report(model, quiet=True)
    prune.remove(model.fc2, "weight")
    assert sparsity_report(model, quiet=True) == before
