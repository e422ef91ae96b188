"""Unit tests of the lecture-04 additions to helpers.tasks: the input-gate bias, the initial-cell
statistics, the accuracy-against-gap figure and the logic of the forget-bias slider."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from helpers.tasks import (  # noqa: E402
    delayed_recall,
    final_cell_stats,
    forget_bias_view,
    make_recurrent_classifier,
    plot_recall_accuracy,
    train_recall,
)


def test_input_gate_bias_sets_gate_i_only():
    model = make_recurrent_classifier("lstm", 5, 6, 3, memory_bias=5.0, input_gate_bias=-3.0)
    bias = model.rnn.bias_ih_l0 + model.rnn.bias_hh_l0
    assert torch.allclose(bias[:6], torch.full((6,), -3.0)) and torch.allclose(bias[6:12], torch.full((6,), 5.0))
    default = make_recurrent_classifier("lstm", 5, 6, 3, memory_bias=5.0)
    assert torch.equal(default.rnn.bias_ih_l0[12:], model.rnn.bias_ih_l0[12:])  # g, o untouched
    for kind in ("rnn", "gru"):
        with pytest.raises(ValueError, match="input_gate_bias"):
            make_recurrent_classifier(kind, 5, 6, 3, input_gate_bias=-1.0)


def test_train_recall_without_input_gate_bias_is_unchanged():
    a = train_recall("lstm", gap=2, hidden_size=8, steps=5, memory_bias=1.0, seed=0)
    b = train_recall("lstm", gap=2, hidden_size=8, steps=5, memory_bias=1.0, seed=0, input_gate_bias=None)
    c = train_recall("lstm", gap=2, hidden_size=8, steps=5, memory_bias=1.0, seed=0, input_gate_bias=-3.0)
    assert a["losses"] == b["losses"] and a["losses"] != c["losses"]


def test_final_cell_stats_against_a_direct_computation():
    x, y = delayed_recall(64, gap=30, seed=3)
    model = make_recurrent_classifier("lstm", x.shape[2], 16, 4, memory_bias=5.0, seed=1)
    stats = final_cell_stats(model, x, y)
    xt = torch.from_numpy(x).float().requires_grad_(True)
    out, (_, c) = model.rnn(xt)
    c = c.detach()
    torch.nn.functional.cross_entropy(model.head(out[:, -1]), torch.from_numpy(y)).backward()
    slope = 1 - torch.tanh(c) ** 2
    grad = xt.grad.norm(dim=(0, 2))
    assert stats["mean_abs_c"] == pytest.approx(float(c.abs().mean()), rel=1e-5)
    assert stats["saturated"] == pytest.approx(float((slope < 0.1).float().mean()))
    assert stats["slope"] == pytest.approx(float(slope.mean()), rel=1e-5)
    assert stats["grad_first_over_last"] == pytest.approx(float(grad[0] / grad[-1]), rel=1e-4)
    # the cell fills up with distractor writes: longer gaps, larger |c_T|; small writes keep it small
    longer = final_cell_stats(model, *delayed_recall(64, gap=60, seed=3))
    small = final_cell_stats(make_recurrent_classifier("lstm", x.shape[2], 16, 4, memory_bias=5.0, seed=1,
                                                       input_gate_bias=-3.0), x, y)
    assert longer["mean_abs_c"] > stats["mean_abs_c"] > small["mean_abs_c"]
    with pytest.raises(ValueError, match="lstm"):
        final_cell_stats(make_recurrent_classifier("gru", x.shape[2], 16, 4), x, y)
    with pytest.raises(ValueError, match="x must"):
        final_cell_stats(model, x[0], y)


def _sweep():
    runs = {label: {str(b): {str(g): {"accuracy": [0.25 + 0.01 * b, 1.0 - g / 100],
                                      "init": {"saturated": round(g / 100 + shift, 3)}}
                             for g in (10, 40)} for b in (0.0, 5.0)}
            for label, shift in (("default", 0.0), ("bias -3", -0.05))}
    return {"gaps": [10, 40], "forget_biases": [0.0, 5.0], "input_gate_biases": ["default", "bias -3"], "runs": runs}


def test_forget_bias_view_selects_the_cached_runs():
    view = forget_bias_view(_sweep(), 5)
    assert view["gaps"] == [10, 40]
    assert view["forget_gate"] == pytest.approx(1 / (1 + np.exp(-5.0)))
    assert view["kept_over_gap"] == pytest.approx([view["forget_gate"] ** 10, view["forget_gate"] ** 40])
    np.testing.assert_allclose(view["curves"]["default"], [[0.3, 0.9], [0.3, 0.6]])
    assert view["saturated"]["bias -3"] == [0.05, 0.35]
    for bad in (2.0, "5", True):
        with pytest.raises(ValueError, match="forget_bias"):
            forget_bias_view(_sweep(), bad)


def test_plot_recall_accuracy_draws_dots_above_lines():
    curves = {"a": np.array([[1.0, 1.0, 0.5], [0.3, 0.2, 0.25]]), "b": np.ones((2, 2))}
    ax = plot_recall_accuracy([10, 40], curves, title="t", chance=0.25)
    assert len(ax.lines) == 3 and len(ax.collections) == 2         # 2 mean lines + chance, 2 dot sets
    dots = ax.collections[0].get_offsets()
    assert len(dots) == 6 and len(np.unique(np.round(dots[:, 0], 6))) == 6   # every seed at its own x
    assert min(c.get_zorder() for c in ax.collections) > max(line.get_zorder() for line in ax.lines)
    assert ax.get_ylim() == (0, 1.05) and "seeds" in ax.get_legend().get_texts()[0].get_text()
    with pytest.raises(ValueError, match="curves"):
        plot_recall_accuracy([10, 40], {"c": np.ones((3, 2))}, ax=ax)
    plt.close("all")
