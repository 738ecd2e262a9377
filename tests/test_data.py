"""The four data routes, their errors, and the in-memory loaders."""

import gzip
import os
import shutil
from pathlib import Path

import pytest
import torch

from course_utils import data
from course_utils.data import DataCorruptError, DataNotFoundError, TensorLoader


def test_named_directory_argument(isolated, fashion_files):
    route, raw = data.find_raw_data(data_dir=fashion_files)
    assert route.startswith("named directory")
    assert raw["train_images"].shape == (60000, 28, 28)
    assert raw["test_labels"].shape == (10000,)


def test_named_directory_from_environment_with_plain_files(isolated, fashion_files, monkeypatch):
    for gz in fashion_files.glob("*.gz"):  # decompressed files work too
        gz.with_suffix("").write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    monkeypatch.setenv("COURSE_DATA_DIR", str(fashion_files))
    route, _ = data.find_raw_data()
    assert str(fashion_files) in route


def test_named_directory_missing_file_names_it(isolated, fashion_files):
    (fashion_files / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataNotFoundError, match="t10k-labels-idx1-ubyte.*COURSE_DATA_DIR"):
        data.find_raw_data(data_dir=fashion_files)


def test_named_directory_that_does_not_exist(isolated, tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        data.find_raw_data(data_dir=tmp_path / "nowhere")


def test_corrupted_file_is_caught_by_checksum(isolated, fashion_files):
    path = fashion_files / "t10k-labels-idx1-ubyte.gz"
    labels = bytearray(gzip.decompress(path.read_bytes()))
    labels[100] = (labels[100] + 1) % 10  # one wrong label
    path.write_bytes(gzip.compress(bytes(labels)))
    with pytest.raises(DataCorruptError, match="SHA-256.*t10k-labels|t10k-labels.*SHA-256"):
        data.find_raw_data(data_dir=fashion_files)


def test_truncated_gzip_is_caught(isolated, fashion_files):
    path = fashion_files / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataCorruptError, match="cannot be read"):
        data.find_raw_data(data_dir=fashion_files)


def test_course_data_folder_in_torchvision_layout(isolated, fashion_files):
    raw_dir = isolated / "course_data" / "FashionMNIST" / "raw"
    shutil.copytree(fashion_files, raw_dir)
    route, _ = data.find_raw_data()
    assert route.startswith("course data folder")
    with pytest.raises(DataNotFoundError):  # MNIST does not pick up Fashion-MNIST's files
        data.find_raw_data("mnist")


def test_system_copy(isolated, fashion_files):
    shutil.copytree(fashion_files, isolated / "system")
    route, _ = data.find_raw_data()
    assert route.startswith("system copy")


def test_corrupt_course_folder_is_cleared_and_next_route_used(isolated, fashion_files):
    raw_dir = isolated / "course_data" / "FashionMNIST" / "raw"
    shutil.copytree(fashion_files, raw_dir)
    (raw_dir / "train-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    shutil.copytree(fashion_files, isolated / "system")
    with pytest.warns(UserWarning, match="Skipping the course data folder"):
        route, _ = data.find_raw_data()
    assert route.startswith("system copy")
    assert not (raw_dir / "train-labels-idx1-ubyte.gz").exists(), "the bad cache is removed"


def test_download_route(isolated, fashion_files, monkeypatch):
    calls = []

    def fake_torchvision_download(name, root):  # what torchvision leaves behind
        calls.append(name)
        shutil.copytree(fashion_files, root / "FashionMNIST" / "raw")

    monkeypatch.setattr(data, "_download", fake_torchvision_download)
    route, _ = data.find_raw_data()
    assert calls == ["fashion-mnist"] and route.startswith("downloaded")


def test_download_uses_torchvision_class(monkeypatch, tmp_path):
    import torchvision

    seen = []

    class Fake:
        def __init__(self, root, train, download):
            seen.append((root, train, download))

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", Fake)
    data._download("fashion-mnist", tmp_path)
    assert seen == [(str(tmp_path), True, True), (str(tmp_path), False, True)]


def test_no_route_names_all_four(isolated):
    with pytest.raises(DataNotFoundError) as info:
        data.find_raw_data()
    message = str(info.value)
    for hint in (
        "COURSE_DATA_DIR",
        "data folder",
        "apt-get install dataset-fashion-mnist",
        "online",
        "no network",
    ):
        assert hint in message


def test_no_route_without_download(isolated):
    with pytest.raises(DataNotFoundError, match="download=False"):
        data.find_raw_data(download=False)


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="Unknown dataset 'cifar'.*fashion-mnist, mnist"):
        data.get_loaders("cifar")


def test_mnist_is_selectable_by_name(isolated):
    with pytest.raises(
        DataNotFoundError,
        match="Could not find the MNIST data.*MNIST/raw|Could not find the MNIST data",
    ):
        data.find_raw_data("MNIST")
    assert data.class_names("mnist")[3] == "3"


def test_wrong_idx_header_is_rejected(tmp_path):
    with pytest.raises(DataCorruptError, match="not the expected IDX"):
        data._parse_idx(b"\x00" * 16 + b"\x01" * 10, tmp_path / "x", 3, 10)


def test_tensor_loader_batches_like_a_dataloader():
    images, labels = torch.arange(10.0).reshape(10, 1), torch.arange(10)
    loader = TensorLoader(images, labels, batch_size=4)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert [len(y) for _, y in batches] == [4, 4, 2]
    assert torch.equal(torch.cat([y for _, y in batches]), labels)


def test_tensor_loader_shuffle_is_seeded_and_complete():
    images, labels = torch.arange(100.0).reshape(100, 1), torch.arange(100)
    first = [y for _, y in TensorLoader(images, labels, 10, shuffle=True, seed=1)]
    again = [y for _, y in TensorLoader(images, labels, 10, shuffle=True, seed=1)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert sorted(torch.cat(first).tolist()) == list(range(100))
    assert not torch.equal(torch.cat(first), labels)
    for x, y in TensorLoader(images, labels, 10, shuffle=True):
        assert torch.equal(x.flatten().long(), y), "images and labels stay paired"


def test_tensor_loader_errors():
    with pytest.raises(ValueError, match="batch_size"):
        TensorLoader(torch.zeros(3), torch.zeros(3), batch_size=0)
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        TensorLoader(torch.zeros(3), torch.zeros(2))


def test_get_loaders_splits(fashion_files, isolated):
    train, val, test = data.get_loaders(data_dir=fashion_files, val_size=5000)
    assert (train.dataset_size, val.dataset_size, test.dataset_size) == (55000, 5000, 10000)
    assert train.images.shape[1:] == (784,) and test.labels.dtype == torch.int64
    assert abs(train.images.mean().item()) < 0.01
    cnn_train, cnn_val, _ = data.get_loaders(data_dir=fashion_files, flatten=False)
    assert cnn_train.images.shape[1:] == (1, 28, 28)
    assert torch.equal(cnn_val.labels, val.labels), "the validation split is deterministic"
    with pytest.raises(ValueError, match="val_size"):
        data.get_loaders(data_dir=fashion_files, val_size=60000)


def test_notebooks_without_data_fail_fast_with_the_routes_message(tmp_path):
    """`make test` without data stops at once with one clear message, not a failure per cell."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    empty = tmp_path / "empty"
    empty.mkdir()
    env = dict(os.environ, COURSE_DATA_DIR=str(empty))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "notebooks/00_start_here.ipynb"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "The notebooks need Fashion-MNIST and no route found it" in out
    assert "lacks train-images-idx3-ubyte" in out and "passed" not in out


def test_no_system_data_skips_the_system_copy(isolated, fashion_files, monkeypatch):
    """The Colab rehearsal hides the Debian copy, so the notebooks take the download route."""
    monkeypatch.setitem(data.DATASETS["fashion-mnist"], "system_dir", str(fashion_files))
    route, _ = data.find_raw_data(download=False)
    assert route.startswith("system copy")
    monkeypatch.setenv("COURSE_NO_SYSTEM_DATA", "1")
    with pytest.raises(data.DataNotFoundError, match="COURSE_NO_SYSTEM_DATA"):
        data.find_raw_data(download=False)


# --- Tiny Shakespeare (notebook 09) ----------------------------------------------------------


@pytest.fixture(scope="module")
def corpus():
    return data.load_shakespeare()


def test_shakespeare_is_verified_and_split_by_position(corpus):
    assert corpus.vocab_size == 65
    assert len(corpus.train_ids) + len(corpus.val_ids) == 1_115_394
    assert len(corpus.val_ids) == 111_540  # the last 10%
    assert corpus.decode(corpus.train_ids[:14]) == "First Citizen:"
    assert torch.equal(corpus.encode("ROMEO:\n"), corpus.encode("ROMEO:\n"))
    assert corpus.decode(corpus.encode("To be, or not to be")) == "To be, or not to be"


def test_shakespeare_damaged_or_missing_file_is_a_clear_error(tmp_path, monkeypatch):
    damaged = tmp_path / "tinyshakespeare.txt.gz"
    damaged.write_bytes(gzip.compress(b"First Citizen: a different text"))
    monkeypatch.setattr(data, "SHAKESPEARE_FILE", damaged)
    with pytest.raises(DataCorruptError, match="damaged.*git checkout"):
        data.load_shakespeare()
    damaged.unlink()
    with pytest.raises(DataCorruptError, match="missing"):
        data.load_shakespeare()


def test_corpus_rejects_unknown_characters_and_bad_splits(corpus):
    with pytest.raises(ValueError, match=r"\['é'\].*not in the corpus"):
        corpus.encode("café")
    with pytest.raises(ValueError, match="'train' or 'val'"):
        corpus.batch(4, 64, split="test")
    with pytest.raises(ValueError, match="val_fraction"):
        data.CharCorpus("abc", val_fraction=1.5)


def test_corpus_batches_are_next_character_pairs_from_their_split(corpus):
    generator = torch.Generator().manual_seed(3)
    inputs, targets = corpus.batch(8, 64, generator)
    assert inputs.shape == targets.shape == (8, 64)
    assert torch.equal(inputs[:, 1:], targets[:, :-1])  # targets are the inputs shifted by one
    first, _ = corpus.eval_windows(16, 64)
    again, _ = corpus.eval_windows(16, 64)
    assert torch.equal(first, again), "evaluation windows are the same in every run"
    start = int(first[-1, 0] == corpus.val_ids[len(corpus.val_ids) - 65])
    assert start == 1, "the last window ends at the end of the validation text"
