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
