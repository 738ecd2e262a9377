"""Checks for the exercises: a clear message when right, a helpful hint when not.

Each notebook's exercises call ``check(...)`` (or a named check built on it).
"""
from .measure import count_parameters


class ExerciseCheckError(AssertionError):
    """An exercise answer is not right yet; the message says what to look at."""


def check(passed, success, hint):
    """Print ``success`` when ``passed`` is true, else raise ``ExerciseCheckError(hint)``."""
    if not passed:
        raise ExerciseCheckError(f"Not yet: {hint}")
    print(f"Correct! {success}")


def check_close(value, expected, tolerance, what, hint=""):
    """Check that ``value`` is within ``tolerance`` of ``expected`` and say how far it is."""
    ok = value is not None and abs(value - expected) <= tolerance
    shown = f"{value:.4g}" if isinstance(value, float) else value
    check(ok, f"{what} = {shown}",
                 f"{what} should be about {expected} (within {tolerance}), you have {shown}. {hint}")


def check_parameter_count(model_or_count, expected=None):
    """01: the number of parameters of the article's Net (784-256-128-10)."""
    if model_or_count is None:
        check(False, "", "replace None with your answer (a model or a number).")
    if expected is None:
        expected = 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    count = model_or_count if isinstance(model_or_count, int) else count_parameters(model_or_count)
    check(count == expected, f"{count:,} parameters.",
                 f"you have {count:,}. Each nn.Linear(a, b) holds a*b weights and b biases.")


def _not_answered(answer):
    if answer is None:
        print("Exercise not answered yet: replace None with your answer and run this cell again.")
        return True
    return False


def check_residual_group(answer):
    """08: the convolutions whose output channels are tied to ``down.0``'s by skip connections.

    ``answer``: module names of a ``SmallResNet`` (as ``named_modules()`` spells them).
    """
    if _not_answered(answer):
        return
    if isinstance(answer, str) or not all(isinstance(name, str) for name in answer):
        raise ExerciseCheckError("Not yet: give a list (or set) of module names as strings, "
                                 "spelled as model.named_modules() spells them.")
    given = {name.strip().removeprefix("model.") for name in answer}
    expected = {"down.0", "block2.conv2", "block3.conv2"}
    if "down.0" not in given:
        raise ExerciseCheckError("Not yet: the group starts with down.0 itself; include it.")
    missing, extra = expected - given, given - expected
    if extra:
        raise ExerciseCheckError(f"Not yet: {sorted(extra)} do not write to those channels (count only "
                                 "convolutions whose *outputs* are added to down's output, directly or "
                                 "through another block). Read SmallResNet.forward and ResidualBlock.forward.")
    if missing:
        raise ExerciseCheckError(f"Not yet: {len(missing)} convolution(s) missing. Follow x from down through "
                                 "every `out + x` that follows it, up to the classifier.")
    print(f"Correct! These {len(expected)} convolutions (and their BatchNorms) lose the same channels, "
          "and the layers that read them lose the same inputs.")


def check_pruned_resnet_parameters(answer):
    """08: the number of parameters of ``SmallResNet`` after Torch-Pruning removed 25% of channels."""
    if _not_answered(answer):
        return
    from .models import SmallResNet

    expected = count_parameters(SmallResNet(channels=(12, 24)))
    if not isinstance(answer, int):
        raise ExerciseCheckError("Not yet: give a whole number, e.g. count_parameters(pruned_model).")
    check(answer == expected, f"{answer:,} parameters: exactly a SmallResNet with narrower channels.",
          f"you have {answer:,}. Prune a fresh copy of the dense model (copy.deepcopy) with "
          "pruning_ratio=0.25 and the same ignored_layers, then call count_parameters on it.")
