"""Checks for the exercises: a clear message when right, a helpful hint when not.

Every exercise's check cell is one call to a named function of this module, for example
``check_sneaker_count(sneakers, val_loader)``. The function computes the expected answer itself,
out of the learner's sight, and judges the learner's *own* answer:

- ``None`` (not answered yet) prints "Not answered yet: ..." and returns a false ``Verdict``, so
  Run All goes on;
- a wrong answer raises ``ExerciseCheckError``, which stops Run All at the check cell (as a failed
  ``assert`` would) and shows only "Not yet: <hint>": a hint that says where to look, never the
  expected value or the formula. In IPython and Jupyter the error draws itself without a
  traceback (``ExerciseCheckError._render_traceback_``), so the checker's source never reaches the
  screen;
- a right answer prints "Correct! ..." (without the answer's value) and returns a true ``Verdict``
  (a bool that shows nothing as the last line of a cell).

Every check is decorated with ``@exercise_check``: an answer the check did not foresee (a type it
cannot use, a function of the learner's that raises) becomes an ``ExerciseCheckError`` too, never
an error with the checker's frames. A new check gets both by raising ``ExerciseCheckError`` and
wearing the decorator (tests/test_exercises.py fails for a check without it).

The functions are grouped by notebook. ``check`` and ``check_close`` are the generic building
blocks.
"""

from __future__ import annotations

import copy
import functools
import math
import numbers
from typing import Any, Callable

import torch
import torch.nn as nn
from torch.nn.utils import prune

from .measure import count_macs, count_parameters
from .sparse_kernels import mask_2_4

__all__ = [
    "ExerciseCheckError",
    "Verdict",
    "exercise_check",
    "check",
    "check_close",
    "not_answered",
    "check_sneaker_count",
    "check_normalisation",
    "check_parameter_count",
    "check_validation_metrics",
    "check_second_amount",
    "check_permanent",
    "check_max_free",
    "check_fc2_sensitivity",
    "check_cubic_amounts",
    "check_lottery_ticket",
    "check_taylor_pruning",
    "check_max_sparsity",
    "check_norm_overlap",
    "check_quarter_model",
    "check_bitmask_bytes",
    "check_reloaded",
    "check_mask_2_4_outputs",
    "check_residual_group",
    "check_pruned_resnet_parameters",
    "check_wanda_mask",
    "check_heads_removable",
    "check_n_m_pattern",
    "check_break_even",
    "check_int8_mlp",
]


class ExerciseCheckError(AssertionError):
    """An exercise answer is not right yet; the message says what to look at.

    IPython (JupyterLab, Colab, nbconvert/nbclient, the terminal) asks an exception for
    ``_render_traceback_`` before drawing a traceback: this one answers with its message alone,
    marked as "not yet right" the way a correct verdict is marked "Correct!", and one line that
    says what to do next. No frame, so no line of the checker, reaches the screen. Outside IPython
    it is an ordinary ``AssertionError``.
    """

    def _render_traceback_(self) -> list[str]:
        message = str(self)
        if message.startswith("Not yet:"):
            message = message[len("Not yet:") :].lstrip()
        return [
            f"\x1b[1;31mNot yet:\x1b[0m {message}",
            "\x1b[2m(Run All stops at a wrong answer. Change your answer and run its cell and "
            "this check again; set it back to None to run past it.)\x1b[0m",
        ]


def exercise_check(function: Callable[..., Verdict]) -> Callable[..., Verdict]:
    """Make ``function`` an exercise check that never shows more than its hint.

    ``ExerciseCheckError`` passes through; any other error raised while judging an answer (an
    answer of a type the check did not foresee) becomes an ``ExerciseCheckError`` that names the
    kind of error, without the checker's traceback or the error's own message, which could show a
    value the check computed.
    """

    @functools.wraps(function)
    def judged(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except ExerciseCheckError:
            raise
        except Exception as error:  # any error at all: the learner sees a hint, not code
            kind = type(error).__name__
        raise ExerciseCheckError(
            f"Not yet: the check could not use your answer (it raised {kind} on it). Give what "
            "the exercise asks for, as the comment of the answer cell says: a number, a list, a "
            "model or a function, in the units the exercise uses."
        )

    judged.exercise_check = True
    return judged


class Verdict:
    """What a check returns: true when the answer is right, false when it is missing.

    It behaves as a bool (``if check_...(...):``) but shows nothing as the last line of a cell,
    so a check cell's only output is its message.
    """

    def __init__(self, ok: Any) -> None:
        self.ok = bool(ok)

    def __bool__(self):
        return self.ok

    def __eq__(self, other):
        return bool(self) == other

    def __hash__(self):
        return hash(self.ok)

    def __repr__(self):
        return repr(self.ok)

    def _ipython_display_(self):
        pass


def check(passed: Any, success: str, hint: str) -> Verdict:
    """Print ``success`` when ``passed`` is true, else raise ``ExerciseCheckError(hint)``."""
    if not passed:
        raise ExerciseCheckError(f"Not yet: {hint}")
    print(f"Correct! {success}")
    return Verdict(True)


def check_close(value: Any, expected: Any, tolerance: Any, what: str, hint: str = "") -> Verdict:
    """Check that ``value`` is within ``tolerance`` of ``expected``; the messages show neither."""
    ok = value is not None and abs(value - expected) <= tolerance
    check(ok, f"{what} is right.", f"{what} is not right yet. {hint}".strip())
    return Verdict(True)


def _require(passed, hint):
    """Raise ``ExerciseCheckError(hint)`` unless ``passed``; print nothing when it passes."""
    if not passed:
        raise ExerciseCheckError(f"Not yet: {hint}")


def not_answered(hint: str) -> Verdict:
    """Print that the exercise is not answered yet, with what to do; return a false ``Verdict``."""
    print(f"Not answered yet: {hint}")
    return Verdict(False)


def _number(value, what, hint=""):
    """``value`` as a float (a Python number or a one-element tensor), else a hint."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ExerciseCheckError(
                f"Not yet: {what} should be one number, but you have a tensor of shape "
                f"{tuple(value.shape)}. {hint}".strip()
            )
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ExerciseCheckError(
            f"Not yet: {what} should be a number, not {type(value).__name__}. {hint}".strip()
        )
    if not math.isfinite(value):
        raise ExerciseCheckError(f"Not yet: {what} should be a finite number. {hint}".strip())
    return float(value)


def _amount(value, what):
    """A pruning ``amount`` in either form PyTorch takes: a fraction (a float between 0 and 1) or a
    number of weights (an int, kept an int), else a hint."""
    if (
        isinstance(value, torch.Tensor)
        and value.numel() == 1
        and not (value.is_floating_point() or value.dtype == torch.bool)
    ):
        value = int(value.item())
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        _require(
            value >= 0,
            f"{what} is an integer, so a number of weights to prune: it cannot be negative.",
        )
        return int(value)
    value = _number(value, what)
    _require(
        0 <= value <= 1,
        f"{what} is a float, so a fraction between 0 and 1 of the weights "
        "that are left (an integer would be a number of weights).",
    )
    return value


def _count(model, name):
    return int((getattr(model, name).weight == 0).sum())


# --------------------------------------------------------------------------- 00_start_here


@exercise_check
def check_sneaker_count(sneakers: Any, val_loader: Any) -> Verdict:
    """00 Exercise 1: the number of *Sneaker* images in the validation split."""
    from .data import class_names

    if sneakers is None:
        return not_answered(
            "count the images of the class 'Sneaker' in val_loader.labels "
            "and put the number in `sneakers`."
        )
    value = _number(
        sneakers, "`sneakers`", "Sum the matches and turn the sum into a number with int(...)."
    )
    index = class_names().index("Sneaker")
    expected = int((val_loader.labels == index).sum())
    if value != expected and value == int((val_loader.labels == index).numel()):
        raise ExerciseCheckError(
            "Not yet: that is the size of the whole split; count only the "
            "labels equal to the index of 'Sneaker'."
        )
    return check(
        value == expected,
        "That is the number of sneakers in the validation split.",
        "find the index of 'Sneaker' with classes.index(...), compare it with "
        "val_loader.labels (the validation split, not the training or test split) "
        "and sum the matches.",
    )


@exercise_check
def check_normalisation(pixel_mean: Any, pixel_std: Any, train_loader: Any) -> Verdict:
    """00 Exercise 2: the mean and standard deviation of every pixel of the training images."""
    if pixel_mean is None or pixel_std is None:
        return not_answered(
            "compute the mean and the standard deviation of train_loader.images "
            "and put them in `pixel_mean` and `pixel_std`."
        )
    where = (
        "Compute it over every pixel of every image: call .mean() / .std() on "
        "train_loader.images without a dim, then .item()."
    )
    mean = _number(pixel_mean, "`pixel_mean`", where)
    std = _number(pixel_std, "`pixel_std`", where)
    images = train_loader.images
    expected_mean, expected_std = images.mean().item(), images.std().item()
    # Normalisation aims at 0 and 1, so those can be typed without computing anything; the
    # training split's own values differ from them by a few 1e-4 (the statistics came from all
    # 60,000 images, 5,000 of which are held out), so the check asks for five decimals.
    tolerance = 1e-5
    if abs(mean - expected_std) < tolerance and abs(std - expected_mean) < tolerance:
        raise ExerciseCheckError("Not yet: the two values are swapped.")
    if (abs(mean - expected_mean) >= tolerance or abs(std - expected_std) >= tolerance) and (
        abs(mean - expected_mean) < 1e-3 and abs(std - expected_std) < 1e-3
    ):
        raise ExerciseCheckError(
            "Not yet: close to the values normalisation aims at, but not what the training images "
            f"give to five decimals. Compute them rather than guess or round them. {where}"
        )
    check(
        abs(mean - expected_mean) < tolerance,
        "The mean is right.",
        f"`pixel_mean` is not the mean of the training images. {where}",
    )
    return check(
        abs(std - expected_std) < tolerance,
        "The standard deviation is right too: normalising used the training set's own "
        "statistics, so its pixels end up centred with unit spread (not exactly, because "
        "the held-out validation images were part of those statistics).",
        f"`pixel_std` is not the standard deviation of the training images. {where}",
    )


# --------------------------------------------------------------------------- 01_model_definition


@exercise_check
def check_parameter_count(model_or_count: Any, expected: Any = None) -> Verdict:
    """01 Exercise 1: the number of parameters of the article's Net (784-256-128-10)."""
    if model_or_count is None:
        return not_answered("replace None with your answer (a model or a number).")
    sizes = [(784, 256), (256, 128), (128, 10)]
    if expected is None:
        expected = sum(a * b + b for a, b in sizes)
    if isinstance(model_or_count, nn.Module):
        count = count_parameters(model_or_count)
    else:
        count = _number(model_or_count, "`n_params`")
        _require(count == int(count), "a number of parameters is a whole number.")
    if count == sum(a * b for a, b in sizes):
        raise ExerciseCheckError(
            "Not yet: you counted the weights only; every layer has biases too."
        )
    return check(
        count == expected,
        "That is the number of parameters of the article's Net.",
        f"you have {count:,.0f}. Count the weight matrix and the bias vector of each of "
        "the three nn.Linear layers (look at their in_features and out_features).",
    )


@exercise_check
def check_validation_metrics(
    val_loss: Any, val_acc: Any, history: Any, test_acc: Any = None
) -> Verdict:
    """01 Exercise 2: validation loss and accuracy of the trained model."""
    if val_loss is None or val_acc is None:
        return not_answered(
            "call the article's validate(...) and accuracy(...) on the trained "
            "model and the validation loader."
        )
    loss = _number(val_loss, "`val_loss`")
    acc = _number(val_acc, "`val_acc`")
    expected_loss, expected_acc = history["val_loss"][-1], history["val_acc"][-1]
    if acc <= 1 and abs(100 * acc - expected_acc) < 0.02:
        raise ExerciseCheckError(
            "Not yet: `val_acc` looks like a fraction; accuracy(...) "
            "returns percent, keep it that way."
        )
    if abs(acc - expected_loss) < 1e-4 and abs(loss - expected_acc) < 0.02:
        raise ExerciseCheckError("Not yet: the loss and the accuracy are swapped.")
    check(
        abs(acc - expected_acc) < 0.02,
        "The validation accuracy is right.",
        "`val_acc` is not the validation accuracy of the trained model: use val_loader, "
        "not test_loader or train_loader.",
    )
    close = (
        ""
        if test_acc is None
        else (
            " It is within a point of the test accuracy: two samples of the same distribution."
            if abs(expected_acc - test_acc) < 1
            else " It differs from the test accuracy by more than a point: the splits are "
            "small samples."
        )
    )
    return check(
        abs(loss - expected_loss) < 1e-4,
        "The validation loss is right too." + close,
        "`val_loss` is not the validation loss: call validate(model, val_loader, "
        "criterion) with the criterion of the training.",
    )


# ------------------------------------------------------------------- 02_l1_unstructured_pruning


@exercise_check
def check_second_amount(amount: Any, baseline: Any) -> Verdict:
    """02 Exercise 1: the amount of a second l1_unstructured call that takes fc2 from 20% to 50%.

    Either form PyTorch accepts is judged: a fraction of the weights left, or a number of weights.
    """
    if amount is None:
        return not_answered("choose the `amount` of the second call on fc2.")
    value = _amount(amount, "`amount`")
    trial = copy.deepcopy(baseline)  # a fresh copy: deepcopy of a pruned model can fail
    prune.l1_unstructured(trial.fc2, name="weight", amount=0.2)
    total = trial.fc2.weight.numel()
    _require(
        not isinstance(value, int) or value <= total - _count(trial, "fc2"),
        "an integer `amount` is a number of weights, and fc2 has fewer than that left after "
        "the first call.",
    )
    if isinstance(value, float) and (abs(value - 0.3) < 1e-9 or abs(value - 0.5) < 1e-9):
        raise ExerciseCheckError(
            "Not yet: the second `amount` is a fraction of the weights that are LEFT after the "
            "first call, not of the whole layer."
        )
    if isinstance(value, int) and value == round(0.5 * total):
        raise ExerciseCheckError(
            "Not yet: an integer `amount` is the number of weights THIS call prunes, on top of "
            "those the first call pruned."
        )
    prune.l1_unstructured(trial.fc2, name="weight", amount=value)
    zeros = _count(trial, "fc2")
    if abs(zeros - total / 2) > 1 and abs(zeros / total - 0.5) < 0.005:
        raise ExerciseCheckError(
            f"Not yet: close, but fc2 ends with {zeros / total:.2%} of its weights pruned, not "
            "exactly half: the amount is not precise enough. Compute it (by hand as a fraction, "
            "or with amount_for_target) instead of rounding it."
        )
    return check(
        abs(zeros - total / 2) <= 1,
        "fc2 ends with exactly half of its weights pruned.",
        f"with amount={amount!r} fc2 ends with {zeros / total:.1%} of its weights pruned. "
        "The second amount is a fraction of the weights that are left after the first "
        "call (or, as an integer, a number of weights).",
    )


@exercise_check
def check_permanent(permanent: Any, baseline: Any) -> Verdict:
    """02 Exercise 2: a copy of the baseline pruned 20% per layer, the pruning made permanent."""
    if permanent is None:
        return not_answered(
            "build `permanent` from copy.deepcopy(baseline), prune it, then make "
            "the pruning permanent."
        )
    _require(
        isinstance(permanent, nn.Module) and permanent is not baseline,
        "build `permanent` from copy.deepcopy(baseline), so the baseline stays dense.",
    )
    keys, dense_keys = set(permanent.state_dict()), set(baseline.state_dict())
    _require(
        keys == dense_keys,
        f"the state_dict still has {sorted(keys - dense_keys)}: one more prune function "
        "makes the pruning of a layer permanent.",
    )
    wrong = [
        name
        for name in ("fc1", "fc2", "fc3")
        if _count(permanent, name) != round(0.2 * getattr(baseline, name).weight.numel())
    ]
    return check(
        not wrong,
        "The state_dict has the keys of a dense Net, and every layer lost exactly a fifth "
        "of its weights.",
        f"{wrong} do not have exactly 20% zeros: prune each layer once, with amount=0.2, "
        "before making the pruning permanent.",
    )


# --------------------------------------------------------------------------- 03_validation


@exercise_check
def check_max_free(max_free: Any, curve: Any, sparsities: Any, dense_val: Any) -> Verdict:
    """03 Exercise 1: the highest sparsity within 1 point of the dense validation accuracy."""
    if max_free is None:
        return not_answered(
            "read curve['l1'] and put the highest sparsity that stays within "
            "one point of dense_val in `max_free`."
        )
    value = _number(max_free, "`max_free`")
    if value not in sparsities:
        raise ExerciseCheckError("Not yet: `max_free` should be one of `sparsities` (in percent).")
    expected = max(s for s in sparsities if curve["l1"][s] >= dense_val - 1)
    return check(
        value == expected,
        "That is the highest sparsity at which layer-wise L1 pruning costs at most a point.",
        "look at curve['l1'][s] for each s in sparsities, keep the sparsities whose "
        "accuracy is at most 1 point below dense_val, and take the largest (curve['l1'], "
        "not curve['random']).",
    )


@exercise_check
def check_fc2_sensitivity(fc2_acc: Any, baseline: Any, val_loader: Any) -> Verdict:
    """03 Exercise 2: validation accuracy with only fc2 pruned by 95% (L1)."""
    from .training import accuracy

    if fc2_acc is None:
        return not_answered(
            "prune only fc2 of a copy of the baseline as asked and put its "
            "validation accuracy in `fc2_acc`."
        )
    value = _number(fc2_acc, "`fc2_acc`")
    model = copy.deepcopy(baseline)
    prune.l1_unstructured(model.fc2, name="weight", amount=0.95)
    expected = accuracy(model, val_loader)
    if value <= 1 and abs(100 * value - expected) < 0.02:
        raise ExerciseCheckError("Not yet: `fc2_acc` looks like a fraction; give it in percent.")
    return check(
        abs(value - expected) < 0.01,
        "That is the validation accuracy with only fc2 pruned.",
        "prune only fc2 (amount=0.95, L1) of a copy of the baseline, and call "
        "accuracy(model, val_loader), not test_loader.",
    )


# --------------------------------------------------------------------------- 04_fine_tuning


@exercise_check
def check_cubic_amounts(amounts: Any, baseline: Any) -> Verdict:
    """04 Exercise 1: the four amounts that prune fc2 to 90% on the cubic schedule.

    The amounts are applied to a copy of fc2, so either form PyTorch accepts is judged (fractions
    of the weights left, or numbers of weights); after call t, fc2 must be within two weights of
    ``cubic_sparsity(t, 4, 0.9)``.
    """
    from .pruning import cubic_sparsity

    if amounts is None:
        return not_answered("put the four amounts, one per pruning call, in the list `amounts`.")
    four = isinstance(amounts, (list, tuple)) and len(amounts) == 4
    _require(four, "`amounts` should be a list of four numbers, one per pruning call.")
    values = [_amount(a, f"amount number {i}") for i, a in enumerate(amounts, 1)]
    targets = [cubic_sparsity(t, 4, 0.9) for t in range(1, 5)]
    if all(isinstance(a, float) and abs(a - t) < 1e-6 for a, t in zip(values, targets)):
        raise ExerciseCheckError(
            "Not yet: those are the target sparsities of the schedule. Each call prunes a fraction "
            "of what REMAINS after the previous calls."
        )
    trial = copy.deepcopy(baseline)
    total = trial.fc2.weight.numel()
    reached = []
    for i, amount in enumerate(values, 1):
        _require(
            not isinstance(amount, int) or amount <= total - _count(trial, "fc2"),
            f"amount number {i} is an integer larger than the number of weights left at "
            "that call: an integer amount is a number of weights, among those that remain.",
        )
        prune.l1_unstructured(trial.fc2, name="weight", amount=amount)
        reached.append(_count(trial, "fc2"))
    off = [
        i
        for i, (zeros, target) in enumerate(zip(reached, targets), 1)
        if abs(zeros - target * total) > 2
    ]
    if off and all(
        abs(zeros - target * total) <= 0.005 * total for zeros, target in zip(reached, targets)
    ):
        raise ExerciseCheckError(
            f"Not yet: close, but not precise enough: after the four calls fc2 is "
            f"{reached[-1] / total:.3%} sparse, not 90%. Rounding an amount loses weights at every "
            "call: keep the amounts as you compute them, unrounded."
        )
    first = off[0] if off else 1
    return check(
        not off,
        "Each call prunes the right share of what remains, and fc2 ends at the target sparsity.",
        f"amount number {first} is not right: after that call fc2 is "
        f"{reached[first - 1] / total:.1%} sparse, which is not "
        f"cubic_sparsity({first}, 4, 0.9). Each amount is a fraction of the weights that "
        "remain before that call (an integer: a number of them).",
    )


@exercise_check
def check_lottery_ticket(ticket: Any, final_model: Any) -> Verdict:
    """04 Exercise 2: the rewound ticket (initial weights of seed 0, masks of the 95% model).

    Returns ``True`` only for a correct ticket, so the experiment after it can be guarded.
    """
    from .models import Net

    layers = ("fc1", "fc2", "fc3")
    if ticket is None:
        return not_answered("build `ticket` (the experiment below runs once it is right).")
    _require(
        isinstance(ticket, Net) and all(hasattr(getattr(ticket, n), "weight_mask") for n in layers),
        "build `ticket` as a fresh Net, then attach a mask to fc1, fc2 and fc3 with "
        "prune.custom_from_mask(ticket.fc1, name='weight', mask=...).",
    )
    device = next(final_model.parameters()).device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        initial = Net().to(device)
    wrong_mask = [
        n
        for n in layers
        if not torch.equal(
            getattr(ticket, n).weight_mask.bool().to(device), getattr(final_model, n).weight != 0
        )
    ]
    _require(
        not wrong_mask,
        f"the masks of {wrong_mask} are not those of the 95% model: after prune.remove, a "
        "layer's surviving weights are the non-zero ones of final_model.",
    )
    not_rewound = [
        n
        for n in layers
        if not torch.equal(getattr(ticket, n).weight_orig.to(device), getattr(initial, n).weight)
    ]
    return check(
        not not_rewound,
        "A Net with the masks of the final sparse model and every surviving weight back "
        "at its initial value: a lottery ticket.",
        f"{not_rewound} do not hold the initial weights: call torch.manual_seed(0) right "
        "before Net(), and attach the masks to that fresh Net, not to a trained copy.",
    )


# --------------------------------------------------------------------------- 05_global_pruning


@exercise_check
def check_taylor_pruning(
    taylor_model: Any, taylor_acc: Any, taylor_better: Any, results: Any, val_loader: Any
) -> Verdict:
    """05 Exercise 1: |w x g| global pruning at 90%, its accuracy, whether it beats magnitude."""
    from .measure import sparsity_report
    from .training import accuracy

    if taylor_model is None or taylor_acc is None or taylor_better is None:
        return not_answered(
            "build and prune `taylor_model`, measure `taylor_acc`, and answer "
            "`taylor_better` with True or False."
        )
    _require(
        isinstance(taylor_model, nn.Module) and hasattr(taylor_model.fc1, "weight_mask"),
        "taylor_model should be a pruned copy of the baseline (prune.global_unstructured on it).",
    )
    zeros, total = sparsity_report(taylor_model, quiet=True)["total"]
    _require(
        zeros == round(0.9 * total),
        "prune all three layers together, with amount=0.9, in one global_unstructured call.",
    )
    magnitude = results[0.9, "global"]
    _require(
        not torch.equal(taylor_model.fc1.weight_mask, magnitude["model"].fc1.weight_mask),
        "the masks are those of plain magnitude pruning: pass importance_scores= to "
        "global_unstructured, or the ranking is |weight|.",
    )
    measured = accuracy(taylor_model, val_loader)
    acc = _number(taylor_acc, "`taylor_acc`")
    _require(
        abs(acc - measured) < 0.01,
        "`taylor_acc` is not the validation accuracy of taylor_model: measure "
        "accuracy(taylor_model, val_loader) before any fine-tuning.",
    )
    _require(isinstance(taylor_better, bool), "answer `taylor_better` with True or False.")
    better = measured > magnitude["before"]
    verdict = (
        "On this model |w x g| beats magnitude in one shot."
        if better
        else "On this model |w x g| is worse than magnitude in one shot: a first-order estimate "
        "holds for removing one weight, not most of them at once."
    )
    return check(
        taylor_better == better,
        f"Your pruning is right, and so is your verdict. {verdict}",
        "your pruning is right, but compare taylor_acc with "
        "results[0.9, 'global']['before'] again before answering `taylor_better`.",
    )


@exercise_check
def check_max_sparsity(
    max_sparsity: Any, results: Any, sparsities: Any, baseline_val: Any
) -> Verdict:
    """05 Exercise 2: the highest sparsity within 1 point of the baseline after one epoch."""
    if max_sparsity is None:
        return not_answered(
            "read results[s, 'global']['after'] and put the highest sparsity "
            "within one point of baseline_val in `max_sparsity` (a fraction)."
        )
    value = _number(max_sparsity, "`max_sparsity`")
    if value > 1:
        raise ExerciseCheckError(
            "Not yet: give the sparsity as a fraction, like the keys of `results`, not in percent."
        )
    expected = max(
        [s for s in sparsities if results[s, "global"]["after"] >= baseline_val - 1.0], default=0.0
    )
    return check(
        abs(value - expected) < 1e-9,
        "That is the highest sparsity that one epoch of fine-tuning brings back within a point.",
        "look at results[s, 'global']['after'] (after fine-tuning, global pruning) for "
        "each s in sparsities, and keep those at most 1 point below baseline_val.",
    )


# --------------------------------------------------------------------------- 06_structured_pruning


@exercise_check
def check_norm_overlap(overlap: Any, baseline: Any, masked: Any) -> Verdict:
    """06 Exercise 1: how many fc1 neurons both L1 and L2 structured pruning remove."""
    if overlap is None:
        return not_answered(
            "prune a fresh copy with the L1 norm and count the fc1 neurons removed by both norms."
        )
    value = _number(overlap, "`overlap`", "Count the rows with int(...sum()).")
    model = copy.deepcopy(baseline)
    prune.ln_structured(model.fc1, name="weight", amount=0.5, n=1, dim=0)
    removed_l1 = model.fc1.weight_mask[:, 0] == 0
    removed_l2 = masked.fc1.weight_mask[:, 0] == 0
    expected = int((removed_l1 & removed_l2).sum())
    if value == int(removed_l1.sum()):
        raise ExerciseCheckError(
            "Not yet: that is the number of neurons removed by one norm; "
            "count those removed by both."
        )
    agree = (
        "almost all the same neurons"
        if expected >= 0.9 * int(removed_l2.sum())
        else "many of the same neurons"
    )
    return check(
        value == expected,
        f"The two norms remove {agree}.",
        "prune a fresh copy of the baseline with n=1 (amount=0.5, dim=0) and count the "
        "rows of fc1.weight_mask that are zero in it AND in masked.fc1.weight_mask.",
    )


@exercise_check
def check_quarter_model(
    n_params_75: Any, mac_ratio_75: Any, baseline: Any, example_input: Any
) -> Verdict:
    """06 Exercise 2: parameters and FLOP (MAC) ratio of the MLP with 75% of its neurons removed."""
    if n_params_75 is None or mac_ratio_75 is None:
        return not_answered(
            "remove three quarters of the neurons of fc1 and fc2 of a fresh copy, "
            "then count its parameters and its MAC ratio."
        )
    sizes = [
        baseline.fc1.in_features,
        baseline.fc1.out_features // 4,
        baseline.fc2.out_features // 4,
        baseline.fc3.out_features,
    ]
    layers = list(zip(sizes[:-1], sizes[1:]))
    expected_params = sum(a * b + b for a, b in layers)
    small_macs = example_input.shape[0] * sum(a * b for a, b in layers)  # as count_macs counts
    expected_ratio = count_macs(baseline, example_input) / small_macs
    params = _number(n_params_75, "`n_params_75`")
    _require(
        params == expected_params,
        "75% of the neurons of fc1 and of fc2 go; count the weights and biases of the "
        "three smaller layers (count_parameters does it).",
    )
    ratio = _number(mac_ratio_75, "`mac_ratio_75`")
    param_ratio = count_parameters(baseline) / expected_params
    # The parameter ratio and the MAC ratio differ by a few 1e-4 only (biases cost no
    # multiplications): the right ratio is tested first, then "upside down" (which covers both
    # ratios inverted: the two cannot be told apart), then the parameter ratio.
    if abs(ratio - expected_ratio) < 2e-4:
        return check(
            True,
            "Both are right. Expect the measured speed-up to fall further below this MAC "
            "ratio than the half-width model's did: the layers are even smaller, so the "
            "fixed cost of each call weighs more.",
            "",
        )
    if min(abs(ratio * expected_ratio - 1), abs(ratio * param_ratio - 1)) < 2e-3:
        raise ExerciseCheckError(
            "Not yet: the ratio is upside down: divide the dense model's count by the smaller "
            "model's. (And make sure both counts are MACs from count_macs, not parameters: the two "
            "ratios are close but not the same.)"
        )
    if abs(ratio - param_ratio) < 2e-4:
        raise ExerciseCheckError(
            "Not yet: that is the parameter ratio, not the MAC ratio. Biases cost no "
            "multiplications: use count_macs(model, images[:1]) on both models."
        )
    if abs(ratio - expected_ratio) < 1e-2:
        raise ExerciseCheckError(
            "Not yet: close, but not precise enough: keep the ratio as you compute it, unrounded, "
            "from count_macs on both models (the parameter ratio is close to it but is not it)."
        )
    if min(abs(ratio / 100 - expected_ratio), abs(ratio / 100 - param_ratio)) < 2e-2:
        raise ExerciseCheckError(
            "Not yet: give the ratio as a plain number (how many times fewer MACs), not in percent."
        )
    if min(abs((1 - ratio) * expected_ratio - 1), abs((1 - ratio) * param_ratio - 1)) < 2e-3:
        raise ExerciseCheckError(
            "Not yet: that is the share of MACs removed, not the ratio: "
            "divide the dense model's MACs by the smaller model's."
        )
    return check(
        False,
        "",
        "divide count_macs(baseline, images[:1]) by count_macs(smaller_model, images[:1]).",
    )


# --------------------------------------------------------------------- 07_from_masks_to_savings


@exercise_check
def check_bitmask_bytes(bitmask_bytes: Any, weight: Any) -> Verdict:
    """07 Exercise 1: bytes of a raw bitmask encoding of ``weight`` (bits + float32 survivors)."""
    if bitmask_bytes is None:
        return not_answered("compute the bytes of the bits plus the bytes of the surviving values.")
    value = _number(bitmask_bytes, "`bitmask_bytes`")
    numel, kept = weight.numel(), int((weight != 0).sum())
    expected = math.ceil(numel / 8) + 4 * kept
    if value == numel + 4 * kept:
        raise ExerciseCheckError(
            "Not yet: you counted a byte per weight for the mask; a bit is an eighth of a byte."
        )
    if value == math.ceil(numel / 8) + kept:
        raise ExerciseCheckError("Not yet: each surviving float32 value takes 4 bytes.")
    if value == math.ceil(numel / 8):
        raise ExerciseCheckError("Not yet: that is the mask only; add the surviving values.")
    return check(
        value == expected,
        "Compare it with the bytes of the dense weight: at this sparsity the bitmask "
        "encoding is many times smaller.",
        "count the bits (one per weight, rounded up to whole bytes) and the bytes of the "
        "non-zero weights (float32).",
    )


@exercise_check
def check_reloaded(reloaded: Any, to_save: Any, loader: Any) -> Verdict:
    """07 Exercise 2: a fresh Net with the saved masks loaded back, with the same accuracy."""
    from .training import accuracy

    if reloaded is None:
        return not_answered("build a fresh Net and load net_global90_masked.pt into it.")
    layers = ("fc1", "fc2", "fc3")
    _require(
        isinstance(reloaded, nn.Module)
        and all(hasattr(getattr(reloaded, n, None), "weight_mask") for n in layers),
        "a fresh Net has no weight_orig and weight_mask: give each layer the same "
        "parametrisation first (a prune function that prunes nothing), then load_state_dict.",
    )
    same_masks = all(
        torch.equal(getattr(reloaded, n).weight_mask, getattr(to_save, n).weight_mask)
        for n in layers
    )
    _require(
        same_masks,
        "the masks are not the saved ones: call load_state_dict after attaching the masks.",
    )
    return check(
        accuracy(reloaded, loader) == accuracy(to_save, loader),
        "The masks are back and the accuracy is the same.",
        "the weights are not the saved ones: load the state_dict into `reloaded`.",
    )


@exercise_check
def check_mask_2_4_outputs(mask_2_4_outputs: Any, weight: Any) -> Verdict:
    """07 Exercise 3: a 2:4 mask that groups 4 consecutive neurons (rows) for each input."""
    if not callable(mask_2_4_outputs):
        return not_answered("define the function mask_2_4_outputs(weight).")
    try:
        mask = mask_2_4_outputs(weight)
    except Exception as error:  # the learner's own function: say so, and how to see its error
        kind = type(error).__name__
        raise ExerciseCheckError(
            f"Not yet: your mask_2_4_outputs(weight) raised {kind}. Call it on its own in a new "
            "cell, mask_2_4_outputs(baseline.fc2.weight), to see the error and its line."
        ) from None
    if mask is None:
        return not_answered("mask_2_4_outputs(weight) still returns None: return the mask.")
    _require(
        isinstance(mask, torch.Tensor) and mask.shape == weight.shape,
        "return a tensor of the weight's shape, with 1 for kept weights and 0 for pruned ones.",
    )
    mask = mask.detach().float()
    _require(
        int(mask.sum()) == weight.numel() // 2, "the mask should keep exactly half the weights."
    )
    columns = mask.t().reshape(weight.shape[1], -1, 4).sum(-1)
    _require(
        bool((columns == 2).all()),
        "in each column (one input), every group of 4 consecutive rows (neurons) should "
        "keep exactly 2 weights. mask_2_4 groups along a row; your groups run down a column.",
    )
    expected = mask_2_4(weight.t()).t()
    _require(
        torch.equal(mask, expected.to(mask.device)),
        "keep the 2 largest-magnitude weights of each group, not any 2.",
    )
    return check(
        not torch.equal(mask, mask_2_4(weight).to(mask.device)),
        "Half of the weights kept, two of every four neurons for each input: a different "
        "mask from mask_2_4's.",
        "this is the row-wise mask of mask_2_4; group along the columns.",
    )


# ---------------------------------------------------------------- 08_pruning_a_residual_network


@exercise_check
def check_residual_group(answer: Any) -> Verdict:
    """08 Exercise 1: the convolutions whose output channels are tied to ``down.0``'s.

    ``answer``: module names of a ``SmallResNet`` (as ``named_modules()`` spells them).
    """
    if answer is None:
        return not_answered(
            "list the names of the convolutions that must lose the same output "
            "channels as the convolution of `down`, as model.named_modules() "
            "spells them."
        )
    _require(
        not isinstance(answer, str) and all(isinstance(name, str) for name in answer),
        "give a list (or set) of module names as strings, spelled as model.named_modules() "
        "spells them.",
    )
    given = {name.strip().removeprefix("model.") for name in answer}
    expected = {"down.0", "block2.conv2", "block3.conv2"}
    _require("down.0" in given, "the group starts with down.0 itself; include it.")
    _require(
        not given - expected,
        "some of these convolutions do not write to those channels: count only convolutions "
        "whose *outputs* are added to down's output, directly or through another block. Read "
        "SmallResNet.forward and ResidualBlock.forward.",
    )
    return check(
        not expected - given,
        "these convolutions (and their BatchNorms) lose the same channels, and the layers "
        "that read them lose the same inputs.",
        "a convolution is missing. Follow x from down through every `out + x` that "
        "follows it, up to the classifier.",
    )


@exercise_check
def check_pruned_resnet_parameters(answer: Any) -> Verdict:
    """08 Exercise 2: the parameters of ``SmallResNet`` after Torch-Pruning removed 25% of them."""
    if answer is None:
        return not_answered(
            "prune a fresh copy of the dense model with the exercise's "
            "pruning_ratio and put count_parameters(...) of the result in the "
            "answer."
        )
    from .models import SmallResNet

    _require(
        isinstance(answer, numbers.Integral) and not isinstance(answer, bool),
        "give a whole number, e.g. count_parameters(pruned_model).",
    )
    return check(
        answer == count_parameters(SmallResNet(channels=(12, 24))),
        "that is exactly a SmallResNet with narrower channels.",
        "not the count of the model pruned by 25%. Prune a fresh copy of the dense model "
        "(copy.deepcopy) with pruning_ratio=0.25 and the same ignored_layers, then call "
        "count_parameters on it.",
    )


# ------------------------------------------------------------------- 09_pruning_a_transformer


def _block_inputs(model, calibration, index):
    """What block ``index`` of a TinyGPT receives for the calibration windows."""
    with torch.no_grad():
        hidden = model.tok_emb(calibration) + model.pos_emb(
            torch.arange(calibration.shape[1], device=calibration.device)
        )
        for block in model.blocks[:index]:
            hidden = block(hidden)
    return hidden


@exercise_check
def check_wanda_mask(answer: Any, model: nn.Module, calibration: torch.Tensor) -> Verdict:
    """09 Exercise 1: Wanda's keep-mask at 50% for ``model.blocks[1].fc``."""
    from .lm_pruning import input_grams, keep_mask

    if answer is None:
        return not_answered(
            "compute Wanda's scores for the exercise's layer from its Gram matrix "
            "and put the boolean keep-mask in `wanda_keep_fc1`."
        )
    layer = model.blocks[1].fc
    _require(
        isinstance(answer, torch.Tensor) and answer.dtype == torch.bool,
        "give a boolean tensor (True for the weights Wanda keeps), for example the result "
        "of keep_mask(...).",
    )
    _require(
        tuple(answer.shape) == tuple(layer.weight.shape),
        "the mask must have the shape of dense.blocks[1].fc.weight: one entry per weight.",
    )
    answer = answer.to(layer.weight.device)
    gram = input_grams(model.blocks[1], _block_inputs(model, calibration, 1))["fc"]
    weight = layer.weight.detach().abs()
    expected = keep_mask(weight * gram.diagonal().sqrt(), 0.5, per_row=True)
    half_per_row = bool((answer.sum(dim=1) == answer.shape[1] // 2).all())
    if half_per_row and (answer == expected).float().mean().item() >= 0.999:
        # rounding may flip a near tie or two when the norms are computed another way
        return check(True, "that is Wanda's mask: half of every row, chosen by |W| x ||x_j||.", "")
    _require(
        not torch.equal(answer, ~expected),
        "True should mark the weights Wanda keeps, not the ones it removes.",
    )
    _require(
        answer.sum().item() == answer.numel() // 2,
        "at 50% Wanda keeps exactly half of the weights: check the sparsity you used.",
    )
    _require(
        not torch.equal(answer, keep_mask(weight, 0.5)),
        "that is magnitude pruning's mask: Wanda weighs each weight by its input (section 4).",
    )
    _require(
        not torch.equal(answer, keep_mask(weight, 0.5, per_row=True)),
        "that mask reads the weights alone: Wanda weighs each weight by its input (section 4).",
    )
    _require(
        not torch.equal(answer, keep_mask(weight * gram.diagonal(), 0.5, per_row=True)),
        "the diagonal of the Gram matrix is not a norm yet (section 3 says what it holds).",
    )
    _require(
        not torch.equal(answer, keep_mask(weight * gram.diagonal().sqrt(), 0.5)),
        "Wanda compares weights within each output row (per_row=True), not over the whole layer.",
    )
    return check(
        False,
        "",
        "the mask is not Wanda's yet. Use the Gram matrix of block 1's inputs "
        "(what block 0 outputs for the calibration windows), the layer fc, and keep "
        "half of every output row.",
    )


@exercise_check
def check_heads_removable(
    answer: Any, model: nn.Module, corpus: Any, scores: torch.Tensor, budget: float = 0.10
) -> Verdict:
    """09 Exercise 2: heads removable (lowest Michel score first) within ``budget`` nats."""
    from .language_model import evaluate_lm

    if answer is None:
        return not_answered(
            "switch heads off one at a time (their gate to zero), lowest score first, and put the "
            "number removed before the first one that goes past the budget in "
            "`heads_removable`."
        )
    _require(
        isinstance(answer, numbers.Integral) and not isinstance(answer, bool),
        "give a whole number of heads (an int).",
    )
    n_head = model.blocks[0].attn.n_head
    _require(
        0 <= answer <= scores.numel(),
        "the answer lies between 0 and the number of heads of the whole model.",
    )
    dense_loss = evaluate_lm(model, corpus)
    gated = copy.deepcopy(model)
    removable = 0
    for count, flat in enumerate(scores.flatten().argsort().tolist(), start=1):
        gated.blocks[flat // n_head].attn.head_gate[flat % n_head] = 0.0
        if evaluate_lm(gated, corpus) - dense_loss > budget:
            break
        removable = count
    _require(
        answer <= removable,
        "check whether your count includes the removal that broke the budget: count only "
        "the heads removed before it.",
    )
    return check(
        answer == removable,
        "that many heads can go within the budget.",
        "remove the heads lowest score first, cumulatively, in one copy of the model, "
        "and stop at the first removal that goes past the budget.",
    )


@exercise_check
def check_n_m_pattern(
    ppl: Any, better: Any, model: nn.Module, corpus: Any, calibration: torch.Tensor
) -> Verdict:
    """09 Exercise 3: SparseGPT's perplexity at 4:8, and whether it beats 2:4."""
    import math

    from .language_model import evaluate_lm
    from .lm_pruning import prune_transformer

    if ppl is None or better is None:
        return not_answered(
            "prune the dense model with SparseGPT to the exercise's pattern, put its "
            "validation perplexity in `ppl_4_8` and True or False in "
            "`four_eight_better`."
        )
    value = _number(ppl, "`ppl_4_8`", "Perplexity is math.exp of the validation loss.")
    _require(isinstance(better, bool), "`four_eight_better` should be True or False.")
    ppl_of = {}
    for n_m in ((4, 8), (2, 4)):
        pruned, _ = prune_transformer(model, calibration, "sparsegpt", n_m=n_m)
        ppl_of[n_m] = math.exp(evaluate_lm(pruned, corpus))
    close = lambda a, b: abs(a - b) <= 0.01 * b  # noqa: E731
    _require(
        not close(value, math.log(ppl_of[(4, 8)])) or close(value, ppl_of[(4, 8)]),
        "that looks like the loss in nats: perplexity is math.exp(loss).",
    )
    _require(
        not close(value, ppl_of[(2, 4)]) or close(value, ppl_of[(4, 8)]),
        "that is the perplexity at 2:4: prune with n_m=(4, 8).",
    )
    _require(
        close(value, ppl_of[(4, 8)]),
        "`ppl_4_8` is not SparseGPT's perplexity at 4:8 yet: prune the dense model with "
        "prune_transformer(dense, calibration, 'sparsegpt', n_m=(4, 8)) and evaluate it.",
    )
    four_eight_won = ppl_of[(4, 8)] < ppl_of[(2, 4)]
    why = (
        "a mask that keeps two of every four weights also keeps four of every eight, so the "
        "wider pattern has more masks to choose from."
        if four_eight_won
        else "the wider pattern has more masks to choose from, but "
        "SparseGPT chooses greedily, column by column, so more choice is no guarantee."
    )
    return check(
        better == four_eight_won,
        f"and the comparison with the two-of-four pattern is right: {why}",
        "compare `ppl_4_8` with the perplexity at 2:4 of section 6 (ppl['sparsegpt']['2:4']).",
    )


# ----------------------------------------------------------------------------- 10_deployment


@exercise_check
def check_break_even(break_even: Any) -> Verdict:
    """10 Exercise 1: the sparsity above which a bitmask + int8 values beat dense int8."""
    if break_even is None:
        return not_answered(
            "count the bytes per weight of both formats and find the sparsity where they meet."
        )
    value = _number(break_even, "`break_even`", "Give the sparsity as a fraction of the weights.")
    _require(
        0 <= value <= 1,
        "a sparsity is a fraction between 0 and 1 (the share of zero weights), not a percentage.",
    )
    _require(
        abs(value - 1 / 32) > 0.006,
        "that is the break-even for float32 values (four bytes each): here the values are int8.",
    )
    _require(
        abs(value - 7 / 8) > 0.006,
        "that is a density (the share of weights kept), not a sparsity: turn it around.",
    )
    return check(
        abs(value - 1 / 8) <= 0.006,
        "Above that sparsity the mask costs less than the zeros it leaves out. With float32 "
        "values each zero left out saves four bytes, so the mask pays off far sooner.",
        "per weight, the mask costs one bit whatever the sparsity; each surviving weight costs "
        "one byte, and the dense layer one byte per weight. Write both sizes for n weights at "
        "sparsity s and solve for s where they are equal (an exact fraction is fine).",
    )


@exercise_check
def check_int8_mlp(int8_path: Any, model: nn.Module, loader: Any) -> Verdict:
    """10 Exercise 2: a static QDQ int8 ONNX file of ``model`` (a pruned Net) that runs."""
    import os

    import onnx
    from onnx import numpy_helper

    from .deploy import OrtModel
    from .training import accuracy

    if int8_path is None:
        return not_answered(
            "export net90, quantize the file statically as section five did for the CNN, and "
            "put the int8 file's path in `int8_path`."
        )
    _require(
        isinstance(int8_path, (str, os.PathLike)) and os.path.isfile(int8_path),
        "`int8_path` should be the path of your int8 file (a string or a Path), and the file "
        "should exist: the quantizer writes it to the second path you give it.",
    )
    try:
        graph = onnx.load(os.fspath(int8_path)).graph
    except Exception:
        raise ExerciseCheckError(
            "Not yet: the file is not an ONNX model: give the path of the file that the "
            "quantizer wrote, not of a checkpoint."
        ) from None
    ops = {node.op_type for node in graph.node}
    _require(
        "DynamicQuantizeLinear" not in ops and "MatMulInteger" not in ops,
        "this file was quantized dynamically (as section five did for the Net): the exercise "
        "asks for static quantization, with calibration data, in the QDQ format.",
    )
    _require(
        "DequantizeLinear" in ops and "QuantizeLinear" in ops,
        "the file has no QuantizeLinear and DequantizeLinear nodes: it is not quantized yet. "
        "Quantize the exported file statically, in the QDQ format.",
    )
    weights = [numpy_helper.to_array(t) for t in graph.initializer]
    weights = [w for w in weights if w.ndim == 2]
    _require(
        all(w.dtype.name != "uint8" for w in weights),
        "the weights are unsigned: quantize them as signed int8 (the weight type of section "
        "five), whose zero point is 0, so that a pruned weight stays exactly 0.",
    )
    int8_weights = [w for w in weights if w.dtype.name == "int8"]
    n_weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    _require(
        sum(w.size for w in int8_weights) >= 0.99 * n_weights,
        "the weights in your file are not int8 yet: quantize the weights as well as the "
        "activations.",
    )
    zeros = sum(int((w == 0).sum()) for w in int8_weights)
    model_zeros = sum(
        int((m.weight == 0).sum()) for m in model.modules() if isinstance(m, nn.Linear)
    )
    _require(
        zeros >= 0.99 * model_zeros,
        "the file's weights are not net90's: they have too few zeros. Export net90 (after "
        "make_permanent), not the dense Net.",
    )
    gap = abs(accuracy(OrtModel(int8_path), loader) - accuracy(model, loader))
    return check(
        gap <= 0.5,
        "ONNX Runtime runs your static int8 file, with sparse int8 weights and the accuracy "
        "of net90. Compare its size with the fp32 export and with the bitmask format of "
        "section six.",
        "the file runs, but its accuracy is far from net90's: calibrate on training images "
        "shaped as the model reads them, and quantize the export of net90.",
    )
