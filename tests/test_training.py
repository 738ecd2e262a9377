"""course_utils.training: the baseline recipe (the training loop itself runs in every notebook)."""

import pytest
import torch.nn as nn

import course_utils.training as training
from course_utils import Net, SmallCNN
from course_utils.training import baseline_epochs, train_baseline


def test_baseline_epochs_per_model():
    assert baseline_epochs(Net) == baseline_epochs(Net()) == 15
    assert baseline_epochs(SmallCNN) == 2
    assert baseline_epochs(nn.Linear) == training.BASELINE_EPOCHS
    with pytest.raises(ValueError, match="positive whole number"):
        train_baseline(Net(), [], None, epochs=0)
