"""Checkpoints and the cached baseline: clear errors, atomic saves, rebuilding what is broken.

``train_baseline`` is replaced by a stub in the ``load_baseline`` tests, so they take
milliseconds and never touch the data set.
"""
import os

import pytest
import torch
import torch.nn as nn

import course_utils.checkpoints as checkpoints
import course_utils.training as training
from course_utils import Net, SmallCNN, load_checkpoint, save_checkpoint
from course_utils.checkpoints import load_baseline
from course_utils.training import baseline_epochs, train_baseline


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
    with pytest.raises(ValueError,
                       match=r"does not fit SmallCNN: features.0.weight: file \(4, 1, 3, 3\) "
                                         r"vs model \(16, 1, 3, 3\)"):
        load_checkpoint(SmallCNN(), tmp_path / "cnn.pt")
    assert load_checkpoint(SmallCNN((4, 8, 12)),
                           tmp_path / "cnn.pt").classifier.in_features == 12 * 7 * 7


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


# --- baseline recipe ----------------------------------------------------------------------

def test_baseline_epochs_per_model():
    assert baseline_epochs(Net) == baseline_epochs(Net()) == 15
    assert baseline_epochs(SmallCNN) == 2
    assert baseline_epochs(nn.Linear) == training.BASELINE_EPOCHS
    with pytest.raises(ValueError, match="positive whole number"):
        train_baseline(Net(), [], None, epochs=0)


@pytest.fixture
def fake_training(monkeypatch):
    """Replace ``train_baseline`` by a stub that records calls and fills weights with 0.5."""
    calls = []

    def fake(model, train_loader, val_loader, epochs=None, seed=0):
        calls.append((type(model).__name__, baseline_epochs(model) if epochs is None else epochs))
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(0.5)

    monkeypatch.setattr(training, "train_baseline", fake)
    return calls


NO_DATA = (None, None, None)


def test_load_baseline_builds_when_missing_then_loads(tmp_path, fake_training):
    path = tmp_path / "ckpt" / "net.pt"
    model = load_baseline(Net, loaders=NO_DATA, path=path)
    assert fake_training == [("Net", 15)] and path.exists()
    assert not model.training and torch.all(model.fc1.weight == 0.5)
    again = load_baseline(Net, loaders=NO_DATA, path=path)
    assert fake_training == [("Net", 15)], "a valid checkpoint is loaded, not retrained"
    assert torch.equal(again.fc3.bias, model.fc3.bias)


def test_load_baseline_rebuilds_a_corrupt_checkpoint(tmp_path, fake_training):
    path = tmp_path / "smallcnn.pt"
    path.write_bytes(b"\x00garbage")
    with pytest.warns(UserWarning, match="Rebuilding the baseline.*not a readable checkpoint"):
        model = load_baseline(SmallCNN, loaders=NO_DATA, path=path)
    assert fake_training == [("SmallCNN", 2)]
    assert torch.all(load_checkpoint(SmallCNN(), path).classifier.weight == 0.5)
    assert isinstance(model, SmallCNN)


def test_load_baseline_rebuilds_a_wrong_shaped_checkpoint(tmp_path, fake_training):
    path = tmp_path / "smallcnn.pt"
    save_checkpoint(SmallCNN((32, 64, 128)).state_dict(), path)  # other widths
    with pytest.warns(UserWarning, match="Rebuilding the baseline.*does not fit SmallCNN"):
        model = load_baseline(SmallCNN, loaders=NO_DATA, path=path)
    assert fake_training == [("SmallCNN", 2)]
    assert model.classifier.in_features == 64 * 7 * 7
    assert load_checkpoint(SmallCNN(), path).features[0].out_channels == 16


def test_load_baseline_retrain_forces_a_rebuild(tmp_path, fake_training):
    path = tmp_path / "net.pt"
    save_checkpoint(Net().state_dict(), path)
    load_baseline(Net, loaders=NO_DATA, path=path, retrain=True)
    assert fake_training == [("Net", 15)]


# --- the reference baselines shipped with the package ---------------------------------------

def test_reference_baselines_are_shipped_and_verified():
    import hashlib
    sums = checkpoints.reference_sha256()
    assert set(sums) == {"net_baseline.pt", "smallcnn_baseline.pt", "smallresnet_baseline.pt"}
    for name, digest in sums.items():
        path = checkpoints.REFERENCE_DIR / name
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        assert actual == digest, f"{name} does not match SHA256SUMS"
        assert path.stat().st_size < 1_000_000
    assert checkpoints.reference_path(nn.Linear) is None, "no reference for other classes"


def test_load_baseline_loads_the_reference_by_default(fake_training):
    model = load_baseline(Net)
    assert fake_training == [], "the reference is loaded, never trained"
    reference = load_checkpoint(Net(), checkpoints.REFERENCE_DIR / "net_baseline.pt")
    assert not model.training and torch.equal(model.fc1.weight, reference.fc1.weight)
    assert isinstance(load_baseline(SmallCNN), SmallCNN) and fake_training == []


def test_a_damaged_reference_says_how_to_fix_it_and_falls_back_to_training(tmp_path, monkeypatch,
                                                                           fake_training):
    folder = tmp_path / "baselines"
    folder.mkdir()
    (folder / "SHA256SUMS").write_text((checkpoints.REFERENCE_DIR / "SHA256SUMS").read_text())
    (folder / "net_baseline.pt").write_bytes(b"\x00damaged")
    monkeypatch.setattr(checkpoints, "REFERENCE_DIR", folder)
    monkeypatch.setattr(checkpoints, "checkpoint_dir", lambda: tmp_path / "checkpoints")
    with pytest.raises(ValueError, match="missing or damaged.*Reinstall the course"):
        checkpoints.load_reference(Net)
    with pytest.warns(UserWarning, match="Training a baseline instead"):
        model = load_baseline(Net, loaders=NO_DATA)
    assert fake_training == [("Net", 15)] and torch.all(model.fc1.weight == 0.5)
    assert (tmp_path / "checkpoints" / "net_baseline.pt").exists()
