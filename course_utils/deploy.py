"""From a pruned model to a deployed one: files that rebuild it, ONNX, ONNX Runtime, int8.

Introduced in 10_deployment. A structurally pruned model no longer fits the class defaults it came
from (``SmallCNN()`` builds 16, 32 and 64 channels; the pruned one has 8, 16 and 32), so its file
keeps the constructor arguments that rebuild it next to the weights:

    save_pruned(model, "cnn_half.pt")          # {"model", "config", "state_dict"}
    model = load_pruned("cnn_half.pt")         # torch.load(weights_only=True), rebuilt, checked

``export_onnx`` (written out in the notebook) writes one ONNX file with a dynamic batch dimension
and refuses a model that still carries pruning masks; ``OrtModel`` runs that file in ONNX Runtime
and looks like a PyTorch model, so ``accuracy`` and ``compare_throughput`` work on it;
``ImageBatches`` feeds calibration images to ONNX Runtime's static int8 quantization;
``quantize_per_row``, ``int8_state`` and ``dequantized`` are the int8 step of the compression
budget (int8 storage: the file holds int8 values, the decoded model computes in float32).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.utils.prune as prune
from onnxruntime.quantization import CalibrationDataReader

from .checkpoints import atomic_write, save_checkpoint
from .models import Net, SmallCNN, SmallResNet, TinyGPT
from .pruning import masked_keys, require_permanent

__all__ = [
    "COURSE_MODELS",
    "model_config",
    "check_shapes",
    "save_pruned",
    "load_pruned",
    "export_onnx",
    "OrtModel",
    "ImageBatches",
    "quantize_per_row",
    "int8_state",
    "dequantized",
]

COURSE_MODELS = {cls.__name__: cls for cls in (Net, SmallCNN, SmallResNet, TinyGPT)}
"""The classes ``load_pruned`` can rebuild, by name."""


def model_config(model: nn.Module) -> dict[str, Any]:
    """The keyword arguments that rebuild ``model``'s class at its own (possibly pruned) widths.

    Read from the layers themselves, so it is right after any surgery: ``SmallCNN(channels=...)``,
    ``SmallResNet(channels=...)``, ``TinyGPT(**model.config)``; ``Net`` has fixed widths (``{}``).
    """
    if isinstance(model, TinyGPT):
        return dict(model.config)
    if isinstance(model, SmallCNN):
        convs = [m.out_channels for m in model.features if isinstance(m, nn.Conv2d)]
        return {"channels": tuple(convs), "num_classes": model.classifier.out_features}
    if isinstance(model, SmallResNet):
        channels = (model.stem[0].out_channels, model.down[0].out_channels)
        return {"channels": channels, "num_classes": model.fc.out_features}
    if isinstance(model, Net):
        return {}
    raise ValueError(
        f"{type(model).__name__} is not one of the course's models ({', '.join(COURSE_MODELS)}): "
        "save its state_dict together with the arguments its class needs to rebuild it."
    )


def check_shapes(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Raise ``ValueError`` unless ``state_dict`` fits ``model`` key for key and shape for shape.

    The message names each layer that differs with both shapes, and says what to do: a pruned
    checkpoint needs the model built at its pruned widths (``load_pruned``), a checkpoint with
    masks needs ``make_permanent`` before saving.
    """
    masked = masked_keys(state_dict)
    if masked:
        raise ValueError(
            f"the checkpoint carries pruning masks ({', '.join(masked[:4])}): save the model after "
            "make_permanent(model) (prune.remove on each pruned layer), or give the fresh model "
            "the same masks first with prune.identity (notebook 07)."
        )
    own = model.state_dict()
    wrong = [
        f"{key}: the checkpoint has {tuple(value.shape)}, the model has {tuple(own[key].shape)}"
        for key, value in state_dict.items()
        if key in own and tuple(value.shape) != tuple(own[key].shape)
    ]
    if wrong:
        raise ValueError(
            f"the checkpoint does not fit this {type(model).__name__}: "
            + "; ".join(wrong[:3])
            + (f" (and {len(wrong) - 3} more)" if len(wrong) > 3 else "")
            + ". It comes from a pruned model with other widths: build the model at the pruned "
            f"widths, {type(model).__name__}(**model_config(pruned)), or save with save_pruned "
            "and load with load_pruned, which keep those widths in the file."
        )
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    if missing or unexpected:
        raise ValueError(
            f"the checkpoint does not fit this {type(model).__name__}: missing "
            f"{missing[:4] or 'nothing'}, unexpected {unexpected[:4] or 'nothing'}. Was it saved "
            "from another model class?"
        )


def save_pruned(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Save ``model`` with what rebuilds it: ``{"model", "config", "state_dict"}``, atomically.

    Refuses a model that still carries pruning masks, and checks before writing that the class
    built from the config takes the weights (so no file is saved that cannot be loaded).
    """
    require_permanent(model)
    config = model_config(model)
    state_dict = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    check_shapes(type(model)(**config), state_dict)
    save_checkpoint(
        {"model": type(model).__name__, "config": config, "state_dict": state_dict}, path
    )


def load_pruned(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> nn.Module:
    """The model ``save_pruned`` wrote, rebuilt at its widths, in eval mode on ``device``.

    Reads with ``torch.load(weights_only=True)``: tensors and plain containers only, never code.
    """
    saved = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(saved, dict) or not {"model", "config", "state_dict"} <= set(saved):
        raise ValueError(
            f"{path} was not written by save_pruned (it has no model, config and state_dict). A "
            "plain state_dict loads with model.load_state_dict(torch.load(path, "
            "weights_only=True)) into a model of the right widths."
        )
    if saved["model"] not in COURSE_MODELS:
        raise ValueError(f"{path}: unknown model class {saved['model']!r}.")
    model = COURSE_MODELS[saved["model"]](**saved["config"])
    check_shapes(model, saved["state_dict"])
    model.load_state_dict(saved["state_dict"])
    return model.to(device).eval()


# Written out in a notebook: keep this copy identical to it.
# fmt: off
def export_onnx(model: nn.Module, example: torch.Tensor, path: str | os.PathLike[str]) -> Path:
    """Write `model` to one ONNX file ("input" -> "output") whose batch size can vary.

    torch 2.9 and later export with the dynamo exporter (torch.export, then onnxscript), their
    default; torch 2.4-2.8 with the TorchScript exporter, theirs. Written atomically.
    """
    if prune.is_pruned(model):
        raise ValueError("the model still has pruning masks and hooks: call make_permanent(model) "
                         "first (prune.remove on each pruned layer), or the file stores "
                         "weight_orig and weight_mask: about twice the size.")
    if len(example) < 2:                              # with one, the exporter fixes batch = 1
        raise ValueError("give export_onnx an example batch of at least two inputs.")
    model, example = copy.deepcopy(model).cpu().eval(), example[:2].cpu()  # for the CPU runtime
    names = {"input_names": ["input"], "output_names": ["output"]}
    if torch.__version__ >= (2, 9):                   # a TorchVersion compares with tuples
        batch = torch.export.Dim("batch")
        program = torch.onnx.export(model, (example,), dynamo=True, verbose=False,
                                    dynamic_shapes=({0: batch},), **names)
        atomic_write(path, program.save)
    else:
        atomic_write(path, lambda tmp: torch.onnx.export(
            model, (example,), tmp, dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            **names))
    return Path(path)


# fmt: on


class OrtModel(nn.Module):
    """An ONNX file run by ONNX Runtime, called like a model: ``OrtModel(path)(images)``.

    So ``accuracy``, ``predict`` and ``compare_throughput`` work on it as on a PyTorch model. The
    CPU execution provider with ``threads`` intra-op threads (torch's number by default) that do
    not spin after each run (spinning threads starve PyTorch in a side-by-side timing). Inputs go
    in through NumPy; the output comes back as a tensor on the input's device.
    """

    def __init__(self, path: str | os.PathLike[str], threads: int | None = None) -> None:
        super().__init__()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (output,) = self.session.run(None, {"input": x.detach().cpu().numpy()})
        return torch.from_numpy(output).to(x.device)


# Written out in a notebook: keep this copy identical to it.
# fmt: off
class ImageBatches(CalibrationDataReader):
    """Calibration data for onnxruntime.quantization.quantize_static: batches of images."""

    def __init__(self, images: torch.Tensor, batch_size: int = 256) -> None:
        batches = images.cpu().split(batch_size)
        self.feeds = iter([{"input": batch.numpy()} for batch in batches])

    def get_next(self) -> dict | None:
        """The next batch, or None when the calibration data are used up."""
        return next(self.feeds, None)


def quantize_per_row(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 with one scale per output row: weight ~ q * scale. Zeros stay zeros."""
    scale = weight.abs().flatten(1).amax(dim=1).clamp(min=1e-12) / 127
    scale = scale.view(-1, *[1] * (weight.dim() - 1))    # one per row (Linear) or filter (Conv2d)
    q = torch.round(weight / scale).clamp(-127, 127).to(torch.int8)
    return q, scale


def int8_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state_dict with every Linear weight as int8 values plus its per-row scales."""
    state = {}
    for name, value in model.state_dict().items():
        if name.endswith("weight") and value.dim() == 2:
            state[name], state[name + "_scale"] = quantize_per_row(value)
        else:
            state[name] = value
    return state


def dequantized(model: nn.Module) -> nn.Module:
    """A copy of `model` whose Linear weights are what its int8 state decodes to (q * scale)."""
    decoded = copy.deepcopy(model)
    state = int8_state(model)
    with torch.no_grad():
        for name, layer in decoded.named_modules():
            if isinstance(layer, nn.Linear):
                layer.weight.copy_(state[f"{name}.weight"] * state[f"{name}.weight_scale"])
    return decoded


# fmt: on
