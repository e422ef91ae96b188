"""The graders' checks of assignment a2_lstm_numpy (LSTM and GRU layers, gradient clipping and the
gradient-flow / long-range experiments).

Every ``check_*`` function builds random float64 inputs from a seed, runs the student's
function(s) and compares the result with an independent PyTorch oracle holding the same weights:
``torch.nn.LSTMCell`` / ``torch.nn.LSTM`` / ``torch.nn.GRUCell`` (gradients by autograd) and
``torch.nn.utils.clip_grad_norm_``. Weight layout: the NumPy layers compute
``x @ Wx + h @ Wh + b`` with Wx (D, G*H), Wh (H, G*H), so torch's ``weight_ih = Wx.T`` and
``weight_hh = Wh.T``; the NumPy LSTM bias ``b`` is torch's ``b_ih + b_hh`` (the checks split it
in two random halves to make the point), the GRU keeps ``bx = b_ih`` and ``bh = b_hh`` apart
because the reset gate multiplies ``h @ Wh_n + bh_n`` only. Gate order: LSTM i, f, g, o; GRU r, z, n.

A student's ``cache`` is opaque: the checks only pass what the student's forward returned into the
student's backward. A check returns None (nbgrader would read a number left as a test cell's value as a partial
score) and raises AssertionError with a hint when an output is wrong; ``NotImplementedError`` from a blank function propagates.
The ``oracle_*`` functions return the trusted values (NumPy float64) for the self-check cells.

Tolerances (DESIGN.md): float64 forward < 1e-7, backward vs oracle < 1e-6.
"""
from numbers import Real

import numpy as np

from .checks import assert_close
from ._validate import function as _callable, integer as _size, numeric_array as _array
from .torch_utils import to_numpy64 as _np, to_tensor64 as _t

FORWARD_TOL = 1e-7
BACKWARD_TOL = 1e-6
#: Accuracy the long-range experiment asks of the student's LSTM, and its lead over the RNN.
RECALL_MIN_ACCURACY = 0.9
RECALL_MIN_LEAD = 0.3
#: The LSTM's gradient must reach the first step at least this many times better than the RNN's.
FLOW_MIN_RATIO = 100.0

__all__ = [
    "FORWARD_TOL", "BACKWARD_TOL", "RECALL_MIN_ACCURACY", "RECALL_MIN_LEAD", "FLOW_MIN_RATIO",
    "init_recurrent_params", "lstm_forward_torch", "lstm_backward_torch",
    "oracle_lstm_step_forward", "oracle_lstm_step_backward", "oracle_lstm_forward", "oracle_lstm_backward",
    "oracle_gru_step_forward", "oracle_gru_step_backward", "oracle_clip_grad_norm",
    "check_lstm_step_forward", "check_lstm_step_backward", "check_lstm_forward", "check_lstm_backward",
    "check_gru_step_forward", "check_gru_step_backward", "check_clip_grad_norm",
    "check_gradient_norms_through_time", "flow_experiment", "check_gradient_flow", "check_long_range",
]

HINTS = {
    "lstm_forward": "the gates come in PyTorch's order i, f, g, o (columns [0:H], [H:2H], [2H:3H], [3H:4H]); "
                    "g uses tanh, i, f and o use sigmoid; next_c = f * prev_c + i * g, next_h = o * tanh(next_c).",
    "dx": "dx = da @ Wx.T, where da (N, 4H) is the gradient of the gate pre-activations.",
    "dprev_h": "dprev_h = da @ Wh.T; every gate's pre-activation depends on prev_h.",
    "dprev_c": "the cell path: dprev_c = (dnext_c + dnext_h * o * (1 - tanh(next_c)**2)) * f.",
    "dWx": "dWx = x.T @ da.",
    "dWh": "dWh = prev_h.T @ da.",
    "db": "db sums da over the batch.",
    "lstm_c_path": "the gradient reaching next_c has two parts: dnext_c and the one through "
                   "next_h = o * tanh(next_c), which needs the derivative 1 - tanh(next_c)**2.",
    "lstm_seq": "walk backwards in time, feed dh[:, t] + the dprev_h of step t+1 and the dprev_c of step t+1 "
                "into the step backward, and sum the weight gradients over time; c0 = 0 and h[:, t] is the "
                "state after reading x[:, t].",
    "gru_forward": "gates r, z, n in this order; r and z use sigmoid of (x Wx + bx + h Wh + bh); "
                   "n = tanh(x Wx_n + bx_n + r * (h Wh_n + bh_n)); next_h = (1 - z) * n + z * prev_h.",
    "gru_backward": "the reset gate multiplies (prev_h @ Wh_n + bh_n), so dbh_n and dWh_n get da_n * r, "
                    "while dbx_n and dWx_n get da_n; dprev_h also collects dnext_h * z directly.",
}


# ----------------------------------------------------------------------------- small tools
def _unpack(result, n, fname, names):
    """Check that a student's function returned an n-tuple; fail with a readable message."""
    if not isinstance(result, (tuple, list)) or len(result) != n:
        got = f"a {type(result).__name__}" + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else "")
        raise AssertionError(f"{fname} must return a tuple ({', '.join(names)}), got {got}.")
    return result


def _compare(prefix, names, got, expected, tol, hints):
    for name, g, e in zip(names, got, expected):
        assert_close(f"{prefix}: {name}", g, e, tol, hint=hints.get(name))


def _rng_arrays(seed, shapes, scale=1.0):
    rng = np.random.default_rng(seed)
    return [rng.normal(scale=scale, size=shape) for shape in shapes]


def _split_bias(b, seed):
    """Two random halves that add up to b: torch's b_ih and b_hh."""
    part = np.random.default_rng(seed + 7919).normal(size=b.shape)
    return b - part, part


def init_recurrent_params(kind, D, H, forget_bias=None, seed=0):
    """PyTorch-style initial weights (uniform in [-1/sqrt(H), 1/sqrt(H)]) in the course's layout.

    Inputs: kind "rnn" | "lstm" | "gru"; D, H sizes; forget_bias (LSTM only): value the forget-gate
    bias b[H:2H] starts at (None = uniform like the rest); seed (int)
    Returns: list of float64 arrays: rnn [Wx (D, H), Wh (H, H), b (H,)]; lstm [Wx (D, 4H), Wh (H, 4H),
    b (4H,)]; gru [Wx (D, 3H), Wh (H, 3H), bx (3H,), bh (3H,)]
    """
    gates = {"rnn": 1, "lstm": 4, "gru": 3}
    if kind not in gates:
        raise ValueError(f"kind must be one of {sorted(gates)}, got {kind!r}")
    D, H = _size(D, "D"), _size(H, "H")
    if forget_bias is not None and (kind != "lstm" or isinstance(forget_bias, bool) or not isinstance(forget_bias, Real)):
        raise ValueError(f"forget_bias must be None or a number, and only for kind='lstm'; got {forget_bias!r}")
    rng = np.random.default_rng(_size(seed, "seed", 0))
    k, G = 1.0 / np.sqrt(H), gates[kind] * H
    params = [rng.uniform(-k, k, (D, G)), rng.uniform(-k, k, (H, G)), rng.uniform(-k, k, G)]
    if kind == "gru":
        params.append(rng.uniform(-k, k, G))
    if forget_bias is not None:
        params[2][H:2 * H] = float(forget_bias)
    return params


# ----------------------------------------------------------------------------- torch oracles
def _load(params, values):
    """Copy NumPy arrays into torch parameters (without recording autograd history)."""
    import torch

    with torch.no_grad():
        for param, value in zip(params, values):
            param.copy_(_t(value))


def _lstm_cell(Wx, Wh, b, seed=0):
    import torch

    D, G = Wx.shape
    cell = torch.nn.LSTMCell(D, G // 4, dtype=torch.float64)
    _load((cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh), (Wx.T, Wh.T, *_split_bias(b, seed)))
    return cell


def _gru_cell(Wx, Wh, bx, bh):
    import torch

    D, G = Wx.shape
    cell = torch.nn.GRUCell(D, G // 3, dtype=torch.float64)
    _load((cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh), (Wx.T, Wh.T, bx, bh))
    return cell


def _lstm_layer(Wx, Wh, b, seed=0):
    import torch

    D, G = Wx.shape
    layer = torch.nn.LSTM(D, G // 4, batch_first=True, dtype=torch.float64)
    _load((layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0),
          (Wx.T, Wh.T, *_split_bias(b, seed)))
    return layer


def _check_lstm_weights(Wx, Wh, b):
    Wx, Wh, b = _array(Wx, "Wx", 2), _array(Wh, "Wh", 2), _array(b, "b", 1)
    H = Wh.shape[0]
    if Wh.shape != (H, 4 * H) or Wx.shape[1] != 4 * H or b.shape != (4 * H,):
        raise ValueError(f"LSTM weights must be Wx (D, 4H), Wh (H, 4H), b (4H,); got {Wx.shape}, {Wh.shape}, {b.shape}")
    return Wx, Wh, b


def oracle_lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """torch.nn.LSTMCell with the same weights. Returns (next_h, next_c), float64 (N, H) each."""
    Wx, Wh, b = _check_lstm_weights(Wx, Wh, b)
    h, c = _lstm_cell(Wx, Wh, b)(_t(_array(x, "x", 2)), (_t(_array(prev_h, "prev_h", 2)), _t(_array(prev_c, "prev_c", 2))))
    return _np(h), _np(c)


def oracle_lstm_step_backward(x, prev_h, prev_c, Wx, Wh, b, dnext_h, dnext_c):
    """Autograd gradients of sum(next_h * dnext_h + next_c * dnext_c) through torch.nn.LSTMCell.

    Returns (dx, dprev_h, dprev_c, dWx, dWh, db) in the NumPy layout.
    """
    import torch

    Wx, Wh, b = _check_lstm_weights(Wx, Wh, b)
    cell = _lstm_cell(Wx, Wh, b)
    xt, ht, ct = _t(_array(x, "x", 2), True), _t(_array(prev_h, "prev_h", 2), True), _t(_array(prev_c, "prev_c", 2), True)
    h, c = cell(xt, (ht, ct))
    loss = (h * _t(dnext_h)).sum() + (c * _t(dnext_c)).sum()
    grads = torch.autograd.grad(loss, (xt, ht, ct, cell.weight_ih, cell.weight_hh, cell.bias_ih))
    dx, dh, dc, dwi, dwh, dbias = (_np(g) for g in grads)
    return dx, dh, dc, dwi.T, dwh.T, dbias


def oracle_lstm_forward(x, h0, Wx, Wh, b):
    """torch.nn.LSTM (batch_first, c0 = 0) with the same weights. Returns h, float64 (N, T, H)."""
    import torch

    Wx, Wh, b = _check_lstm_weights(Wx, Wh, b)
    h0 = _t(_array(h0, "h0", 2))
    out, _ = _lstm_layer(Wx, Wh, b)(_t(_array(x, "x", 3)), (h0[None], torch.zeros_like(h0)[None]))
    return _np(out)


def oracle_lstm_backward(x, h0, Wx, Wh, b, dh):
    """Autograd gradients of sum(h * dh) through torch.nn.LSTM. Returns (dx, dh0, dWx, dWh, db)."""
    import torch

    Wx, Wh, b = _check_lstm_weights(Wx, Wh, b)
    layer = _lstm_layer(Wx, Wh, b)
    xt, h0t = _t(_array(x, "x", 3), True), _t(_array(h0, "h0", 2), True)
    out, _ = layer(xt, (h0t[None], torch.zeros_like(h0t)[None]))
    grads = torch.autograd.grad((out * _t(dh)).sum(), (xt, h0t, layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0))
    dx, dh0, dwi, dwh, dbias = (_np(g) for g in grads)
    return dx, dh0, dwi.T, dwh.T, dbias


def oracle_gru_step_forward(x, prev_h, Wx, Wh, bx, bh):
    """torch.nn.GRUCell with weight_ih = Wx.T, weight_hh = Wh.T, b_ih = bx, b_hh = bh. Returns next_h (N, H)."""
    cell = _gru_cell(_array(Wx, "Wx", 2), _array(Wh, "Wh", 2), _array(bx, "bx", 1), _array(bh, "bh", 1))
    return _np(cell(_t(_array(x, "x", 2)), _t(_array(prev_h, "prev_h", 2))))


def oracle_gru_step_backward(x, prev_h, Wx, Wh, bx, bh, dnext_h):
    """Autograd gradients of sum(next_h * dnext_h) through torch.nn.GRUCell.

    Returns (dx, dprev_h, dWx, dWh, dbx, dbh) in the NumPy layout.
    """
    import torch

    cell = _gru_cell(_array(Wx, "Wx", 2), _array(Wh, "Wh", 2), _array(bx, "bx", 1), _array(bh, "bh", 1))
    xt, ht = _t(_array(x, "x", 2), True), _t(_array(prev_h, "prev_h", 2), True)
    loss = (cell(xt, ht) * _t(dnext_h)).sum()
    grads = torch.autograd.grad(loss, (xt, ht, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh))
    dx, dh, dwi, dwh, dbi, dbh = (_np(g) for g in grads)
    return dx, dh, dwi.T, dwh.T, dbi, dbh


def oracle_clip_grad_norm(grads, max_norm):
    """torch.nn.utils.clip_grad_norm_ on copies of ``grads``.

    Returns (clipped copies as NumPy arrays, total norm before clipping as a float).
    """
    import torch

    tensors = [torch.nn.Parameter(_t(np.zeros_like(np.asarray(g, dtype=np.float64)))) for g in grads]
    for p, g in zip(tensors, grads):
        p.grad = _t(g)
    total = torch.nn.utils.clip_grad_norm_(tensors, max_norm)
    return [_np(p.grad) for p in tensors], float(total)


# ----------------------------------------------------------------------------- torch LSTM with the NumPy API
def lstm_forward_torch(x, h0, Wx, Wh, b):
    """torch.nn.LSTM (float64, c0 = 0) with the NumPy layer API of a2: returns (h (N, T, H), cache)."""
    import torch

    Wx, Wh, b = _check_lstm_weights(Wx, Wh, b)
    layer = _lstm_layer(Wx, Wh, b)
    xt, h0t = _t(_array(x, "x", 3), True), _t(_array(h0, "h0", 2), True)
    out, _ = layer(xt, (h0t[None], torch.zeros_like(h0t)[None]))
    return _np(out), (out, xt, h0t, layer)


def lstm_backward_torch(dh, cache):
    """Backward of ``lstm_forward_torch``: returns (dx, dh0, dWx, dWh, db) as NumPy float64."""
    import torch

    out, xt, h0t, layer = cache
    grads = torch.autograd.grad(out, (xt, h0t, layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0), _t(dh))
    dx, dh0, dwi, dwh, dbias = (_np(g) for g in grads)
    return dx, dh0, dwi.T, dwh.T, dbias


# ----------------------------------------------------------------------------- LSTM checks
def _lstm_case(N, D, H, seed):
    N, D, H = _size(N, "N"), _size(D, "D"), _size(H, "H")
    x, prev_h, prev_c = _rng_arrays(seed, [(N, D), (N, H), (N, H)])
    Wx, Wh, b = _rng_arrays(seed + 1, [(D, 4 * H), (H, 4 * H), (4 * H,)], scale=0.5)
    return x, prev_h, prev_c, Wx, Wh, b


def check_lstm_step_forward(lstm_step_forward, N=3, D=4, H=5, seed=0):
    """Compare (next_h, next_c) with torch.nn.LSTMCell (tolerance FORWARD_TOL)."""
    fn = _callable(lstm_step_forward, "lstm_step_forward")
    x, prev_h, prev_c, Wx, Wh, b = _lstm_case(N, D, H, seed)
    got = _unpack(fn(x.copy(), prev_h.copy(), prev_c.copy(), Wx.copy(), Wh.copy(), b.copy()), 3,
                  "lstm_step_forward", ["next_h", "next_c", "cache"])
    expected = oracle_lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)
    hints = {"next_h": HINTS["lstm_forward"], "next_c": HINTS["lstm_forward"]}
    _compare("lstm_step_forward", ["next_h", "next_c"], got[:2], expected, FORWARD_TOL, hints)


def check_lstm_step_backward(lstm_step_forward, lstm_step_backward, N=3, D=4, H=5, seed=0):
    """Compare the six gradients of lstm_step_backward with autograd through torch.nn.LSTMCell."""
    fwd = _callable(lstm_step_forward, "lstm_step_forward")
    bwd = _callable(lstm_step_backward, "lstm_step_backward")
    x, prev_h, prev_c, Wx, Wh, b = _lstm_case(N, D, H, seed)
    dnext_h, dnext_c = _rng_arrays(seed + 2, [(N, H), (N, H)])
    _, _, cache = _unpack(fwd(x.copy(), prev_h.copy(), prev_c.copy(), Wx.copy(), Wh.copy(), b.copy()), 3,
                          "lstm_step_forward", ["next_h", "next_c", "cache"])
    names = ["dx", "dprev_h", "dprev_c", "dWx", "dWh", "db"]
    got = _unpack(bwd(dnext_h.copy(), dnext_c.copy(), cache), 6, "lstm_step_backward", names)
    expected = oracle_lstm_step_backward(x, prev_h, prev_c, Wx, Wh, b, dnext_h, dnext_c)
    hints = {n: HINTS[n] + " " + HINTS["lstm_c_path"] for n in names}
    hints["dprev_c"] = HINTS["dprev_c"]
    _compare("lstm_step_backward", names, got, expected, BACKWARD_TOL, hints)


def _lstm_seq_case(N, T, D, H, seed):
    N, T, D, H = _size(N, "N"), _size(T, "T"), _size(D, "D"), _size(H, "H")
    x, h0 = _rng_arrays(seed, [(N, T, D), (N, H)])
    Wx, Wh, b = _rng_arrays(seed + 1, [(D, 4 * H), (H, 4 * H), (4 * H,)], scale=0.5)
    return x, h0, Wx, Wh, b


def check_lstm_forward(lstm_forward, N=2, T=4, D=3, H=5, seed=0):
    """Compare h (N, T, H) with torch.nn.LSTM, c0 = 0 (tolerance FORWARD_TOL)."""
    fn = _callable(lstm_forward, "lstm_forward")
    x, h0, Wx, Wh, b = _lstm_seq_case(N, T, D, H, seed)
    h, _ = _unpack(fn(x.copy(), h0.copy(), Wx.copy(), Wh.copy(), b.copy()), 2, "lstm_forward", ["h", "cache"])
    expected = oracle_lstm_forward(x, h0, Wx, Wh, b)
    _compare("lstm_forward", ["h"], [h], [expected], FORWARD_TOL,
                    {"h": HINTS["lstm_seq"] + " Check lstm_step_forward first."})


def check_lstm_backward(lstm_forward, lstm_backward, N=2, T=4, D=3, H=5, seed=0):
    """Compare (dx, dh0, dWx, dWh, db) with autograd through torch.nn.LSTM."""
    fwd = _callable(lstm_forward, "lstm_forward")
    bwd = _callable(lstm_backward, "lstm_backward")
    x, h0, Wx, Wh, b = _lstm_seq_case(N, T, D, H, seed)
    dh = _rng_arrays(seed + 2, [(N, T, H)])[0]
    _, cache = _unpack(fwd(x.copy(), h0.copy(), Wx.copy(), Wh.copy(), b.copy()), 2, "lstm_forward", ["h", "cache"])
    names = ["dx", "dh0", "dWx", "dWh", "db"]
    got = _unpack(bwd(dh.copy(), cache), 5, "lstm_backward", names)
    expected = oracle_lstm_backward(x, h0, Wx, Wh, b, dh)
    _compare("lstm_backward", names, got, expected, BACKWARD_TOL, {n: HINTS["lstm_seq"] for n in names})


# ----------------------------------------------------------------------------- GRU checks
def _gru_case(N, D, H, seed):
    N, D, H = _size(N, "N"), _size(D, "D"), _size(H, "H")
    x, prev_h = _rng_arrays(seed, [(N, D), (N, H)])
    Wx, Wh, bx, bh = _rng_arrays(seed + 1, [(D, 3 * H), (H, 3 * H), (3 * H,), (3 * H,)], scale=0.5)
    return x, prev_h, Wx, Wh, bx, bh


def check_gru_step_forward(gru_step_forward, N=3, D=4, H=5, seed=0):
    """Compare next_h with torch.nn.GRUCell (tolerance FORWARD_TOL)."""
    fn = _callable(gru_step_forward, "gru_step_forward")
    args = _gru_case(N, D, H, seed)
    next_h, _ = _unpack(fn(*(a.copy() for a in args)), 2, "gru_step_forward", ["next_h", "cache"])
    _compare("gru_step_forward", ["next_h"], [next_h], [oracle_gru_step_forward(*args)], FORWARD_TOL,
                    {"next_h": HINTS["gru_forward"]})


def check_gru_step_backward(gru_step_forward, gru_step_backward, N=3, D=4, H=5, seed=0):
    """Compare (dx, dprev_h, dWx, dWh, dbx, dbh) with autograd through torch.nn.GRUCell."""
    fwd = _callable(gru_step_forward, "gru_step_forward")
    bwd = _callable(gru_step_backward, "gru_step_backward")
    args = _gru_case(N, D, H, seed)
    dnext_h = _rng_arrays(seed + 2, [(args[0].shape[0], args[1].shape[1])])[0]
    _, cache = _unpack(fwd(*(a.copy() for a in args)), 2, "gru_step_forward", ["next_h", "cache"])
    names = ["dx", "dprev_h", "dWx", "dWh", "dbx", "dbh"]
    got = _unpack(bwd(dnext_h.copy(), cache), 6, "gru_step_backward", names)
    expected = oracle_gru_step_backward(*args, dnext_h)
    _compare("gru_step_backward", names, got, expected, BACKWARD_TOL, {n: HINTS["gru_backward"] for n in names})


# ----------------------------------------------------------------------------- clipping
CLIP_TOL = 1e-6


def check_clip_grad_norm(clip_grad_norm, seed=0, shapes=((3, 4), (5,), (2, 2, 2)), scale=3.0):
    """Check clip_grad_norm(grads, max_norm) -> total_norm against torch.nn.utils.clip_grad_norm_.

    Two cases from the same gradients: a threshold below their global norm (every array is scaled
    in place by max_norm / total_norm) and one above it (nothing may change). Both must return the
    global norm before clipping. Tolerance CLIP_TOL (torch adds 1e-6 to the norm it divides by).
    """
    fn = _callable(clip_grad_norm, "clip_grad_norm")
    grads = _rng_arrays(seed, [tuple(s) for s in shapes], scale=scale)
    total = float(np.sqrt(sum((g ** 2).sum() for g in grads)))
    for label, max_norm in (("above the threshold", 0.3 * total), ("below the threshold", 2.0 * total)):
        mine = [g.copy() for g in grads]
        expected, expected_total = oracle_clip_grad_norm(grads, max_norm)
        returned = fn(mine, max_norm)
        if returned is None or np.ndim(returned) != 0:
            raise AssertionError(f"clip_grad_norm ({label}): must return the total norm as a number, "
                                 f"got {type(returned).__name__}.")
        assert_close(
            f"clip_grad_norm ({label}): returned total_norm", float(returned), expected_total, CLIP_TOL,
            hint="return the global norm sqrt(sum of all squared entries of all arrays) measured BEFORE clipping.")
        for k, (g, e) in enumerate(zip(mine, expected)):
            hint = ("scale every array in place (g *= factor) by the same factor max_norm / total_norm, "
                    "where total_norm is the norm of all arrays together, not of each one."
                    if max_norm < total else "when the global norm is below max_norm the gradients must not change.")
            assert_close(f"clip_grad_norm ({label}): grads[{k}] after the call",
                                                          g, e, CLIP_TOL, hint=hint)


# ----------------------------------------------------------------------------- the experiments
def _flow_case(D=6, H=16, T=40, N=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, T, D))
    h0 = np.zeros((N, H))
    return x, h0


def check_gradient_norms_through_time(gradient_norms_through_time, T=12, seed=0):
    """Check the student's measuring function with torch layers (an LSTM and a vanilla RNN) whose
    NumPy-API wrappers are passed in as (forward, backward): the result must be ||dL/dx_t|| over
    (N, D) for t = 0..T-1, with L = sum(h[:, T-1]) (tolerance BACKWARD_TOL)."""
    from .gradient_flow import rnn_backward_torch, rnn_forward_torch

    fn = _callable(gradient_norms_through_time, "gradient_norms_through_time")
    T = _size(T, "T")
    x, h0 = _flow_case(D=3, H=4, T=T, N=2, seed=seed)
    for kind, forward, backward in (("lstm", lstm_forward_torch, lstm_backward_torch),
                                    ("rnn", rnn_forward_torch, rnn_backward_torch)):
        params = init_recurrent_params(kind, 3, 4, seed=seed)
        h, cache = forward(x, h0, *params)
        dh = np.zeros_like(h)
        dh[:, -1] = 1.0
        expected = np.linalg.norm(backward(dh, cache)[0], axis=(0, 2))
        got = fn(forward, backward, x.copy(), h0.copy(), [p.copy() for p in params])
        assert_close(
            f"gradient_norms_through_time ({kind} layer)", got, expected, BACKWARD_TOL,
            hint="upstream gradient: ones at the LAST step only (dh[:, -1] = 1), zeros elsewhere; "
                 "then the norm of dx[:, t] over the batch and the features, one number per step: shape (T,).")


def flow_experiment(gradient_norms_through_time, lstm_forward, lstm_backward, T=40, seed=0):
    """The gradient-flow experiment of a2: ||dL/dx_t|| for the student's LSTM (forget-gate bias 1)
    and the torch vanilla RNN, same sizes (D=6, H=16, N=8), PyTorch-style initialisation.

    Returns {"lstm": (T,), "rnn": (T,)}: the norms, divided by their value at the last step.
    """
    from .gradient_flow import rnn_backward_torch, rnn_forward_torch

    x, h0 = _flow_case(T=_size(T, "T"), seed=seed)
    D, H = x.shape[2], h0.shape[1]
    curves = {}
    for kind, fwd, bwd, fb in (("lstm", lstm_forward, lstm_backward, 1.0), ("rnn", rnn_forward_torch, rnn_backward_torch, None)):
        norms = np.asarray(gradient_norms_through_time(fwd, bwd, x.copy(), h0.copy(),
                                                       init_recurrent_params(kind, D, H, forget_bias=fb, seed=seed)),
                           dtype=np.float64)
        curves[kind] = norms / norms[-1] if norms.shape == (x.shape[1],) and norms[-1] > 0 else norms
    return curves


def check_gradient_flow(gradient_norms_through_time, lstm_forward, lstm_backward, T=40, seed=0):
    """Behaviour: with the student's LSTM, the gradient reaching x_0 from a loss at step T-1 is at
    least FLOW_MIN_RATIO times larger (relative to the last step) than through the vanilla RNN, and
    the LSTM curve matches torch.nn.LSTM's (tolerance BACKWARD_TOL)."""
    curves = flow_experiment(gradient_norms_through_time, lstm_forward, lstm_backward, T, seed)
    reference = flow_experiment(gradient_norms_through_time, lstm_forward_torch, lstm_backward_torch, T, seed)
    assert_close("gradient flow: your LSTM's ||dL/dx_t|| / ||dL/dx_T-1||", curves["lstm"], reference["lstm"],
                 BACKWARD_TOL, hint="your lstm_forward / lstm_backward pass their own tests first?")
    lstm_first, rnn_first = float(curves["lstm"][0]), float(curves["rnn"][0])
    if not lstm_first >= FLOW_MIN_RATIO * rnn_first:
        raise AssertionError(f"gradient flow: the LSTM's gradient at t=0 is {lstm_first:.2e} of its last-step value, "
                             f"the RNN's {rnn_first:.2e}; expected the LSTM's to be >= {FLOW_MIN_RATIO:g} times larger.")


def check_long_range(lstm_accuracy, rnn_accuracy):
    """Behaviour: the student's LSTM solves delayed recall (accuracy >= RECALL_MIN_ACCURACY) and beats
    the vanilla RNN by at least RECALL_MIN_LEAD."""
    for name, value in (("lstm_accuracy", lstm_accuracy), ("rnn_accuracy", rnn_accuracy)):
        if isinstance(value, bool) or not isinstance(value, (Real, np.floating)) or not 0.0 <= float(value) <= 1.0:
            raise AssertionError(f"{name} must be an accuracy between 0 and 1, got {value!r}.")
    lstm_accuracy, rnn_accuracy = float(lstm_accuracy), float(rnn_accuracy)
    if lstm_accuracy < RECALL_MIN_ACCURACY:
        raise AssertionError(f"long-range recall: your LSTM reached accuracy {lstm_accuracy:.3f}, below "
                             f"{RECALL_MIN_ACCURACY}. If your layers pass their tests, check that the training "
                             "cell ran unchanged.")
    if lstm_accuracy - rnn_accuracy < RECALL_MIN_LEAD:
        raise AssertionError(f"long-range recall: LSTM {lstm_accuracy:.3f} vs RNN {rnn_accuracy:.3f}; the LSTM "
                             f"should lead by at least {RECALL_MIN_LEAD}.")
