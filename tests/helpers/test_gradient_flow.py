"""Unit tests of helpers.gradient_flow: the logic behind lecture 03's slider and plots, and the student
tools of a2's experiments (initial weights, the gradient-flow experiment)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from helpers.gradient_flow import (  # noqa: E402
    cliff_loss,
    flow_experiment,
    flow_inputs,
    gradient_norm_curve,
    gradient_norm_grid,
    gradient_norms,
    init_recurrent_params,
    matrix_with_spectral_norm,
    plot_gradient_norms,
    plot_input_scale_sweep,
    plot_tanh_derivative,
    rnn_backward_torch,
    rnn_forward_torch,
    state_gradient_norms,
    step_jacobian,
    survival_band,
    tanh_derivative,
)


def test_tanh_derivative_values_and_bound():
    a = np.linspace(-5, 5, 101)
    d = tanh_derivative(a)
    np.testing.assert_allclose(d, 1 / np.cosh(a) ** 2, rtol=1e-12)
    assert d.max() == 1.0 and np.all(d > 0) and np.all(d <= 1)
    assert tanh_derivative(0.0) == 1.0


def test_matrix_with_spectral_norm_has_equal_singular_values():
    W = matrix_with_spectral_norm(20, 1.3, seed=4)
    np.testing.assert_allclose(np.linalg.svd(W, compute_uv=False), 1.3 * np.ones(20), rtol=1e-10)
    np.testing.assert_allclose(np.abs(np.linalg.eigvals(W)), 1.3 * np.ones(20), rtol=1e-8)
    np.testing.assert_array_equal(W, matrix_with_spectral_norm(20, 1.3, seed=4))
    assert not np.array_equal(W, matrix_with_spectral_norm(20, 1.3, seed=5))


@pytest.mark.parametrize("args, match", [((0, 1.0), "H"), ((4, 0.0), "spectral_norm"), ((4, -1.0), "spectral_norm"),
                                         ((4, 1.0, -2), "seed"), ((2.5, 1.0), "H")])
def test_matrix_with_spectral_norm_rejects_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        matrix_with_spectral_norm(*args)


def test_step_jacobian_matches_autograd_and_bound():
    rng = np.random.default_rng(0)
    Wh, h, offset = rng.normal(size=(6, 6)), rng.uniform(-1, 1, 6), rng.normal(size=6)
    a = h @ Wh + offset
    J = step_jacobian(Wh, a)
    J_ref = torch.autograd.functional.jacobian(lambda v: torch.tanh(v @ torch.tensor(Wh) + torch.tensor(offset)),
                                               torch.tensor(h)).numpy()
    np.testing.assert_allclose(J, J_ref, atol=1e-12)
    assert np.linalg.norm(J, 2) <= tanh_derivative(a).max() * np.linalg.norm(Wh, 2) + 1e-12
    np.testing.assert_allclose(step_jacobian(Wh, a, "linear"), Wh.T)


@pytest.mark.parametrize("Wh, a, nl, match", [(np.ones((2, 3)), np.ones(2), "tanh", "square"),
                                              (np.ones((2, 2)), np.ones(3), "tanh", "shape"),
                                              (np.ones((2, 2)), np.ones(2), "relu", "nonlinearity")])
def test_step_jacobian_rejects_bad_arguments(Wh, a, nl, match):
    with pytest.raises(ValueError, match=match):
        step_jacobian(Wh, a, nl)


def test_gradient_norms_linear_orthogonal_is_exactly_geometric():
    for s in [0.5, 1.0, 1.2]:
        norms = gradient_norms(matrix_with_spectral_norm(16, s, seed=1), 10, "linear")
        assert norms.shape == (11,) and norms[-1] == 1.0
        np.testing.assert_allclose(norms, s ** np.arange(10, -1, -1), rtol=1e-10)


def test_gradient_norms_tanh_below_linear_and_matches_autograd():
    Wh = matrix_with_spectral_norm(8, 1.1, seed=2)
    tanh, linear = gradient_norms(Wh, 15, "tanh", seed=3), gradient_norms(Wh, 15, "linear", seed=3)
    assert np.all(tanh <= linear * (1 + 1e-12))
    # autograd oracle with the same inputs and unit vector as gradient_norms draws them
    rng = np.random.default_rng(3)
    xs, u = torch.tensor(rng.standard_normal((15, 8))), rng.standard_normal(8)
    u = torch.tensor(u / np.linalg.norm(u))
    hs, h = [], torch.zeros(8, dtype=torch.float64, requires_grad=True)
    hs.append(h)
    for t in range(15):
        h = torch.tanh(h @ torch.tensor(Wh) + xs[t])
        h.retain_grad()
        hs.append(h)
    (h * u).sum().backward()
    np.testing.assert_allclose(tanh, [float(s.grad.norm()) for s in hs], rtol=1e-10)


def test_gradient_norm_curve_is_the_slider_logic():
    curve = gradient_norm_curve(0.9, 30, "linear", H=10, seed=0)
    np.testing.assert_allclose(curve[0], 0.9 ** 30, rtol=1e-9)
    np.testing.assert_array_equal(curve, gradient_norms(matrix_with_spectral_norm(10, 0.9, 0), 30, "linear", seed=0))
    assert gradient_norm_curve(1.0, 50, "tanh")[0] < 1e-3            # tanh makes it vanish
    assert gradient_norm_curve(1.5, 50, "linear")[0] > 1e6           # explodes without tanh


def test_input_scale_zero_makes_tanh_the_linear_rnn():
    # h stays 0, so every tanh slope is tanh'(0) = 1: lecture 03's first "try it"
    np.testing.assert_array_equal(gradient_norm_curve(1.5, 40, "tanh", input_scale=0.0),
                                  gradient_norm_curve(1.5, 40, "linear", input_scale=0.0))
    # larger inputs saturate more units: at spectral norm 1.5 the gradient goes from exploding to vanishing
    assert gradient_norm_curve(1.5, 60, "tanh", input_scale=0.1)[0] > 10
    assert gradient_norm_curve(1.5, 60, "tanh", input_scale=1.0)[0] < 1e-3


def test_gradient_norm_grid_is_the_curve_on_a_grid():
    sigmas, scales = [0.8, 1.5, 2.2], [0.0, 0.5, 1.0]
    grid = gradient_norm_grid(sigmas, scales, T=25, H=12, seed=3)
    assert grid["norm0"].shape == grid["mean_slope"].shape == (3, 3)
    for i, scale in enumerate(scales):
        for j, sigma in enumerate(sigmas):
            curve = gradient_norm_curve(sigma, 25, "tanh", H=12, input_scale=scale, seed=3)
            assert grid["norm0"][i, j] == curve[0]
    np.testing.assert_array_equal(grid["mean_slope"][0], np.ones(3))    # no input: h = 0, slope 1
    assert np.all(grid["mean_slope"][1:] < 1) and np.all(grid["mean_slope"] > 0)
    assert np.all(np.diff(grid["mean_slope"][:, 1]) < 0)                # more input, flatter tanh
    for kwargs, match in [({"spectral_norms": []}, "spectral_norms"), ({"spectral_norms": [0.0]}, "spectral_norms"),
                          ({"input_scales": [-0.1]}, "input_scales"), ({"input_scales": [[1.0]]}, "input_scales"),
                          ({"T": 0}, "T"), ({"H": 0}, "H")]:
        with pytest.raises(ValueError, match=match):
            gradient_norm_grid(**{"spectral_norms": [1.0], "input_scales": [1.0], "T": 5, **kwargs})


def test_survival_band():
    sigmas = np.array([0.8, 0.9, 1.0, 1.1, 1.2])
    assert survival_band(sigmas, sigmas ** 60) == (1.0, 1.0)           # 0.9^60 = 2e-3 and 1.1^60 = 304 are out
    assert survival_band(sigmas, sigmas ** 60, factor=1000) == (0.9, 1.1)
    assert survival_band(sigmas, sigmas ** 60, factor=1e6) == (0.8, 1.2)
    assert survival_band(sigmas, np.full(5, np.inf)) is None
    with pytest.raises(ValueError, match="factor"):
        survival_band(sigmas, sigmas, factor=1.0)
    with pytest.raises(ValueError, match="same shape"):
        survival_band(sigmas, sigmas[:2])


@pytest.mark.parametrize("kwargs, match", [({"T": 0}, "T"), ({"nonlinearity": "relu"}, "nonlinearity"),
                                           ({"input_scale": -1.0}, "input_scale"),
                                           ({"input_scale": float("nan")}, "input_scale"), ({"H": 0}, "H")])
def test_gradient_norm_curve_rejects_bad_arguments(kwargs, match):
    args = {"spectral_norm": 1.0, "T": 5, **kwargs}
    with pytest.raises(ValueError, match=match):
        gradient_norm_curve(**args)


def test_cliff_loss_gradient_matches_finite_differences_and_has_a_cliff():
    for w in [0.8, 1.3, 2.2]:
        loss, grad = cliff_loss(w)
        numeric = (cliff_loss(w + 1e-6)[0] - cliff_loss(w - 1e-6)[0]) / 2e-6
        assert abs(grad - numeric) <= 1e-5 * max(1.0, abs(numeric))
    ws = np.linspace(0.5, 2.5, 40001)
    losses, grads = cliff_loss(ws)
    assert losses.shape == grads.shape == ws.shape
    assert losses[0] < 0.01 and losses[-1] > 2.0                     # low on one side, high on the other
    assert np.abs(grads).max() > 1e3                                 # a huge gradient on the wall
    with pytest.raises(ValueError, match="T"):
        cliff_loss(1.0, T=0)


def test_state_gradient_norms_rnn_and_lstm():
    torch.manual_seed(0)
    x = torch.randn(12, 3, 4)
    rnn = state_gradient_norms(torch.nn.RNNCell(4, 5), x)
    lstm = state_gradient_norms(torch.nn.LSTMCell(4, 5), x)
    gru = state_gradient_norms(torch.nn.GRUCell(4, 5), x[:, 0])
    assert set(rnn) == {"h"} and set(lstm) == {"h", "c"} and set(gru) == {"h"}
    assert rnn["h"].shape == lstm["c"].shape == gru["h"].shape == (12,)
    np.testing.assert_allclose(rnn["h"][-1], 1.0, rtol=1e-6)         # unit vector at the last step
    with pytest.raises(ValueError, match="cell"):
        state_gradient_norms(torch.nn.Linear(4, 5), x)
    with pytest.raises(ValueError, match="x must"):
        state_gradient_norms(torch.nn.RNNCell(4, 5), torch.randn(12, 3, 7))


def test_rnn_torch_layer_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    N, T, D, H = 2, 4, 3, 5
    x, h0 = rng.normal(size=(N, T, D)), rng.normal(size=(N, H))
    Wx, Wh, b = rng.normal(size=(D, H)), rng.normal(size=(H, H)), rng.normal(size=H)
    h, cache = rnn_forward_torch(x, h0, Wx, Wh, b)
    prev, expected = h0, []
    for t in range(T):
        prev = np.tanh(x[:, t] @ Wx + prev @ Wh + b)
        expected.append(prev)
    np.testing.assert_allclose(h, np.stack(expected, 1), rtol=1e-12)
    dh = rng.normal(size=h.shape)
    grads = rnn_backward_torch(dh, cache)
    assert [g.shape for g in grads] == [x.shape, h0.shape, Wx.shape, Wh.shape, b.shape]
    # db against a finite difference of sum(h * dh)
    eps, k = 1e-6, 2
    bp, bm = b.copy(), b.copy()
    bp[k] += eps
    bm[k] -= eps
    difference = rnn_forward_torch(x, h0, Wx, Wh, bp)[0] - rnn_forward_torch(x, h0, Wx, Wh, bm)[0]
    numeric = (difference * dh).sum() / (2 * eps)
    assert abs(grads[4][k] - numeric) < 1e-6
    with pytest.raises(ValueError, match="shapes"):
        rnn_forward_torch(x, h0, Wx.T, Wh, b)
    with pytest.raises(ValueError, match="dh"):
        rnn_backward_torch(dh[:, :2], rnn_forward_torch(x, h0, Wx, Wh, b)[1])


def test_plots_label_their_axes():
    ax = plot_gradient_norms({"a": np.array([1e-3, 1e-1, 1.0]), "b": np.array([np.inf, 0.0, 1.0])})
    assert ax.get_xlabel() == "time step t" and "log" in ax.get_ylabel() and ax.get_yscale() == "log"
    assert len(ax.get_lines()) == 2
    ax = plot_tanh_derivative()
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    with pytest.raises(ValueError, match="curves"):
        plot_gradient_norms({})
    with pytest.raises(ValueError, match="1-D"):
        plot_gradient_norms({"a": np.ones((2, 2))})
    norm0 = np.array([[1e-30, 1.0, 1e20], [np.inf, 1e-5, 3.0]])
    ax = plot_input_scale_sweep([0.5, 1.0, 2.0], norm0, [0.0, 1.0], T=60)
    low, high = ax.get_ylim()
    assert low < 1e-30 and high > 1e20                                  # every finite value is on the plot
    assert len(ax.get_lines()) == 2 and "spectral norm" in ax.get_xlabel() and "log" in ax.get_ylabel()
    assert len(ax.get_legend().get_texts()) == 3                        # two input scales and the band
    with pytest.raises(ValueError, match="norm0"):
        plot_input_scale_sweep([0.5, 1.0], norm0, [0.0, 1.0], T=60)
    plt.close("all")


def test_init_recurrent_params_shapes_and_errors():
    rnn, lstm, gru = (init_recurrent_params(k, 3, 4, seed=0) for k in ("rnn", "lstm", "gru"))
    assert [p.shape for p in rnn] == [(3, 4), (4, 4), (4,)]
    assert [p.shape for p in lstm] == [(3, 16), (4, 16), (16,)]
    assert [p.shape for p in gru] == [(3, 12), (4, 12), (12,), (12,)]
    assert all(np.all(np.abs(p) <= 0.5) for p in lstm + gru)           # uniform in +-1/sqrt(H)
    with_bias = init_recurrent_params("lstm", 3, 4, forget_bias=5.0)
    assert np.all(with_bias[2][4:8] == 5.0)                             # gate order i, f, g, o: b[H:2H]
    np.testing.assert_array_equal(np.delete(with_bias[2], np.s_[4:8]), np.delete(lstm[2], np.s_[4:8]))
    np.testing.assert_array_equal(init_recurrent_params("gru", 3, 4, seed=0)[3], gru[3])
    for kwargs, match in [({"kind": "cnn"}, "kind"), ({"kind": "gru", "forget_bias": 1.0}, "forget_bias"),
                          ({"kind": "lstm", "forget_bias": True}, "forget_bias"), ({"kind": "rnn", "D": 0}, "D"),
                          ({"kind": "rnn", "seed": -1}, "seed")]:
        with pytest.raises(ValueError, match=match):
            init_recurrent_params(**{"D": 3, "H": 4, **kwargs})


def test_flow_inputs_and_flow_experiment_normalise_by_the_last_step():
    x, h0 = flow_inputs(T=5, seed=2)
    assert x.shape == (8, 5, 6) and np.array_equal(h0, np.zeros((8, 16)))
    np.testing.assert_array_equal(x, flow_inputs(T=5, seed=2)[0])
    with pytest.raises(ValueError, match="T"):
        flow_inputs(T=0)
    seen = {}

    def measure(forward, backward, x, h0, params):  # records what each layer gets, returns known norms
        seen[len(params[2])] = (forward, [p.shape for p in params], params[2].copy())
        h, cache = forward(x, h0, *params) if forward is rnn_forward_torch else (None, None)
        return np.arange(1.0, x.shape[1] + 1) if h is None else np.full(x.shape[1], 2.0)

    curves = flow_experiment(measure, "lstm fwd", "lstm bwd", T=4, seed=1)
    np.testing.assert_allclose(curves["lstm"], [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(curves["rnn"], np.ones(4))
    forward, shapes, b = seen[64]
    assert forward == "lstm fwd" and shapes == [(6, 64), (16, 64), (64,)] and np.all(b[16:32] == 1.0)
    assert seen[16][0] is rnn_forward_torch and seen[16][1] == [(6, 16), (16, 16), (16,)]
    zero = flow_experiment(lambda *a: np.zeros(3), None, None, T=3)
    np.testing.assert_array_equal(zero["lstm"], np.zeros(3))           # a zero last step is returned as is
