"""Train the reference baselines shipped with the package (a maintainer's tool).

    .venv/bin/python -m tools.train_reference_baselines     # about a minute on 2 cores

Trains ``Net``, ``SmallCNN`` and ``SmallResNet`` with ``train_baseline`` (seed 0, the fixed
validation split), writes them to ``course_utils/baselines/`` and their SHA-256 to
``baselines/SHA256SUMS``, which ``load_baseline`` verifies. Every notebook starts from these
files, so rerunning this changes the stored outputs of every notebook: re-execute them and rerun
``make sweep`` after.
"""
import hashlib

import torch

from course_utils import Net, SmallCNN, accuracy, get_loaders, save_checkpoint
from course_utils.baseline import REFERENCE_DIR, reference_sha256
from course_utils.models import SmallResNet
from course_utils.training import train_baseline


def main(classes=(Net, SmallCNN, SmallResNet)):
    sums = reference_sha256()  # keep the entries of the classes not trained this time
    for model_class in classes:
        torch.manual_seed(0)
        model = model_class()
        train_loader, val_loader, test_loader = get_loaders(flatten=model_class is Net, seed=0)
        train_baseline(model, train_loader, val_loader, seed=0)
        path = REFERENCE_DIR / f"{model_class.__name__.lower()}_baseline.pt"
        save_checkpoint({k: v.cpu() for k, v in model.state_dict().items()}, path)
        sums[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"{path.name}: test {accuracy(model, test_loader):.2f}% · "
              f"validation {accuracy(model, val_loader):.2f}% · {path.stat().st_size:,} bytes")
    lines = [f"{digest}  {name}\n" for name, digest in sorted(sums.items())]
    (REFERENCE_DIR / "SHA256SUMS").write_text("".join(lines))


if __name__ == "__main__":
    main()
