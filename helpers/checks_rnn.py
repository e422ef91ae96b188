"""The graders' checks of assignment a1_rnn_numpy (vanilla RNN layers and a char-level LM).

Every ``check_*`` function builds random float64 inputs from a seed, runs the student's
function(s), and compares the result with an independent PyTorch oracle that has the same
weights copied in (``torch.nn.RNNCell`` / ``torch.nn.RNN`` / ``torch.nn.functional.embedding``
/ ``F.linear`` / ``F.cross_entropy``, gradients by autograd). A student's ``cache`` is opaque:
the checks only pass what the student's forward returned into the student's backward.
A check prints one "ok" line per output (its relative error), returns None (a test cell's
value would be read by nbgrader as a partial score) and raises AssertionError (with a hint for
the usual mistake) when an output is wrong; ``NotImplementedError`` propagates. The undecorated
function, ``check_x.__wrapped__``, returns the dict ``{output name: relative error}``.

The ``oracle_*`` functions return the trusted values themselves (NumPy float64), so the
self-check cells of the notebook can print relative errors.

Tolerances (DESIGN.md): float64 forward < 1e-7, backward vs oracle < 1e-6.
"""
import functools
from numbers import Integral, Real

import numpy as np

from .checks import check_error as assert_close
from ._validate import function as _callable, integer as _size, numeric_array as _float_array
from .torch_utils import to_numpy64 as _np, to_tensor64 as _t

__all__ = [
    "FORWARD_TOL", "BACKWARD_TOL", "PARAM_SHAPES",
    "oracle_rnn_step_forward", "oracle_rnn_forward", "oracle_word_embedding_forward",
    "oracle_temporal_affine_forward", "oracle_temporal_softmax_loss", "oracle_next_char_probs",
    "check_rnn_step_forward", "check_rnn_step_backward", "check_rnn_forward", "check_rnn_backward",
    "check_word_embedding_forward", "check_word_embedding_backward",
    "check_temporal_affine_forward", "check_temporal_affine_backward",
    "check_temporal_softmax_loss", "check_sample", "bigram_loss", "char_lm_val_loss", "check_char_lm",
]

FORWARD_TOL = 1e-7
BACKWARD_TOL = 1e-6

#: The parameters of the char-level LM: name -> shape in terms of V, D, H.
PARAM_SHAPES = {"W_embed": ("V", "D"), "Wx": ("D", "H"), "Wh": ("H", "H"), "b": ("H",),
                "W_out": ("H", "V"), "b_out": ("V",)}


# ----------------------------------------------------------------------------- small tools
def _prints_result(check):
    """Make a check print its results and return None; ``__wrapped__`` keeps the dict."""
    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        result = check(*args, **kwargs)
        name = check.__name__.replace("check_", "")
        for key, value in (result or {}).items():
            if key.startswith("tv@"):
                print(f"ok    {name}: first character at temperature {key[5:]}: total variation {value:.3f}")
            else:
                print(f"ok    {name}: {key} relative error {value:.1e}")

    return wrapper


def _returns_none(check):
    """Make a check (that prints its own summary) return None; ``__wrapped__`` keeps the dict."""
    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        check(*args, **kwargs)

    return wrapper


def _torch():
    import torch

    return torch


def _int_array(value, arg, ndim, high):
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.integer) or array.ndim != ndim:
        raise ValueError(f"{arg} must be a {ndim}-D integer array, got shape {array.shape} and dtype {array.dtype}")
    if array.size and (array.min() < 0 or array.max() >= high):
        raise ValueError(f"{arg} must hold ids in [0, {high - 1}]")
    return array.astype(np.int64)


def _tuple(result, n, name):
    """Unpack a student's return value that must be a tuple of ``n`` items."""
    if not isinstance(result, (tuple, list)) or len(result) != n:
        got = type(result).__name__ + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else "")
        raise AssertionError(f"{name}: expected a tuple of {n} values, got {got}.")
    return result


def _rng(seed):
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.default_rng(int(seed))


def _rnn_inputs(rng, N, T, D, H, scale=0.5):
    x = rng.normal(0, 1, (N, T, D)) if T else rng.normal(0, 1, (N, D))
    return (x, rng.normal(0, 1, (N, H)), rng.normal(0, scale, (D, H)), rng.normal(0, scale, (H, H)),
            rng.normal(0, scale, (H,)))


def _torch_rnn(Wx, Wh, b, cell=False):
    """torch.nn.RNNCell / RNN (tanh, batch_first) in float64 holding our weights."""
    torch = _torch()
    D, H = Wx.shape
    module = (torch.nn.RNNCell(D, H, nonlinearity="tanh") if cell
              else torch.nn.RNN(D, H, nonlinearity="tanh", batch_first=True)).double()
    suffix = "" if cell else "_l0"
    with torch.no_grad():
        getattr(module, "weight_ih" + suffix).copy_(_t(Wx.T))  # torch stores (H, D): W_ih x
        getattr(module, "weight_hh" + suffix).copy_(_t(Wh.T))
        getattr(module, "bias_ih" + suffix).copy_(_t(b))
        getattr(module, "bias_hh" + suffix).zero_()
    return module, suffix


# ----------------------------------------------------------------------------- oracles
def oracle_rnn_step_forward(x, prev_h, Wx, Wh, b):
    """next_h (N, H) of one vanilla RNN step, computed by torch.nn.RNNCell with our weights."""
    x, prev_h = _float_array(x, "x", 2), _float_array(prev_h, "prev_h", 2)
    Wx, Wh, b = _float_array(Wx, "Wx", 2), _float_array(Wh, "Wh", 2), _float_array(b, "b", 1)
    torch = _torch()
    cell, _ = _torch_rnn(Wx, Wh, b, cell=True)
    with torch.no_grad():
        return _np(cell(_t(x), _t(prev_h)))


def oracle_rnn_forward(x, h0, Wx, Wh, b):
    """h (N, T, H): every hidden state of a vanilla RNN over x (N, T, D), by torch.nn.RNN."""
    x, h0 = _float_array(x, "x", 3), _float_array(h0, "h0", 2)
    Wx, Wh, b = _float_array(Wx, "Wx", 2), _float_array(Wh, "Wh", 2), _float_array(b, "b", 1)
    torch = _torch()
    rnn, _ = _torch_rnn(Wx, Wh, b)
    with torch.no_grad():
        return _np(rnn(_t(x), _t(h0)[None])[0])


def oracle_word_embedding_forward(x, W):
    """out (N, T, D) = the rows of W (V, D) picked by the ids x (N, T), by F.embedding."""
    W = _float_array(W, "W", 2)
    x = _int_array(x, "x", 2, W.shape[0])
    torch = _torch()
    return _np(torch.nn.functional.embedding(torch.as_tensor(x), _t(W)))


def oracle_temporal_affine_forward(x, w, b):
    """out (N, T, M) = x (N, T, D) @ w (D, M) + b (M,), by F.linear."""
    x, w, b = _float_array(x, "x", 3), _float_array(w, "w", 2), _float_array(b, "b", 1)
    torch = _torch()
    return _np(torch.nn.functional.linear(_t(x), _t(w.T), _t(b)))


def oracle_temporal_softmax_loss(x, y, mask):
    """(loss, dx): softmax cross-entropy summed over unmasked steps, averaged over N.

    x (N, T, V) scores, y (N, T) int targets, mask (N, T) bool. By F.cross_entropy + autograd.
    """
    x = _float_array(x, "x", 3)
    y = _int_array(y, "y", 2, x.shape[2])
    mask = np.asarray(mask)
    if mask.shape != y.shape:
        raise ValueError(f"mask must have the shape of y {y.shape}, got {mask.shape}")
    torch = _torch()
    scores = _t(x, grad=True)
    N, T, V = x.shape
    per_step = torch.nn.functional.cross_entropy(scores.reshape(N * T, V), torch.as_tensor(y).reshape(-1),
                                                 reduction="none")
    loss = (per_step * _t(mask.astype(np.float64)).reshape(-1)).sum() / N
    loss.backward()
    return float(loss.detach()), _np(scores.grad)


def oracle_next_char_probs(params, prefix_ids, temperature=1.0):
    """Probabilities (V,) of the character after ``prefix_ids`` under a char-LM, by torch.

    params: dict with the arrays of ``PARAM_SHAPES``; prefix_ids: 1-D ids (L >= 1), h0 = 0;
    temperature > 0 divides the scores before the softmax.
    """
    temperature = float(temperature)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    scores = _char_lm_scores(params, np.asarray(prefix_ids, dtype=np.int64)[None])[0, -1]
    torch = _torch()
    return _np(torch.softmax(_t(scores) / temperature, dim=0))


# ----------------------------------------------------------------------------- layer checks
@_prints_result
def check_rnn_step_forward(rnn_step_forward, N=3, D=5, H=4, seed=0):
    """Student's ``rnn_step_forward(x, prev_h, Wx, Wh, b) -> (next_h, cache)`` vs nn.RNNCell."""
    _callable(rnn_step_forward, "rnn_step_forward")
    x, prev_h, Wx, Wh, b = _rnn_inputs(_rng(seed), _size(N, "N"), 0, _size(D, "D"), _size(H, "H"))
    next_h, _ = _tuple(rnn_step_forward(x.copy(), prev_h.copy(), Wx.copy(), Wh.copy(), b.copy()), 2,
                       "rnn_step_forward")
    expected = oracle_rnn_step_forward(x, prev_h, Wx, Wh, b)
    return {"next_h": assert_close("rnn_step_forward: next_h", next_h, expected, FORWARD_TOL,
                                   hint="next_h = tanh(x @ Wx + prev_h @ Wh + b); check the order of the "
                                        "matrix products (prev_h @ Wh, not Wh @ prev_h or Wh.T) and that b is "
                                        "inside the tanh.")}


@_prints_result
def check_rnn_step_backward(rnn_step_forward, rnn_step_backward, N=3, D=5, H=4, seed=0):
    """Student's ``rnn_step_backward(dnext_h, cache)`` vs autograd through nn.RNNCell."""
    _callable(rnn_step_forward, "rnn_step_forward")
    _callable(rnn_step_backward, "rnn_step_backward")
    rng = _rng(seed)
    x, prev_h, Wx, Wh, b = _rnn_inputs(rng, _size(N, "N"), 0, _size(D, "D"), _size(H, "H"))
    dnext_h = rng.normal(0, 1, (N, H))
    _, cache = _tuple(rnn_step_forward(x.copy(), prev_h.copy(), Wx.copy(), Wh.copy(), b.copy()), 2,
                      "rnn_step_forward")
    got = _tuple(rnn_step_backward(dnext_h.copy(), cache), 5, "rnn_step_backward")
    cell, _ = _torch_rnn(Wx, Wh, b, cell=True)
    tx, th = _t(x, grad=True), _t(prev_h, grad=True)
    (cell(tx, th) * _t(dnext_h)).sum().backward()
    expected = {"dx": _np(tx.grad), "dprev_h": _np(th.grad), "dWx": _np(cell.weight_ih.grad).T,
                "dWh": _np(cell.weight_hh.grad).T, "db": _np(cell.bias_ih.grad)}
    hints = {"dx": "dx = da @ Wx.T with da = dnext_h * (1 - next_h**2), the derivative of tanh at the output.",
             "dprev_h": "dprev_h = da @ Wh.T (the transpose of the weight used in the forward pass).",
             "dWx": "dWx = x.T @ da.", "dWh": "dWh = prev_h.T @ da.",
             "db": "db sums da over the batch axis: shape (H,)."}
    return {name: assert_close(f"rnn_step_backward: {name}", value, expected[name], BACKWARD_TOL, hint=hints[name])
            for name, value in zip(expected, got)}


@_prints_result
def check_rnn_forward(rnn_forward, N=2, T=4, D=5, H=3, seed=0):
    """Student's ``rnn_forward(x, h0, Wx, Wh, b) -> (h, cache)`` vs torch.nn.RNN."""
    _callable(rnn_forward, "rnn_forward")
    x, h0, Wx, Wh, b = _rnn_inputs(_rng(seed), _size(N, "N"), _size(T, "T"), _size(D, "D"), _size(H, "H"))
    h, _ = _tuple(rnn_forward(x.copy(), h0.copy(), Wx.copy(), Wh.copy(), b.copy()), 2, "rnn_forward")
    expected = oracle_rnn_forward(x, h0, Wx, Wh, b)
    return {"h": assert_close("rnn_forward: h", h, expected, FORWARD_TOL,
                              hint="h[:, t] must be the state AFTER reading x[:, t]; the first step uses h0 and "
                                   "every later step the previous output.")}


@_prints_result
def check_rnn_backward(rnn_forward, rnn_backward, N=2, T=4, D=5, H=3, seed=0):
    """Student's ``rnn_backward(dh, cache) -> (dx, dh0, dWx, dWh, db)`` vs autograd on nn.RNN."""
    _callable(rnn_forward, "rnn_forward")
    _callable(rnn_backward, "rnn_backward")
    rng = _rng(seed)
    x, h0, Wx, Wh, b = _rnn_inputs(rng, _size(N, "N"), _size(T, "T"), _size(D, "D"), _size(H, "H"))
    dh = rng.normal(0, 1, (N, T, H))
    _, cache = _tuple(rnn_forward(x.copy(), h0.copy(), Wx.copy(), Wh.copy(), b.copy()), 2, "rnn_forward")
    got = _tuple(rnn_backward(dh.copy(), cache), 5, "rnn_backward")
    rnn, _ = _torch_rnn(Wx, Wh, b)
    tx, th0 = _t(x, grad=True), _t(h0, grad=True)
    (rnn(tx, th0[None])[0] * _t(dh)).sum().backward()
    expected = {"dx": _np(tx.grad), "dh0": _np(th0.grad), "dWx": _np(rnn.weight_ih_l0.grad).T,
                "dWh": _np(rnn.weight_hh_l0.grad).T, "db": _np(rnn.bias_ih_l0.grad)}
    flow = ("at step t the upstream gradient is dh[:, t] PLUS the dprev_h coming back from step t+1 "
            "(added, never overwritten); ")
    hints = {"dx": flow + "dx[:, t] comes from step t's backward.",
             "dh0": flow + "dh0 is the dprev_h left after step 0.",
             "dWx": flow + "the shared weights get the SUM of their gradients over all steps.",
             "dWh": flow + "the shared weights get the SUM of their gradients over all steps.",
             "db": flow + "db is summed over all steps and the batch."}
    return {name: assert_close(f"rnn_backward: {name}", value, expected[name], BACKWARD_TOL, hint=hints[name])
            for name, value in zip(expected, got)}


def _embedding_inputs(rng, N, T, V, D, repeats=True):
    x = rng.integers(0, V, size=(N, T))
    if repeats and x.size > 1:
        x.flat[-1] = x.flat[0]  # at least one repeated id, so overwritten updates are caught
    return x, rng.normal(0, 1, (V, D))


@_prints_result
def check_word_embedding_forward(word_embedding_forward, N=2, T=4, V=5, D=3, seed=0):
    """Student's ``word_embedding_forward(x, W) -> (out, cache)`` vs F.embedding."""
    _callable(word_embedding_forward, "word_embedding_forward")
    x, W = _embedding_inputs(_rng(seed), _size(N, "N"), _size(T, "T"), _size(V, "V"), _size(D, "D"))
    out, _ = _tuple(word_embedding_forward(x.copy(), W.copy()), 2, "word_embedding_forward")
    return {"out": assert_close("word_embedding_forward: out", out, oracle_word_embedding_forward(x, W),
                                FORWARD_TOL, hint="out[n, t] is the row W[x[n, t]]; the result has shape (N, T, D).")}


@_prints_result
def check_word_embedding_backward(word_embedding_forward, word_embedding_backward, N=2, T=4, V=5, D=3, seed=0):
    """Student's ``word_embedding_backward(dout, cache) -> dW`` vs autograd through F.embedding.

    The ids always contain a repeat: every occurrence must add its gradient to the same row.
    """
    _callable(word_embedding_forward, "word_embedding_forward")
    _callable(word_embedding_backward, "word_embedding_backward")
    rng = _rng(seed)
    x, W = _embedding_inputs(rng, _size(N, "N"), _size(T, "T"), _size(V, "V"), _size(D, "D"))
    dout = rng.normal(0, 1, (N, T, D))
    _, cache = _tuple(word_embedding_forward(x.copy(), W.copy()), 2, "word_embedding_forward")
    dW = word_embedding_backward(dout.copy(), cache)
    torch = _torch()
    tW = _t(W, grad=True)
    (torch.nn.functional.embedding(torch.as_tensor(x), tW) * _t(dout)).sum().backward()
    return {"dW": assert_close("word_embedding_backward: dW", dW, _np(tW.grad), BACKWARD_TOL,
                               hint="an id that occurs several times must collect the SUM of its gradients; "
                                    "dW[x] += dout does not accumulate repeats (use np.add.at or a loop).")}


@_prints_result
def check_temporal_affine_forward(temporal_affine_forward, N=2, T=3, D=4, M=5, seed=0):
    """Student's ``temporal_affine_forward(x, w, b) -> (out, cache)`` vs F.linear."""
    _callable(temporal_affine_forward, "temporal_affine_forward")
    rng = _rng(seed)
    x = rng.normal(0, 1, (_size(N, "N"), _size(T, "T"), _size(D, "D")))
    w, b = rng.normal(0, 1, (D, _size(M, "M"))), rng.normal(0, 1, (M,))
    out, _ = _tuple(temporal_affine_forward(x.copy(), w.copy(), b.copy()), 2, "temporal_affine_forward")
    return {"out": assert_close("temporal_affine_forward: out", out, oracle_temporal_affine_forward(x, w, b),
                                FORWARD_TOL, hint="out[n, t] = x[n, t] @ w + b, shape (N, T, M).")}


@_prints_result
def check_temporal_affine_backward(temporal_affine_forward, temporal_affine_backward, N=2, T=3, D=4, M=5, seed=0):
    """Student's ``temporal_affine_backward(dout, cache) -> (dx, dw, db)`` vs autograd."""
    _callable(temporal_affine_forward, "temporal_affine_forward")
    _callable(temporal_affine_backward, "temporal_affine_backward")
    rng = _rng(seed)
    x = rng.normal(0, 1, (_size(N, "N"), _size(T, "T"), _size(D, "D")))
    w, b = rng.normal(0, 1, (D, _size(M, "M"))), rng.normal(0, 1, (M,))
    dout = rng.normal(0, 1, (N, T, M))
    _, cache = _tuple(temporal_affine_forward(x.copy(), w.copy(), b.copy()), 2, "temporal_affine_forward")
    got = _tuple(temporal_affine_backward(dout.copy(), cache), 3, "temporal_affine_backward")
    torch = _torch()
    tx, tw, tb = _t(x, grad=True), _t(w, grad=True), _t(b, grad=True)
    (torch.nn.functional.linear(tx, tw.T, tb) * _t(dout)).sum().backward()
    expected = {"dx": _np(tx.grad), "dw": _np(tw.grad), "db": _np(tb.grad)}
    hints = {"dx": "dx = dout @ w.T, shape (N, T, D).",
             "dw": "w is shared by every (n, t): dw sums x[n, t]^T dout[n, t] over both axes, shape (D, M).",
             "db": "db sums dout over the batch AND the time axis: shape (M,)."}
    return {name: assert_close(f"temporal_affine_backward: {name}", value, expected[name], BACKWARD_TOL,
                               hint=hints[name]) for name, value in zip(expected, got)}


@_prints_result
def check_temporal_softmax_loss(temporal_softmax_loss, N=3, T=4, V=5, seed=0, mask_p=0.3, scale=1.0):
    """Student's ``temporal_softmax_loss(x, y, mask) -> (loss, dx)`` vs F.cross_entropy + autograd.

    mask_p: share of masked-out (False) positions, in [0, 1]; scale: size of the scores
    (use e.g. 1000 to test numerical stability).
    """
    _callable(temporal_softmax_loss, "temporal_softmax_loss")
    if isinstance(mask_p, bool) or not isinstance(mask_p, Real) or not 0 <= mask_p <= 1:
        raise ValueError(f"mask_p must be a number in [0, 1], got {mask_p!r}")
    if isinstance(scale, bool) or not isinstance(scale, Real) or not scale > 0:
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    rng = _rng(seed)
    x = rng.normal(0, scale, (_size(N, "N"), _size(T, "T"), _size(V, "V")))
    y = rng.integers(0, V, size=(N, T))
    mask = rng.random((N, T)) >= mask_p
    loss, dx = _tuple(temporal_softmax_loss(x.copy(), y.copy(), mask.copy()), 2, "temporal_softmax_loss")
    expected_loss, expected_dx = oracle_temporal_softmax_loss(x, y, mask)
    hint = ("loss = -(1/N) * sum over unmasked (n, t) of log softmax(x[n, t])[y[n, t]]: masked steps add "
            "nothing (to the loss or to dx), the sum runs over time and the average over the batch N only; "
            "subtract the max score before exp for stability.")
    return {"loss": assert_close("temporal_softmax_loss: loss (a scalar)", loss, np.float64(expected_loss),
                                 FORWARD_TOL, hint=hint),
            "dx": assert_close("temporal_softmax_loss: dx", dx, expected_dx, BACKWARD_TOL, hint=hint)}


# ----------------------------------------------------------------------------- char-LM
def _check_params(params, V=None):
    """Validate a char-LM parameter dict; return (V, D, H) and float64 copies."""
    if not isinstance(params, dict):
        raise AssertionError(f"params must be a dict with keys {sorted(PARAM_SHAPES)}, got {type(params).__name__}")
    missing = sorted(set(PARAM_SHAPES) - set(params))
    if missing:
        raise AssertionError(f"params is missing {missing}; expected keys {sorted(PARAM_SHAPES)}")
    arrays = {k: np.asarray(params[k], dtype=np.float64) for k in PARAM_SHAPES}
    if arrays["W_embed"].ndim != 2 or arrays["Wx"].ndim != 2:
        raise AssertionError("params['W_embed'] must be (V, D) and params['Wx'] (D, H)")
    sizes = {"V": arrays["W_embed"].shape[0], "D": arrays["W_embed"].shape[1], "H": arrays["Wx"].shape[1]}
    if V is not None and sizes["V"] != V:
        raise AssertionError(f"params['W_embed'] has {sizes['V']} rows but the vocabulary has V={V} characters")
    for name, dims in PARAM_SHAPES.items():
        shape = tuple(sizes[d] for d in dims)
        if arrays[name].shape != shape:
            raise AssertionError(f"params[{name!r}] must have shape {shape} (= {dims}), got {arrays[name].shape}")
        if not np.all(np.isfinite(arrays[name])):
            raise AssertionError(f"params[{name!r}] contains NaN or inf: did training diverge?")
    return sizes["V"], sizes["D"], sizes["H"], arrays


def _char_lm_scores(params, x, h0=None):
    """Scores (N, T, V) of the char-LM on ids x (N, T) by torch (embedding -> nn.RNN -> linear)."""
    V, D, H, p = _check_params(params)
    x = _int_array(x, "x", 2, V)
    torch = _torch()
    rnn, _ = _torch_rnn(p["Wx"], p["Wh"], p["b"])
    h0 = np.zeros((x.shape[0], H)) if h0 is None else h0
    with torch.no_grad():
        emb = torch.nn.functional.embedding(torch.as_tensor(x), _t(p["W_embed"]))
        h, _ = rnn(emb, _t(h0)[None])
        return _np(torch.nn.functional.linear(h, _t(p["W_out"].T), _t(p["b_out"])))


def _val_pairs(val_ids, n_streams):
    """Cut val ids into n_streams contiguous streams: inputs x and next-char targets y, (S, L)."""
    val_ids = np.asarray(val_ids, dtype=np.int64)
    length = (len(val_ids) - 1) // n_streams
    if length < 1:
        raise ValueError(f"val_ids (length {len(val_ids)}) is too short for n_streams={n_streams}")
    x = np.stack([val_ids[s * length:(s + 1) * length] for s in range(n_streams)])
    y = np.stack([val_ids[s * length + 1:(s + 1) * length + 1] for s in range(n_streams)])
    return x, y


def char_lm_val_loss(params, val_ids, n_streams=50):
    """Mean cross-entropy (nats/char) of a char-LM on a validation sequence, computed by torch.

    The sequence is cut into ``n_streams`` contiguous streams, each read from h0 = 0 to its end
    (the state is carried through the whole stream). params: dict of ``PARAM_SHAPES``.
    """
    n_streams = _size(n_streams, "n_streams")
    x, y = _val_pairs(val_ids, n_streams)
    scores = _char_lm_scores(params, x)
    torch = _torch()
    return float(torch.nn.functional.cross_entropy(_t(scores).reshape(-1, scores.shape[-1]),
                                                   torch.as_tensor(y).reshape(-1)))


def bigram_loss(train_ids, val_ids, V, alpha=1.0, n_streams=50):
    """Validation loss (nats/char) of an add-``alpha`` smoothed bigram count model.

    P(b | a) = (count(a -> b in train) + alpha) / (count(a in train) + alpha * V), evaluated on
    the same (input, target) pairs as ``char_lm_val_loss(..., n_streams)``.
    """
    V = _size(V, "V")
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or not alpha > 0:
        raise ValueError(f"alpha must be a positive number, got {alpha!r}")
    train_ids = _int_array(train_ids, "train_ids", 1, V)
    counts = np.full((V, V), float(alpha))
    np.add.at(counts, (train_ids[:-1], train_ids[1:]), 1.0)
    log_p = np.log(counts / counts.sum(axis=1, keepdims=True))
    x, y = _val_pairs(_int_array(val_ids, "val_ids", 1, V), _size(n_streams, "n_streams"))
    return float(-log_p[x, y].mean())


@_returns_none
def check_char_lm(params, margin=0.3, val_fraction=0.1, corpus="shakespeare.txt"):
    """The trained char-LM must beat the bigram count model by ``margin`` nats/char on validation.

    The check rebuilds the data itself: ``load_corpus(corpus)``, ``CharVocab.from_text`` and
    ``train_val_split(..., val_fraction)`` from ``helpers.text``; params (dict of
    ``PARAM_SHAPES``) must use that vocabulary. Returns {"rnn": loss, "bigram": loss}.
    """
    from .text import CharVocab, load_corpus, train_val_split

    if isinstance(margin, bool) or not isinstance(margin, Real) or margin < 0:
        raise ValueError(f"margin must be a non-negative number, got {margin!r}")
    text = load_corpus(corpus)
    vocab = CharVocab.from_text(text)
    train_ids, val_ids = train_val_split(vocab.encode(text), val_fraction)
    _check_params(params, V=vocab.size)
    rnn = char_lm_val_loss(params, val_ids)
    bigram = bigram_loss(train_ids, val_ids, vocab.size)
    print(f"validation loss: char-RNN {rnn:.3f} nats/char, bigram {bigram:.3f} nats/char "
          f"(needed: <= {bigram - margin:.3f})")
    if not rnn <= bigram - margin:
        raise AssertionError(
            f"char-LM: validation loss {rnn:.3f} does not beat the bigram model ({bigram:.3f}) by {margin} "
            "nats/char. Train longer or with a better learning rate, and make sure the targets are the "
            "inputs shifted by one and that the hidden state is carried across chunks.")
    return {"rnn": rnn, "bigram": bigram}


def _tiny_char_lm(seed, V=5, D=3, H=6, scale=1.5):
    """A small random char-LM (vocabulary 'abcde'...) with clearly non-uniform predictions."""
    rng = _rng(seed)
    return {"W_embed": rng.normal(0, 1, (V, D)), "Wx": rng.normal(0, scale, (D, H)),
            "Wh": rng.normal(0, scale, (H, H)), "b": rng.normal(0, 0.5, (H,)),
            "W_out": rng.normal(0, scale, (H, V)), "b_out": rng.normal(0, 0.5, (V,))}


@_prints_result
def check_sample(sample, seed=0, prefix="abca", length=12, n_draws=1000, tv_tol=0.1):
    """Student's ``sample(params, vocab, prefix, length, temperature=1.0, rng=None) -> str``.

    Checks on a small random char-LM over the vocabulary 'abcde':
    1. the result is a str of ``length`` characters of the vocabulary;
    2. temperature=0 is greedy: equal to the argmax continuation computed by torch (the prefix
       is read from h0 = 0, every generated character is fed back in);
    3. the same ``rng`` seed gives the same text (the rng argument is used);
    4. the distribution of the first generated character at temperatures 1, 0.5 and 3 matches
       softmax(scores / temperature) within total-variation distance ``tv_tol`` over
       ``n_draws`` draws.
    """
    from .text import CharVocab

    _callable(sample, "sample")
    length, n_draws = _size(length, "length"), _size(n_draws, "n_draws", 10)
    if not isinstance(prefix, str) or not prefix or set(prefix) - set("abcde"):
        raise ValueError(f"prefix must be a non-empty string over 'abcde', got {prefix!r}")
    vocab = CharVocab("abcde")
    params = _tiny_char_lm(seed)
    name = "sample"
    text = sample({k: v.copy() for k, v in params.items()}, vocab, prefix, length, temperature=1.0,
                  rng=np.random.default_rng(seed))
    if not isinstance(text, str) or len(text) != length or set(text) - set(vocab.chars):
        raise AssertionError(f"{name}: expected a str of {length} characters from {vocab.chars} (the generated "
                             f"characters only, without the prefix), got {text!r}")
    again = sample(params, vocab, prefix, length, temperature=1.0, rng=np.random.default_rng(seed))
    if again != text:
        raise AssertionError(f"{name}: two calls with rng=np.random.default_rng({seed}) gave {text!r} and "
                             f"{again!r}; draw every random number from the rng argument.")
    # greedy reference, computed by torch one step at a time (re-reading the whole text)
    ids = list(vocab.encode(prefix))
    greedy = []
    for _ in range(length):
        next_id = int(np.argmax(oracle_next_char_probs(params, ids)))
        greedy.append(vocab.chars[next_id])
        ids.append(next_id)
    greedy = "".join(greedy)
    got = sample(params, vocab, prefix, length, temperature=0, rng=np.random.default_rng(seed))
    if got != greedy:
        raise AssertionError(f"{name}: with temperature=0 (greedy) expected {greedy!r}, got {got!r}. Read the "
                             "whole prefix from h0 = 0 first, then feed every generated character back in.")
    result = {}
    for temperature in (1.0, 0.5, 3.0):
        expected = oracle_next_char_probs(params, vocab.encode(prefix), temperature)
        rng = np.random.default_rng(seed + 1)
        draws = [sample(params, vocab, prefix, 1, temperature=temperature, rng=rng) for _ in range(n_draws)]
        freq = np.array([draws.count(c) for c in vocab.chars]) / n_draws
        tv = 0.5 * float(np.abs(freq - expected).sum())
        if not tv <= tv_tol:
            raise AssertionError(
                f"{name}: at temperature {temperature} the first character's frequencies "
                f"{np.round(freq, 3).tolist()} are far from softmax(scores / temperature) = "
                f"{np.round(expected, 3).tolist()} (total variation {tv:.3f} > {tv_tol}). Divide the scores by "
                "the temperature before the softmax and sample from it (e.g. rng.choice(V, p=p)).")
        result[f"tv@T={temperature}"] = tv
    return result
