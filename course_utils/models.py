"""The article's ``Net`` and a small CNN, plus a per-layer parameter table.

``Net`` is introduced in 01_model_definition, ``SmallCNN`` in 06_structured_pruning.
"""
import torch
import torch.nn as nn


class Net(nn.Module):
    """The article's fully connected network: 784-256-128-10 with ReLU (expects flat inputs)."""

    def __init__(self):
        super(Net, self).__init__()
        self.fc1 = nn.Linear(784, 256)
        self.fc2 = nn.Linear(256, 128)
        self.fc3 = nn.Linear(128, 10)

    def forward(self, x):
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        x = self.fc3(x)
        return x


class SmallCNN(nn.Module):
    """Three conv-BatchNorm-ReLU blocks and a linear classifier, for 1x28x28 images.

    Strided convolutions downsample (28 -> 14 -> 7) instead of max-pooling: on a CPU,
    max-pooling in PyTorch's default layout took about half of this model's inference time
    and does not shrink much when channels are removed. The classifier reads the flattened
    ``channels[2] x 7 x 7`` features. Two epochs of training take seconds (notebook 06).
    """

    def __init__(self, channels=(16, 32, 64), num_classes=10):
        super().__init__()
        c1, c2, c3 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, stride=2, padding=1), nn.BatchNorm2d(c1), nn.ReLU(),   # 14x14
            nn.Conv2d(c1, c2, 3, padding=1), nn.BatchNorm2d(c2), nn.ReLU(),            # 14x14
            nn.Conv2d(c2, c3, 3, stride=2, padding=1), nn.BatchNorm2d(c3), nn.ReLU(),  # 7x7
        )
        self.classifier = nn.Linear(c3 * 7 * 7, num_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def parameter_table(model):
    """Rows of (parameter name, shape, count) and a total, as printable text."""
    rows = [(name, "x".join(map(str, p.shape)), p.numel()) for name, p in model.named_parameters()]
    width = max(len(name) for name, _, _ in rows)
    lines = [f"{'parameter':<{width}}  {'shape':>9}  {'count':>8}"]
    lines += [f"{name:<{width}}  {shape:>9}  {count:>8,}" for name, shape, count in rows]
    lines.append(f"{'total':<{width}}  {'':>9}  {sum(c for _, _, c in rows):>8,}")
    return "\n".join(lines)
