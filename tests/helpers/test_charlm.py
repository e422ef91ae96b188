"""Unit tests of helpers.charlm (the character LSTM language model of unit 6 and its training loop)."""
import copy
import math

import numpy as np
import pytest
import torch

from helpers.charlm import EVAL_SEQ_LEN, CharLSTM, char_lm_data, evaluate, random_windows, train
from helpers.text import load_corpus


@pytest.fixture(scope="module")
def data():
    return char_lm_data(train_chars=30_000, val_chars=4_000)


def _model(data, seed=0, **kwargs):
    torch.manual_seed(seed)
    return CharLSTM(data.vocab.size, **{"hidden_size": 32, **kwargs})


def _short(model, data, **kwargs):
    """A few cheap steps (small batches, evaluation on the 4,000 validation characters)."""
    return train(model, data, **{"steps": 6, "lr": 3e-3, "batch_size": 4, "seq_len": 16, "eval_every": 3, **kwargs})


def test_data_split_is_disjoint_contiguous_and_deterministic(data):
    text = load_corpus()
    assert data.train_ids.dtype == data.val_ids.dtype == np.int64
    assert data.train_ids.shape == (30_000,) and data.val_ids.shape == (4_000,)
    assert data.vocab.decode(data.train_ids) == text[:30_000]
    assert data.vocab.decode(data.val_ids) == text[30_000:34_000]
    assert data.vocab.size == len(set(text))
    again = char_lm_data(train_chars=30_000, val_chars=4_000)
    assert np.array_equal(again.train_ids, data.train_ids) and np.array_equal(again.val_ids, data.val_ids)


def test_model_shapes_and_state(data):
    model = _model(data, emb_size=8, hidden_size=16)
    x = torch.zeros(3, 5, dtype=torch.int64)
    scores, (h, c) = model(x)
    assert scores.shape == (3, 5, data.vocab.size) and scores.dtype == torch.float32
    assert h.shape == c.shape == (1, 3, 16)
    scores2, _ = model(x[:, :2])
    continued, _ = model(x[:, 2:], model(x[:, :2])[1])
    assert torch.allclose(torch.cat([scores2, continued], 1), scores, atol=1e-6)
    assert model.embedding.weight.shape == (data.vocab.size, 8)


def test_initial_loss_near_ln_v_and_far_above_with_a_large_read_out(data):
    ln_v = math.log(data.vocab.size)
    assert abs(evaluate(_model(data), data.val_ids)["loss"] - ln_v) < 0.15
    scaled = _model(data, out_init_scale=10.0)
    assert torch.all(scaled.out.bias == 0) and 8 < scaled.out.weight.std() < 12
    assert evaluate(scaled, data.val_ids)["loss"] > ln_v + 3


def test_random_windows_are_shifted_and_seeded():
    ids = np.arange(100)
    x, y = random_windows(ids, 4, 7, torch.Generator().manual_seed(1))
    assert x.shape == y.shape == (4, 7) and x.dtype == y.dtype == torch.int64
    assert torch.equal(y, x + 1) and torch.equal(x[:, 1:], x[:, :-1] + 1)
    assert int(x.min()) >= 0 and int(y.max()) <= 99
    x2, _ = random_windows(ids, 4, 7, torch.Generator().manual_seed(1))
    x3, _ = random_windows(ids, 4, 7, torch.Generator().manual_seed(2))
    assert torch.equal(x, x2) and not torch.equal(x, x3)
    x, y = random_windows(ids, 50, 99, torch.Generator())  # the only window that fits
    assert torch.equal(x[0], torch.arange(99)) and torch.equal(y[0], torch.arange(1, 100))


def test_evaluate_restores_mode_and_matches_a_direct_computation(data):
    model = _model(data, dropout=0.5)
    ids = data.val_ids[:1001]
    for training in (True, False):
        model.train(training)
        result = evaluate(model, ids, seq_len=100, batch_size=3)
        assert model.training is training
    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(ids[:1000]).view(10, 100)
        y = torch.from_numpy(ids[1:1001]).view(10, 100)
        scores = model(x)[0]
        loss = torch.nn.functional.cross_entropy(scores.flatten(0, 1), y.flatten()).item()
        acc = (scores.argmax(-1) == y).double().mean().item()
    assert result["loss"] == pytest.approx(loss, rel=1e-5) and result["accuracy"] == pytest.approx(acc)
    assert evaluate(model, ids, seq_len=100, max_chars=201)["loss"] == pytest.approx(
        evaluate(model, ids[:201], seq_len=100)["loss"])


def test_history_layout_and_hooks(data):
    model = _model(data)
    schedule = [0.01 * 0.5 ** k for k in range(7)]
    calls = []
    history = _short(model, data, lr_at=lambda step: schedule[step], after_step=lambda m, s: calls.append((m, s)))
    assert history["step"] == [1, 2, 3, 4, 5, 6]
    assert history["lr"] == schedule[1:]
    assert [s for _, s in calls] == [1, 2, 3, 4, 5, 6] and all(m is model for m, _ in calls)
    assert history["eval_step"] == [0, 3, 6]
    for key in ("train_eval_loss", "train_eval_acc", "val_loss", "val_acc"):
        assert len(history[key]) == 3 and all(math.isfinite(v) for v in history[key])
    assert len(history["train_loss"]) == 6 and history["diverged"] is None
    assert history["seconds"] > 0
    assert _short(_model(data), data, steps=7)["eval_step"] == [0, 3, 6, 7]  # the last step is always measured


def test_progress_bar_goes_to_stdout(data, capsys):
    history = _short(_model(data), data, steps=2, progress=True)
    out, err = capsys.readouterr()
    assert "training" in out and err == "" and history["step"] == [1, 2]  # a text bar, cleared at the end


def test_lr_at_sets_every_param_group(data, monkeypatch):
    seen = []
    original = torch.optim.AdamW.step

    def spy(self, *args, **kwargs):
        seen.append([group["lr"] for group in self.param_groups])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    _short(_model(data), data, steps=3, lr_at=lambda step: 1e-3 * step)
    assert seen == [[1e-3], [2e-3], [pytest.approx(3e-3)]]


def test_training_is_a_function_of_the_seed(data):
    model = _model(data, dropout=0.2)
    first = _short(copy.deepcopy(model), data)
    before = torch.get_rng_state()
    second = _short(copy.deepcopy(model), data)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's RNG is left alone
    other = _short(copy.deepcopy(model), data, seed=1)
    for key in first:
        if key != "seconds":
            assert first[key] == second[key], key
    assert first["train_loss"] != other["train_loss"]


def test_eval_model_is_what_the_evaluation_points_measure(data):
    model = _model(data)
    frozen = copy.deepcopy(model)
    history = _short(model, data, eval_model=lambda: frozen)
    expected = evaluate(frozen, data.val_ids)["loss"]
    assert history["val_loss"] == [expected] * 3
    assert history["train_eval_loss"] == [evaluate(frozen, data.train_ids[:4_000])["loss"]] * 3
    assert evaluate(model, data.val_ids)["loss"] != expected


def test_short_training_learns(data):
    model = _model(data, hidden_size=64)
    history = train(model, data, steps=60, lr=1e-2, batch_size=32, seq_len=64, eval_every=60)
    ln_v = math.log(data.vocab.size)
    assert history["val_loss"][0] > ln_v - 0.15
    assert history["val_loss"][-1] < ln_v - 1.0
    assert history["val_acc"][-1] > 0.2
    assert history["val_loss"][-1] == pytest.approx(evaluate(model, data.val_ids)["loss"])


@pytest.mark.parametrize("how", ["overflowing lr", "huge lr", "nan weight"])
def test_divergence_is_recorded_not_raised(data, how):
    model = _model(data)
    if how == "overflowing lr":
        history = _short(model, data, lr=1e37, max_norm=None)
    elif how == "huge lr":  # the loss grows huge but stays finite: diverge_above catches it
        history = _short(model, data, lr=1e6, diverge_above=2 * math.log(data.vocab.size))
        assert history["train_loss"][-1] > 2 * math.log(data.vocab.size)
    else:
        def poison(m, step):
            if step == 2:
                with torch.no_grad():
                    m.out.bias[0] = float("nan")
        history = _short(model, data, after_step=poison)
        assert history["diverged"] == 3
    step = history["diverged"]
    assert step is not None and history["step"][-1] == step and len(history["train_loss"]) == step
    assert all(math.isfinite(v) for v in history["train_loss"][:-1])
    assert how == "huge lr" or not math.isfinite(history["train_loss"][-1])


@pytest.mark.parametrize("call, arg", [
    (lambda d: CharLSTM(0), "vocab_size"),
    (lambda d: CharLSTM(5, hidden_size=2.5), "hidden_size"),
    (lambda d: CharLSTM(5, dropout=1.0), "dropout"),
    (lambda d: CharLSTM(5, out_init_scale=-1.0), "out_init_scale"),
    (lambda d: CharLSTM(5)(torch.zeros(2, 3)), "x"),
    (lambda d: char_lm_data(train_chars=0), "train_chars"),
    (lambda d: char_lm_data(val_chars=10**7), "val_chars"),
    (lambda d: random_windows(np.arange(5), 2, 5, torch.Generator()), "ids"),
    (lambda d: random_windows(np.arange(50), 0, 5, torch.Generator()), "batch_size"),
    (lambda d: random_windows(np.arange(50), 2, 5, 0), "generator"),
    (lambda d: evaluate(CharLSTM(5), np.arange(5) % 5, seq_len=0), "seq_len"),
    (lambda d: evaluate(CharLSTM(5), np.arange(EVAL_SEQ_LEN) % 5), "ids"),
    (lambda d: evaluate("model", d.val_ids), "model"),
    (lambda d: train(_model(d), d, steps=0, lr=1e-3), "steps"),
    (lambda d: train(_model(d), d, steps=1, lr=0), "lr"),
    (lambda d: train(_model(d), d, steps=1, lr=1e-3, weight_decay=-1), "weight_decay"),
    (lambda d: train(_model(d), d, steps=1, lr=1e-3, lr_at=0.1), "lr_at"),
    (lambda d: train(_model(d), d, steps=1, lr=1e-3, lr_at=lambda s: -1.0), "lr_at"),
    (lambda d: train(_model(d), d, steps=1, lr=1e-3, lr_at=lambda s: math.inf), "lr_at"),
    (lambda d: train(_model(d), d, steps=1, lr=1e-3, after_step="x"), "after_step"),
    (lambda d: train(_model(d), d, steps=1, lr=1e-3, eval_model=_model(d)), "eval_model"),
    (lambda d: train(_model(d), d, steps=1, lr=1e-3, eval_model=lambda: None), "eval_model"),
    (lambda d: train(_model(d), d, steps=1, lr=1e-3, max_norm=0), "max_norm"),
    (lambda d: train(_model(d), d, steps=1, lr=1e-3, eval_every=0), "eval_every"),
    (lambda d: train(_model(d), d, steps=1, lr=1e-3, diverge_above=float("nan")), "diverge_above"),
    (lambda d: train(_model(d), d, steps=1, lr=1e-3, seed=-1), "seed"),
    (lambda d: train(_model(d), (d.train_ids, d.val_ids), steps=1, lr=1e-3), "data"),
    (lambda d: train(_model(d), d, steps=1, lr=1e-3, seq_len=10**6), "data.train_ids"),
])
def test_bad_arguments_raise_value_errors_naming_them(data, call, arg):
    with pytest.raises(ValueError, match=arg.replace(".", r"\.")):
        call(data)
