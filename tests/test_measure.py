"""Measurement helpers: counts, sizes, FLOPs and side-by-side timing."""
import pytest
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune

from course_utils import Net, SmallCNN
from course_utils.measure import (compare_speed, compare_throughput, count_flops,
                                  count_parameters, file_size, speed_table)


def test_count_parameters_sees_masks():
    model = Net()
    assert count_parameters(model) == 235_146
    prune.l1_unstructured(model.fc1, "weight", amount=0.5)
    assert count_parameters(model) == 235_146, "weight_orig is not counted twice"
    assert count_parameters(model, nonzero=True) == 235_146 - 100_352


def test_file_size_of_dense_net():
    size = file_size(Net())
    assert 235_146 * 4 < size < 235_146 * 4 + 10_000


def test_flops_linear_and_conv():
    assert count_flops(Net(), torch.zeros(2, 784)) == 2 * (784 * 256 + 256 * 128 + 128 * 10)
    conv = nn.Conv2d(3, 8, 3, padding=1)
    assert count_flops(conv, torch.zeros(1, 3, 5, 5)) == 8 * 25 * 3 * 9
    assert count_flops(SmallCNN(), torch.zeros(1, 1, 28, 28)) > 0


def test_compare_speed_ratios():
    results = compare_speed({"slow": lambda: sum(range(20000)), "fast": lambda: None},
                            warmup=1, repeats=5)
    assert results["slow"]["speedup"] == 1.0
    assert results["fast"]["speedup"] > 1.0
    assert "fast" in speed_table(results)
    with pytest.raises(ValueError, match="at least one"):
        compare_speed({})


def test_compare_throughput_counts_items():
    x = torch.zeros(64, 784)
    results = compare_throughput({"a": Net(), "b": Net()}, x, warmup=1, repeats=3)
    assert results["a"]["items_per_s"] == pytest.approx(64 / results["a"]["median_s"])
