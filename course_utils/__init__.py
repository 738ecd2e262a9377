"""Helpers for the course 'Pruning Neural Networks in PyTorch'.

Small modules by topic: env (setup), data, models, training, pruning, measure, plots,
widgets, exercises. The pruning calls themselves stay in the notebooks.
"""
from .env import REPO_URL, setup, pick_device, project_dir
from .data import get_loaders, load_dataset, class_names
from .models import Net, SmallCNN, parameter_table
from .training import validate, accuracy, predict, train, load_baseline, load_checkpoint, save_checkpoint
