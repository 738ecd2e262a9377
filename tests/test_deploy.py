"""course_utils.deploy (notebook 10): files that rebuild pruned models, ONNX, ONNX Runtime, int8."""

import copy

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn
from onnxruntime.quantization import QuantType, quantize_dynamic

from benchmarks.run_all import structured_cnn
from course_utils.baseline import load_reference
from course_utils.deploy import (
    ImageBatches,
    OrtModel,
    check_shapes,
    dequantized,
    export_onnx,
    int8_state,
    load_pruned,
    model_config,
    quantize_per_row,
    save_pruned,
)
from course_utils.models import Net, SmallCNN, SmallResNet, TinyGPT
from course_utils.pruning import make_permanent, pruned_copy
from course_utils.storage import from_bytes, to_bytes

IMAGES = torch.randn(6, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def half_width_cnn():
    """notebook 06's surgery (make bench's copy): a SmallCNN with half its channels."""
    torch.manual_seed(0)
    return structured_cnn(SmallCNN().eval()).eval()


def small_gpt():
    torch.manual_seed(0)
    return TinyGPT(context=16, width=32, n_layer=2, n_head=2, mlp_width=64, heads=[2, 1]).eval()


def models_and_inputs():
    torch.manual_seed(0)
    return {
        "Net": (make_permanent(pruned_copy(Net(), 0.9, globally=True)), IMAGES.flatten(1)),
        "SmallCNN half": (half_width_cnn(), IMAGES),
        "SmallResNet": (SmallResNet(channels=(8, 16)).eval(), IMAGES),
        "TinyGPT": (small_gpt(), torch.randint(0, 65, (6, 16))),
    }


# ---------------------------------------------------------------- saving, config, clear errors


def test_model_config_reads_the_pruned_widths():
    assert model_config(half_width_cnn()) == {"channels": (8, 16, 32), "num_classes": 10}
    assert model_config(SmallResNet(channels=(8, 16))) == {"channels": (8, 16), "num_classes": 10}
    assert model_config(small_gpt())["heads"] == [2, 1]
    assert model_config(Net()) == {}
    with pytest.raises(ValueError, match="not one of the course's models"):
        model_config(nn.Linear(2, 2))


@pytest.mark.parametrize("name", ["Net", "SmallCNN half", "SmallResNet", "TinyGPT"])
def test_save_and_load_pruned_round_trip(tmp_path, name):
    model, inputs = models_and_inputs()[name]
    save_pruned(model, tmp_path / "model.pt")
    saved = torch.load(tmp_path / "model.pt", weights_only=True)  # tensors and plain values only
    assert set(saved) == {"model", "config", "state_dict"}
    reloaded = load_pruned(tmp_path / "model.pt")
    assert type(reloaded) is type(model) and not reloaded.training
    with torch.no_grad():
        assert torch.equal(reloaded(inputs), model.eval()(inputs))


def test_save_pruned_refuses_masks_and_writes_nothing(tmp_path):
    masked = pruned_copy(Net(), 0.5)
    with pytest.raises(ValueError, match="prune.remove"):
        save_pruned(masked, tmp_path / "masked.pt")
    assert not (tmp_path / "masked.pt").exists()


def test_a_pruned_state_dict_in_the_dense_class_names_layer_shapes_and_the_fix():
    state = half_width_cnn().state_dict()
    with pytest.raises(ValueError) as err:
        check_shapes(SmallCNN(), state)
    message = str(err.value)
    assert "features.0.weight: the checkpoint has (8, 1, 3, 3), the model has (16, 1, 3, 3)" in (
        message
    )
    assert "load_pruned" in message and "model_config" in message


def test_check_shapes_names_masks_and_missing_keys():
    with pytest.raises(ValueError, match="make_permanent"):
        check_shapes(Net(), pruned_copy(Net(), 0.5).state_dict())
    state = Net().state_dict()
    del state["fc3.bias"]
    with pytest.raises(ValueError, match=r"missing \['fc3.bias'\]"):
        check_shapes(Net(), state)
    check_shapes(Net(), Net().state_dict())  # a fitting state_dict passes


def test_load_pruned_with_a_mismatched_config_names_the_layer_and_both_shapes(tmp_path):
    save_pruned(half_width_cnn(), tmp_path / "cnn.pt")
    saved = torch.load(tmp_path / "cnn.pt", weights_only=True)
    saved["config"]["channels"] = (8, 16, 64)  # edited by hand: the third width is wrong
    torch.save(saved, tmp_path / "edited.pt")
    with pytest.raises(ValueError, match=r"features.6.weight: the checkpoint has \(32, 16, 3, 3\), "
                       r"the model has \(64, 16, 3, 3\)"):  # fmt: skip
        load_pruned(tmp_path / "edited.pt")


def test_load_pruned_refuses_other_files(tmp_path):
    torch.save(Net().state_dict(), tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="not written by save_pruned"):
        load_pruned(tmp_path / "plain.pt")
    torch.save({"model": "VGG", "config": {}, "state_dict": {}}, tmp_path / "vgg.pt")
    with pytest.raises(ValueError, match="unknown model class 'VGG'"):
        load_pruned(tmp_path / "vgg.pt")


# ------------------------------------------------------------------------ ONNX and ONNX Runtime


@pytest.mark.parametrize("name", ["Net", "SmallCNN half", "SmallResNet", "TinyGPT"])
def test_export_onnx_runs_in_onnx_runtime_like_pytorch_at_any_batch_size(tmp_path, name):
    model, inputs = models_and_inputs()[name]
    path = export_onnx(model, inputs, tmp_path / "model.onnx")
    assert path.is_file() and list(tmp_path.iterdir()) == [path], "one file, no temporary left"
    onnx.checker.check_model(onnx.load(path))
    runtime = OrtModel(path, threads=1)
    with torch.no_grad():
        for batch in (1, 5):  # the exported batch size was 2: the dimension is dynamic
            gap = (runtime(inputs[:batch]) - model(inputs[:batch])).abs().max().item()
            assert gap < 1e-4, f"{name}, batch {batch}: {gap:.1e}"


def test_export_onnx_refuses_masks_and_a_single_example(tmp_path):
    with pytest.raises(ValueError, match="make_permanent"):
        export_onnx(pruned_copy(Net(), 0.5), torch.randn(4, 784), tmp_path / "masked.onnx")
    with pytest.raises(ValueError, match="at least two"):
        export_onnx(Net(), torch.randn(1, 784), tmp_path / "one.onnx")
    assert not list(tmp_path.iterdir())


def test_the_masked_export_trap(tmp_path):
    """Exported with its masks, a model stores weight_orig and weight_mask (dynamo exporter)."""
    masked = pruned_copy(Net(), 0.9, globally=True).eval()
    example = (torch.randn(2, 784),)
    if torch.__version__ >= (2, 9):
        torch.onnx.export(masked, example, dynamo=True, verbose=False).save(tmp_path / "m.onnx")
    else:
        torch.onnx.export(masked, example, tmp_path / "m.onnx")
    permanent = export_onnx(make_permanent(masked), example[0], tmp_path / "p.onnx")
    names = [tensor.name for tensor in onnx.load(tmp_path / "m.onnx").graph.initializer]
    ratio = (tmp_path / "m.onnx").stat().st_size / permanent.stat().st_size
    if torch.__version__ >= (2, 9):
        assert any(name.endswith("weight_mask") for name in names) and ratio > 1.8
    else:  # the TorchScript exporter folds weight_orig * weight_mask into one constant
        assert not any(name.endswith("weight_mask") for name in names) and ratio < 1.05


def test_image_batches_feeds_the_calibration_then_stops():
    reader = ImageBatches(torch.randn(600, 1, 28, 28), batch_size=256)
    sizes = []
    while (feed := reader.get_next()) is not None:
        assert set(feed) == {"input"} and isinstance(feed["input"], np.ndarray)
        sizes.append(len(feed["input"]))
    assert sizes == [256, 256, 88]


def test_dynamic_int8_of_the_reference_net_keeps_its_accuracy(tmp_path):
    """Real data: int8 weights (quantize_dynamic) move the reference Net by under 0.3 points."""
    from course_utils.data import get_loaders
    from course_utils.training import accuracy

    _, _, fashion_test = get_loaders()
    net = load_reference(Net)
    fp32 = export_onnx(net, fashion_test.images, tmp_path / "net.onnx")
    quantize_dynamic(fp32, tmp_path / "net_int8.onnx", weight_type=QuantType.QInt8)
    int8 = tmp_path / "net_int8.onnx"
    assert fp32.stat().st_size / int8.stat().st_size > 3.5, "one byte per weight instead of four"
    assert abs(accuracy(OrtModel(int8), fashion_test) - accuracy(net, fashion_test)) < 0.3


# ------------------------------------------------------------------------------------ int8


def test_quantize_per_row_keeps_zeros_and_rounds_to_half_a_step():
    weight = torch.randn(16, 40)
    weight[weight.abs() < 1] = 0
    q, scale = quantize_per_row(weight)
    assert q.dtype == torch.int8 and scale.shape == (16, 1)
    assert bool(((weight == 0) <= (q == 0)).all()), "a pruned weight stays pruned"
    assert int(q.abs().max(dim=1).values.min()) == 127, "each row uses the full range"
    assert bool(((q * scale - weight).abs() <= scale / 2 + 1e-7).all())
    conv_q, conv_scale = quantize_per_row(torch.randn(8, 3, 3, 3))
    assert conv_q.shape == (8, 3, 3, 3) and conv_scale.shape == (8, 1, 1, 1)


def test_int8_state_packs_with_a_bitmask_and_decodes():
    torch.manual_seed(0)
    net = make_permanent(pruned_copy(Net(), 0.9, globally=True))
    state = int8_state(net)
    assert state["fc1.weight"].dtype == torch.int8 and "fc1.weight_scale" in state
    assert state["fc1.bias"].dtype == torch.float32
    packed = to_bytes(state, compress=False)
    restored = from_bytes(packed)
    assert all(torch.equal(restored[key], value) for key, value in state.items())
    assert len(packed) < 0.5 * len(to_bytes(net, compress=False)), "int8 values, not float32"
    decoded = dequantized(net)
    assert torch.equal(decoded.fc1.weight, state["fc1.weight"] * state["fc1.weight_scale"])
    assert not torch.equal(decoded.fc1.weight, net.fc1.weight) and decoded is not net
    assert torch.equal(net.fc1.weight, copy.deepcopy(net).fc1.weight), "the model is untouched"
