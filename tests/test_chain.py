"""Structured-pruning surgery on a whole chain: the smaller model computes exactly what the masked
one did, or ``remove_pruned_units`` refuses with a clear error.

The shapes here are deliberately not the ones the notebooks use (several depths, widths,
activations, with and without bias, BatchNorm with non-trivial statistics, pooling, padding
modes), so the helper is tested beyond the models it was written for.
"""

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune
from helpers import assert_same_outputs, calibrate

from course_utils import Net, SmallCNN
from course_utils.chain import remove_pruned_units
from course_utils.models import SmallResNet
from course_utils.pruning import silence_batchnorm
from course_utils.surgery import SurgeryError


def mlp(widths, bias=True, act=nn.ReLU):
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b, bias=bias))
        if i < len(widths) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def cnn(
    channels,
    bias=True,
    batchnorm=True,
    head="pool",
    size=12,
    pool=nn.MaxPool2d,
    act=nn.ReLU,
    padding_mode="zeros",
):
    layers, c_in = [], 3
    for c in channels:
        layers.append(nn.Conv2d(c_in, c, 3, padding=1, bias=bias, padding_mode=padding_mode))
        if batchnorm:
            layers.append(nn.BatchNorm2d(c))
        layers += [act(), pool(2)]
        c_in, size = c, size // 2
    if head == "pool":
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 5)]
    else:
        layers += [nn.Flatten(), nn.Linear(c_in * size * size, 5)]
    return nn.Sequential(*layers)


def mask_channels(model, amount, n=2, silence=True):
    """ln_structured on every Linear/Conv2d but the last.

    With ``silence``, a pruned conv channel is made to output exactly zero, as notebook 06
    does: its BatchNorm scale and shift are masked too, or its conv bias when no BatchNorm
    follows. Linear neurons keep their bias, so the MLP tests exercise the fold.
    """
    weights = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))][:-1]
    modules = list(model.modules())
    for layer in weights:
        prune.ln_structured(layer, "weight", amount=amount, n=n, dim=0)
        if not (silence and isinstance(layer, nn.Conv2d)):
            continue
        following = modules[modules.index(layer) + 1]
        if isinstance(following, nn.BatchNorm2d):
            silence_batchnorm(layer, following)
        elif layer.bias is not None:
            prune.custom_from_mask(layer, "bias", layer.weight_mask.flatten(1).amax(dim=1))
    return model


# --- remove_pruned_units: plain chains it has never seen ---------------------------------


@pytest.mark.parametrize("widths", [(7, 5, 3), (20, 33, 9, 4), (16, 64, 48, 32, 24, 6)])
@pytest.mark.parametrize("bias", [True, False])
def test_deep_mlps_are_equivalent(widths, bias):
    torch.manual_seed(len(widths))
    model = mask_channels(mlp(widths, bias=bias), amount=0.4)
    x = torch.randn(11, widths[0])
    small = remove_pruned_units(model, x)
    assert_same_outputs(model, small, torch.randn(7, widths[0]))
    hidden = [m.out_features for m in small if isinstance(m, nn.Linear)][:-1]
    assert hidden == [w - round(0.4 * w) for w in widths[1:-1]]
    assert not any(hasattr(m, "weight_orig") for m in small.modules()), "the copy carries no masks"
    assert any(hasattr(m, "weight_orig") for m in model.modules()), "the original is untouched"


@pytest.mark.parametrize(
    "act", [nn.Tanh, nn.Sigmoid, nn.GELU, nn.LeakyReLU, nn.Softplus, nn.Identity]
)
def test_any_activation_is_folded_exactly(act):
    """The old helper assumed ReLU and silently returned a wrong model for tanh."""
    torch.manual_seed(1)
    model = mask_channels(mlp((10, 12, 8, 3), act=act), amount=0.5)
    small = remove_pruned_units(model, torch.randn(6, 10))
    assert_same_outputs(model, small, torch.randn(5, 10))


def test_removed_neurons_constant_is_folded_even_without_a_next_bias():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 3, bias=False))
    with torch.no_grad():
        model[0].weight[1] = 0
        model[0].bias[1] = 2.5  # the removed neuron still sends tanh(2.5)
    small = remove_pruned_units(model, torch.randn(3, 6))
    assert (small[0].out_features, small[2].in_features) == (3, 3)
    assert small[2].bias is not None, "a bias is created to hold the folded constant"
    assert_same_outputs(model, small, torch.randn(4, 6))


@pytest.mark.parametrize("channels", [(4, 6), (8, 5, 12), (6, 6, 6, 6)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("head", ["pool", "flatten"])
def test_conv_stacks_with_batchnorm_and_pooling_are_equivalent(channels, bias, head):
    torch.manual_seed(sum(channels))
    size = 16 if len(channels) == 4 else 12
    x = torch.randn(4, 3, size, size)
    model = mask_channels(calibrate(cnn(channels, bias=bias, head=head, size=size), x), amount=0.5)
    small = remove_pruned_units(model, x)
    assert_same_outputs(model, small, torch.randn(2, 3, size, size))
    kept = [m.out_channels for m in small.modules() if isinstance(m, nn.Conv2d)]
    assert kept == [c - round(0.5 * c) for c in channels]
    bns = [m for m in small.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [b.running_mean.numel() for b in bns] == kept, "BatchNorm statistics shrink too"


@pytest.mark.parametrize("pool", [nn.AvgPool2d, nn.MaxPool2d])
@pytest.mark.parametrize("act", [nn.ReLU, nn.SiLU])
def test_conv_without_batchnorm(pool, act):
    torch.manual_seed(4)
    x = torch.randn(3, 3, 12, 12)
    model = mask_channels(cnn((6, 10), batchnorm=False, pool=pool, act=act), amount=0.5)
    assert_same_outputs(model, remove_pruned_units(model, x), x)


def test_constant_channels_fold_exactly_into_a_linear_head():
    """Unsilenced channels (BatchNorm shift left on) into a Linear after pooling or flattening."""
    torch.manual_seed(7)
    for head in ("pool", "flatten"):
        x = torch.randn(4, 3, 12, 12)
        model = calibrate(cnn((5,), head=head), x)
        prune.ln_structured(model[0], "weight", amount=0.4, n=1, dim=0)
        small = remove_pruned_units(model, x)
        assert small[0].out_channels == 3
        assert_same_outputs(model, small, x)


@pytest.mark.parametrize("padding, mode", [(0, "zeros"), (1, "reflect"), (1, "circular")])
def test_constant_channels_fold_exactly_into_a_conv_that_does_not_pad_with_zeros(padding, mode):
    torch.manual_seed(5)
    x = torch.randn(8, 2, 9, 9)
    block = nn.Sequential(
        nn.Conv2d(2, 6, 3),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 4, 3, padding=padding, padding_mode=mode),
    )
    block = calibrate(block, x)
    with torch.no_grad():
        block[0].weight[[0, 3]] = 0
        block[1].bias[[0, 3]] = 1.0  # relu(BN(bias)) of these channels is a positive constant
    small = remove_pruned_units(block, x)
    assert small[0].out_channels == 4
    assert_same_outputs(block, small, torch.randn(2, 2, 9, 9))


def test_net_and_smallcnn_as_notebook_06_uses_them():
    torch.manual_seed(6)
    net = Net()
    for layer in (net.fc1, net.fc2):
        prune.ln_structured(layer, "weight", amount=0.5, n=2, dim=0)
    small = remove_pruned_units(net, torch.randn(16, 784))
    assert [small.fc1.out_features, small.fc2.out_features] == [128, 64]
    assert_same_outputs(net, small, torch.randn(4, 784))

    x = torch.randn(4, 1, 28, 28)
    model = mask_channels(calibrate(SmallCNN((6, 10, 14)), x), amount=0.5)
    small = remove_pruned_units(model, x)
    assert_same_outputs(model, small, x)
    assert small.classifier.in_features == 7 * 7 * 7, "7 channels of 7x7 features are left"


def test_model_is_left_unchanged_and_stale_weights_are_not_used():
    torch.manual_seed(3)
    model = mask_channels(mlp((8, 10, 4)), amount=0.5)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model(torch.randn(4, 8)).sum().backward()
    opt.step()  # module.weight is now stale until the next forward pass
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    small = remove_pruned_units(model, torch.randn(5, 8))
    assert model.training and small.training, "training mode kept on both"
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    copy.deepcopy(model)  # still possible: no autograd graph left behind in the model
    assert_same_outputs(model, small, torch.randn(6, 8))


# --- refusals: a clear error, never a wrong model -----------------------------------------


class Residual(nn.Module):
    def __init__(self, c=6):
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.head = nn.Linear(c, 4)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))) + x)
        return self.head(x.mean(dim=(2, 3)))


class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(5, 5), nn.Linear(5, 5), nn.Linear(5, 2)

    def forward(self, x):
        return self.out(self.fc2(torch.relu(self.fc2(torch.relu(self.fc1(x))))))


class Reordered(nn.Module):
    def __init__(self):
        super().__init__()
        self.out = nn.Linear(6, 2)
        self.fc = nn.Linear(4, 6)

    def forward(self, x):
        return self.out(torch.relu(self.fc(x)))


class InputSkip(nn.Module):
    """A branch from the model input straight to the last layer (a concatenation)."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 6), nn.Linear(10, 2)

    def forward(self, x):
        return self.fc2(torch.cat([torch.relu(self.fc1(x)), x], dim=1))


class Shuffle(nn.Module):
    """A plain chain, but an interleaving of the units between the layers breaks the pairing."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(4, 6), nn.Linear(6, 5), nn.Linear(5, 2)

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        h = h.reshape(len(h), 2, -1).transpose(1, 2).reshape(len(h), -1)  # 0 3 1 4 2 5 for 6 units
        return self.fc3(torch.relu(self.fc2(h)))


def prune_first(model, amount=0.5):
    first = next(m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
    prune.ln_structured(first, "weight", amount=amount, n=2, dim=0)
    return model


@pytest.mark.parametrize(
    "model, x, match",
    [
        (
            Residual(),
            torch.randn(2, 3, 8, 8),
            "not a plain chain.*depends on the output of stem.*skip connection",
        ),
        (SmallResNet(), torch.randn(2, 1, 28, 28), "not a plain chain.*skip connection"),
        (Shared(), torch.randn(3, 5), "fc2 runs 2 times.*shared layer"),
        (Reordered(), torch.randn(3, 4), "defines out before fc.*forward runs fc first"),
        (InputSkip(), torch.randn(3, 4), "input of fc2 depends on the model input"),
        (
            nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(6), nn.Linear(6, 2)),
            torch.randn(3, 4),
            "LayerNorm",
        ),
        (
            nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Linear(6, 2)),
            torch.randn(3, 4),
            "BatchNorm1d",
        ),
        (
            nn.Sequential(nn.Conv2d(4, 8, 1), nn.Conv2d(8, 8, 3, groups=8), nn.Conv2d(8, 2, 1)),
            torch.randn(2, 4, 5, 5),
            "grouped or depthwise",
        ),
        (nn.Sequential(nn.Linear(4, 2)), torch.randn(3, 4), "fewer than two"),
    ],
)
def test_non_chains_are_refused_with_a_reason_and_a_pointer(model, x, match):
    model = prune_first(model)
    with pytest.raises(SurgeryError, match=match) as err:
        remove_pruned_units(model, x)
    if "grouped" in match or "chain" in match or "shared" in match or "defines" in match:
        assert "Torch-Pruning" in str(err.value)


def test_unsilenced_channels_before_a_zero_padded_conv_are_refused_with_the_fix():
    """The VGG-style case: the old helper returned a model that differed at the image border."""
    torch.manual_seed(8)
    x = torch.randn(4, 3, 12, 12)
    model = calibrate(cnn((6, 8), head="flatten"), x)
    with torch.no_grad():
        model[1].bias.fill_(1.0)  # every channel of the first block passes a positive shift
    prune.ln_structured(model[0], "weight", amount=0.5, n=2, dim=0)
    with pytest.raises(SurgeryError, match="pads its input with zeros.*custom_from_mask"):
        remove_pruned_units(model, x)
    mask_channels(model, amount=0.5)  # the fix the message gives: silence the pruned channels
    assert_same_outputs(model, remove_pruned_units(model, x), x)


def test_a_wrong_pairing_is_caught_by_the_self_check_and_names_the_layer():
    torch.manual_seed(9)
    model = Shuffle()  # removed neurons 1 and 2 land on inputs 2 and 4 of fc2: not the ones we drop
    prune.custom_from_mask(
        model.fc1, "weight", torch.tensor([1, 0, 0, 1, 1, 1.0])[:, None].expand(6, 4)
    )
    with pytest.raises(
        SurgeryError, match="pruned units of fc1 do not output a constant.*moves or mixes"
    ):
        remove_pruned_units(model, torch.randn(5, 4))
    model = Shuffle()  # removed neurons 0 and 5 stay in place: only the kept ones are mixed up
    prune.custom_from_mask(
        model.fc1, "weight", torch.tensor([0, 1, 1, 1, 1, 0.0])[:, None].expand(6, 4)
    )
    with pytest.raises(SurgeryError, match="from fc2 on.*not returned"):
        remove_pruned_units(model, torch.randn(5, 4))


def test_channel_last_flatten_is_caught_by_the_self_check():
    class ChannelsLast(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn, self.fc = (
                nn.Conv2d(1, 4, 3, padding=1),
                nn.BatchNorm2d(4),
                nn.Linear(4 * 16, 3),
            )

        def forward(self, x):
            return self.fc(torch.relu(self.bn(self.conv(x))).permute(0, 2, 3, 1).flatten(1))

    torch.manual_seed(10)
    model = mask_channels(ChannelsLast(), amount=0.5)
    with pytest.raises(
        SurgeryError, match="pruned units of conv do not output a constant.*moves or mixes"
    ):
        remove_pruned_units(model, torch.randn(3, 1, 4, 4))


def test_example_input_is_required_and_must_reach_every_layer():
    with pytest.raises(TypeError, match="example_input"):
        remove_pruned_units(Net())

    class Unused(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.spare = nn.Linear(4, 6), nn.Linear(6, 2), nn.Linear(6, 2)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)))

    with pytest.raises(SurgeryError, match="spare never runs"):
        remove_pruned_units(Unused(), torch.randn(2, 4))


def test_in_place_activations_and_dropout_in_the_chain():
    torch.manual_seed(11)
    x = torch.randn(4, 3, 12, 12)
    model = mask_channels(calibrate(cnn((6, 8), act=lambda: nn.ReLU(inplace=True)), x), amount=0.5)
    assert_same_outputs(model, remove_pruned_units(model, x), x)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(8, 3))
    prune.ln_structured(model[0], "weight", amount=0.5, n=2, dim=0)
    assert_same_outputs(model, remove_pruned_units(model, torch.randn(6, 5)), torch.randn(6, 5))


def test_precision_settings_are_restored():
    before = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("high")
    try:
        model = mask_channels(mlp((6, 8, 3)), amount=0.5)
        remove_pruned_units(model, torch.randn(4, 6))
        assert torch.get_float32_matmul_precision() == "high"
        assert torch.backends.cudnn.allow_tf32 == before[1]
    finally:
        torch.set_float32_matmul_precision(before[0])
