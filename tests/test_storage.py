"""Compact storage of sparse state_dicts: exact round trips, real savings, clear errors."""

import io
import os

import pytest
import torch
import torch.nn.utils.prune as prune

from course_utils import Net, SmallCNN
from course_utils.measure import file_size
from course_utils.storage import (
    decode_tensor,
    encode_tensor,
    from_bytes,
    load_sparse,
    pack_bits,
    save_sparse,
    to_bytes,
    unpack_bits,
)


def sparse_net(amount=0.95, seed=0):
    torch.manual_seed(seed)
    model = Net()
    pairs = [(model.fc1, "weight"), (model.fc2, "weight"), (model.fc3, "weight")]
    prune.global_unstructured(pairs, pruning_method=prune.L1Unstructured, amount=amount)
    for module, name in pairs:
        prune.remove(module, name)
    return model


def assert_same(state, back):
    assert sorted(back) == sorted(state)
    for key, value in state.items():
        assert back[key].dtype == value.dtype and back[key].shape == value.shape, key
        assert torch.equal(back[key], value), key


@pytest.mark.parametrize("numel", [1, 7, 8, 9, 64, 1001])
def test_pack_bits_round_trip(numel):
    mask = torch.rand(numel, generator=torch.Generator().manual_seed(numel)) > 0.5
    packed = pack_bits(mask)
    assert packed.dtype == torch.uint8 and packed.numel() == (numel + 7) // 8
    assert torch.equal(unpack_bits(packed, numel), mask)


def test_pack_bits_order():
    assert (
        pack_bits(torch.tensor([True, False, False, False, False, False, False, True])).item()
        == 129
    )


@pytest.mark.parametrize("layout", ["bitmask", "csr"])
@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_is_exact(layout, compress):
    state = sparse_net().state_dict()
    back = from_bytes(to_bytes(state, layout, compress))
    assert_same(state, back)
    assert list(back) == list(state), "the keys keep their order"


@pytest.mark.parametrize("layout", ["bitmask", "csr"])
def test_conv_batchnorm_and_integer_buffers(layout):
    torch.manual_seed(0)
    model = SmallCNN()
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            prune.l1_unstructured(module, "weight", amount=0.8)
            prune.remove(module, "weight")
    state = model.state_dict()
    back = from_bytes(to_bytes(state, layout))
    assert_same(state, back)
    assert back["features.1.num_batches_tracked"].dtype == torch.long


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_float_dtypes(dtype):
    weight = torch.randn(33, 17, generator=torch.Generator().manual_seed(1)).to(dtype)
    weight[weight.abs() < 1.5] = 0
    for layout in ("bitmask", "csr"):
        back = decode_tensor(encode_tensor(weight, layout))
        assert back.dtype == dtype and torch.equal(back, weight)


def test_negative_zeros_compare_equal():
    weight = torch.tensor([[-0.0, 1.5, 0.0, -2.0]])
    for layout in ("bitmask", "csr"):
        assert torch.equal(decode_tensor(encode_tensor(weight, layout, min_sparsity=0.0)), weight)


def test_dense_tensors_stay_dense():
    entry = encode_tensor(torch.ones(10, 10))
    assert entry["layout"] == "dense"
    assert encode_tensor(torch.arange(5))["layout"] == "dense"
    assert encode_tensor(torch.tensor(3.0))["layout"] == "dense"


def test_95_percent_is_ten_times_smaller():
    model = sparse_net(0.95)
    dense = file_size(model)
    assert dense / len(to_bytes(model)) >= 10
    assert dense / len(to_bytes(model, compress=False)) >= 10


def test_more_sparsity_smaller_file():
    sizes = [len(to_bytes(sparse_net(amount))) for amount in (0.5, 0.9, 0.95, 0.98)]
    assert sizes == sorted(sizes, reverse=True)


def test_save_and_load_file(tmp_path):
    model = sparse_net(0.9)
    path = tmp_path / "sub" / "net90.ptz"
    written = save_sparse(model, path)
    assert written == path.stat().st_size
    assert [p.name for p in path.parent.iterdir()] == ["net90.ptz"], "no temporary file left"
    fresh = Net()
    fresh.load_state_dict(load_sparse(path))
    assert_same(model.state_dict(), fresh.state_dict())


def test_save_overwrites_atomically(tmp_path, monkeypatch):
    path = tmp_path / "net.ptz"
    save_sparse(sparse_net(0.9), path)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        save_sparse(sparse_net(0.5), path)
    assert path.read_bytes() == before, "the old file is intact"
    assert [p.name for p in tmp_path.iterdir()] == ["net.ptz"], "no temporary file left"


def test_masked_state_dict_is_refused():
    model = Net()
    prune.l1_unstructured(model.fc1, "weight", amount=0.5)
    with pytest.raises(ValueError, match="prune.remove"):
        to_bytes(model)


def test_bad_inputs_have_clear_errors(tmp_path):
    with pytest.raises(TypeError, match="state_dict"):
        to_bytes([torch.zeros(3)])
    with pytest.raises(TypeError, match="tensor"):
        to_bytes({"weight": [1.0, 2.0]})
    with pytest.raises(ValueError, match="layout"):
        to_bytes(Net(), layout="coo")
    with pytest.raises(ValueError, match="save_sparse"):
        from_bytes(b"not a checkpoint")
    plain = io.BytesIO()
    torch.save(Net().state_dict(), plain)
    with pytest.raises(ValueError, match="format tag"):
        from_bytes(plain.getvalue())
    with pytest.raises(TypeError, match="bytes"):
        from_bytes("a string")
    damaged = tmp_path / "damaged.ptz"
    damaged.write_bytes(to_bytes(sparse_net())[:-50])
    with pytest.raises(ValueError, match="damaged.ptz"):
        load_sparse(damaged)
    with pytest.raises(FileNotFoundError):
        load_sparse(tmp_path / "missing.ptz")


def test_inconsistent_entries_are_reported():
    entry = encode_tensor(torch.tensor([[0.0, 1.0, 0.0, 2.0]]), "bitmask", min_sparsity=0.0)
    entry["values"] = entry["values"][:1]
    with pytest.raises(ValueError, match="damaged"):
        decode_tensor(entry)
    entry = encode_tensor(torch.tensor([[0.0, 1.0, 0.0, 2.0]]), "csr", min_sparsity=0.0)
    entry["col"] = entry["col"][:1]
    with pytest.raises(ValueError, match="damaged"):
        decode_tensor(entry)
    with pytest.raises(ValueError, match="layout"):
        decode_tensor({"layout": "coo"})


def test_load_to_device():
    back = from_bytes(to_bytes(sparse_net()), device="cpu")
    assert all(t.device.type == "cpu" for t in back.values())
