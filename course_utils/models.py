"""The article's ``Net``, a small CNN and a small ResNet, plus a per-layer parameter table.

``Net`` is introduced in 01_model_definition, ``SmallCNN`` in 06_structured_pruning,
``SmallResNet`` in 08_pruning_a_residual_network.
"""
from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["Net", "SmallCNN", "ResidualBlock", "SmallResNet", "parameter_table"]


class Net(nn.Module):
    """The article's fully connected network: 784-256-128-10 with ReLU (expects flat inputs)."""

    def __init__(self) -> None:
        super(Net, self).__init__()
        self.fc1 = nn.Linear(784, 256)
        self.fc2 = nn.Linear(256, 128)
        self.fc3 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
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

    def __init__(self, channels: tuple[int, int, int] = (16, 32, 64),
                 num_classes: int = 10) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, stride=2, padding=1), nn.BatchNorm2d(c1), nn.ReLU(),   # 14x14
            nn.Conv2d(c1, c2, 3, padding=1), nn.BatchNorm2d(c2), nn.ReLU(),            # 14x14
            nn.Conv2d(c2, c3, 3, stride=2, padding=1), nn.BatchNorm2d(c3), nn.ReLU(),  # 7x7
        )
        self.classifier = nn.Linear(c3 * 7 * 7, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class ResidualBlock(nn.Module):
    """Two 3x3 conv-BatchNorm layers and a skip connection: ``relu(bn2(conv2(...)) + x)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + x)  # the skip connection: x and out must have the same channels


class SmallResNet(nn.Module):
    """A small residual network for 1x28x28 images: three residual blocks with BatchNorm.

    A strided stem (28 -> 14), one block of ``channels[0]``, a strided conv (14 -> 7), two
    blocks of ``channels[1]``, global average pooling and a linear classifier. Three epochs
    of training take well under a minute on 2 CPU cores (notebook 08).
    """

    def __init__(self, channels: tuple[int, int] = (16, 32), num_classes: int = 10) -> None:
        super().__init__()
        c1, c2 = channels
        self.stem = nn.Sequential(nn.Conv2d(1, c1, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(c1), nn.ReLU())                        # 14x14
        self.block1 = ResidualBlock(c1)
        self.down = nn.Sequential(nn.Conv2d(c1, c2, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(c2), nn.ReLU())                        # 7x7
        self.block2 = ResidualBlock(c2)
        self.block3 = ResidualBlock(c2)
        self.fc = nn.Linear(c2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block1(self.stem(x))
        x = self.block3(self.block2(self.down(x)))
        return self.fc(x.mean(dim=(2, 3)))  # global average pooling


def parameter_table(model: nn.Module) -> str:
    """Rows of (parameter name, shape, count) and a total, as printable text."""
    rows = [(name, "x".join(map(str, p.shape)), p.numel()) for name, p in model.named_parameters()]
    width = max(len(name) for name, _, _ in rows)
    lines = [f"{'parameter':<{width}}  {'shape':>9}  {'count':>8}"]
    lines += [f"{name:<{width}}  {shape:>9}  {count:>8,}" for name, shape, count in rows]
    lines.append(f"{'total':<{width}}  {'':>9}  {sum(c for _, _, c in rows):>8,}")
    return "\n".join(lines)
