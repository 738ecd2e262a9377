"""Exercise checks: right answers pass without showing their value, wrong ones raise a hint that
does not give the answer away, and a missing answer (None) says "Not answered yet" without raising.
(What a learner sees of a wrong answer in a real kernel: tests/test_exercises_kernel.py.)
"""

import copy
import math
import re

import pytest
import torch
import torch.nn as nn
from helpers import digits
from torch.nn.utils import prune

from course_utils import exercises as ex
from course_utils.data import TensorLoader, class_names
from course_utils.exercises import ExerciseCheckError, check, check_close, exercise_check
from course_utils.measure import count_macs
from course_utils.models import Net
from course_utils.pruning import amount_for_target, cubic_sparsity
from course_utils.training import accuracy


def right(capsys, result):
    out = capsys.readouterr().out
    assert result and "Correct!" in out, out
    assert not digits(out), f"a success message shows a number: {out!r}"


def missing(capsys, result):
    out = capsys.readouterr().out
    assert not result and out.startswith("Not answered yet: "), out
    assert not digits(out), f"a 'not answered' message shows a number: {out!r}"


def wrong(call, *expected):
    with pytest.raises(ExerciseCheckError) as info:
        call()
    message = str(info.value)
    assert message.startswith("Not yet: ")
    for value in expected:
        for shown in {
            f"{value}",
            f"{value:,}" if isinstance(value, int) else f"{value:.4g}",
            f"{value:.2f}" if isinstance(value, float) else f"{value}",
        }:
            assert shown not in message, f"the hint gives away {shown}: {message}"
    return message


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return Net()


@pytest.fixture(scope="module")
def loader():
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(300, 784, generator=generator)
    labels = torch.randint(0, 10, (300,), generator=generator)
    return TensorLoader(images, labels, batch_size=64)


def test_check_and_check_close(capsys):
    assert check(True, "well done", "unused")
    assert "Correct! well done" in capsys.readouterr().out
    with pytest.raises(ExerciseCheckError, match="Not yet: look again"):
        check(False, "unused", "look again")
    check_close(2.05, 2.0, 0.1, "the value")
    assert "Correct!" in capsys.readouterr().out
    for answer in (None, 1.5):
        message = wrong(lambda answer=answer: check_close(answer, 2.0, 0.1, "the value"), 2.0)
        assert "the value" in message


def test_verdict_is_a_bool_that_shows_nothing(capsys):
    verdict = ex.not_answered("do it")
    missing(capsys, verdict)
    assert verdict == False and not verdict  # noqa: E712
    assert hasattr(verdict, "_ipython_display_") and verdict._ipython_display_() is None


def test_a_wrong_answer_draws_its_hint_and_nothing_else():
    """IPython asks the exception for _render_traceback_: the hint, marked "Not yet", no frame."""
    try:
        ex.check_max_free(
            40, {"l1": {0: 90.0, 20: 89.9, 40: 89.5, 60: 89.1}}, [0, 20, 40, 60], 90.0
        )
    except ExerciseCheckError as error:
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in error._render_traceback_()]
    assert lines[0].startswith("Not yet: look at curve['l1']"), lines
    assert "Run All stops" in lines[1]
    text = "\n".join(lines)
    assert "Traceback" not in text and "expected" not in text and "def " not in text


EXERCISE_CHECKS = [name for name in dir(ex) if name.startswith("check_") and name != "check_close"]


@pytest.mark.parametrize("name", EXERCISE_CHECKS)
def test_every_check_is_guarded(name):
    """A check added later (notebook 09's too) fails here until it wears @exercise_check."""
    assert getattr(getattr(ex, name), "exercise_check", False), (
        f"decorate {name} with @exercise_check"
    )
    assert name in ex.__all__


def test_an_unforeseen_answer_becomes_a_hint_without_the_checker():
    @exercise_check
    def check_demo(answer):
        expected = 42
        return check(len(answer) == expected, "ok", "no")

    with pytest.raises(ExerciseCheckError, match="raised TypeError") as info:
        check_demo(5)  # len(5) fails inside the check
    assert info.value.__context__ is None and info.value.__cause__ is None
    assert "42" not in str(info.value)
    with pytest.raises(ExerciseCheckError, match="Not yet: no"):
        check_demo("abc")  # the check's own hint passes through
    with pytest.raises(ExerciseCheckError, match="raised"):
        ex.check_residual_group(5)  # a number where names were asked
    with pytest.raises(ExerciseCheckError, match="raised ZeroDivisionError"):
        ex.check_mask_2_4_outputs(lambda w: 1 / 0, torch.ones(8, 8))  # the learner's function


# 00 ---------------------------------------------------------------------------------------------


def test_check_sneaker_count(capsys, loader):
    expected = int((loader.labels == class_names().index("Sneaker")).sum())
    missing(capsys, ex.check_sneaker_count(None, loader))
    right(capsys, ex.check_sneaker_count(expected, loader))
    right(capsys, ex.check_sneaker_count(torch.tensor(expected), loader))
    wrong(lambda: ex.check_sneaker_count(expected + 1, loader), expected)
    message = wrong(lambda: ex.check_sneaker_count(loader.labels == 7, loader), expected)
    assert "one number" in message
    wrong(lambda: ex.check_sneaker_count("many", loader), expected)


def test_check_normalisation(capsys, loader):
    mean, std = loader.images.mean().item(), loader.images.std().item()
    missing(capsys, ex.check_normalisation(None, None, loader))
    right(capsys, ex.check_normalisation(mean, std, loader))
    message = wrong(
        lambda: ex.check_normalisation(loader.images.mean(dim=1), std, loader), mean, std
    )
    assert "one number" in message  # a per-image tensor gets a hint, not a RuntimeError
    wrong(lambda: ex.check_normalisation(std, mean, loader), mean, std)
    wrong(lambda: ex.check_normalisation(mean + 0.1, std, loader), mean, std)
    wrong(lambda: ex.check_normalisation(mean, std * 1.1, loader), mean, std)


def test_check_normalisation_wants_the_values_computed(capsys):
    """00 Ex2 accepted 0.0 and 1.0, typed without computing anything (issue 21)."""
    images = torch.randn(300, 784, generator=torch.Generator().manual_seed(2))
    images = (images - images.mean()) / images.std() * 0.99969 - 3.26e-4  # like the training split
    loader = TensorLoader(images, torch.zeros(300, dtype=torch.long), batch_size=64)
    mean, std = images.mean().item(), images.std().item()
    for guess in ((0.0, 1.0), (0, 1), (round(mean, 4), round(std, 4))):
        message = wrong(lambda guess=guess: ex.check_normalisation(*guess, loader), mean, std)
        assert "Compute them" in message
    right(capsys, ex.check_normalisation(mean, std, loader))
    right(
        capsys,
        ex.check_normalisation(images.double().mean().item(), images.double().std().item(), loader),
    )


# 01 ---------------------------------------------------------------------------------------------


def test_check_parameter_count(capsys, net):
    missing(capsys, ex.check_parameter_count(None))
    right(capsys, ex.check_parameter_count(net))
    right(capsys, ex.check_parameter_count(235_146))
    assert "you have 10" in wrong(lambda: ex.check_parameter_count(10), 235_146)
    assert "whole" in wrong(lambda: ex.check_parameter_count(235_146.5), 235_146)  # not "235,146"
    assert "biases" in wrong(
        lambda: ex.check_parameter_count(784 * 256 + 256 * 128 + 128 * 10), 235_146
    )


def test_check_validation_metrics(capsys):
    history = {"val_loss": [0.5, 0.2888], "val_acc": [80.0, 89.84]}
    missing(capsys, ex.check_validation_metrics(None, None, history))
    right(capsys, ex.check_validation_metrics(0.2888, 89.84, history, test_acc=89.72))
    wrong(lambda: ex.check_validation_metrics(0.2888, 89.72, history), 89.84)
    wrong(lambda: ex.check_validation_metrics(0.2888, 0.8984, history), 89.84)
    wrong(lambda: ex.check_validation_metrics(0.30, 89.84, history), 0.2888)
    wrong(lambda: ex.check_validation_metrics(89.84, 0.2888, history), 89.84, 0.2888)


# 02 ---------------------------------------------------------------------------------------------


def test_check_second_amount(capsys, net):
    missing(capsys, ex.check_second_amount(None, net))
    right(capsys, ex.check_second_amount(0.375, net))
    right(capsys, ex.check_second_amount(3 / 8, net))
    for bad in (0.3, 0.5, 0.4):
        assert "left" in wrong(lambda bad=bad: ex.check_second_amount(bad, net), 0.375).lower()
    wrong(lambda: ex.check_second_amount(1.5, net), 0.375)


def test_check_second_amount_takes_integer_amounts(capsys, net):
    """02 Ex1 rejected amount=9830, which PyTorch accepts and which gives exactly 50% (issue 21)."""
    right(capsys, ex.check_second_amount(9830, net))
    right(capsys, ex.check_second_amount(torch.tensor(9830), net))
    assert "integer" in wrong(lambda: ex.check_second_amount(9830.0, net), 0.375, 9830)
    assert "THIS call" in wrong(lambda: ex.check_second_amount(16384, net), 0.375, 9830)
    for bad in (-5, 40_000, 9000):
        wrong(lambda bad=bad: ex.check_second_amount(bad, net), 0.375, 9830)
    assert "precise" in wrong(lambda: ex.check_second_amount(0.37, net), 0.375, 9830)


def test_check_permanent(capsys, net):
    missing(capsys, ex.check_permanent(None, net))
    permanent = copy.deepcopy(net)
    for layer in (permanent.fc1, permanent.fc2, permanent.fc3):
        prune.l1_unstructured(layer, "weight", amount=0.2)
    wrong(lambda: ex.check_permanent(permanent, net), 46_951)  # masks still attached
    for layer in (permanent.fc1, permanent.fc2, permanent.fc3):
        prune.remove(layer, "weight")
    right(capsys, ex.check_permanent(permanent, net))
    wrong(lambda: ex.check_permanent(net, net), 46_951)
    twice = copy.deepcopy(net)
    for layer in (twice.fc1, twice.fc2, twice.fc3):
        prune.l1_unstructured(layer, "weight", amount=0.4)
        prune.remove(layer, "weight")
    wrong(lambda: ex.check_permanent(twice, net), 46_951)


# 03 ---------------------------------------------------------------------------------------------


def test_check_max_free(capsys):
    sparsities = [0, 20, 40, 60, 80]
    curve = {"l1": {0: 90.0, 20: 89.9, 40: 89.5, 60: 89.1, 80: 85.0}, "random": {}}
    missing(capsys, ex.check_max_free(None, curve, sparsities, 90.0))
    right(capsys, ex.check_max_free(60, curve, sparsities, 90.0))
    wrong(lambda: ex.check_max_free(40, curve, sparsities, 90.0), 60)
    wrong(lambda: ex.check_max_free(0.6, curve, sparsities, 90.0), 60)


def test_check_fc2_sensitivity(capsys, net, loader):
    model = copy.deepcopy(net)
    prune.l1_unstructured(model.fc2, "weight", amount=0.95)
    expected = accuracy(model, loader)
    missing(capsys, ex.check_fc2_sensitivity(None, net, loader))
    right(capsys, ex.check_fc2_sensitivity(expected, net, loader))
    wrong(lambda: ex.check_fc2_sensitivity(expected + 1, net, loader), expected)
    if expected > 1:
        wrong(lambda: ex.check_fc2_sensitivity(expected / 100, net, loader), expected)


# 04 ---------------------------------------------------------------------------------------------


def test_check_cubic_amounts(capsys, net):
    targets = [cubic_sparsity(t, 4, 0.9) for t in range(1, 5)]
    amounts = [amount_for_target(a, b) for a, b in zip([0.0] + targets, targets)]
    missing(capsys, ex.check_cubic_amounts(None, net))
    right(capsys, ex.check_cubic_amounts(amounts, net))
    shown = [round(a, 3) for a in amounts]
    assert "target" in wrong(lambda: ex.check_cubic_amounts(targets, net), *shown)
    wrong(lambda: ex.check_cubic_amounts(amounts[:3], net), *shown)
    wrong(lambda: ex.check_cubic_amounts([0.225] * 4, net), *shown)


def test_check_cubic_amounts_says_when_precision_is_the_issue(capsys, net):
    """04 Ex1 answered amounts right to 3 decimals with "amount number 1 is not right" (issue 21).
    Integer amounts (numbers of weights, which 04 teaches) are judged too."""
    targets = [cubic_sparsity(t, 4, 0.9) for t in range(1, 5)]
    amounts = [amount_for_target(a, b) for a, b in zip([0.0] + targets, targets)]
    shown = [round(a, 4) for a in amounts]
    message = wrong(lambda: ex.check_cubic_amounts([round(a, 3) for a in amounts], net), *shown)
    assert "precise" in message and "amount number" not in message
    total = net.fc2.weight.numel()
    counts = [round(t * total) for t in targets]
    right(capsys, ex.check_cubic_amounts([b - a for a, b in zip([0] + counts, counts)], net))
    assert "larger than" in wrong(lambda: ex.check_cubic_amounts([total] * 4, net), *shown)


def _final_model():
    final = Net()
    for layer in (final.fc1, final.fc2, final.fc3):
        prune.l1_unstructured(layer, "weight", amount=0.95)
        prune.remove(layer, "weight")
    return final


def _ticket(final, seed=0):
    torch.manual_seed(seed)
    ticket = Net()
    for name in ("fc1", "fc2", "fc3"):
        prune.custom_from_mask(
            getattr(ticket, name), "weight", mask=(getattr(final, name).weight != 0).float()
        )
    return ticket


def test_check_lottery_ticket(capsys):
    torch.manual_seed(3)
    final = _final_model()
    missing(capsys, ex.check_lottery_ticket(None, final))
    state = torch.random.get_rng_state()
    right(capsys, ex.check_lottery_ticket(_ticket(final), final))
    torch.random.set_rng_state(state)
    ex.check_lottery_ticket(_ticket(final), final)
    capsys.readouterr()
    torch.manual_seed(0)
    Net()
    after_solution = torch.rand(1)
    torch.manual_seed(0)
    _ticket(final)
    ex.check_lottery_ticket(_ticket(final), final)
    capsys.readouterr()
    torch.manual_seed(0)
    _ticket(final)
    assert torch.equal(torch.rand(1), after_solution), "the check leaves the global RNG alone"
    wrong(lambda: ex.check_lottery_ticket(_ticket(final, seed=1), final))
    wrong(lambda: ex.check_lottery_ticket(Net(), final))
    other = _final_model()
    wrong(lambda: ex.check_lottery_ticket(_ticket(other), final))


# 05 ---------------------------------------------------------------------------------------------


def test_check_taylor_pruning(capsys, net, loader):
    magnitude = copy.deepcopy(net)
    pairs = [(getattr(magnitude, n), "weight") for n in ("fc1", "fc2", "fc3")]
    prune.global_unstructured(pairs, pruning_method=prune.L1Unstructured, amount=0.9)
    results = {(0.9, "global"): {"model": magnitude, "before": accuracy(magnitude, loader)}}
    taylor = copy.deepcopy(net)
    scores = {
        (getattr(taylor, n), "weight"): torch.rand_like(getattr(taylor, n).weight)
        for n in ("fc1", "fc2", "fc3")
    }
    prune.global_unstructured(
        list(scores), pruning_method=prune.L1Unstructured, amount=0.9, importance_scores=scores
    )
    acc = accuracy(taylor, loader)
    better = acc > results[0.9, "global"]["before"]
    missing(capsys, ex.check_taylor_pruning(taylor, acc, None, results, loader))
    right(capsys, ex.check_taylor_pruning(taylor, acc, better, results, loader))
    wrong(lambda: ex.check_taylor_pruning(taylor, acc, not better, results, loader), acc)
    wrong(lambda: ex.check_taylor_pruning(taylor, acc + 2, better, results, loader), acc)
    wrong(lambda: ex.check_taylor_pruning(taylor, acc, "yes", results, loader), acc)
    wrong(lambda: ex.check_taylor_pruning(magnitude, acc, better, results, loader), acc)


def test_check_max_sparsity(capsys):
    sparsities = [0.8, 0.9, 0.95, 0.98]
    results = {(s, "global"): {"after": a} for s, a in zip(sparsities, [89.5, 88.9, 87.0, 80.0])}
    missing(capsys, ex.check_max_sparsity(None, results, sparsities, 89.8))
    right(capsys, ex.check_max_sparsity(0.9, results, sparsities, 89.8))
    wrong(lambda: ex.check_max_sparsity(0.8, results, sparsities, 89.8), 0.9)
    assert "fraction" in wrong(lambda: ex.check_max_sparsity(90, results, sparsities, 89.8), 0.9)


# 06 ---------------------------------------------------------------------------------------------


def test_check_norm_overlap(capsys, net):
    masked = copy.deepcopy(net)
    prune.ln_structured(masked.fc1, "weight", amount=0.5, n=2, dim=0)
    l1 = copy.deepcopy(net)
    prune.ln_structured(l1.fc1, "weight", amount=0.5, n=1, dim=0)
    expected = int(((l1.fc1.weight_mask[:, 0] == 0) & (masked.fc1.weight_mask[:, 0] == 0)).sum())
    missing(capsys, ex.check_norm_overlap(None, net, masked))
    right(capsys, ex.check_norm_overlap(expected, net, masked))
    wrong(lambda: ex.check_norm_overlap(expected - 1, net, masked), expected)
    wrong(lambda: ex.check_norm_overlap(128, net, masked), expected)


def test_check_quarter_model(capsys, net):
    x = torch.randn(1, 784)
    params = (784 * 64 + 64) + (64 * 32 + 32) + (32 * 10 + 10)
    small = nn.Sequential(
        nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)
    )
    ratio = count_macs(net, x) / count_macs(small, x)
    param_ratio = sum(p.numel() for p in net.parameters()) / params
    assert abs(ratio - param_ratio) < 0.01, "close ratios: the check must tell them apart"
    missing(capsys, ex.check_quarter_model(None, None, net, x))
    right(capsys, ex.check_quarter_model(params, ratio, net, x))
    assert "parameter ratio" in wrong(
        lambda: ex.check_quarter_model(params, param_ratio, net, x), ratio
    )
    wrong(lambda: ex.check_quarter_model(params, 1 / ratio, net, x), ratio)
    wrong(lambda: ex.check_quarter_model(params + 10, ratio, net, x), params, ratio)
    wrong(lambda: ex.check_quarter_model(params, 4.0, net, x), ratio)


def test_check_quarter_model_tells_upside_down_from_the_parameter_ratio(capsys, net):
    """06 Ex2: the two ratios agree to 1e-3, so an upside-down MAC ratio got "that is the
    parameter ratio, use count_macs" and "upside down" was never reached (issue 21)."""
    x = torch.randn(1, 784)
    params = (784 * 64 + 64) + (64 * 32 + 32) + (32 * 10 + 10)
    ratio = count_macs(net, x) / (784 * 64 + 64 * 32 + 32 * 10)
    param_ratio = sum(p.numel() for p in net.parameters()) / params
    for upside_down in (1 / ratio, round(1 / ratio, 4), 1 / param_ratio):
        message = wrong(lambda u=upside_down: ex.check_quarter_model(params, u, net, x), ratio)
        assert "upside down" in message and "parameter ratio" not in message.split(".")[0]
    assert "parameter ratio" in wrong(
        lambda: ex.check_quarter_model(params, param_ratio, net, x), ratio
    )
    assert "precise" in wrong(
        lambda: ex.check_quarter_model(params, round(ratio, 2), net, x), ratio
    )
    assert "percent" in wrong(lambda: ex.check_quarter_model(params, 100 * ratio, net, x), ratio)
    assert "removed" in wrong(lambda: ex.check_quarter_model(params, 1 - 1 / ratio, net, x), ratio)
    right(capsys, ex.check_quarter_model(params, round(ratio, 4), net, x))


# 07 ---------------------------------------------------------------------------------------------


def test_check_bitmask_bytes(capsys):
    weight = torch.randn(64, 100)
    weight[weight.abs() < 1.5] = 0
    kept = int((weight != 0).sum())
    expected = math.ceil(6400 / 8) + 4 * kept
    missing(capsys, ex.check_bitmask_bytes(None, weight))
    right(capsys, ex.check_bitmask_bytes(expected, weight))
    for bad in (6400 + 4 * kept, 800 + kept, 800, expected + 1):
        wrong(lambda bad=bad: ex.check_bitmask_bytes(bad, weight), expected)


def test_check_reloaded(capsys, net, loader):
    to_save = copy.deepcopy(net)
    pairs = [(getattr(to_save, n), "weight") for n in ("fc1", "fc2", "fc3")]
    prune.global_unstructured(pairs, pruning_method=prune.L1Unstructured, amount=0.9)
    missing(capsys, ex.check_reloaded(None, to_save, loader))
    reloaded = Net()
    for name in ("fc1", "fc2", "fc3"):
        prune.identity(getattr(reloaded, name), "weight")
    wrong(lambda: ex.check_reloaded(reloaded, to_save, loader))  # masks of ones, not loaded
    reloaded.load_state_dict(to_save.state_dict())
    right(capsys, ex.check_reloaded(reloaded, to_save, loader))
    wrong(lambda: ex.check_reloaded(Net(), to_save, loader))


def test_check_mask_2_4_outputs(capsys):
    torch.manual_seed(0)
    weight = torch.randn(16, 8)

    def rows(w):
        groups = w.abs().reshape(w.shape[0], -1, 4)
        return (
            torch.zeros_like(groups)
            .scatter_(-1, groups.topk(2, dim=-1).indices, 1.0)
            .reshape(w.shape)
        )

    missing(capsys, ex.check_mask_2_4_outputs(None, weight))
    missing(capsys, ex.check_mask_2_4_outputs(lambda w: None, weight))
    right(capsys, ex.check_mask_2_4_outputs(lambda w: rows(w.t()).t(), weight))
    smallest = lambda w: 1 - rows(w.t()).t()  # noqa: E731  (keeps the 2 smallest of each group)
    for bad in (rows, torch.ones_like, smallest):
        message = wrong(lambda bad=bad: ex.check_mask_2_4_outputs(bad, weight))
        assert ".t()" not in message, "the hint does not give the formula"
