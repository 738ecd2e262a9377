"""Exercise checks: a hint (ExerciseCheckError) when the answer is missing or wrong, never a crash."""
import pytest
import torch.nn as nn

from course_utils.exercises import ExerciseCheckError, check, check_close, check_parameter_count


def test_check_prints_success_and_raises_the_hint(capsys):
    check(True, "well done", "unused")
    assert "Correct! well done" in capsys.readouterr().out
    with pytest.raises(ExerciseCheckError, match="Not yet: look again"):
        check(False, "unused", "look again")


@pytest.mark.parametrize("answer", [None, 1.5])
def test_check_close_gives_a_hint_for_missing_or_wrong_answers(answer):
    with pytest.raises(ExerciseCheckError, match="should be about 2"):
        check_close(answer, 2.0, 0.1, "the value")


def test_check_parameter_count():
    check_parameter_count(nn.Sequential(nn.Linear(784, 256), nn.Linear(256, 128), nn.Linear(128, 10)))
    check_parameter_count(235_146)
    with pytest.raises(ExerciseCheckError, match="replace None"):
        check_parameter_count(None)
    with pytest.raises(ExerciseCheckError, match="you have 10"):
        check_parameter_count(10)
