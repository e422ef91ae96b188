"""Unit tests of the lecture-04 additions to helpers.charlm: LockedDropout, WeightDropLSTM, StackedCharLM."""
import numpy as np
import pytest
import torch

from helpers.charlm import LockedDropout, StackedCharLM, WeightDropLSTM, evaluate, train


def test_locked_dropout_uses_one_mask_for_every_step():
    torch.manual_seed(0)
    drop = LockedDropout(0.5).train()
    y = drop(torch.ones(4, 9, 16))
    kept = y > 0
    assert torch.equal(kept, kept[:, :1].expand_as(kept))            # same units at every step
    assert torch.allclose(y[kept], torch.full_like(y[kept], 2.0))    # survivors scaled by 1 / (1 - p)
    assert 0 < kept[:, 0].float().mean() < 1 and not torch.equal(kept[0, 0], kept[1, 0])  # one mask per sequence
    x = torch.randn(2, 3, 4)
    assert torch.equal(drop.eval()(x), x) and torch.equal(LockedDropout(0.0).train()(x), x)


def test_weight_drop_masks_w_hh_only_in_training():
    torch.manual_seed(0)
    layer = WeightDropLSTM(4, 3, weight_drop=0.5).train()
    x = torch.randn(2, 5, 4)
    out, (h, c) = layer(x)
    assert out.shape == (2, 5, 3) and h.shape == c.shape == (1, 2, 3)
    assert not torch.allclose(out, layer(x)[0])                      # a new mask per forward pass
    out.sum().backward()
    grad = layer.lstm.weight_hh_l0.grad
    assert 0.2 < (grad == 0).float().mean() < 0.8                    # dropped entries get no gradient
    assert (layer.lstm.weight_ih_l0.grad != 0).float().mean() > 0.9         # W_ih is not dropped
    layer.eval()
    assert torch.allclose(layer(x)[0], layer.lstm(x)[0])
    # weight_drop = 0 is a plain LSTM in training mode too
    plain = WeightDropLSTM(4, 3, weight_drop=0.0).train()
    assert torch.allclose(plain(x)[0], plain.lstm(x)[0])


def test_stacked_char_lm_shapes_tying_and_dropout_placement():
    torch.manual_seed(0)
    V, H = 11, 8
    x = torch.randint(V, (3, 6))
    for layers in (1, 2):
        model = StackedCharLM(V, hidden_size=H, num_layers=layers)
        scores, state = model(x)
        assert scores.shape == (3, 6, V) and len(state) == layers and state[0][0].shape == (1, 3, H)
        again, _ = model(x[:, 3:], model(x[:, :3])[1])                   # the state carries over
        assert torch.allclose(again, scores[:, 3:], atol=1e-6)
    tied = StackedCharLM(V, hidden_size=H, tie=True)
    assert tied.out.weight is tied.embedding.weight
    untied = StackedCharLM(V, hidden_size=H)
    assert sum(p.numel() for p in untied.parameters()) - sum(p.numel() for p in tied.parameters()) == V * H
    locked = StackedCharLM(V, hidden_size=H, num_layers=2, dropout=0.5, locked=True, weight_drop=0.5)
    assert isinstance(locked.drop, LockedDropout) and all(layer.weight_drop == 0.5 for layer in locked.layers)
    assert isinstance(StackedCharLM(V, dropout=0.5).drop, torch.nn.Dropout)
    locked.eval()
    assert torch.allclose(locked(x)[0], locked(x)[0])                   # deterministic in eval mode


def test_stacked_char_lm_trains_with_the_shared_loop():
    from helpers.charlm import char_lm_data

    data = char_lm_data(train_chars=6_000, val_chars=2_000)
    torch.manual_seed(0)
    model = StackedCharLM(data.vocab.size, hidden_size=32, num_layers=2, dropout=0.2, locked=True,
                          weight_drop=0.2, tie=True)
    history = train(model, data, steps=30, lr=1e-2, batch_size=8, seq_len=32, eval_every=30)
    assert history["val_loss"][-1] < history["val_loss"][0] - 0.8
    assert history["val_loss"][-1] == pytest.approx(evaluate(model, data.val_ids)["loss"])


@pytest.mark.parametrize("call, arg", [
    (lambda: LockedDropout(1.0), "p"), (lambda: LockedDropout(True), "p"),
    (lambda: LockedDropout(0.5)(torch.ones(2, 3)), "x"),
    (lambda: WeightDropLSTM(4, 3, weight_drop=-0.1), "weight_drop"),
    (lambda: WeightDropLSTM(0, 3), "input_size"),
    (lambda: StackedCharLM(0), "vocab_size"), (lambda: StackedCharLM(5, num_layers=0), "num_layers"),
    (lambda: StackedCharLM(5, dropout=1.0), "dropout"),
    (lambda: StackedCharLM(5)(torch.zeros(2, 3)), "x"),
])
def test_bad_arguments_name_the_argument(call, arg):
    with pytest.raises(ValueError, match=arg):
        call()


def test_plot_improvement_ladder_shows_every_rung_and_seed():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from helpers.charlm import plot_improvement_ladder

    run = {"eval_step": [0, 50, 100, 150], "val_loss": [4.3, 2.5, 2.0, 1.9]}
    ladder = {"rungs": [{"name": "a", "runs": [run, {**run, "val_loss": [4.3, 2.4, 2.1, 2.2]}]},
                        {"name": "b", "runs": [run, run]}], "data": {"ln_V": 4.29}}
    left, right = plot_improvement_ladder(ladder)
    assert len(left.collections) == 6                                  # mean lines, seed dots, lowest-loss rings
    assert [t.get_text() for t in left.get_xticklabels()] == ["0. a", "1. b"]
    low, high = left.get_ylim()
    assert low < 1.9 and high > 2.2                                    # every dot inside the limits
    assert len(right.lines) == 2 and list(right.lines[0].get_xdata()) == [100, 150]
    assert np.allclose(right.lines[0].get_ydata(), [2.05, 2.05])
    plt.close("all")
