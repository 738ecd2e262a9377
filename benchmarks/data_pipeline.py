"""One training epoch of the article's Net: course loaders vs a per-sample DataLoader pipeline.

    python -m benchmarks.data_pipeline

Both pipelines feed the same model the same number of batches (128 images each) in one run,
alternating, and the median of the repeats is compared. The per-sample pipeline is what most
tutorials use: torchvision.datasets.FashionMNIST + ToTensor + Normalize + DataLoader.
"""

import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn

from course_utils.data import FILES, IDX_MAGIC, find_raw_data, get_loaders
from course_utils.models import Net


def per_sample_loader(raw, mean, std, batch_size=128):
    """torchvision's FashionMNIST over raw files, one PIL image at a time."""
    import torchvision
    from torchvision import transforms

    root = Path(tempfile.mkdtemp()) / "FashionMNIST" / "raw"
    root.mkdir(parents=True)
    for key, name in FILES.items():  # torchvision reads the decompressed IDX files
        tensor = raw[key]
        header = [IDX_MAGIC[tensor.dim()], *tensor.shape]
        (root / name).write_bytes(
            b"".join(int(v).to_bytes(4, "big") for v in header) + tensor.numpy().tobytes()
        )
    transform = transforms.Compose(
        [
            transforms.ToTensor(),
            transforms.Normalize((mean,), (std,)),
            transforms.Lambda(torch.flatten),
        ]
    )
    dataset = torchvision.datasets.FashionMNIST(root.parents[1], train=True, transform=transform)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True)


def one_epoch(model, loader, optimizer, criterion):
    model.train()
    for images, labels in loader:
        optimizer.zero_grad()
        criterion(model(images), labels).backward()
        optimizer.step()


def run(repeats=3):
    """Return the median epoch times and the speed-up of the course loaders."""
    _, raw = find_raw_data()
    train = raw["train_images"].float() / 255
    slow = per_sample_loader(raw, train.mean().item(), train.std().item())
    fast, _, _ = get_loaders(val_size=1)  # 59,999 images: the same epoch length
    times = {"per-sample DataLoader + ToTensor": [], "course loaders (in-memory slicing)": []}
    torch.manual_seed(0)
    model, criterion = Net(), nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(repeats):
        for name, loader in zip(times, (slow, fast)):
            start = time.perf_counter()
            one_epoch(model, loader, optimizer, criterion)
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    slow_s, fast_s = medians.values()
    return {"epoch_seconds": medians, "speedup": slow_s / fast_s, "repeats": repeats}


if __name__ == "__main__":
    result = run()
    for name, seconds in result["epoch_seconds"].items():
        print(f"{name:<36} {seconds:6.2f} s per epoch (median of {result['repeats']})")
    print(f"speed-up of the course loaders: {result['speedup']:.1f}x")
