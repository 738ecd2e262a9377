"""Structured-pruning surgery: the smaller model computes exactly what the masked one did.

The shapes here are deliberately not the ones notebook 06 uses (several depths and widths,
with and without bias, conv and linear), so the helper is tested beyond the notebook.
"""
import pytest
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune

from course_utils import Net, SmallCNN
from course_utils.surgery import (chain_plan, kept_indices, remove_pruned_units,
                                  shrink_conv_block, shrink_linear_pair)


def assert_same_outputs(a, b, x):
    a.eval(), b.eval()
    with torch.no_grad():
        torch.testing.assert_close(b(x), a(x), rtol=1e-5, atol=1e-5)


def mlp(widths, bias=True, act=nn.ReLU):
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b, bias=bias))
        if i < len(widths) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def cnn(channels, bias=True, batchnorm=True, head="pool", size=12):
    layers, c_in = [], 3
    for c in channels:
        layers.append(nn.Conv2d(c_in, c, 3, padding=1, bias=bias))
        if batchnorm:
            layers.append(nn.BatchNorm2d(c))
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
        c_in, size = c, size // 2
    if head == "pool":
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 5)]
    else:
        layers += [nn.Flatten(), nn.Linear(c_in * size * size, 5)]
    return nn.Sequential(*layers)


def calibrate(model, x):
    """Give BatchNorm non-trivial running statistics."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(x + torch.randn_like(x))
    return model.eval()


def mask_channels(model, amount, n=2, silence=True):
    """ln_structured on every layer but the last.

    With ``silence``, a pruned conv channel is made to output exactly zero: its BatchNorm
    scale and shift are masked too, or its conv bias when no BatchNorm follows (a padded
    next conv cannot absorb a constant channel exactly). Linear neurons keep their bias,
    so the MLP tests exercise the fold.
    """
    weights = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))][:-1]
    modules = list(model.modules())
    for layer in weights:
        prune.ln_structured(layer, "weight", amount=amount, n=n, dim=0)
        if not (silence and isinstance(layer, nn.Conv2d)):
            continue
        channel_mask = layer.weight_mask.flatten(1).any(dim=1).float()
        following = modules[modules.index(layer) + 1]
        if isinstance(following, nn.BatchNorm2d):
            prune.custom_from_mask(following, "weight", channel_mask)
            prune.custom_from_mask(following, "bias", channel_mask)
        elif layer.bias is not None:
            prune.custom_from_mask(layer, "bias", channel_mask)
    return model


# --- kept_indices -------------------------------------------------------------------------

def test_kept_indices_rows_columns_and_masks():
    w = torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    assert kept_indices(w).tolist() == [0, 2]
    assert kept_indices(w, dim=1).tolist() == [0, 2]
    assert kept_indices(w, dim=-1).tolist() == [0, 2]
    conv_mask = torch.ones(4, 2, 3, 3)
    conv_mask[[1, 3]] = 0
    assert kept_indices(conv_mask).tolist() == [0, 2]
    assert kept_indices(torch.tensor([0.0, 5.0])).tolist() == [1]


def test_kept_indices_errors():
    with pytest.raises(ValueError, match="nothing would be left"):
        kept_indices(torch.zeros(3, 4))
    with pytest.raises(TypeError, match="needs a tensor"):
        kept_indices([[1.0]])
    with pytest.raises(ValueError, match="at least one dimension"):
        kept_indices(torch.tensor(1.0))


# --- Linear -------------------------------------------------------------------------------

@pytest.mark.parametrize("widths", [(7, 5, 3), (20, 33, 9, 4), (16, 64, 48, 32, 6)])
@pytest.mark.parametrize("bias", [True, False])
def test_chain_of_linear_layers_is_equivalent(widths, bias):
    torch.manual_seed(len(widths))
    model = mask_channels(mlp(widths, bias=bias), amount=0.4)
    small = remove_pruned_units(model)
    x = torch.randn(11, widths[0])
    assert_same_outputs(model, small, x)
    hidden = [m.out_features for m in small if isinstance(m, nn.Linear)][:-1]
    assert hidden == [w - round(0.4 * w) for w in widths[1:-1]]
    assert not any(hasattr(m, "weight_orig") for m in small.modules()), "the copy carries no masks"
    assert any(hasattr(m, "weight_orig") for m in model.modules()), "the original is untouched"


@pytest.mark.parametrize("act", [nn.Tanh, nn.Sigmoid])
def test_other_activations_are_folded_with_their_function(act):
    torch.manual_seed(1)
    model = mask_channels(mlp((10, 12, 8, 3), act=act), amount=0.5)
    fn = {nn.Tanh: torch.tanh, nn.Sigmoid: torch.sigmoid}[act]
    small = remove_pruned_units(model, activation=fn)
    assert_same_outputs(model, small, torch.randn(5, 10))


def test_removed_neurons_bias_is_folded_into_the_next_layer():
    """A neuron with zero weights still outputs relu(bias): the fold keeps that constant."""
    torch.manual_seed(2)
    fc, nxt = nn.Linear(6, 4), nn.Linear(4, 3, bias=False)
    with torch.no_grad():
        fc.weight[1] = 0
        fc.bias[1] = 2.5
    new_fc, new_next = shrink_linear_pair(fc, nxt, [0, 2, 3])
    assert (new_fc.out_features, new_next.in_features) == (3, 3)
    assert new_next.bias is not None, "a bias is created to hold the folded constant"
    x = torch.randn(4, 6)
    torch.testing.assert_close(new_next(torch.relu(new_fc(x))), nxt(torch.relu(fc(x))))


def test_shrink_linear_pair_keeps_order_device_and_mode():
    fc, nxt = nn.Linear(5, 6), nn.Linear(6, 2)
    fc.eval()
    new_fc, _ = shrink_linear_pair(fc, nxt, torch.tensor([4, 1]))
    torch.testing.assert_close(new_fc.weight, fc.weight[[1, 4]].detach())
    assert not new_fc.training and new_fc.weight.device == fc.weight.device


def test_stale_masked_weight_is_not_used():
    """After an optimizer step, ``module.weight`` is stale until the next forward."""
    torch.manual_seed(3)
    model = mask_channels(mlp((8, 10, 4)), amount=0.5)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model(torch.randn(4, 8)).sum().backward()
    opt.step()
    small = remove_pruned_units(model)  # no forward since the step
    assert_same_outputs(model, small, torch.randn(6, 8))


# --- Conv2d -------------------------------------------------------------------------------

@pytest.mark.parametrize("channels", [(4, 6), (8, 5, 12)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("head", ["pool", "flatten"])
def test_chain_of_conv_blocks_is_equivalent(channels, bias, head):
    torch.manual_seed(sum(channels))
    x = torch.randn(4, 3, 12, 12)
    model = mask_channels(calibrate(cnn(channels, bias=bias, head=head), x), amount=0.5)
    small = remove_pruned_units(model)
    assert_same_outputs(model, small, x)
    kept = [m.out_channels for m in small.modules() if isinstance(m, nn.Conv2d)]
    assert kept == [c - round(0.5 * c) for c in channels]
    bns = [m for m in small.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [b.running_mean.numel() for b in bns] == kept, "BatchNorm statistics shrink too"


@pytest.mark.parametrize("bias", [True, False])
def test_conv_without_batchnorm(bias):
    torch.manual_seed(4)
    x = torch.randn(3, 3, 12, 12)
    model = mask_channels(cnn((6, 10), bias=bias, batchnorm=False), amount=0.5)
    assert_same_outputs(model, remove_pruned_units(model), x)


def test_constant_channels_fold_exactly_into_a_linear_head():
    """Unsilenced channels (BatchNorm shift left on) into a Linear after pooling or flattening."""
    torch.manual_seed(7)
    for head in ("pool", "flatten"):
        x = torch.randn(4, 3, 12, 12)
        model = calibrate(cnn((5,), head=head), x)
        prune.ln_structured(model[0], "weight", amount=0.4, n=1, dim=0)
        small = remove_pruned_units(model)
        assert small[0].out_channels == 3
        assert_same_outputs(model, small, x)


def test_unsilenced_batchnorm_folds_exactly_into_unpadded_next_conv():
    torch.manual_seed(5)
    conv, bn, nxt = nn.Conv2d(2, 6, 3), nn.BatchNorm2d(6), nn.Conv2d(6, 4, 3, padding=0)
    block = calibrate(nn.Sequential(conv, bn, nn.ReLU(), nxt), torch.randn(8, 2, 9, 9))
    with torch.no_grad():
        conv.weight[[0, 3]] = 0  # BatchNorm still shifts these channels: relu(beta') != 0
    keep = kept_indices(conv.weight)
    new_conv, new_bn, new_next = shrink_conv_block(conv, bn, nxt, keep)
    small = nn.Sequential(new_conv, new_bn, nn.ReLU(), new_next)
    assert_same_outputs(block, small, torch.randn(2, 2, 9, 9))


def test_shrink_conv_block_without_batchnorm_returns_none():
    conv, nxt = nn.Conv2d(1, 4, 3), nn.Conv2d(4, 2, 1)
    new_conv, new_bn, new_next = shrink_conv_block(conv, None, nxt, [1, 2])
    assert new_bn is None and new_conv.out_channels == 2 and new_next.in_channels == 2


def test_smallcnn_and_net_plans():
    assert chain_plan(Net()) == [("fc1", "fc2"), ("fc2", "fc3")]
    assert chain_plan(SmallCNN()) == [("features.0", "features.1", "features.3"),
                                      ("features.3", "features.4", "features.6"),
                                      ("features.6", "features.7", "classifier")]


def test_smallcnn_other_widths_is_equivalent_and_smaller():
    torch.manual_seed(6)
    x = torch.randn(4, 1, 28, 28)
    model = mask_channels(calibrate(SmallCNN((6, 10, 14)), x), amount=0.5)
    small = remove_pruned_units(model)
    assert_same_outputs(model, small, x)
    assert small.classifier.in_features == 7 * 7 * 7, "7 channels of 7x7 features are left"
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in SmallCNN((6, 10, 14)).parameters()) / 2


# --- errors -------------------------------------------------------------------------------

def test_errors_say_what_is_wrong():
    fc, nxt = nn.Linear(4, 6), nn.Linear(6, 2)
    with pytest.raises(ValueError, match="outside 0..5"):
        shrink_linear_pair(fc, nxt, [0, 6])
    with pytest.raises(ValueError, match="same index twice"):
        shrink_linear_pair(fc, nxt, [1, 1])
    with pytest.raises(ValueError, match="at least one unit"):
        shrink_linear_pair(fc, nxt, [])
    with pytest.raises(TypeError, match="shrink_conv_block"):
        shrink_linear_pair(nn.Conv2d(1, 6, 3), nxt, [0])
    with pytest.raises(ValueError, match="really the next layer"):
        shrink_linear_pair(fc, nn.Linear(5, 2), [0])
    with pytest.raises(TypeError, match="nn.Linear or nn.Conv2d"):
        shrink_linear_pair(fc, nn.ReLU(), [0])
    conv = nn.Conv2d(3, 8, 3)
    with pytest.raises(NotImplementedError, match="Torch-Pruning"):
        shrink_conv_block(conv, None, nn.Conv2d(8, 8, 3, groups=8), [0, 1])
    with pytest.raises(NotImplementedError, match="Torch-Pruning"):
        shrink_conv_block(nn.Conv2d(4, 8, 3, groups=2), None, nn.Conv2d(8, 2, 1), [0])
    with pytest.raises(ValueError, match="BatchNorm2d\\(8\\)"):
        shrink_conv_block(conv, nn.BatchNorm2d(7), nn.Conv2d(8, 2, 1), [0])
    with pytest.raises(ValueError, match="fewer than two"):
        chain_plan(nn.Sequential(nn.Linear(3, 2)))
    with pytest.raises(ValueError, match="each plan group"):
        remove_pruned_units(Net(), plan=[("fc1",)])
