"""Character-level language modelling: loss, perplexity, a training loop and text generation.

For ``TinyGPT`` on Tiny Shakespeare (``data.load_shakespeare``). The loss is the cross-entropy of
the next character in nats; perplexity is ``exp(loss)``: a model with perplexity 5 is as unsure
as a fair choice among 5 characters. Introduced in 09_pruning_a_transformer.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from .data import CharCorpus
from .env import course_seed

__all__ = [
    "EVAL_WINDOWS",
    "lm_loss",
    "evaluate_lm",
    "train_lm",
    "generate",
    "REFERENCE_LM_STEPS",
    "train_lm_baseline",
]

EVAL_WINDOWS = 256
"""Validation windows every evaluation uses (256 x 64 = 16,384 characters, the same ones in
every run): enough to compare two models on the same text in half a second."""


def lm_loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats per character) of the next character over a batch of windows."""
    logits = model(inputs)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


@torch.no_grad()
def evaluate_lm(
    model: nn.Module,
    corpus: CharCorpus,
    windows: int = EVAL_WINDOWS,
    split: str = "val",
    batch_size: int = 64,
) -> float:
    """Validation loss in nats per character over ``windows`` fixed windows of ``split``.

    Perplexity is ``math.exp`` of it. The windows are evenly spaced (``eval_windows``), so two
    models are always compared on the same text.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    inputs, targets = corpus.eval_windows(windows, model.context, split, device)
    total = 0.0
    for start in range(0, len(inputs), batch_size):
        chunk = slice(start, start + batch_size)
        total += lm_loss(model, inputs[chunk], targets[chunk]).item() * len(inputs[chunk])
    model.train(was_training)
    return total / len(inputs)


def train_lm(
    model: nn.Module,
    corpus: CharCorpus,
    steps: int,
    lr: float = 1e-3,
    batch_size: int = 32,
    weight_decay: float = 0.0,
    warmup: int = 0,
    seed: int | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    desc: str = "training",
) -> list[float]:
    """Train with AdamW on random training windows, cosine learning rate; return the losses.

    ``loss_fn(inputs, targets)`` replaces the plain next-character loss (notebook 09 passes a
    distillation loss). ``seed`` (default ``course_seed()``) draws the windows.
    """
    if int(steps) < 1:
        raise ValueError(f"steps must be a positive whole number, not {steps!r}.")
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(course_seed() if seed is None else seed)
    loss_fn = loss_fn or (lambda inputs, targets: lm_loss(model, inputs, targets))
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=lr,
    )

    def schedule(step):  # linear warm-up, then cosine down to a tenth of lr
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return 0.1 + 0.45 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    model.train()
    losses = []
    for _ in tqdm(range(int(steps)), desc=desc, unit="step", mininterval=1.0):
        inputs, targets = corpus.batch(batch_size, model.context, generator, device=device)
        loss = loss_fn(inputs, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def generate(
    model: nn.Module,
    corpus: CharCorpus,
    prompt: str = "\n",
    length: int = 200,
    temperature: float = 0.8,
    seed: int = 0,
) -> str:
    """``length`` characters the model writes after ``prompt``, sampled with a fixed seed."""
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device="cpu").manual_seed(seed)
    ids = corpus.encode(prompt).to(device)[None]
    for _ in range(int(length)):
        logits = model(ids[:, -model.context :])[0, -1] / temperature
        probs = torch.softmax(logits.float().cpu(), dim=-1)
        ids = torch.cat([ids, torch.multinomial(probs, 1, generator=generator).to(device)[None]], 1)
    return corpus.decode(ids[0, len(prompt) :])


REFERENCE_LM_STEPS = 2500
"""Training steps of the reference ``TinyGPT`` (batches of 32 windows of 64 characters)."""


def train_lm_baseline(
    model: nn.Module, corpus: CharCorpus, steps: int = REFERENCE_LM_STEPS, seed: int = 0
) -> list[float]:
    """The recipe of the reference ``TinyGPT``: AdamW, lr 2e-3, warm-up, cosine, decay 0.1."""
    torch.manual_seed(seed)
    return train_lm(
        model,
        corpus,
        steps,
        lr=2e-3,
        batch_size=32,
        weight_decay=0.1,
        warmup=100,
        seed=seed,
        desc="baseline TinyGPT",
    )
