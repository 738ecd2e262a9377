"""Loss, evaluation, training and generation for the character model (notebook 09)."""

import math

import pytest
import torch

from course_utils.data import load_shakespeare
from course_utils.language_model import evaluate_lm, generate, lm_loss, train_lm
from course_utils.models import TinyGPT


@pytest.fixture(scope="module")
def corpus():
    return load_shakespeare()


def small_model():
    torch.manual_seed(0)
    return TinyGPT(context=32, width=32, n_layer=1, n_head=2, mlp_width=64)


def test_untrained_model_scores_about_a_uniform_guess(corpus):
    loss = evaluate_lm(small_model(), corpus, windows=32)
    assert abs(loss - math.log(65)) < 0.5, "an untrained model is close to log(65) nats"
    assert evaluate_lm(small_model(), corpus, windows=32) == loss, "the same windows every time"


def test_training_lowers_the_loss_and_repeats_with_its_seed(corpus):
    first, second = small_model(), small_model()
    before = evaluate_lm(first, corpus, windows=32)
    losses = train_lm(first, corpus, 60, lr=3e-3, seed=5)
    train_lm(second, corpus, 60, lr=3e-3, seed=5)
    assert evaluate_lm(first, corpus, windows=32) < before - 0.5
    assert len(losses) == 60 and not first.training
    assert all(
        torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values())
    )
    with pytest.raises(ValueError, match="positive whole number"):
        train_lm(first, corpus, 0)


def test_custom_loss_is_used(corpus):
    model = small_model()
    calls = []

    def loss_fn(inputs, targets):
        calls.append(inputs.shape)
        return lm_loss(model, inputs, targets)

    train_lm(model, corpus, 3, batch_size=4, loss_fn=loss_fn)
    assert calls == [(4, 32)] * 3


def test_generate_is_seeded_and_has_the_length_asked(corpus):
    model = small_model()
    text = generate(model, corpus, prompt="ROMEO:", length=50, seed=1)
    assert len(text) == 50 and set(text) <= set(corpus.vocab)
    assert text == generate(model, corpus, prompt="ROMEO:", length=50, seed=1)
    assert text != generate(model, corpus, prompt="ROMEO:", length=50, seed=2)
