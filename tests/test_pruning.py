"""Unit tests for course_utils.pruning (notebooks 02-05)."""
import pytest
import torch
import torch.nn.utils.prune as prune

from course_utils import Net
from course_utils.measure import sparsity, sparsity_report
from course_utils.pruning import (
    amount_for_target,
    cubic_sparsity,
    make_permanent,
    prunable_weights,
    pruned_copy,
)


def test_prunable_weights_lists_every_linear_layer():
    model = Net()
    pairs = prunable_weights(model)
    assert [module for module, _ in pairs] == [model.fc1, model.fc2, model.fc3]
    assert {name for _, name in pairs} == {"weight"}


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


def test_amount_for_target_compounds_like_prune():
    amount = amount_for_target(0.2, 0.5)
    assert amount == pytest.approx(0.375)
    torch.manual_seed(0)
    model = Net()
    prune.l1_unstructured(model.fc2, name="weight", amount=0.2)
    prune.l1_unstructured(model.fc2, name="weight", amount=amount)
    assert sparsity(model.fc2.weight) == pytest.approx(0.5, abs=1e-4)


@pytest.mark.parametrize("current, target", [(0.5, 0.2), (-0.1, 0.5), (0.2, 1.0)])
def test_amount_for_target_rejects_bad_input(current, target):
    with pytest.raises(ValueError, match="[Ss]parsit"):
        amount_for_target(current, target)


def test_cubic_sparsity_follows_zhu_and_gupta():
    values = [cubic_sparsity(t, 4, 0.95) for t in range(5)]
    assert values[0] == 0.0 and values[-1] == pytest.approx(0.95)
    assert values[1] == pytest.approx(0.95 * (1 - 0.75 ** 3))
    steps = [b - a for a, b in zip(values, values[1:])]
    assert all(s > 0 for s in steps) and steps == sorted(steps, reverse=True), "big steps first"
    assert cubic_sparsity(0, 3, 0.9, initial=0.5) == pytest.approx(0.5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(step=5, n_steps=4, final=0.9), "step"),
    (dict(step=1, n_steps=0, final=0.9), "n_steps"),
    (dict(step=1, n_steps=2.5, final=0.9), "n_steps"),
    (dict(step=1, n_steps=4, final=1.2), "fractions"),
    (dict(step=1, n_steps=4, final=0.5, initial=0.8), "initial <= final"),
])
def test_cubic_sparsity_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cubic_sparsity(**kwargs)


def test_pruned_copy_leaves_the_model_dense():
    model = Net()
    pruned = pruned_copy(model, 0.5)
    assert not prune.is_pruned(model)
    rows = sparsity_report(pruned, quiet=True)
    assert all(zeros == round(0.5 * total) for zeros, total in rows.values())


def test_pruned_copy_one_layer_and_globally():
    torch.manual_seed(0)
    model = Net()
    only_fc2 = pruned_copy(model, 0.9, layers=["fc2"])
    assert prune.is_pruned(only_fc2.fc2) and not prune.is_pruned(only_fc2.fc1)
    globally = pruned_copy(model, 0.9, globally=True)
    rows = sparsity_report(globally, quiet=True)
    assert rows["total"][0] == round(0.9 * rows["total"][1])
    share = {name: zeros / total for name, (zeros, total) in rows.items()}
    assert share["fc1"] != share["fc3"], "one threshold, unequal layers"


def test_pruned_copy_random_follows_the_seed():
    model = Net()
    torch.manual_seed(1)
    a = pruned_copy(model, 0.5, "random")
    torch.manual_seed(1)
    b = pruned_copy(model, 0.5, "random")
    assert torch.equal(a.fc1.weight_mask, b.fc1.weight_mask)


def test_pruned_copy_rejects_unknown_methods_and_layers():
    with pytest.raises(ValueError, match="'l1' or 'random'"):
        pruned_copy(Net(), 0.5, "l2")
    with pytest.raises(AttributeError, match="fc4"):
        pruned_copy(Net(), 0.5, layers=["fc4"])


def test_make_permanent_keeps_the_zeros_and_drops_the_masks():
    pruned = make_permanent(pruned_copy(Net(), 0.8))
    assert not prune.is_pruned(pruned)
    assert not any(name.endswith(("_orig", "_mask")) for name in pruned.state_dict())
    assert sparsity(pruned.fc1.weight) == pytest.approx(0.8, abs=1e-4)
