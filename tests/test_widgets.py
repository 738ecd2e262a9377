"""Unit tests for course_utils.widgets (the sparsity explorer of 03_validation)."""

import re

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from course_utils import Net, get_loaders  # noqa: E402
from course_utils.data import TensorLoader  # noqa: E402
from course_utils.pruning import pruned_copy  # noqa: E402
from course_utils.widgets import SparsityExplorer  # noqa: E402

LINE = re.compile(r"accuracy at (\d+(?:\.\d+)?)% sparsity: (\d+(?:\.\d+)?)%")


@pytest.fixture(scope="module")
def small_val_loader():
    _, val_loader, _ = get_loaders()
    return TensorLoader(val_loader.images[:512], val_loader.labels[:512], batch_size=256)


@pytest.fixture
def explorer(small_val_loader):
    torch.manual_seed(0)
    return SparsityExplorer(pruned_copy, Net(), small_val_loader, sparsity=40)


def test_first_result_is_computed_when_created(explorer):
    assert explorer.result["sparsity"] == pytest.approx(0.4)
    assert explorer.result["method"] == "l1"
    assert 0 <= explorer.result["accuracy"] <= 100
    weight = explorer.result["model"].fc1.weight
    assert int((weight == 0).sum()) == round(0.4 * weight.numel())


def test_moving_the_slider_updates_the_result(explorer, capsys):
    explorer.slider.value = 90
    assert explorer.result["sparsity"] == pytest.approx(0.9)
    assert int((explorer.result["model"].fc3.weight == 0).sum()) == 1_152
    printed = LINE.findall(capsys.readouterr().out)
    assert printed and float(printed[-1][0]) == explorer.slider.value
    assert float(printed[-1][1]) == pytest.approx(explorer.result["accuracy"], abs=0.005)


def test_choosing_random_pruning(explorer):
    explorer.method.value = "random"
    assert explorer.result["method"] == "random"


def test_controls_are_labelled_for_a_learner(explorer):
    assert "sparsity" in explorer.slider.description
    assert (explorer.slider.min, explorer.slider.max) == (0, 95)
    assert [value for _, value in explorer.method.options] == ["l1", "random"]
    assert explorer.children[0].children == (explorer.slider, explorer.method)


def test_bad_input_says_what_to_fix(small_val_loader):
    with pytest.raises(TypeError, match="prune_fn"):
        SparsityExplorer("l1", Net(), small_val_loader)
    with pytest.raises(ValueError, match="whole percentages"):
        SparsityExplorer(pruned_copy, Net(), small_val_loader, sparsity=0.5, max_sparsity=0.9)
    with pytest.raises(ValueError, match="no layer"):
        SparsityExplorer(pruned_copy, Net(), small_val_loader, layer="conv1")
