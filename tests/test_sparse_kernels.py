"""Sparse-kernel helpers for latency: CSR layers give the same outputs; 2:4 support is detected."""

import pytest
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune

from course_utils import Net
from course_utils.sparse_kernels import (
    CSRLinear,
    mask_2_4,
    semi_structured_status,
    to_csr_model,
    to_semi_structured,
)


def pruned_net(amount=0.9):
    torch.manual_seed(0)
    model = Net()
    for module in (model.fc1, model.fc2, model.fc3):
        prune.l1_unstructured(module, "weight", amount=amount)
        prune.remove(module, "weight")
    return model.eval()


def test_csr_linear_matches_dense():
    layer = pruned_net().fc1
    x = torch.randn(5, 784)
    sparse = CSRLinear(layer)
    assert sparse.weight.layout == torch.sparse_csr
    assert torch.allclose(sparse(x), layer(x), atol=1e-5)
    assert "nonzero=" in repr(sparse)


def test_csr_linear_without_bias():
    layer = nn.Linear(8, 3, bias=False)
    x = torch.randn(2, 8)
    assert torch.allclose(CSRLinear(layer)(x), layer(x), atol=1e-6)


def test_to_csr_model_matches_and_leaves_original():
    model = pruned_net()
    x = torch.randn(7, 784)
    sparse = to_csr_model(model)
    assert all(isinstance(getattr(sparse, n), CSRLinear) for n in ("fc1", "fc2", "fc3"))
    assert isinstance(model.fc1, nn.Linear), "the original is unchanged"
    with torch.no_grad():
        assert torch.allclose(sparse(x), model(x), atol=1e-5)


def test_masked_models_are_refused():
    model = Net()
    prune.l1_unstructured(model.fc1, "weight", amount=0.5)
    with pytest.raises(ValueError, match="prune.remove"):
        to_csr_model(model)
    with pytest.raises(ValueError, match="prune.remove"):
        to_semi_structured(model)
    with pytest.raises(TypeError, match="nn.Linear"):
        CSRLinear(nn.Conv2d(1, 1, 3))


def test_semi_structured_status_on_cpu():
    ok, why = semi_structured_status("cpu")
    assert not ok and "8.0" in why


def test_to_semi_structured_reports_each_layer():
    model = pruned_net(0.5)  # unstructured 50%: not the 2:4 pattern
    with torch.no_grad():
        model.fc2.weight.mul_(mask_2_4(model.fc2.weight))
    fast, report = to_semi_structured(model)
    assert report["fc1"].startswith("dense: the weight is not 2:4")
    assert fast.fc1.weight.dtype == torch.float16
    if not semi_structured_status("cuda")[0]:  # on the CPU the kernel refuses: reported, not raised
        assert report["fc2"].startswith("dense:") and "not 2:4" not in report["fc2"]


def test_mask_2_4_keeps_the_two_largest_of_every_four():
    weight = torch.tensor([[0.1, -0.9, 0.5, 0.0, 3.0, 2.0, -1.0, 0.2]])
    assert mask_2_4(weight).tolist() == [[0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0]]
    mask = mask_2_4(torch.randn(16, 32))
    assert (mask.reshape(16, -1, 4).sum(-1) == 2).all()
    weight = torch.arange(16.0).reshape(2, 8) - 7  # ties between |-1| and |1|: still two of four
    mask = mask_2_4(weight)
    assert torch.equal(mask.reshape(2, -1, 4).sum(-1), torch.full((2, 2), 2.0))
    assert mask[0, 0] == 1 and mask[0, 3] == 0  # |-7| kept, |-4| dropped


def test_csr_layers_are_buffers_that_move_with_the_model():
    csr = to_csr_model(Net())
    assert {"fc1.weight", "fc1.bias"} <= {name for name, _ in csr.named_buffers()}
    assert csr.fc1.weight.layout == torch.sparse_csr and csr.to("cpu") is csr
