"""Notebook 08's exercise checks: right answers pass, wrong ones hint, None is unanswered."""

import pytest
import torch
import torch_pruning as tp

from course_utils.exercises import (
    ExerciseCheckError,
    check_pruned_resnet_parameters,
    check_residual_group,
)
from course_utils.measure import count_parameters
from course_utils.models import SmallResNet


def test_residual_group_right_answers_pass(capsys):
    check_residual_group(["down.0", "block2.conv2", "block3.conv2"])
    check_residual_group({"model.block3.conv2", "down.0", " block2.conv2"})
    out = capsys.readouterr().out
    assert out.count("Correct!") == 2 and "down.0" not in out
    assert not any(ch.isdigit() for ch in out)


def test_residual_group_matches_torch_pruning():
    model = SmallResNet().eval()
    dg = tp.DependencyGraph().build_dependency(model, example_inputs=torch.randn(1, 1, 28, 28))
    group = dg.get_pruning_group(model.down[0], tp.prune_conv_out_channels, idxs=[0])
    names = {module: name for name, module in model.named_modules()}
    convs = [
        names[dep.target.module]
        for dep, _ in group
        if isinstance(dep.target.module, torch.nn.Conv2d)
        and dep.handler == tp.prune_conv_out_channels
    ]
    check_residual_group(convs)


@pytest.mark.parametrize(
    "answer, hint",
    [
        (["block2.conv2", "block3.conv2"], "include it"),
        (["down.0", "block2.conv2"], "a convolution is missing"),
        (
            ["down.0", "block2.conv2", "block3.conv2", "block2.conv1"],
            "do not write to those channels",
        ),
        ("down.0", "list"),
        ([0, 1], "list"),
    ],
)
def test_residual_group_wrong_answers_raise_a_hint(answer, hint):
    with pytest.raises(ExerciseCheckError, match=hint) as err:
        check_residual_group(answer)
    assert "block3.conv2" not in str(err.value) or "block3.conv2" in str(answer)


def test_pruned_parameters_right_and_wrong(capsys):
    model = SmallResNet().eval()
    pruner = tp.pruner.BasePruner(
        model,
        torch.randn(1, 1, 28, 28),
        importance=tp.importance.MagnitudeImportance(p=2),
        pruning_ratio=0.25,
        ignored_layers=[model.fc],
    )
    pruner.step()
    assert check_pruned_resnet_parameters(count_parameters(model))
    out = capsys.readouterr().out
    assert "Correct!" in out and not any(ch.isdigit() for ch in out)
    expected = count_parameters(model)
    with pytest.raises(ExerciseCheckError, match="pruning_ratio=0.25") as err:
        check_pruned_resnet_parameters(count_parameters(SmallResNet()))
    assert f"{expected:,}" not in str(err.value) and str(expected) not in str(err.value)
    with pytest.raises(ExerciseCheckError, match="whole number"):
        check_pruned_resnet_parameters(1.5)


@pytest.mark.parametrize("check", [check_residual_group, check_pruned_resnet_parameters])
def test_none_is_not_answered_yet(check, capsys):
    assert not check(None)
    out = capsys.readouterr().out
    assert out.startswith("Not answered yet:") and not any(ch.isdigit() for ch in out)
