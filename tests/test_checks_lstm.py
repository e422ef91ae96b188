"""Unit tests of helpers.checks_lstm: the a2 checks pass the reference solution (loaded from the
solution notebook's cells, so there is one copy of it) and fail wrong or blank code readably."""
from pathlib import Path

import nbformat
import numpy as np
import pytest

from helpers import checks_lstm as C

NOTEBOOK = Path(__file__).resolve().parent.parent / "solutions" / "a2_lstm_numpy" / "a2_lstm_numpy.ipynb"
CELLS = ["sigmoid", "lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward", "gru_step_forward",
         "gru_step_backward", "clip_grad_norm", "gradient_norms_through_time"]


def _reference():
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nbformat.read(NOTEBOOK, 4).cells}
    namespace = {"np": np}
    for gid in CELLS:
        exec(compile(cells[gid], gid, "exec"), namespace)
    return namespace


_REF = _reference()
(lstm_step_forward, lstm_step_backward, lstm_forward, lstm_backward, gru_step_forward, gru_step_backward,
 clip_grad_norm, gradient_norms_through_time) = (_REF[name] for name in CELLS[1:])


def blank(*args, **kwargs):
    raise NotImplementedError()


# ---------------------------------------------------------------- correct code passes (and checks return None)
def test_correct_lstm_passes_all_checks_including_edge_sizes():
    assert C.check_lstm_step_forward(lstm_step_forward) is None
    C.check_lstm_step_forward(lstm_step_forward, N=1, D=2, H=7, seed=3)
    assert C.check_lstm_step_backward(lstm_step_forward, lstm_step_backward) is None
    C.check_lstm_forward(lstm_forward, N=1, T=1, D=3, H=2, seed=1)
    C.check_lstm_backward(lstm_forward, lstm_backward)
    C.check_lstm_backward(lstm_forward, lstm_backward, N=1, T=1, D=3, H=2, seed=1)


def test_correct_gru_clip_and_experiments_pass():
    C.check_gru_step_forward(gru_step_forward)
    C.check_gru_step_backward(gru_step_forward, gru_step_backward, N=1, D=2, H=7, seed=1)
    C.check_clip_grad_norm(clip_grad_norm)
    C.check_clip_grad_norm(clip_grad_norm, seed=1, shapes=[(7,)], scale=0.5)
    C.check_gradient_norms_through_time(gradient_norms_through_time)
    C.check_gradient_norms_through_time(gradient_norms_through_time, T=1, seed=1)
    C.check_gradient_flow(gradient_norms_through_time, lstm_forward, lstm_backward)
    C.check_long_range(0.95, 0.3)


def test_oracles_agree_with_the_test_implementations():
    rng = np.random.default_rng(0)
    x, h, c = rng.normal(size=(2, 3)), rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    Wx, Wh, b = rng.normal(size=(3, 16)), rng.normal(size=(4, 16)), rng.normal(size=16)
    for got, expected in zip(lstm_step_forward(x, h, c, Wx, Wh, b)[:2], C.oracle_lstm_step_forward(x, h, c, Wx, Wh, b)):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    clipped, total = C.oracle_clip_grad_norm([np.ones(4)], 1.0)
    assert total == pytest.approx(2.0) and clipped[0] == pytest.approx(np.full(4, 0.5), rel=1e-5)


def test_torch_lstm_wrapper_matches_the_oracle():
    rng = np.random.default_rng(1)
    x, h0 = rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 4))
    params = C.init_recurrent_params("lstm", 3, 4, forget_bias=1.0, seed=0)
    h, cache = C.lstm_forward_torch(x, h0, *params)
    np.testing.assert_allclose(h, C.oracle_lstm_forward(x, h0, *params), rtol=1e-12)
    dh = rng.normal(size=h.shape)
    for got, expected in zip(C.lstm_backward_torch(dh, cache), C.oracle_lstm_backward(x, h0, *params, dh)):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_init_recurrent_params_shapes_and_errors():
    rnn, lstm, gru = (C.init_recurrent_params(k, 3, 4, seed=0) for k in ("rnn", "lstm", "gru"))
    assert [p.shape for p in rnn] == [(3, 4), (4, 4), (4,)]
    assert [p.shape for p in lstm] == [(3, 16), (4, 16), (16,)]
    assert [p.shape for p in gru] == [(3, 12), (4, 12), (12,), (12,)]
    assert np.all(np.abs(lstm[0]) <= 0.5)
    assert np.all(C.init_recurrent_params("lstm", 3, 4, forget_bias=5.0)[2][4:8] == 5.0)
    with pytest.raises(ValueError, match="kind"):
        C.init_recurrent_params("cnn", 3, 4)
    with pytest.raises(ValueError, match="forget_bias"):
        C.init_recurrent_params("gru", 3, 4, forget_bias=1.0)


# ---------------------------------------------------------------- blank and wrong code fails
@pytest.mark.parametrize("call", [
    lambda: C.check_lstm_step_forward(blank), lambda: C.check_lstm_step_backward(lstm_step_forward, blank),
    lambda: C.check_lstm_forward(blank), lambda: C.check_lstm_backward(lstm_forward, blank),
    lambda: C.check_gru_step_forward(blank), lambda: C.check_gru_step_backward(gru_step_forward, blank),
    lambda: C.check_clip_grad_norm(blank), lambda: C.check_gradient_norms_through_time(blank),
    lambda: C.check_gradient_flow(gradient_norms_through_time, blank, blank)])
def test_blank_functions_fail(call):
    with pytest.raises(NotImplementedError):
        call()


def test_wrong_gate_order_fails_with_a_hint():
    def swapped(x, h, c, Wx, Wh, b):
        H = h.shape[1]
        perm = np.r_[np.arange(H, 2 * H), np.arange(H), np.arange(2 * H, 4 * H)]  # f and i swapped
        return lstm_step_forward(x, h, c, Wx[:, perm], Wh[:, perm], b[perm])
    with pytest.raises(AssertionError, match="i, f, g, o"):
        C.check_lstm_step_forward(swapped)


def test_missing_forget_gate_in_dprev_c_fails():
    def bad(dh, dc, cache):
        dx, dph, dpc, *rest = lstm_step_backward(dh, dc, cache)
        return (dx, dph, dpc / cache[6], *rest)
    with pytest.raises(AssertionError, match="dprev_c"):
        C.check_lstm_step_backward(lstm_step_forward, bad)


def test_wrong_return_types_fail_readably():
    with pytest.raises(AssertionError, match="must return a tuple"):
        C.check_lstm_step_forward(lambda *a: lstm_step_forward(*a)[0])
    with pytest.raises(AssertionError, match="total norm"):
        C.check_clip_grad_norm(lambda grads, m: None)


def test_clip_that_changes_small_gradients_fails():
    def always(grads, max_norm):
        total = float(np.sqrt(sum((g ** 2).sum() for g in grads)))
        for g in grads:
            g *= max_norm / total
        return total
    with pytest.raises(AssertionError, match="below the threshold"):
        C.check_clip_grad_norm(always)


def test_clip_that_is_not_in_place_fails():
    def copy(grads, max_norm):
        total = float(np.sqrt(sum((g ** 2).sum() for g in grads)))
        grads = [g * min(1, max_norm / total) for g in grads]
        return total
    with pytest.raises(AssertionError, match="in place"):
        C.check_clip_grad_norm(copy)


def test_gradient_flow_fails_for_a_wrong_layer_and_long_range_thresholds():
    def leaky_backward(dh, cache):  # drops the cell path: the highway is gone
        N, T, H = dh.shape
        dnh, dxs, total = np.zeros((N, H)), [], None
        for t in reversed(range(T)):
            dx, dnh, _, *dw = lstm_step_backward(dh[:, t] + dnh, np.zeros((N, H)), cache[t])
            dxs.insert(0, dx)
            total = dw if total is None else [a + b for a, b in zip(total, dw)]
        return (np.stack(dxs, 1), dnh, *total)
    with pytest.raises(AssertionError, match="gradient flow"):
        C.check_gradient_flow(gradient_norms_through_time, lstm_forward, leaky_backward)
    with pytest.raises(AssertionError, match="below"):
        C.check_long_range(0.5, 0.25)
    with pytest.raises(AssertionError, match="lead"):
        C.check_long_range(0.95, 0.9)
    with pytest.raises(AssertionError, match="between 0 and 1"):
        C.check_long_range(True, 0.2)


def test_checks_reject_bad_sizes():
    with pytest.raises(ValueError, match="N must"):
        C.check_lstm_step_forward(lstm_step_forward, N=0)
    with pytest.raises(ValueError, match="must be a function"):
        C.check_lstm_forward(None)
