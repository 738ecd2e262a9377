"""Helpers for the course 'Pruning Neural Networks in PyTorch'.

Small modules by topic: env (setup, seed, threads), data, models, training (loops, checkpoints
and the reference baselines shipped in ``baselines/``), pruning, measure, plots, widgets,
surgery, storage, latency, claims (the checked results of the text) and exercises. The pruning
calls themselves stay in the notebooks.
"""
from .env import REPO_URL, setup, pick_device, project_dir
from .data import get_loaders, load_dataset, class_names
from .models import Net, SmallCNN, parameter_table
from .training import validate, accuracy, predict, train, load_baseline, load_checkpoint, save_checkpoint
