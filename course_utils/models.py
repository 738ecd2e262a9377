"""The article's ``Net``, a small CNN and a small ResNet, plus a per-layer parameter table.

``Net`` is introduced in 01_model_definition, ``SmallCNN`` in 06_structured_pruning,
``SmallResNet`` in 08_pruning_a_residual_network, ``TinyGPT`` in 09_pruning_a_transformer.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "Net",
    "SmallCNN",
    "ResidualBlock",
    "SmallResNet",
    "CausalSelfAttention",
    "TransformerBlock",
    "TinyGPT",
    "parameter_table",
]


# Written out in a notebook: keep this copy identical to it.
# fmt: off
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


# fmt: on


class SmallCNN(nn.Module):
    """Three conv-BatchNorm-ReLU blocks and a linear classifier, for 1x28x28 images.

    Strided convolutions downsample (28 -> 14 -> 7) instead of max-pooling: on a CPU,
    max-pooling in PyTorch's default layout took about half of this model's inference time
    and does not shrink much when channels are removed. The classifier reads the flattened
    ``channels[2] x 7 x 7`` features. Two epochs of training take seconds (notebook 06).
    """

    def __init__(
        self, channels: tuple[int, int, int] = (16, 32, 64), num_classes: int = 10
    ) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, stride=2, padding=1),
            nn.BatchNorm2d(c1),
            nn.ReLU(),  # 14x14
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.BatchNorm2d(c2),
            nn.ReLU(),  # 14x14
            nn.Conv2d(c2, c3, 3, stride=2, padding=1),
            nn.BatchNorm2d(c3),
            nn.ReLU(),  # 7x7
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
        self.stem = nn.Sequential(
            nn.Conv2d(1, c1, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c1), nn.ReLU()
        )  # 14x14
        self.block1 = ResidualBlock(c1)
        self.down = nn.Sequential(
            nn.Conv2d(c1, c2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c2), nn.ReLU()
        )  # 7x7
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


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with separate ``q``, ``k``, ``v`` and output projections.

    Head ``h`` owns rows ``h*head_dim:(h+1)*head_dim`` of ``q``, ``k`` and ``v`` and the same
    columns of ``proj``, so removing a head is slicing those four layers (notebook 09).
    ``head_gate`` (one number per head, default ones) scales each head's output: 0 silences it.
    """

    def __init__(self, width: int, n_head: int, head_dim: int) -> None:
        super().__init__()
        self.n_head, self.head_dim = n_head, head_dim
        inner = n_head * head_dim
        self.q, self.k, self.v = (nn.Linear(width, inner) for _ in range(3))
        self.proj = nn.Linear(inner, width)
        self.register_buffer("head_gate", torch.ones(n_head), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        if self.n_head == 0:  # every head removed: only the output bias is left
            return self.proj(x.new_zeros(B, T, 0))
        q, k, v = (
            layer(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)
            for layer in (self.q, self.k, self.v)
        )  # (B, heads, T, head_dim) each
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        out = out * self.head_gate.view(1, -1, 1, 1)
        return self.proj(out.transpose(1, 2).reshape(B, T, self.n_head * self.head_dim))


class TransformerBlock(nn.Module):
    """A pre-LayerNorm block: ``x + attn(ln1(x))``, then ``x + mlp(ln2(x))`` (GELU MLP)."""

    def __init__(self, width: int, n_head: int, head_dim: int, mlp_width: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, n_head, head_dim)
        self.ln2 = nn.LayerNorm(width)
        self.fc = nn.Linear(width, mlp_width)  # MLP neuron j: row j of fc ...
        self.proj = nn.Linear(mlp_width, width)  # ... and column j of proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.proj(F.gelu(self.fc(self.ln2(x))))


class TinyGPT(nn.Module):
    """A small decoder-only transformer for characters (GPT-2's layout, about 0.8M parameters).

    Token and position embeddings, ``n_layer`` pre-LayerNorm blocks, a final LayerNorm and a
    linear head that scores the next character. ``heads`` and ``mlp_widths`` give each block
    its own number of heads and MLP width, so a structurally pruned model is a ``TinyGPT`` too.
    Introduced in 09_pruning_a_transformer.
    """

    def __init__(
        self,
        vocab_size: int = 65,
        context: int = 64,
        width: int = 128,
        n_layer: int = 4,
        n_head: int = 4,
        mlp_width: int = 512,
        heads: list[int] | None = None,
        mlp_widths: list[int] | None = None,
    ) -> None:
        super().__init__()
        if width % n_head:
            raise ValueError(f"width {width} is not a multiple of n_head {n_head}.")
        heads = list(heads) if heads is not None else [n_head] * n_layer
        mlp_widths = list(mlp_widths) if mlp_widths is not None else [mlp_width] * n_layer
        if len(heads) != n_layer or len(mlp_widths) != n_layer:
            raise ValueError(f"heads and mlp_widths need one entry per layer ({n_layer}).")
        self.config = dict(
            vocab_size=vocab_size,
            context=context,
            width=width,
            n_layer=n_layer,
            n_head=n_head,
            heads=heads,
            mlp_widths=mlp_widths,
        )
        self.context = context
        self.tok_emb = nn.Embedding(vocab_size, width)
        self.pos_emb = nn.Embedding(context, width)
        self.blocks = nn.ModuleList(
            TransformerBlock(width, h, width // n_head, m) for h, m in zip(heads, mlp_widths)
        )
        self.ln_f = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, T, vocab_size)`` for character ids ``(B, T)``, ``T <= context``."""
        T = ids.shape[1]
        if T > self.context:
            raise ValueError(f"{T} characters is more than the context of {self.context}.")
        x = self.tok_emb(ids) + self.pos_emb(torch.arange(T, device=ids.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))
