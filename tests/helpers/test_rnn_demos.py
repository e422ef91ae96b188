"""Unit tests of helpers.rnn_demos (the logic behind the demos and widgets of lectures 01-02)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from helpers import rnn_demos as demos  # noqa: E402


# ----------------------------------------------------------------------------- temperature
def test_softmax_with_temperature_values():
    scores = np.array([1.0, 2.0, 3.0])
    p1 = demos.softmax_with_temperature(scores, 1.0)
    assert np.allclose(p1, np.exp(scores) / np.exp(scores).sum())
    p_half = demos.softmax_with_temperature(scores, 0.5)
    assert np.allclose(p_half, np.exp(2 * scores) / np.exp(2 * scores).sum())
    assert p_half[2] > p1[2]                                     # sharper
    assert demos.softmax_with_temperature(scores, 100.0).max() < 0.34  # nearly uniform
    assert np.array_equal(demos.softmax_with_temperature(scores, 0), [0, 0, 1])
    assert np.allclose(demos.softmax_with_temperature([2.0, 5.0, 5.0], 0), [0, 0.5, 0.5])  # ties share


def test_softmax_with_temperature_is_stable_and_matches_torch():
    scores = np.array([1000.0, 999.0, -1000.0])
    p = demos.softmax_with_temperature(scores, 0.7)
    assert np.all(np.isfinite(p)) and np.isclose(p.sum(), 1)
    assert np.allclose(p, torch.softmax(torch.tensor(scores) / 0.7, 0).numpy())


@pytest.mark.parametrize("scores, temperature, match", [
    ([1.0], -0.1, "temperature"), ([1.0], float("nan"), "temperature"), ([1.0], "1", "temperature"),
    ([], 1.0, "scores"), ([[1.0]], 1.0, "scores"), ([np.inf], 1.0, "scores")])
def test_softmax_with_temperature_errors(scores, temperature, match):
    with pytest.raises(ValueError, match=match):
        demos.softmax_with_temperature(scores, temperature)


def test_entropy():
    assert demos.entropy([1.0, 0.0]) == 0.0
    assert f"{demos.entropy([1.0, 0.0]):.2f}" == "0.00"               # not "-0.00"
    assert np.isclose(demos.entropy(np.full(4, 0.25)), np.log(4))
    for bad in [[0.5, 0.6], [-0.5, 1.5], [[1.0]], []]:
        with pytest.raises(ValueError, match="p must"):
            demos.entropy(bad)


# ----------------------------------------------------------------------------- L01 arithmetic
def test_padding_fraction():
    assert demos.padding_fraction([5, 5, 5]) == 0.0
    assert np.isclose(demos.padding_fraction([1, 3]), 1 - 4 / 6)
    for bad in [[], [0, 3], [1.5, 2.0], [[1, 2]]]:
        with pytest.raises(ValueError, match="lengths"):
            demos.padding_fraction(np.array(bad))


def test_rnn_parameter_counts_match_torch():
    counts = demos.rnn_parameter_counts(D=7, H=5, T=12)
    rnn = torch.nn.RNN(7, 5)  # torch has two bias vectors; ours has one
    assert counts["shared"] == sum(p.numel() for p in rnn.parameters()) - 5
    assert counts["per_position"] == 12 * counts["shared"]
    with pytest.raises(ValueError, match="T"):
        demos.rnn_parameter_counts(3, 4, 0)
    with pytest.raises(ValueError, match="D"):
        demos.rnn_parameter_counts(2.0, 4, 3)


def test_score_table():
    scores = np.array([[0.0, 5.0, 0.0, 0.0], [0.0, 0.0, 0.0, 9.0]])
    table, correct = demos.score_table(scores, list("helo"), "he", "eo")
    assert correct == 2
    lines = table.splitlines()
    assert len(lines) == 3 and "predicted" in lines[0] and lines[1].endswith("yes") and "'o'" in lines[2]
    _, correct = demos.score_table(scores, list("helo"), "he", "el")
    assert correct == 1
    with pytest.raises(ValueError, match="scores"):
        demos.score_table(scores, list("hel"), "he", "eo")
    with pytest.raises(ValueError, match="length"):
        demos.score_table(scores, list("helo"), "h", "eo")


# ----------------------------------------------------------------------------- L02 memory
def test_saved_tensor_bytes_counts_each_storage_once():
    x = torch.randn(10, 20, requires_grad=True)
    saved, result = demos.saved_tensor_bytes(lambda: (x * x).sum())
    assert saved == 10 * 20 * 4                        # x is saved twice, but it is one block of 800 bytes
    assert demos.saved_tensor_bytes(lambda: (x * x).sum(), per="save")[0] == 2 * 10 * 20 * 4
    assert torch.is_tensor(result)
    # exp saves its result, a new (10, 20) block; x * x saves x: 800 + 800 bytes
    assert demos.saved_tensor_bytes(lambda: (x * x).exp().sum())[0] == 800 + 800
    # a saved view keeps its whole storage alive: x[:2] (160 bytes of values) holds all 800
    assert demos.saved_tensor_bytes(lambda: (x[:2] * x[:2]).sum())[0] == 800
    assert demos.saved_tensor_bytes(lambda: (x[:2] * x[:2]).sum(), per="save")[0] == 2 * 2 * 20 * 4
    assert demos.saved_tensor_bytes(lambda: (x.detach() * 2).sum())[0] == 0
    with pytest.raises(ValueError, match="fn"):
        demos.saved_tensor_bytes(3)
    with pytest.raises(ValueError, match="per"):
        demos.saved_tensor_bytes(lambda: x.sum(), per="tensor")


def test_bptt_saved_bytes_matches_a_hand_count():
    # N = 2, D = 3, H = 4, T = 5, float32 (4 bytes). What the graph of nn.RNN (CPU) keeps alive:
    #   the inputs      2*5*3 = 30 floats
    #   h_0             2*4   =  8   (saved to compute dW_hh at step 1)
    #   h_1 .. h_5      5*2*4 = 40
    #   W_hh            4*4   = 16   (saved at steps 2..5: one storage, counted once)
    #   the output      2*5*4 = 40   (the stacked (N, T, H) copy of the states, saved by the loss)
    # = 134 floats = 536 bytes.
    assert demos.bptt_saved_bytes(5, N=2, D=3, H=4) == 536
    # per save: inputs 30, h_0 8, tanh saves h_1..h_5 40, steps 2..5 save h_{t-1} 4*8 and W_hh 4*16,
    # output 40 = 214 floats = 856 bytes (W_hh counted 4 times, the states twice)
    assert demos.bptt_saved_bytes(5, N=2, D=3, H=4, per="save") == 856
    # chunks of 2 steps: inputs 12, h_0 8, h_1..h_2 16, W_hh 16, output 16 = 68 floats = 272 bytes
    assert demos.bptt_saved_bytes(5, chunk_len=2, N=2, D=3, H=4) == 272
    # one step: inputs 6, h_0 8, h_1 8, output 8 (W_hh not saved: h_0 needs no gradient) = 120 bytes
    assert demos.bptt_saved_bytes(1, N=2, D=3, H=4) == 120


def test_bptt_saved_bytes_linear_in_length_and_flat_when_truncated():
    full = [demos.bptt_saved_bytes(T, N=2, D=3, H=4) for T in (10, 20, 40)]
    step = 4 * (2 * 3 + 2 * 4 + 2 * 4)                                  # input, h_t and its output copy
    assert full[1] - full[0] == 10 * step and full[2] - full[1] == 20 * step   # exactly linear in T
    truncated = [demos.bptt_saved_bytes(T, chunk_len=10, N=2, D=3, H=4) for T in (10, 20, 40)]
    assert truncated[0] == truncated[1] == truncated[2] == full[0]
    assert demos.bptt_saved_bytes(25, chunk_len=10, N=2, D=3, H=4) == full[0]     # last chunk shorter
    with pytest.raises(ValueError, match="seq_len"):
        demos.bptt_saved_bytes(0)
    with pytest.raises(ValueError, match="chunk_len"):
        demos.bptt_saved_bytes(10, chunk_len=0)


def _toy_sweep():
    def runs(losses, updates):
        return [{"updates": updates, "val_loss": v, "val_curve": [[100, v + 1.0], [200, v]]} for v in losses]
    return {"settings": {"chunk_lens": [4, 16, 64], "budget_chars": 200},
            "memory_bytes": {"4": 2**20, "16": 4 * 2**20, "64": 16 * 2**20},
            "runs": {"4": runs([2.0, 2.2], 50), "16": runs([1.8, 1.9], 12), "64": runs([1.95, 2.05], 3)}}


def test_chunk_sweep_row():
    row = demos.chunk_sweep_row(_toy_sweep(), 16)
    assert row["k"] == 16 and row["memory_mib"] == 4.0 and row["updates"] == 12
    assert row["val_losses"] == [1.8, 1.9] and np.isclose(row["val_loss"], 1.85) and row["best_k"] == 16
    assert np.isclose(demos.chunk_sweep_row(_toy_sweep(), 64)["val_loss"], 2.0)
    for bad in (8, "16", True):
        with pytest.raises(ValueError, match="k must"):
            demos.chunk_sweep_row(_toy_sweep(), bad)
    with pytest.raises(ValueError, match="sweep"):
        demos.chunk_sweep_row({"runs": {}}, 16)


def test_plot_chunk_sweep():
    fig = demos.plot_chunk_sweep(_toy_sweep(), 64)
    assert len(fig.axes) == 3 and all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)
    assert [t.get_text() for t in fig.axes[2].get_legend().get_texts()] == ["k = 4", "k = 16", "k = 64"]
    assert fig.axes[0].get_ylim()[1] >= 16                      # nothing above the y-limit
    plt.close("all")


# ----------------------------------------------------------------------------- scheduled sampling
def test_inverse_sigmoid_schedule():
    assert np.isclose(demos.inverse_sigmoid_schedule(0, 100), 100 / 101)
    values = [demos.inverse_sigmoid_schedule(s, 100) for s in range(0, 3000, 100)]
    assert all(a > b for a, b in zip(values, values[1:]))                # decreasing
    assert values[-1] < 0.01
    assert demos.inverse_sigmoid_schedule(1e9, 10) < 1e-100
    with pytest.raises(ValueError, match="step"):
        demos.inverse_sigmoid_schedule(-1)
    with pytest.raises(ValueError, match="k"):
        demos.inverse_sigmoid_schedule(10, k=0.5)


def test_mix_in_predictions():
    inputs = np.zeros((50, 40), dtype=np.int64)
    preds = np.ones((50, 40), dtype=np.int64)
    rng = np.random.default_rng(0)
    mixed, replaced = demos.mix_in_predictions(inputs, preds, 0.3, rng)
    assert mixed.shape == inputs.shape and replaced.dtype == bool
    assert np.array_equal(mixed, replaced.astype(np.int64))
    assert not replaced[:, 0].any()                                      # the first input stays true
    assert abs(replaced[:, 1:].mean() - 0.3) < 0.03
    assert not demos.mix_in_predictions(inputs, preds, 0.0, rng)[1].any()
    assert demos.mix_in_predictions(inputs, preds, 1.0, rng)[1][:, 1:].all()
    again, _ = demos.mix_in_predictions(inputs, preds, 0.3, np.random.default_rng(0))
    assert np.array_equal(again, mixed)                                  # deterministic given the rng


@pytest.mark.parametrize("kwargs, match", [
    ({"p_model": 1.5}, "p_model"), ({"p_model": -0.1}, "p_model"), ({"rng": 0}, "rng"),
    ({"predictions": np.ones((2, 3), dtype=np.int64)}, "predictions"), ({"inputs": np.zeros((4, 5))}, "inputs")])
def test_mix_in_predictions_errors(kwargs, match):
    args = {"inputs": np.zeros((4, 5), dtype=np.int64), "predictions": np.ones((4, 5), dtype=np.int64),
            "p_model": 0.5, "rng": np.random.default_rng(0)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        demos.mix_in_predictions(**args)


# ----------------------------------------------------------------------------- plots
def test_plots_draw_labelled_figures():
    ax = demos.plot_distribution([0.2, 0.8], ["a", " "], "title")
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title() == "title"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "␣"]
    with pytest.raises(ValueError, match="labels"):
        demos.plot_distribution([0.2, 0.8], ["a"])
    ax = demos.plot_unrolled_graph(3)
    assert "T = 3" in ax.get_title()
    with pytest.raises(ValueError, match="T"):
        demos.plot_unrolled_graph(9)
    fig = demos.plot_task_shapes()
    assert len(fig.axes) == len(demos.TASK_SHAPES)
    plt.close("all")
