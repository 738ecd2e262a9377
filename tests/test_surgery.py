"""Structured-pruning surgery, the primitives: ``kept_indices``, ``keep_outputs``, ``keep_inputs``.

Each returns a new, plain layer; on zeroed (or masked) units the result computes exactly what the
masked layers did. ``remove_pruned_units`` (the chain planner) is tested in ``test_chain.py``.
"""

import pytest
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune
from helpers import assert_same_outputs, calibrate

from course_utils.surgery import SurgeryError, keep_inputs, keep_outputs, kept_indices

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


# --- the primitives ------------------------------------------------------------------------


def test_keep_outputs_and_inputs_of_linear_layers():
    torch.manual_seed(0)
    fc, nxt = nn.Linear(5, 6), nn.Linear(6, 2)
    keep = torch.tensor([4, 1, 2])
    new_fc, new_next = keep_outputs(fc, keep), keep_inputs(nxt, keep)
    assert (new_fc.in_features, new_fc.out_features, new_next.in_features) == (5, 3, 3)
    # sorted, like the mask
    torch.testing.assert_close(new_fc.weight, fc.weight[[1, 2, 4]].detach())
    torch.testing.assert_close(new_next.weight, nxt.weight[:, [1, 2, 4]].detach())
    torch.testing.assert_close(new_next.bias, nxt.bias.detach())


def test_keep_outputs_and_inputs_of_a_conv_block_with_zeroed_channels_are_exact():
    torch.manual_seed(1)
    x = torch.randn(4, 3, 9, 9)
    conv, bn, nxt = nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.Conv2d(6, 4, 3, padding=1)
    block = calibrate(nn.Sequential(conv, bn, nn.ReLU(), nxt), x)
    with torch.no_grad():  # channels 0 and 3 output exactly zero
        for p in (conv.weight, conv.bias, bn.weight, bn.bias):
            p[[0, 3]] = 0
    keep = kept_indices(conv.weight)
    small = nn.Sequential(
        keep_outputs(conv, keep), keep_outputs(bn, keep), nn.ReLU(), keep_inputs(nxt, keep)
    )
    assert [small[0].out_channels, small[1].num_features, small[3].in_channels] == [4, 4, 4]
    torch.testing.assert_close(small[1].running_var, bn.running_var[keep])
    assert_same_outputs(block, small, x)


def test_primitives_apply_masks_keep_mode_and_make_plain_layers():
    fc = nn.Linear(4, 3)
    prune.ln_structured(fc, "weight", amount=1, n=2, dim=0)
    fc.eval()
    new = keep_outputs(fc, kept_indices(fc.weight_mask))
    assert new.out_features == 2 and not new.training
    assert not hasattr(new, "weight_orig") and new.weight.is_leaf
    bn = nn.BatchNorm2d(5, affine=False)
    assert keep_inputs(bn, [0, 4]).num_features == 2 and keep_inputs(bn, [0, 4]).weight is None


def test_primitive_errors():
    fc = nn.Linear(4, 6)
    with pytest.raises(ValueError, match="outside 0..5"):
        keep_outputs(fc, [0, 6])
    with pytest.raises(ValueError, match="outside 0..3"):
        keep_inputs(fc, [4])
    with pytest.raises(ValueError, match="same index twice"):
        keep_outputs(fc, [1, 1])
    with pytest.raises(ValueError, match="at least one unit"):
        keep_outputs(fc, [])
    with pytest.raises(TypeError, match="nn.Linear, nn.Conv2d and nn.BatchNorm2d"):
        keep_outputs(nn.LayerNorm(4), [0])
    with pytest.raises(SurgeryError, match="Torch-Pruning"):
        keep_inputs(nn.Conv2d(8, 8, 3, groups=8), [0, 1])
