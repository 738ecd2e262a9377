"""The course's models: shapes, the per-layer table, and TinyGPT's checks (notebook 09)."""

import pytest
import torch

from course_utils.measure import count_parameters
from course_utils.models import TinyGPT


def test_tinygpt_shapes_and_size():
    torch.manual_seed(0)
    model = TinyGPT()
    ids = torch.randint(65, (2, 64))
    assert model(ids).shape == (2, 64, 65)
    assert count_parameters(model) == 818_241
    assert model(ids[:, :10]).shape == (2, 10, 65), "shorter inputs than the context work"


def test_tinygpt_is_causal():
    torch.manual_seed(0)
    model = TinyGPT().eval()
    ids = torch.randint(65, (1, 20))
    changed = ids.clone()
    changed[0, 15] = (ids[0, 15] + 1) % 65
    with torch.no_grad():
        before, after = model(ids), model(changed)
    assert torch.allclose(before[0, :15], after[0, :15]), "no position sees the future"
    assert not torch.allclose(before[0, 15:], after[0, 15:])


def test_tinygpt_per_layer_widths_and_errors():
    model = TinyGPT(heads=[4, 2, 1, 3], mlp_widths=[512, 256, 128, 64])
    assert model.blocks[1].attn.q.out_features == 64 and model.blocks[3].fc.out_features == 64
    assert TinyGPT(**model.config).state_dict().keys() == model.state_dict().keys()
    with pytest.raises(ValueError, match="more than the context"):
        TinyGPT(context=8)(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="multiple of n_head"):
        TinyGPT(width=130, n_head=4)
    with pytest.raises(ValueError, match="one entry per layer"):
        TinyGPT(heads=[4, 4])
