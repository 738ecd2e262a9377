"""The baselines every notebook starts from: the shipped references, verified, or a fall-back
that trains and says so. ``train_baseline`` is a stub here: milliseconds, no data set."""

import pytest
import torch
import torch.nn as nn

import course_utils.baseline as baseline
import course_utils.training as training
from course_utils import Net, SmallCNN, load_checkpoint, save_checkpoint
from course_utils.baseline import load_baseline
from course_utils.training import baseline_epochs


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


def test_load_baseline_builds_when_missing_then_loads(tmp_path, fake_training, capsys):
    path = tmp_path / "ckpt" / "net.pt"
    model = load_baseline(Net, loaders=NO_DATA, path=path)
    assert fake_training == [("Net", 15)] and path.exists()
    assert "Training a Net baseline" in capsys.readouterr().out, "it says that it trains"
    assert not model.training and torch.all(model.fc1.weight == 0.5)
    again = load_baseline(Net, loaders=NO_DATA, path=path)
    assert fake_training == [("Net", 15)], "a valid checkpoint is loaded, not retrained"
    assert torch.equal(again.fc3.bias, model.fc3.bias)
    assert "Training" not in capsys.readouterr().out


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

    sums = baseline.reference_sha256()
    assert set(sums) == {
        "net_baseline.pt",
        "smallcnn_baseline.pt",
        "smallresnet_baseline.pt",
        "tinygpt_baseline.pt",
    }
    for name, digest in sums.items():
        path = baseline.REFERENCE_DIR / name
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        assert actual == digest, f"{name} does not match SHA256SUMS"
        # TinyGPT holds 818,241 float32 parameters (3.3 MB); the image models stay under 1 MB
        assert path.stat().st_size < (3_500_000 if name == "tinygpt_baseline.pt" else 1_000_000)
    assert baseline.reference_path(nn.Linear) is None, "no reference for other classes"


def test_load_baseline_loads_the_reference_by_default(fake_training):
    model = load_baseline(Net)
    assert fake_training == [], "the reference is loaded, never trained"
    reference = load_checkpoint(Net(), baseline.REFERENCE_DIR / "net_baseline.pt")
    assert not model.training and torch.equal(model.fc1.weight, reference.fc1.weight)
    assert isinstance(load_baseline(SmallCNN), SmallCNN) and fake_training == []


def test_a_damaged_reference_says_how_to_fix_it_and_falls_back_to_training(
    tmp_path, monkeypatch, fake_training
):
    folder = tmp_path / "baselines"
    folder.mkdir()
    (folder / "SHA256SUMS").write_text((baseline.REFERENCE_DIR / "SHA256SUMS").read_text())
    (folder / "net_baseline.pt").write_bytes(b"\x00damaged")
    monkeypatch.setattr(baseline, "REFERENCE_DIR", folder)
    monkeypatch.setattr(baseline, "checkpoint_dir", lambda: tmp_path / "checkpoints")
    with pytest.raises(ValueError, match="missing or damaged.*Reinstall the course"):
        baseline.load_reference(Net)
    with pytest.warns(UserWarning, match="Training a baseline instead"):
        model = load_baseline(Net, loaders=NO_DATA)
    assert fake_training == [("Net", 15)] and torch.all(model.fc1.weight == 0.5)
    assert (tmp_path / "checkpoints" / "net_baseline.pt").exists()
