"""Train the reference baselines shipped with the package (a maintainer's tool).

    .venv/bin/python -m tools.train_reference_baselines            # all four
    .venv/bin/python -m tools.train_reference_baselines TinyGPT    # only the ones named

Trains ``Net``, ``SmallCNN`` and ``SmallResNet`` with ``train_baseline`` (seed 0, the fixed
validation split; about a minute on 2 cores) and ``TinyGPT`` with ``train_lm_baseline`` (seed 0,
Tiny Shakespeare; about 8 minutes on one core), writes them to ``course_utils/baselines/`` and
their SHA-256 to ``baselines/SHA256SUMS``, which ``load_baseline`` verifies. Every notebook
starts from these files, so rerunning this changes the stored outputs of the notebooks that use
the retrained models: re-execute them and rerun ``make sweep`` after.
"""

import hashlib
import math
import sys

import torch

from course_utils import Net, SmallCNN, accuracy, get_loaders, save_checkpoint
from course_utils.baseline import REFERENCE_DIR, reference_sha256
from course_utils.data import load_shakespeare
from course_utils.language_model import evaluate_lm, train_lm_baseline
from course_utils.models import SmallResNet, TinyGPT
from course_utils.training import train_baseline

CLASSES = (Net, SmallCNN, SmallResNet, TinyGPT)


def train_reference(model_class):
    """Train one reference model with seed 0; return it and a line describing it."""
    torch.manual_seed(0)
    model = model_class()
    if model_class is TinyGPT:
        corpus = load_shakespeare()
        train_lm_baseline(model, corpus, seed=0)
        loss = evaluate_lm(model, corpus)
        return model, f"validation loss {loss:.3f} nats/char (perplexity {math.exp(loss):.2f})"
    train_loader, val_loader, test_loader = get_loaders(flatten=model_class is Net, seed=0)
    train_baseline(model, train_loader, val_loader, seed=0)
    return model, (
        f"test {accuracy(model, test_loader):.2f}% · validation {accuracy(model, val_loader):.2f}%"
    )


def main(classes=CLASSES):
    sums = reference_sha256()  # keep the entries of the classes not trained this time
    for model_class in classes:
        model, description = train_reference(model_class)
        path = REFERENCE_DIR / f"{model_class.__name__.lower()}_baseline.pt"
        save_checkpoint({k: v.cpu() for k, v in model.state_dict().items()}, path)
        sums[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{path.name}: {description} · {path.stat().st_size:,} bytes")
    lines = [f"{digest}  {name}\n" for name, digest in sorted(sums.items())]
    (REFERENCE_DIR / "SHA256SUMS").write_text("".join(lines))


if __name__ == "__main__":
    by_name = {cls.__name__: cls for cls in CLASSES}
    unknown = [name for name in sys.argv[1:] if name not in by_name]
    if unknown:
        sys.exit(f"unknown model {unknown}: choose from {', '.join(by_name)}.")
    main([by_name[name] for name in sys.argv[1:]] or CLASSES)
