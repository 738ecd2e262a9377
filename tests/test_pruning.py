"""Unit tests for course_utils.pruning (notebooks 02-07): helpers and the rules of masked models."""

import pytest
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune

from course_utils import Net
from course_utils.measure import sparsity, sparsity_report
from course_utils.models import SmallCNN
from course_utils.pruning import (
    PRUNABLE,
    amount_for_target,
    cubic_sparsity,
    effective_weight,
    make_permanent,
    masked_copy,
    masked_keys,
    prunable_weights,
    pruned_copy,
    replace_module,
    require_permanent,
    silence_batchnorm,
)


def test_prunable_weights_lists_every_linear_layer():
    model = Net()
    pairs = prunable_weights(model)
    assert [module for module, _ in pairs] == [model.fc1, model.fc2, model.fc3]
    assert {name for _, name in pairs} == {"weight"}


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
    assert values[1] == pytest.approx(0.95 * (1 - 0.75**3))
    steps = [b - a for a, b in zip(values, values[1:])]
    assert all(s > 0 for s in steps) and steps == sorted(steps, reverse=True), "big steps first"
    assert cubic_sparsity(0, 3, 0.9, initial=0.5) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(step=5, n_steps=4, final=0.9), "step"),
        (dict(step=1, n_steps=0, final=0.9), "n_steps"),
        (dict(step=1, n_steps=2.5, final=0.9), "n_steps"),
        (dict(step=1, n_steps=4, final=1.2), "fractions"),
        (dict(step=1, n_steps=4, final=0.5, initial=0.8), "initial <= final"),
    ],
)
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


# --- the rules of masked models -------------------------------------------------------------


def test_prunable_layer_types_are_the_ones_every_helper_uses():
    model = SmallCNN()
    assert [m for m, _ in prunable_weights(model)] == [
        m for m in model.modules() if isinstance(m, PRUNABLE)
    ]
    assert set(PRUNABLE) == {nn.Linear, nn.Conv2d}


def test_masked_keys_and_require_permanent_see_masks_until_they_are_removed():
    model = Net()
    assert masked_keys(model.state_dict()) == []
    require_permanent(model)  # a dense model passes
    prune.l1_unstructured(model.fc2, "weight", amount=0.5)
    assert masked_keys(model.state_dict()) == ["fc2.weight_orig", "fc2.weight_mask"]
    for masked in (model, model.state_dict()):
        with pytest.raises(ValueError, match=r"fc2.weight_orig.*prune.remove"):
            require_permanent(masked)
    require_permanent(make_permanent(model))


def test_effective_weight_is_fresh_after_an_optimizer_step():
    torch.manual_seed(0)
    model = Net()
    prune.l1_unstructured(model.fc1, "weight", amount=0.5)
    with torch.no_grad():
        model.fc1.weight_orig.add_(1.0)  # as an optimizer step would; fc1.weight is now stale
    fresh = effective_weight(model.fc1)
    assert torch.equal(fresh, model.fc1.weight_orig * model.fc1.weight_mask)
    assert not torch.equal(fresh, model.fc1.weight)
    assert effective_weight(model.fc2) is model.fc2.weight, "an unmasked tensor as it is"
    assert effective_weight(nn.Linear(2, 2, bias=False), "bias") is None


def test_masked_copy_copies_what_deepcopy_refuses_and_keeps_the_masks():
    import copy

    model = Net()
    prune.l1_unstructured(model.fc1, "weight", amount=0.5)
    with pytest.raises(RuntimeError):
        copy.deepcopy(model)  # the masked weight is computed, not a leaf
    twin = masked_copy(model)
    x = torch.randn(3, 784)
    with torch.no_grad():
        assert torch.equal(twin(x), model(x))
        twin.fc1.weight_orig.zero_()
    assert model.fc1.weight_orig.abs().sum() > 0 and prune.is_pruned(twin)


def test_replace_module_by_dotted_name():
    model = nn.Sequential(nn.Sequential(nn.Linear(2, 3)), nn.ReLU())
    new = nn.Linear(2, 3)
    replace_module(model, "0.0", new)
    assert model[0][0] is new
    replace_module(model, "1", nn.Tanh())
    assert isinstance(model[1], nn.Tanh)


def test_silence_batchnorm_makes_the_pruned_channels_output_zero():
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(1, 6, 3), nn.BatchNorm2d(6)
    with torch.no_grad():
        bn.bias.uniform_(0.5, 1.0)  # without the masks, a zero filter outputs the shift
    prune.ln_structured(conv, "weight", amount=0.5, n=2, dim=0)
    silence_batchnorm(conv, bn)
    pruned = conv.weight_mask.flatten(1).sum(1) == 0
    with torch.no_grad():
        out = bn.eval()(conv(torch.randn(2, 1, 8, 8)))
    assert pruned.sum() == 3 and (out[:, pruned] == 0).all() and (out[:, ~pruned] != 0).any()
