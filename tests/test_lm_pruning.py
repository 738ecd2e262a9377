"""One-shot pruning of TinyGPT: masks, Wanda, SparseGPT, heads and neurons (notebook 09)."""

import copy

import pytest
import torch
import torch.nn as nn

from course_utils.baseline import load_reference
from course_utils.data import load_shakespeare
from course_utils.lm_pruning import (
    PRUNERS,
    block_linears,
    calibration_windows,
    head_scores,
    input_grams,
    keep_mask,
    linear_sparsity,
    mask_like_shrunk,
    mlp_neuron_scores,
    n_m_mask,
    prune_transformer,
    shrink_transformer,
)
from course_utils.models import TinyGPT
from course_utils.sparse_kernels import mask_2_4


@pytest.fixture(scope="module")
def corpus():
    return load_shakespeare()


@pytest.fixture(scope="module")
def reference():
    return load_reference(TinyGPT).eval()


@pytest.fixture(scope="module")
def calibration(corpus):
    inputs, _ = calibration_windows(corpus, count=32, seed=0)
    return inputs


def test_keep_mask_is_exact_per_row_and_per_layer():
    scores = torch.rand(7, 10)
    per_row = keep_mask(scores, 0.3, per_row=True)
    assert (per_row.sum(dim=1) == 7).all()
    whole = keep_mask(scores, 0.3)
    assert whole.sum() == 70 - 21
    assert scores[whole].min() >= scores[~whole].max(), "the largest scores are kept"
    assert keep_mask(scores, 0.0).all()
    for bad in (1.0, -0.1, 50):
        with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\)"):
            keep_mask(scores, bad)


def test_n_m_mask_keeps_n_of_every_m_and_generalises_2_4():
    weight = torch.randn(6, 16)
    for n, m in [(2, 4), (1, 4), (4, 8), (3, 8)]:
        keep = n_m_mask(weight.abs(), n, m)
        assert (keep.reshape(6, -1, m).sum(dim=-1) == n).all()
    assert torch.equal(n_m_mask(weight.abs(), 2, 4), mask_2_4(weight).bool())
    with pytest.raises(ValueError, match="multiple of 8"):
        n_m_mask(torch.rand(3, 12), 4, 8)
    with pytest.raises(ValueError, match="0 < n < m"):
        n_m_mask(torch.rand(3, 12), 4, 4)


def test_wanda_gives_the_exact_sparsity_in_every_row(reference, calibration):
    block = copy.deepcopy(reference.blocks[0])
    hidden = reference.tok_emb(calibration) + reference.pos_emb(torch.arange(64))
    grams = input_grams(block, hidden)
    for name, layer in block_linears(block).items():
        PRUNERS["wanda"](layer, grams[name], 0.6)
        zeros = (layer.weight == 0).sum(dim=1)
        assert (zeros == round(0.6 * layer.in_features)).all(), name


def test_input_grams_are_x_transpose_x(reference, calibration):
    block = reference.blocks[0]
    hidden = reference.tok_emb(calibration) + reference.pos_emb(torch.arange(64))
    seen = []
    handle = block.fc.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    grams = input_grams(block, hidden)
    handle.remove()
    x = seen[0].reshape(-1, 128)
    assert torch.allclose(grams["fc"], x.T @ x, rtol=1e-4, atol=1e-3)


def layer_inputs(block, hidden):
    """``{name: X}``: what each linear of ``block`` receives, one row per position."""
    inputs = {}

    def record(name):
        return lambda module, args, out: inputs.__setitem__(name, args[0].flatten(0, -2))

    handles = [
        layer.register_forward_hook(record(name)) for name, layer in block_linears(block).items()
    ]
    with torch.no_grad():
        block(hidden)
    for handle in handles:
        handle.remove()
    return inputs


@pytest.mark.parametrize("n_m", [None, (2, 4)], ids=["50%", "2:4"])
def test_sparsegpt_reconstructs_each_layer_better_than_magnitude_and_wanda(
    reference, calibration, n_m
):
    """The property SparseGPT optimises, on real calibration inputs of the trained model."""
    hidden = reference.tok_emb(calibration) + reference.pos_emb(torch.arange(64))
    for block in reference.blocks[:2]:
        inputs = layer_inputs(block, hidden)
        grams = input_grams(block, hidden)
        for name, layer in block_linears(block).items():
            x = inputs[name]
            errors = {}
            for method, prune_ in PRUNERS.items():
                pruned = copy.deepcopy(layer)
                prune_(pruned, grams[name], 0.5, n_m)
                assert (pruned.weight == 0).float().mean().item() == pytest.approx(0.5, abs=1e-3)
                with torch.no_grad():
                    errors[method] = (pruned(x) - layer(x)).norm().item()
            assert errors["sparsegpt"] < min(errors["magnitude"], errors["wanda"]), (name, errors)
        with torch.no_grad():
            hidden = block(hidden)


def test_prune_transformer_prunes_block_linears_only_and_leaves_the_model(reference, calibration):
    before = copy.deepcopy(reference.state_dict())
    pruned, seconds = prune_transformer(reference, calibration, "wanda", sparsity=0.5)
    assert seconds > 0
    assert linear_sparsity(pruned) == 0.5
    assert all(torch.equal(before[k], v) for k, v in reference.state_dict().items())
    for name in ("tok_emb.weight", "pos_emb.weight", "head.weight"):
        assert torch.equal(pruned.state_dict()[name], before[name]), f"{name} is not pruned"
    two_four, _ = prune_transformer(reference, calibration, "magnitude", n_m=(2, 4))
    for block in two_four.blocks:
        for layer in block_linears(block).values():
            assert ((layer.weight != 0).reshape(layer.out_features, -1, 4).sum(-1) <= 2).all()


def test_prune_transformer_refuses_bad_input(reference, calibration):
    with pytest.raises(ValueError, match="unknown method 'obs'.*magnitude, wanda, sparsegpt"):
        prune_transformer(reference, calibration, "obs")
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\)"):
        prune_transformer(reference, calibration, "wanda", sparsity=50)
    with pytest.raises(ValueError, match="multiple of 3"):
        prune_transformer(reference, calibration, "sparsegpt", n_m=(2, 3))
    with pytest.raises(TypeError, match="no TinyGPT-style blocks"):
        prune_transformer(nn.Sequential(nn.Linear(4, 4)), calibration, "wanda")


def test_calibration_windows_follow_the_seed_and_come_from_training_text(corpus):
    first, targets = calibration_windows(corpus, count=4, seed=0)
    assert torch.equal(first, calibration_windows(corpus, count=4, seed=0)[0])
    assert not torch.equal(first, calibration_windows(corpus, count=4, seed=1)[0])
    assert torch.equal(first[:, 1:], targets[:, :-1])
    train_text = corpus.decode(corpus.train_ids)
    assert corpus.decode(first[0]) in train_text


def test_removing_heads_and_neurons_computes_what_the_masked_model_did(reference, calibration):
    keep_heads = [[0, 2], [1], [0, 1, 3], [3]]
    keep_neurons = [list(range(0, 512, 2)), list(range(100)), list(range(512)), [5, 7, 400]]
    small = shrink_transformer(reference, keep_heads, keep_neurons)
    masked = mask_like_shrunk(reference, keep_heads, keep_neurons)
    with torch.no_grad():
        assert torch.allclose(small(calibration[:4]), masked(calibration[:4]), atol=1e-5)
    assert small.config["heads"] == [2, 1, 3, 1]
    rebuilt = TinyGPT(**small.config)
    rebuilt.load_state_dict(small.state_dict())
    assert sum(p.numel() for p in small.parameters()) < sum(
        p.numel() for p in reference.parameters()
    )


def test_shrink_refuses_bad_heads(reference):
    neurons = [list(range(512))] * 4
    with pytest.raises(ValueError, match=r"distinct indices in 0\.\.3.*\[0, 4\]"):
        shrink_transformer(reference, [[0, 4], [0], [0], [0]], neurons)
    with pytest.raises(ValueError, match="at least one per layer"):
        shrink_transformer(reference, [[], [0], [0], [0]], neurons)
    with pytest.raises(ValueError, match="one list of heads and one of neurons per layer"):
        shrink_transformer(reference, [[0]], neurons)


def test_head_and_neuron_scores(reference, corpus):
    inputs, targets = corpus.batch(16, 64, torch.Generator().manual_seed(0))
    scores = head_scores(reference, inputs, targets)
    assert scores.shape == (4, 4) and (scores > 0).all()
    assert not any(block.attn.head_gate.requires_grad for block in reference.blocks)
    assert mlp_neuron_scores(reference, inputs).shape == (4, 512)
