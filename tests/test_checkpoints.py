"""Checkpoint files: atomic saves, and loads that fail with a clear error (``test_baseline.py``
tests the baselines built on them)."""

import os

import pytest
import torch

import course_utils.checkpoints as checkpoints
from course_utils import Net, SmallCNN, load_checkpoint, save_checkpoint


def state_of(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


# --- save_checkpoint / load_checkpoint ----------------------------------------------------


def test_roundtrip_and_wrapped_state_dict(tmp_path):
    torch.manual_seed(0)
    model = Net()
    save_checkpoint(model.state_dict(), tmp_path / "net.pt")
    loaded = load_checkpoint(Net(), tmp_path / "net.pt")
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    save_checkpoint({"state_dict": model.state_dict(), "epoch": 3}, tmp_path / "wrapped.pt")
    assert torch.equal(load_checkpoint(Net(), tmp_path / "wrapped.pt").fc1.weight, model.fc1.weight)
    assert sorted(os.listdir(tmp_path)) == ["net.pt", "wrapped.pt"], "no temporary files left"


def test_load_checkpoint_wrong_architecture(tmp_path):
    save_checkpoint(Net().state_dict(), tmp_path / "net.pt")
    with pytest.raises(ValueError, match="another architecture.*delete it and train again"):
        load_checkpoint(SmallCNN(), tmp_path / "net.pt")
    save_checkpoint(torch.zeros(3), tmp_path / "tensor.pt")
    with pytest.raises(ValueError, match="another architecture"):
        load_checkpoint(Net(), tmp_path / "tensor.pt")


def test_load_checkpoint_wrong_shape(tmp_path):
    save_checkpoint(SmallCNN((4, 8, 12)).state_dict(), tmp_path / "cnn.pt")
    with pytest.raises(
        ValueError,
        match=r"does not fit SmallCNN: features.0.weight: file \(4, 1, 3, 3\) "
        r"vs model \(16, 1, 3, 3\)",
    ):
        load_checkpoint(SmallCNN(), tmp_path / "cnn.pt")
    assert (
        load_checkpoint(SmallCNN((4, 8, 12)), tmp_path / "cnn.pt").classifier.in_features
        == 12 * 7 * 7
    )


def test_load_checkpoint_damaged_or_missing_file(tmp_path):
    path = tmp_path / "damaged.pt"
    save_checkpoint(Net().state_dict(), path)
    path.write_bytes(path.read_bytes()[:1000])  # a truncated download
    with pytest.raises(ValueError, match="not a readable checkpoint.*Delete it and train again"):
        load_checkpoint(Net(), path)
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(Net(), tmp_path / "text.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(Net(), tmp_path / "missing.pt")


def test_save_checkpoint_is_atomic_when_torch_save_fails(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    save_checkpoint({"x": torch.ones(2)}, path)
    before = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoints.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"x": torch.zeros(2)}, path)
    assert os.listdir(tmp_path) == ["model.pt"], "the temporary file is removed"
    assert path.read_bytes() == before, "the old checkpoint is left whole"
    with pytest.raises(OSError):
        save_checkpoint({"x": torch.zeros(2)}, tmp_path / "sub" / "new.pt")
    assert os.listdir(tmp_path / "sub") == [], "no half-written new file either"
