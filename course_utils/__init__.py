"""Helpers for the course 'Pruning Neural Networks in PyTorch'.

One small module per job; each notebook imports what it uses, and the pruning calls themselves
stay in the notebooks:

- ``env``: ``setup()`` (seed, threads, device, plot style, versions), ``project_dir()``.
- ``data``: Fashion-MNIST in memory, batched by slicing (``get_loaders``), and Tiny Shakespeare
  for the language model (``load_shakespeare``).
- ``models``: the article's ``Net``, ``SmallCNN``, ``SmallResNet``, and ``TinyGPT``.
- ``training``: ``train``, the article's ``validate``, ``predict``, ``accuracy``.
- ``checkpoints``: atomic saves and checked loads (file I/O only).
- ``baseline``: the reference baselines every notebook starts from (``load_baseline``).
- ``pruning``: ``prunable_weights``, ``pruned_copy``, ``make_permanent``, schedules, and the
  rules of masked models (``PRUNABLE``, ``effective_weight``, ``masked_copy``, ...).
- ``measure``: parameters, sparsity, file size, MACs (``FlopCounterMode``) and speed
  (``torch.utils.benchmark``).
- ``surgery``: the primitives of structured surgery (``keep_outputs``, ``keep_inputs``).
- ``chain``: ``remove_pruned_units``, the self-checked surgery of a whole plain chain.
- ``storage``: compact files for unstructured-sparse weights.
- ``sparse_kernels``: CSR layers and 2:4 semi-structured sparsity.
- ``language_model``: loss, perplexity, training and generation for ``TinyGPT``.
- ``lm_pruning``: one-shot pruning of a transformer with calibration data (magnitude, Wanda,
  SparseGPT, N:M), and attention heads and MLP neurons removed physically.
- ``deploy``: saving pruned models that reload at their widths, ONNX export, ONNX Runtime, int8.
- ``plots`` and ``widgets``: the pictures and the interactive explorer.
- ``claims``: the results the text states, checked on every run.
- ``exercises``: the checks of the exercises.

Helpers a notebook teaches are written out in that notebook, in a cell marked
``# saved in course_utils.<module>``; ``tests/test_saved_helpers.py`` keeps both copies equal.
"""

from .baseline import load_baseline
from .checkpoints import load_checkpoint, save_checkpoint
from .data import class_names, get_loaders, load_dataset
from .env import pick_device, project_dir, setup
from .models import Net, SmallCNN, SmallResNet, TinyGPT, parameter_table
from .training import accuracy, predict, train, validate

__all__ = [
    "load_baseline",
    "load_checkpoint",
    "save_checkpoint",
    "class_names",
    "get_loaders",
    "load_dataset",
    "pick_device",
    "project_dir",
    "setup",
    "Net",
    "SmallCNN",
    "SmallResNet",
    "TinyGPT",
    "parameter_table",
    "accuracy",
    "predict",
    "train",
    "validate",
]
