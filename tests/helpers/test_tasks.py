"""Unit tests of helpers.tasks: deterministic long-range task generators and the torch loop."""
import numpy as np
import pytest

from helpers.tasks import (
    adding_task,
    copy_task,
    delayed_recall,
    make_recurrent_classifier,
    one_hot,
    recall_input_size,
    train_recall,
)


def test_one_hot_values_and_shape():
    x = one_hot(np.array([[0, 2], [1, 1]]), 3)
    assert x.shape == (2, 2, 3) and x.dtype == np.float64
    np.testing.assert_array_equal(x.argmax(-1), [[0, 2], [1, 1]])
    np.testing.assert_array_equal(x.sum(-1), np.ones((2, 2)))


@pytest.mark.parametrize("tokens, size, match", [
    (np.array([0, 3]), 3, r"\[0, 3\)"), (np.array([-1]), 3, r"\[0, 3\)"), (np.array([0.5]), 3, "integer"),
    (np.array([0]), 0, "vocab_size")])
def test_one_hot_rejects_bad_arguments(tokens, size, match):
    with pytest.raises(ValueError, match=match):
        one_hot(tokens, size)


def test_delayed_recall_structure():
    tokens, y = delayed_recall(50, gap=7, n_symbols=4, n_noise=16, seed=3, onehot=False)
    assert tokens.shape == (50, 9) and y.shape == (50,) and tokens.dtype == y.dtype == np.int64
    np.testing.assert_array_equal(tokens[:, 0], y)
    assert y.min() >= 0 and y.max() < 4
    assert tokens[:, 1:-1].min() >= 4 and tokens[:, 1:-1].max() < 20
    assert np.all(tokens[:, -1] == 20) and recall_input_size(4, 16) == 21
    x, y2 = delayed_recall(50, gap=7, seed=3)
    assert x.shape == (50, 9, 21)
    np.testing.assert_array_equal(x.argmax(-1), tokens)
    np.testing.assert_array_equal(y, y2)


def test_delayed_recall_is_a_function_of_the_seed():
    a, b, c = (delayed_recall(20, 5, seed=s)[0] for s in (1, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_delayed_recall_gap_zero_and_all_symbols_appear():
    tokens, y = delayed_recall(400, gap=0, seed=0, onehot=False)
    assert tokens.shape == (400, 2)
    assert set(y.tolist()) == {0, 1, 2, 3}


@pytest.mark.parametrize("kwargs, match", [({"n": 0, "gap": 1}, "n must"), ({"n": 2, "gap": -1}, "gap"),
                                           ({"n": 2, "gap": 1, "n_symbols": 1}, "n_symbols"),
                                           ({"n": 2, "gap": 1, "n_noise": 0}, "n_noise"),
                                           ({"n": 2, "gap": 1.5}, "gap"), ({"n": 2, "gap": 1, "seed": -1}, "seed")])
def test_delayed_recall_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        delayed_recall(**kwargs)


def test_copy_task_structure():
    x, y = copy_task(10, gap=4, length=3, n_symbols=5, seed=1)
    assert x.shape == y.shape == (10, 10)
    np.testing.assert_array_equal(x[:, :3], y[:, -3:])           # the symbols come back at the end
    assert x[:, :3].min() >= 1 and x[:, :3].max() <= 5
    assert np.all(x[:, 3 + 4 - 1] == 6)                          # the "go" delimiter
    assert np.all(np.delete(x, [0, 1, 2, 6], axis=1) == 0)       # blanks elsewhere
    assert np.all(y[:, :7] == 0)
    np.testing.assert_array_equal(copy_task(10, 4, 3, 5, seed=1)[0], x)


@pytest.mark.parametrize("kwargs", [{"n": 1, "gap": 0}, {"n": 1, "gap": 2, "length": 0},
                                    {"n": 1, "gap": 2, "n_symbols": 0}])
def test_copy_task_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        copy_task(**kwargs)


def test_adding_task_structure():
    x, y = adding_task(200, 20, seed=4)
    assert x.shape == (200, 20, 2) and y.shape == (200,)
    markers = x[:, :, 1]
    np.testing.assert_array_equal(markers.sum(1), 2 * np.ones(200))
    assert np.all(markers[:, :10].sum(1) == 1) and np.all(markers[:, 10:].sum(1) == 1)
    np.testing.assert_allclose(y, (x[:, :, 0] * markers).sum(1))
    assert 0 <= x[:, :, 0].min() and x[:, :, 0].max() < 1
    assert abs(np.mean((y - 1.0) ** 2) - 1 / 6) < 0.05           # the constant-prediction baseline
    np.testing.assert_array_equal(adding_task(200, 20, seed=4)[0], x)


def test_adding_task_rejects_short_sequences():
    with pytest.raises(ValueError, match="length"):
        adding_task(3, 1)


def test_make_recurrent_classifier_shapes_and_memory_bias():
    import torch

    for kind in ["rnn", "lstm", "gru"]:
        model = make_recurrent_classifier(kind, 5, 6, 3, memory_bias=None if kind == "rnn" else 4.0)
        assert model(torch.zeros(2, 7, 5)).shape == (2, 3)
        if kind != "rnn":
            bias = model.rnn.bias_ih_l0 + model.rnn.bias_hh_l0
            assert torch.allclose(bias[6:12], torch.full((6,), 4.0))
    with pytest.raises(ValueError, match="memory_bias"):
        make_recurrent_classifier("rnn", 5, 6, 3, memory_bias=1.0)
    with pytest.raises(ValueError, match="kind"):
        make_recurrent_classifier("transformer", 5, 6, 3)


def test_train_recall_learns_a_short_gap_and_is_deterministic():
    a = train_recall("lstm", gap=2, hidden_size=16, steps=150, memory_bias=1.0, seed=0)
    b = train_recall("lstm", gap=2, hidden_size=16, steps=150, memory_bias=1.0, seed=0)
    assert a["accuracy"] >= 0.9
    assert a["losses"] == b["losses"]
    assert a["params"] == 4 * (21 * 16 + 16 * 16 + 2 * 16)
