"""Fashion-MNIST (or MNIST) held in memory as tensors and batched by slicing.

Introduced in 00_start_here. Where the files come from, in order:

1. a directory you name: ``load_dataset(data_dir=...)`` or the ``COURSE_DATA_DIR`` variable;
2. the course's own ``data/`` folder (filled by an earlier download);
3. the system copy of the Debian/Ubuntu package (``/usr/share/datasets/fashion-mnist/``),
   unless ``COURSE_NO_SYSTEM_DATA`` is set;
4. ``torchvision.datasets.FashionMNIST(..., download=True)`` into ``data/``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import warnings
from pathlib import Path
from typing import Any, Iterator

import torch

from .env import course_seed, project_dir

__all__ = [
    "DataNotFoundError",
    "DataCorruptError",
    "dataset_info",
    "class_names",
    "course_data_dir",
    "read_split_files",
    "find_raw_data",
    "TensorLoader",
    "load_dataset",
    "SPLIT_SEED",
    "get_loaders",
    "CharCorpus",
    "load_shakespeare",
]

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

DATASETS = {
    "fashion-mnist": {
        "torchvision": "FashionMNIST",
        "system_dir": "/usr/share/datasets/fashion-mnist",
        "debian_package": "dataset-fashion-mnist",
        "classes": [
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ],
        # SHA-256 of the *decompressed* files (upstream and Debian agree).
        "sha256": {
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",  # noqa: E501
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",  # noqa: E501
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",  # noqa: E501
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",  # noqa: E501
        },
    },
    "mnist": {
        "torchvision": "MNIST",
        "system_dir": "/usr/share/datasets/mnist",
        "debian_package": None,
        "classes": [str(d) for d in range(10)],
        "sha256": None,  # checked by its IDX header and sizes only
    },
}

IDX_MAGIC = {3: 2051, 1: 2049}  # images (3 dims), labels (1 dim)
EXPECTED_COUNTS = {"train": 60000, "test": 10000}


class DataNotFoundError(FileNotFoundError):
    """No route found the data set; the message lists every route and how to use it."""


class DataCorruptError(ValueError):
    """A data file exists but is not the file it should be."""


def dataset_info(name: str) -> dict:
    """Return the settings of a data set by name ('fashion-mnist' or 'mnist')."""
    key = name.lower().replace("_", "-")
    if key not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}. Choose one of: {', '.join(DATASETS)}.")
    return DATASETS[key]


def class_names(name: str = "fashion-mnist") -> list[str]:
    """The ten class names of a data set, in label order."""
    return list(dataset_info(name)["classes"])


def course_data_dir() -> Path:
    """The course's own ``data/`` folder (created on first download)."""
    return project_dir() / "data"


def _find_file(directory, filename, name):
    """``filename`` or ``filename.gz`` in ``directory`` or in its torchvision ``<Name>/raw``."""
    for folder in (Path(directory), Path(directory) / dataset_info(name)["torchvision"] / "raw"):
        for candidate in (Path(folder) / filename, Path(folder) / (filename + ".gz")):
            if candidate.is_file():
                return candidate
    return None


def _read_bytes(path):
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError) as err:  # a truncated or damaged gzip file
        raise DataCorruptError(f"{path} cannot be read ({err}).") from err


def _parse_idx(raw, path, dims, count):
    """Check the IDX header and return the payload as a uint8 tensor of the right shape."""
    header = 4 * (1 + dims)
    if len(raw) < header:
        raise DataCorruptError(f"{path} is too short to be an IDX file.")
    magic, n, *shape = (int.from_bytes(raw[i : i + 4], "big") for i in range(0, header, 4))
    size = n
    for s in shape:
        size *= s
    if magic != IDX_MAGIC[dims] or n != count or len(raw) != header + size:
        raise DataCorruptError(f"{path} is not the expected IDX file ({count} items).")
    return torch.frombuffer(bytearray(raw[header:]), dtype=torch.uint8).reshape(n, *shape)


def read_split_files(
    directory: str | os.PathLike[str], name: str = "fashion-mnist"
) -> dict[str, torch.Tensor]:
    """Read and verify the four IDX files in ``directory``; return ``{key: uint8 tensor}``.

    Raises DataNotFoundError naming the missing files, or DataCorruptError naming a bad one.
    """
    info = dataset_info(name)
    paths = {key: _find_file(directory, filename, name) for key, filename in FILES.items()}
    missing = [FILES[k] for k, p in paths.items() if p is None]
    if missing:
        raise DataNotFoundError(f"{directory} lacks {', '.join(missing)} (plain or .gz).")
    tensors = {}
    for key, path in paths.items():
        raw = _read_bytes(path)
        expected = (info["sha256"] or {}).get(FILES[key])
        if expected and hashlib.sha256(raw).hexdigest() != expected:
            raise DataCorruptError(
                f"{path} has the wrong SHA-256 (damaged or a different data set). "
                "Delete it and load again to fetch a fresh copy."
            )
        split = key.split("_")[0]
        dims = 3 if key.endswith("images") else 1
        tensors[key] = _parse_idx(raw, path, dims, EXPECTED_COUNTS[split])
    return tensors


def _not_found_message(name, tried):
    info = dataset_info(name)
    lines = [f"Could not find the {name} data. Tried, in order:"]
    lines += [f"  - {route}: {why}" for route, why in tried]
    lines += [
        "Fix it with one of these routes:",
        "  1. Name a directory holding the four IDX files (plain or .gz): "
        "load_dataset(data_dir='...') or export COURSE_DATA_DIR=/path/to/files",
        f"  2. Put the files in the course's data folder: {course_data_dir()}",
    ]
    if info["debian_package"]:
        lines.append(
            f"  3. Install the system copy: sudo apt-get install {info['debian_package']} "
            f"(files land in {info['system_dir']})"
        )
    else:
        lines.append(f"  3. Place a system copy in {info['system_dir']}")
    lines.append("  4. Go online and load again: torchvision downloads it into the data folder.")
    return "\n".join(lines)


def _download(name, root):
    """Route 4: let torchvision download the files into ``root``."""
    import torchvision

    dataset_class = getattr(torchvision.datasets, dataset_info(name)["torchvision"])
    for train in (True, False):
        dataset_class(root=str(root), train=train, download=True)


def find_raw_data(
    name: str = "fashion-mnist",
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> tuple[str, dict[str, torch.Tensor]]:
    """Try the four routes in order; return ``(route description, {key: uint8 tensor})``."""
    info = dataset_info(name)
    tried = []
    named = data_dir or os.environ.get("COURSE_DATA_DIR")
    if named:  # the user asked for this directory: its problems are errors, not fallbacks
        if not Path(named).is_dir():
            raise DataNotFoundError(
                f"The data directory {named} does not exist. "
                "Fix the path (argument data_dir or COURSE_DATA_DIR)."
            )
        try:
            return f"named directory {named}", read_split_files(named, name)
        except DataNotFoundError as err:
            raise DataNotFoundError(
                f"{err} Put the four IDX files there, or unset "
                "COURSE_DATA_DIR to use the other routes."
            ) from None
    local = course_data_dir()
    for route, folder in (("course data folder", local), ("system copy", Path(info["system_dir"]))):
        if route == "system copy" and os.environ.get("COURSE_NO_SYSTEM_DATA"):
            tried.append((route, "skipped: COURSE_NO_SYSTEM_DATA is set (as on Colab)"))
            continue
        try:
            return f"{route} {folder}", read_split_files(folder, name)
        except DataNotFoundError as err:
            tried.append((route, str(err)))
        except DataCorruptError as err:
            warnings.warn(f"Skipping the {route}: {err}", stacklevel=2)
            tried.append((route, str(err)))
            if folder == local:  # our own cache: clear it so the download can rebuild it
                for filename in FILES.values():
                    for bad in (local / info["torchvision"] / "raw").glob(f"{filename}*"):
                        bad.unlink()
    if not download:
        tried.append(("download", "switched off (download=False)"))
        raise DataNotFoundError(_not_found_message(name, tried))
    try:
        _download(name, local)
        return f"downloaded into {local}", read_split_files(local, name)
    except Exception as err:  # no network, a proxy, a full disk, ...
        tried.append(("torchvision download", f"{type(err).__name__}: {err}"))
        raise DataNotFoundError(_not_found_message(name, tried)) from err


class TensorLoader:
    """Batches of ``(images, labels)`` sliced from tensors already in memory.

    A drop-in for ``DataLoader`` in the article's loops: ``for images, labels in loader``
    and ``len(loader)`` (number of batches) work the same. ``shuffle=True`` draws a new
    order each epoch from its own seeded generator, so runs repeat exactly.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int = 128,
        shuffle: bool = False,
        seed: int = 0,
    ) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels.")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive whole number, not {batch_size!r}.")
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle = int(batch_size), shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return (len(self.labels) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        images, labels = self.images, self.labels
        if self.shuffle:
            order = torch.randperm(len(labels), generator=self.generator).to(labels.device)
            images, labels = images[order], labels[order]
        for start in range(0, len(labels), self.batch_size):
            yield images[start : start + self.batch_size], labels[start : start + self.batch_size]

    @property
    def dataset_size(self) -> int:
        return len(self.labels)


def load_dataset(
    name: str = "fashion-mnist",
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    verbose: bool = True,
) -> dict[str, Any]:
    """Load the whole data set as float tensors: ``{'train_images', 'train_labels', ...}``.

    Images are (N, 1, 28, 28), scaled to [0, 1] and normalised with the training set's
    mean and standard deviation; labels are int64.
    """
    route, raw = find_raw_data(name, data_dir, download)
    train = raw["train_images"].float().div_(255)
    mean, std = train.mean().item(), train.std().item()
    data = {"route": route, "mean": mean, "std": std, "classes": class_names(name)}
    for split in ("train", "test"):
        images = raw[f"{split}_images"].float().div_(255).sub_(mean).div_(std)
        data[f"{split}_images"] = images.unsqueeze(1)
        data[f"{split}_labels"] = raw[f"{split}_labels"].long()
    if verbose:
        print(
            f"{name}: {len(data['train_labels'])} train + {len(data['test_labels'])} test "
            f"images from the {route}"
        )
    return data


_CACHE = {}
SPLIT_SEED = 0
"""The validation split is drawn with this fixed seed in every run, so it never overlaps the
images the shipped reference baselines were trained on."""


def get_loaders(
    name: str = "fashion-mnist",
    batch_size: int = 128,
    val_size: int = 5000,
    flatten: bool = True,
    device: str | torch.device = "cpu",
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    seed: int | None = None,
) -> tuple[TensorLoader, TensorLoader, TensorLoader]:
    """The article's ``train_loader, val_loader`` plus a ``test_loader``.

    The validation split is ``val_size`` training images chosen by a fixed seed
    (``SPLIT_SEED``), so it is the same in every notebook and every run; the test set is
    kept for final numbers. ``seed`` (default ``course_seed()``) orders the training
    batches. ``flatten=True`` gives 784-long vectors for the article's ``Net``;
    ``flatten=False`` gives 1x28x28 images for a CNN. Everything sits on ``device`` already.
    """
    key = (dataset_info(name)["torchvision"], str(data_dir or os.environ.get("COURSE_DATA_DIR")))
    if key not in _CACHE:
        _CACHE[key] = load_dataset(name, data_dir, download)
    data = _CACHE[key]
    n_train = len(data["train_labels"])
    if not 0 < int(val_size) < n_train:
        raise ValueError(f"val_size must be between 1 and {n_train - 1}, not {val_size!r}.")
    seed = course_seed() if seed is None else seed
    order = torch.randperm(n_train, generator=torch.Generator().manual_seed(SPLIT_SEED))
    val_idx, train_idx = order[:val_size], order[val_size:]

    def split(images, labels, idx=None):
        if idx is not None:
            images, labels = images[idx], labels[idx]
        if flatten:
            images = images.reshape(len(images), -1)
        return images.to(device), labels.to(device)

    train = split(data["train_images"], data["train_labels"], train_idx)
    val = split(data["train_images"], data["train_labels"], val_idx)
    test = split(data["test_images"], data["test_labels"])
    return (
        TensorLoader(*train, batch_size=batch_size, shuffle=True, seed=seed),
        TensorLoader(*val, batch_size=1000),
        TensorLoader(*test, batch_size=1000),
    )


# --- Tiny Shakespeare: characters for the language model of 09_pruning_a_transformer ----------

SHAKESPEARE_FILE = Path(__file__).with_name("corpora") / "tinyshakespeare.txt.gz"
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
"""SHA-256 of the decompressed text: Tiny Shakespeare (char-rnn, 2015), 1,115,394 bytes."""


class CharCorpus:
    """A text as character ids, split by position: the first 90% trains, the rest validates.

    ``encode("ROMEO:")`` and ``decode(ids)`` convert between text and ids (one id per distinct
    character, in sorted order). ``train_ids`` and ``val_ids`` are int64 tensors; ``batch``
    draws random training windows, ``eval_windows`` gives fixed validation windows.
    Introduced in 09_pruning_a_transformer.
    """

    def __init__(self, text: str, val_fraction: float = 0.1) -> None:
        if not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must be between 0 and 1, not {val_fraction!r}.")
        self.vocab = sorted(set(text))
        self._index = {ch: i for i, ch in enumerate(self.vocab)}
        ids = torch.tensor([self._index[ch] for ch in text], dtype=torch.long)
        n_train = int(len(ids) * (1 - val_fraction))
        self.train_ids, self.val_ids = ids[:n_train], ids[n_train:]

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> torch.Tensor:
        """The ids of ``text``; a character the corpus never uses is a clear error."""
        unknown = sorted(set(text) - set(self._index))
        if unknown:
            raise ValueError(
                f"characters {unknown} are not in the corpus's vocabulary "
                f"({self.vocab_size} characters): remove them from the text."
            )
        return torch.tensor([self._index[ch] for ch in text], dtype=torch.long)

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        """The text of a sequence of ids."""
        return "".join(self.vocab[int(i)] for i in ids)

    def _split(self, split: str) -> torch.Tensor:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', not {split!r}.")
        return self.train_ids if split == "train" else self.val_ids

    def batch(
        self,
        batch_size: int,
        context: int,
        generator: torch.Generator | None = None,
        split: str = "train",
        device: str | torch.device = "cpu",
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch_size`` random windows: inputs ``(B, context)`` and next characters as targets."""
        ids = self._split(split)
        starts = torch.randint(len(ids) - context - 1, (int(batch_size),), generator=generator)
        rows = starts[:, None] + torch.arange(context + 1)
        windows = ids[rows].to(device)
        return windows[:, :-1], windows[:, 1:]

    def eval_windows(
        self, count: int, context: int, split: str = "val", device: str | torch.device = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` windows evenly spaced over ``split``: the same in every run and notebook."""
        ids = self._split(split)
        starts = torch.linspace(0, len(ids) - context - 1, int(count)).long()
        rows = starts[:, None] + torch.arange(context + 1)
        windows = ids[rows].to(device)
        return windows[:, :-1], windows[:, 1:]


def load_shakespeare(val_fraction: float = 0.1) -> CharCorpus:
    """Tiny Shakespeare, shipped inside the package and verified by its SHA-256; no network.

    Raises ``DataCorruptError`` when the shipped file is missing or damaged.
    """
    try:
        raw = gzip.decompress(SHAKESPEARE_FILE.read_bytes())
    except (OSError, EOFError) as err:
        raw = f"unreadable ({err})".encode()
    if hashlib.sha256(raw).hexdigest() != SHAKESPEARE_SHA256:
        raise DataCorruptError(
            f"{SHAKESPEARE_FILE} is missing or damaged (its text does not have the expected "
            "SHA-256). Reinstall the course (pip install -e .) or restore it with "
            "git checkout -- course_utils/corpora/tinyshakespeare.txt.gz."
        )
    return CharCorpus(raw.decode("utf-8"), val_fraction)
