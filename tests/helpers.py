"""Helpers shared by several test files: one definition each (tests/test_saved_helpers.py)."""

import re

import torch
import torch.nn as nn


def assert_same_outputs(a, b, x):
    a.eval(), b.eval()
    with torch.no_grad():
        torch.testing.assert_close(b(x), a(x), rtol=1e-5, atol=1e-5)


def calibrate(model, x):
    """Give BatchNorm non-trivial running statistics (and non-trivial scale and shift)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(3 * x + 1 + torch.randn_like(x))
    return model.eval()


def digits(text):
    """Digits left once identifiers (fc1, sparse95, mask_2_4) are taken out."""
    return re.findall(r"\d", re.sub(r"[A-Za-z_]\w*", "", text))
