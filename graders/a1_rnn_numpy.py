"""The grader of assignment a1_rnn_numpy: vanilla RNN layers and a character-level LM, in NumPy.

Every ``check_*`` builds float64 inputs from a seed, runs the student's function(s) through
``core.call`` (NumPy only: a call that runs any torch operation is an integrity failure) and
compares the result with an independent torch oracle holding the same weights (``nn.RNNCell``,
``nn.RNN``, ``F.embedding``, ``F.linear``, ``F.cross_entropy``; gradients by autograd). A student's
``cache`` is opaque: it is only passed from the student's forward into the student's backward.

``oracle_*`` return the trusted values (float64 NumPy) for the notebook's self-check cells, which
print them with ``report``: the char-LM's loss and gradients on one chunk come from torch autograd
(embedding -> nn.RNN -> linear -> cross-entropy), gradient clipping from
``torch.nn.utils.clip_grad_norm_``. ``bigram_loss`` and ``char_lm_val_loss`` score the trained char-LM.
"""
from numbers import Real

import numpy as np
import torch
import torch.nn.functional as F

from graders import core
from graders.core import INTEGRITY, TOL, IntegrityFailure, report, self_check
from graders.torch_layout import gradients, tensor64, to_numpy64, torch_recurrent
from helpers._validate import integer as _size
from helpers._validate import numeric_array as _float_array

__all__ = [
    "NUMPY_ONLY", "TOL", "PARAM_SHAPES", "report", "self_check",
    "oracle_rnn_step_forward", "oracle_rnn_forward", "oracle_word_embedding_forward",
    "oracle_temporal_affine_forward", "oracle_temporal_softmax_loss", "oracle_char_lm_loss",
    "oracle_clip_grad_norm", "oracle_next_char_probs",
    "check_rnn_step_forward", "check_rnn_step_backward", "check_rnn_forward", "check_rnn_backward",
    "check_word_embedding_forward", "check_word_embedding_backward",
    "check_temporal_affine_forward", "check_temporal_affine_backward",
    "check_temporal_softmax_loss", "check_char_lm_loss", "check_clip_grad_norm", "check_sample", "bigram_loss",
    "char_lm_val_loss", "check_char_lm",
]

NUMPY_ONLY = True  # part of the assignment's rules: no torch inside the student's functions

#: The parameters of the char-level LM: name -> shape in terms of V, D, H.
PARAM_SHAPES = {"W_embed": ("V", "D"), "Wx": ("D", "H"), "Wh": ("H", "H"), "b": ("H",),
                "W_out": ("H", "V"), "b_out": ("V",)}

_STEP_ARGS = "x (N, D), prev_h (N, H), Wx (D, H), Wh (H, H), b (H,)"
_SEQ_ARGS = "x (N, T, D), h0 (N, H), Wx (D, H), Wh (H, H), b (H,)"


# ---------------------------------------------------------------- small tools
def _rng(seed):
    """A NumPy Generator; ValueError naming ``seed`` unless it is an integer >= 0."""
    return np.random.default_rng(_size(seed, "seed", 0))


def _number(value, arg, low, high=np.inf, low_open=False):
    """``value`` as a float in [low, high] (or (low, high] with ``low_open``); ValueError naming ``arg``."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and value <= high
    ok = ok and (value > low if low_open else value >= low)
    if not ok:
        bounds = f"{'(' if low_open else '['}{low}, {high}]"
        raise ValueError(f"{arg} must be a number in {bounds}, got {value!r}")
    return float(value)


def _int_array(value, arg, ndim, high):
    """``value`` as an int64 array of ``ndim`` dims with ids in [0, high); ValueError naming ``arg``."""
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.integer) or array.ndim != ndim:
        raise ValueError(f"{arg} must be a {ndim}-D integer array, got shape {array.shape} and dtype {array.dtype}")
    if array.size and (array.min() < 0 or array.max() >= high):
        raise ValueError(f"{arg} must hold ids in [0, {high - 1}]")
    return array.astype(np.int64)


def _case(**sizes):
    """The case shown in a failure message: the sizes and the dtype of the inputs."""
    return {**sizes, "dtype": "float64"}


def _compare_all(function, got, expected, hints):
    """``compare`` every output of ``expected`` (dict) with the matching entry of the tuple ``got``."""
    return {key: core.compare(f"{function}: {key}", value, expected[key], TOL.backward, hints[key])
            for key, value in zip(expected, got, strict=True)}


def _rnn_inputs(rng, N, T, D, H, scale=0.5):
    """x ((N, D) when T is None, else (N, T, D)), h (N, H), Wx, Wh, b of a vanilla RNN."""
    x = rng.normal(0, 1, (N, D) if T is None else (N, T, D))
    return (x, rng.normal(0, 1, (N, H)), rng.normal(0, scale, (D, H)), rng.normal(0, scale, (H, H)),
            rng.normal(0, scale, (H,)))


def _copies(*arrays):
    """Fresh copies, so that a student's in-place change cannot reach the oracle's inputs."""
    return [np.array(a, copy=True) for a in arrays]


# ---------------------------------------------------------------- oracles
def oracle_rnn_step_forward(x, prev_h, Wx, Wh, b):
    """next_h (N, H) of one vanilla RNN step, computed by torch.nn.RNNCell with our weights.

    Inputs: x (N, D), prev_h (N, H), Wx (D, H), Wh (H, H), b (H,). ValueError for other ranks.
    """
    x, prev_h = _float_array(x, "x", 2), _float_array(prev_h, "prev_h", 2)
    cell = torch_recurrent("rnn", _float_array(Wx, "Wx", 2), _float_array(Wh, "Wh", 2), _float_array(b, "b", 1),
                           cell=True)
    with torch.no_grad():
        return to_numpy64(cell(tensor64(x), tensor64(prev_h)))


def oracle_rnn_forward(x, h0, Wx, Wh, b):
    """h (N, T, H): every hidden state of a vanilla RNN over x (N, T, D) from h0 (N, H), by torch.nn.RNN."""
    x, h0 = _float_array(x, "x", 3), _float_array(h0, "h0", 2)
    rnn = torch_recurrent("rnn", _float_array(Wx, "Wx", 2), _float_array(Wh, "Wh", 2), _float_array(b, "b", 1))
    with torch.no_grad():
        return to_numpy64(rnn(tensor64(x), tensor64(h0)[None])[0])


def oracle_word_embedding_forward(x, W):
    """out (N, T, D) = the rows of W (V, D) picked by the integer ids x (N, T), by F.embedding."""
    W = _float_array(W, "W", 2)
    x = _int_array(x, "x", 2, W.shape[0])
    return to_numpy64(F.embedding(torch.as_tensor(x), tensor64(W)))


def oracle_temporal_affine_forward(x, w, b):
    """out (N, T, M) = x (N, T, D) @ w (D, M) + b (M,), by F.linear."""
    x, w, b = _float_array(x, "x", 3), _float_array(w, "w", 2), _float_array(b, "b", 1)
    return to_numpy64(F.linear(tensor64(x), tensor64(w.T), tensor64(b)))


def oracle_temporal_softmax_loss(x, y, mask):
    """(loss, dx): softmax cross-entropy summed over the unmasked steps, averaged over N.

    x (N, T, V) scores, y (N, T) int targets in [0, V), mask (N, T) bool. By F.cross_entropy +
    autograd. Returns a float and dx (N, T, V). ValueError for mismatched shapes or ids.
    """
    x = _float_array(x, "x", 3)
    y = _int_array(y, "y", 2, x.shape[2])
    mask = np.asarray(mask)
    if mask.shape != y.shape or mask.dtype != bool:
        raise ValueError(f"mask must be a bool array of the shape of y {y.shape}, got {mask.dtype} {mask.shape}")
    scores = tensor64(x, grad=True)
    N, T, V = x.shape
    per_step = F.cross_entropy(scores.reshape(N * T, V), torch.as_tensor(y).reshape(-1), reduction="none")
    loss = (per_step * tensor64(mask).reshape(-1)).sum() / N
    loss.backward()
    return float(loss.detach()), to_numpy64(scores.grad)


def oracle_next_char_probs(params, prefix_ids, temperature=1.0):
    """Probabilities (V,) of the character after ``prefix_ids`` under a char-LM, by torch.

    params: dict with the arrays of ``PARAM_SHAPES``; prefix_ids: 1-D ids (L >= 1), read from
    h0 = 0; temperature > 0 divides the scores before the softmax. ValueError for a bad temperature.
    """
    temperature = _number(temperature, "temperature", 0, low_open=True)
    scores = _char_lm_scores(params, np.asarray(prefix_ids, dtype=np.int64)[None])[0, -1]
    return to_numpy64(torch.softmax(tensor64(scores) / temperature, dim=0))


# ---------------------------------------------------------------- the RNN layers
@core.check
def check_rnn_step_forward(rnn_step_forward, N=3, D=5, H=4, seed=0):
    """Student's ``rnn_step_forward(x, prev_h, Wx, Wh, b) -> (next_h, cache)`` vs nn.RNNCell.

    N, D, H: sizes (integers >= 1); seed: integer >= 0. ValueError naming a bad argument.
    """
    x, prev_h, Wx, Wh, b = _rnn_inputs(_rng(seed), _size(N, "N"), None, _size(D, "D"), _size(H, "H"))
    result = core.call(rnn_step_forward, *_copies(x, prev_h, Wx, Wh, b), name="rnn_step_forward",
                       case=_case(N=N, D=D, H=H), numpy_only=NUMPY_ONLY,
                       hint=f"the inputs are {_STEP_ARGS}; return (next_h, cache).")
    next_h, _ = core.unpack(result, 2, "rnn_step_forward", ("next_h", "cache"))
    expected = oracle_rnn_step_forward(x, prev_h, Wx, Wh, b)
    return {"next_h": core.compare(
        "rnn_step_forward: next_h", next_h, expected, TOL.forward,
        hint="next_h = tanh(x @ Wx + prev_h @ Wh + b); check the order of the matrix products (prev_h @ Wh, "
             "not Wh @ prev_h or Wh.T) and that b is inside the tanh.")}


@core.check
def check_rnn_step_backward(rnn_step_forward, rnn_step_backward, N=3, D=5, H=4, seed=0):
    """Student's ``rnn_step_backward(dnext_h, cache) -> (dx, dprev_h, dWx, dWh, db)`` vs autograd (nn.RNNCell)."""
    rng = _rng(seed)
    x, prev_h, Wx, Wh, b = _rnn_inputs(rng, _size(N, "N"), None, _size(D, "D"), _size(H, "H"))
    dnext_h = rng.normal(0, 1, (N, H))
    case = _case(N=N, D=D, H=H)
    result = core.call(rnn_step_forward, *_copies(x, prev_h, Wx, Wh, b), name="rnn_step_forward", case=case,
                       numpy_only=NUMPY_ONLY, hint=f"the inputs are {_STEP_ARGS}; return (next_h, cache).")
    _, cache = core.unpack(result, 2, "rnn_step_forward", ("next_h", "cache"))
    got = core.unpack(core.call(rnn_step_backward, dnext_h.copy(), cache, name="rnn_step_backward", case=case,
                                numpy_only=NUMPY_ONLY, hint="dnext_h is (N, H); unpack what your forward cached."),
                      5, "rnn_step_backward", ("dx", "dprev_h", "dWx", "dWh", "db"))
    cell = torch_recurrent("rnn", Wx, Wh, b, cell=True)
    tx, th = tensor64(x, grad=True), tensor64(prev_h, grad=True)
    (cell(tx, th) * tensor64(dnext_h)).sum().backward()
    expected = {"dx": to_numpy64(tx.grad), "dprev_h": to_numpy64(th.grad), **gradients(cell)}
    hints = {"dx": "dx = da @ Wx.T with da = dnext_h * (1 - next_h**2), the derivative of tanh at the output.",
             "dprev_h": "dprev_h = da @ Wh.T (the transpose of the weight used in the forward pass).",
             "dWx": "dWx = x.T @ da.", "dWh": "dWh = prev_h.T @ da.",
             "db": "db sums da over the batch axis: shape (H,)."}
    return _compare_all("rnn_step_backward", got, expected, hints)


@core.check
def check_rnn_forward(rnn_forward, N=2, T=4, D=5, H=3, seed=0):
    """Student's ``rnn_forward(x, h0, Wx, Wh, b) -> (h, cache)`` vs torch.nn.RNN."""
    x, h0, Wx, Wh, b = _rnn_inputs(_rng(seed), _size(N, "N"), _size(T, "T"), _size(D, "D"), _size(H, "H"))
    result = core.call(rnn_forward, *_copies(x, h0, Wx, Wh, b), name="rnn_forward", case=_case(N=N, T=T, D=D, H=H),
                       numpy_only=NUMPY_ONLY, hint=f"the inputs are {_SEQ_ARGS}; return (h, cache).")
    h, _ = core.unpack(result, 2, "rnn_forward", ("h", "cache"))
    return {"h": core.compare(
        "rnn_forward: h", h, oracle_rnn_forward(x, h0, Wx, Wh, b), TOL.forward,
        hint="h[:, t] must be the state AFTER reading x[:, t]; the first step uses h0 and every later step the "
             "previous output.")}


@core.check
def check_rnn_backward(rnn_forward, rnn_backward, N=2, T=4, D=5, H=3, seed=0):
    """Student's ``rnn_backward(dh, cache) -> (dx, dh0, dWx, dWh, db)`` vs autograd on nn.RNN."""
    rng = _rng(seed)
    x, h0, Wx, Wh, b = _rnn_inputs(rng, _size(N, "N"), _size(T, "T"), _size(D, "D"), _size(H, "H"))
    dh = rng.normal(0, 1, (N, T, H))
    case = _case(N=N, T=T, D=D, H=H)
    result = core.call(rnn_forward, *_copies(x, h0, Wx, Wh, b), name="rnn_forward", case=case,
                       numpy_only=NUMPY_ONLY, hint=f"the inputs are {_SEQ_ARGS}; return (h, cache).")
    _, cache = core.unpack(result, 2, "rnn_forward", ("h", "cache"))
    got = core.unpack(core.call(rnn_backward, dh.copy(), cache, name="rnn_backward", case=case,
                                numpy_only=NUMPY_ONLY, hint="dh is (N, T, H); walk backwards over t = T-1, ..., 0."),
                      5, "rnn_backward", ("dx", "dh0", "dWx", "dWh", "db"))
    rnn = torch_recurrent("rnn", Wx, Wh, b)
    tx, th0 = tensor64(x, grad=True), tensor64(h0, grad=True)
    (rnn(tx, th0[None])[0] * tensor64(dh)).sum().backward()
    expected = {"dx": to_numpy64(tx.grad), "dh0": to_numpy64(th0.grad), **gradients(rnn)}
    flow = ("at step t the upstream gradient is dh[:, t] PLUS the dprev_h coming back from step t+1 "
            "(added, never overwritten); ")
    shared = flow + "the shared weights get the SUM of their gradients over all steps."
    hints = {"dx": flow + "dx[:, t] comes from step t's backward.", "dh0": flow + "dh0 is the dprev_h left after "
             "step 0.", "dWx": shared, "dWh": shared, "db": flow + "db is summed over all steps and the batch."}
    return _compare_all("rnn_backward", got, expected, hints)


# ---------------------------------------------------------------- embedding, affine, loss
def _embedding_inputs(rng, N, T, V, D):
    """Ids x (N, T) with at least one repeated id (when N*T > 1) and a table W (V, D)."""
    x = rng.integers(0, V, size=(N, T))
    if x.size > 1:
        x.flat[-1] = x.flat[0]  # a repeated id, so overwritten updates are caught
    return x, rng.normal(0, 1, (V, D))


@core.check
def check_word_embedding_forward(word_embedding_forward, N=2, T=4, V=5, D=3, seed=0):
    """Student's ``word_embedding_forward(x, W) -> (out, cache)`` vs F.embedding (ids repeat)."""
    x, W = _embedding_inputs(_rng(seed), _size(N, "N"), _size(T, "T"), _size(V, "V"), _size(D, "D"))
    result = core.call(word_embedding_forward, x.copy(), W.copy(), name="word_embedding_forward",
                       case=_case(N=N, T=T, V=V, D=D), numpy_only=NUMPY_ONLY,
                       hint="x holds int64 ids (N, T), W is (V, D); return (out, cache).")
    out, _ = core.unpack(result, 2, "word_embedding_forward", ("out", "cache"))
    return {"out": core.compare("word_embedding_forward: out", out, oracle_word_embedding_forward(x, W),
                                TOL.forward, hint="out[n, t] is the row W[x[n, t]]; the result has shape (N, T, D).")}


@core.check
def check_word_embedding_backward(word_embedding_forward, word_embedding_backward, N=2, T=4, V=5, D=3, seed=0):
    """Student's ``word_embedding_backward(dout, cache) -> dW`` vs autograd through F.embedding.

    The ids contain a repeat (when N*T > 1): every occurrence must add its gradient to the same row.
    """
    rng = _rng(seed)
    x, W = _embedding_inputs(rng, _size(N, "N"), _size(T, "T"), _size(V, "V"), _size(D, "D"))
    dout = rng.normal(0, 1, (N, T, D))
    case = _case(N=N, T=T, V=V, D=D)
    result = core.call(word_embedding_forward, x.copy(), W.copy(), name="word_embedding_forward", case=case,
                       numpy_only=NUMPY_ONLY, hint="x holds int64 ids (N, T), W is (V, D); return (out, cache).")
    _, cache = core.unpack(result, 2, "word_embedding_forward", ("out", "cache"))
    dW = core.call(word_embedding_backward, dout.copy(), cache, name="word_embedding_backward", case=case,
                   numpy_only=NUMPY_ONLY, hint="dout is (N, T, D); return dW alone, shape (V, D).")
    tW = tensor64(W, grad=True)
    (F.embedding(torch.as_tensor(x), tW) * tensor64(dout)).sum().backward()
    return {"dW": core.compare("word_embedding_backward: dW", dW, to_numpy64(tW.grad), TOL.backward,
                               hint="an id that occurs several times must collect the SUM of its gradients; "
                                    "dW[x] += dout does not accumulate repeats (use np.add.at or a loop).")}


def _affine_inputs(rng, N, T, D, M):
    return rng.normal(0, 1, (N, T, D)), rng.normal(0, 1, (D, M)), rng.normal(0, 1, (M,))


_AFFINE_HINT = "x is (N, T, D), w (D, M), b (M,); return (out, cache)."


@core.check
def check_temporal_affine_forward(temporal_affine_forward, N=2, T=3, D=4, M=5, seed=0):
    """Student's ``temporal_affine_forward(x, w, b) -> (out, cache)`` vs F.linear."""
    x, w, b = _affine_inputs(_rng(seed), _size(N, "N"), _size(T, "T"), _size(D, "D"), _size(M, "M"))
    result = core.call(temporal_affine_forward, *_copies(x, w, b), name="temporal_affine_forward",
                       case=_case(N=N, T=T, D=D, M=M), numpy_only=NUMPY_ONLY, hint=_AFFINE_HINT)
    out, _ = core.unpack(result, 2, "temporal_affine_forward", ("out", "cache"))
    return {"out": core.compare("temporal_affine_forward: out", out, oracle_temporal_affine_forward(x, w, b),
                                TOL.forward, hint="out[n, t] = x[n, t] @ w + b, shape (N, T, M).")}


@core.check
def check_temporal_affine_backward(temporal_affine_forward, temporal_affine_backward, N=2, T=3, D=4, M=5, seed=0):
    """Student's ``temporal_affine_backward(dout, cache) -> (dx, dw, db)`` vs autograd."""
    rng = _rng(seed)
    x, w, b = _affine_inputs(rng, _size(N, "N"), _size(T, "T"), _size(D, "D"), _size(M, "M"))
    dout = rng.normal(0, 1, (N, T, M))
    case = _case(N=N, T=T, D=D, M=M)
    result = core.call(temporal_affine_forward, *_copies(x, w, b), name="temporal_affine_forward", case=case,
                       numpy_only=NUMPY_ONLY, hint=_AFFINE_HINT)
    _, cache = core.unpack(result, 2, "temporal_affine_forward", ("out", "cache"))
    got = core.unpack(core.call(temporal_affine_backward, dout.copy(), cache, name="temporal_affine_backward",
                                case=case, numpy_only=NUMPY_ONLY, hint="dout is (N, T, M); return (dx, dw, db)."),
                      3, "temporal_affine_backward", ("dx", "dw", "db"))
    tx, tw, tb = tensor64(x, grad=True), tensor64(w, grad=True), tensor64(b, grad=True)
    (F.linear(tx, tw.T, tb) * tensor64(dout)).sum().backward()
    expected = {"dx": to_numpy64(tx.grad), "dw": to_numpy64(tw.grad), "db": to_numpy64(tb.grad)}
    hints = {"dx": "dx = dout @ w.T, shape (N, T, D).",
             "dw": "w is shared by every (n, t): dw sums x[n, t]^T dout[n, t] over both axes, shape (D, M).",
             "db": "db sums dout over the batch AND the time axis: shape (M,)."}
    return _compare_all("temporal_affine_backward", got, expected, hints)


@core.check
def check_temporal_softmax_loss(temporal_softmax_loss, N=3, T=4, V=5, seed=0, mask_p=0.3, scale=1.0):
    """Student's ``temporal_softmax_loss(x, y, mask) -> (loss, dx)`` vs F.cross_entropy + autograd.

    mask_p: share of masked-out (False) positions, a number in [0, 1] (0: all kept);
    scale: positive standard deviation of the scores (e.g. 1000 tests numerical stability).
    """
    mask_p, scale = _number(mask_p, "mask_p", 0, 1), _number(scale, "scale", 0, low_open=True)
    rng = _rng(seed)
    x = rng.normal(0, scale, (_size(N, "N"), _size(T, "T"), _size(V, "V")))
    y = rng.integers(0, V, size=(N, T))
    mask = rng.random((N, T)) >= mask_p
    case = {**_case(N=N, T=T, V=V), "mask": f"{int(mask.sum())} of {mask.size} True", "score scale": scale}
    result = core.call(temporal_softmax_loss, x.copy(), y.copy(), mask.copy(), name="temporal_softmax_loss",
                       case=case, numpy_only=NUMPY_ONLY,
                       hint="x is (N, T, V) float, y (N, T) int, mask (N, T) bool; return (loss, dx).")
    loss, dx = core.unpack(result, 2, "temporal_softmax_loss", ("loss", "dx"))
    expected_loss, expected_dx = oracle_temporal_softmax_loss(x, y, mask)
    hint = ("loss = -(1/N) * sum over unmasked (n, t) of log softmax(x[n, t])[y[n, t]]: masked steps add "
            "nothing (to the loss or to dx), the sum runs over time and the average over the batch N only; "
            "subtract the max score before exp for stability.")
    return {"loss": core.compare("temporal_softmax_loss: loss (a scalar)", loss, expected_loss, TOL.forward, hint),
            "dx": core.compare("temporal_softmax_loss: dx", dx, expected_dx, TOL.backward, hint)}


# ---------------------------------------------------------------- the char-LM
def _check_params(params, V=None):
    """Validate a char-LM parameter dict; return (V, D, H, float64 copies). CheckFailure otherwise."""
    name = "char-LM params"
    if not isinstance(params, dict):
        core.fail(name, f"params must be a dict with keys {sorted(PARAM_SHAPES)}, got {type(params).__name__}.")
    missing = sorted(set(PARAM_SHAPES) - set(params))
    if missing:
        core.fail(name, f"params is missing {missing}; expected keys {sorted(PARAM_SHAPES)}.")
    for key in PARAM_SHAPES:
        if NUMPY_ONLY and type(params[key]).__module__.startswith("torch"):
            raise IntegrityFailure(f"{INTEGRITY}: params[{key!r}] is a torch {type(params[key]).__name__}; the "
                                   "char-LM must be trained in NumPy only.")
    arrays = {k: np.asarray(params[k], dtype=np.float64) for k in PARAM_SHAPES}
    if arrays["W_embed"].ndim != 2 or arrays["Wx"].ndim != 2:
        core.fail(name, "params['W_embed'] must be (V, D) and params['Wx'] (D, H).")
    sizes = {"V": arrays["W_embed"].shape[0], "D": arrays["W_embed"].shape[1], "H": arrays["Wx"].shape[1]}
    if V is not None and sizes["V"] != V:
        core.fail(name, f"params['W_embed'] has {sizes['V']} rows but the vocabulary has V={V} characters.")
    for key, dims in PARAM_SHAPES.items():
        shape = tuple(sizes[d] for d in dims)
        if arrays[key].shape != shape:
            core.fail(name, f"params[{key!r}] must have shape {shape} (= {dims}), got {arrays[key].shape}.")
        if not np.all(np.isfinite(arrays[key])):
            core.fail(name, f"params[{key!r}] contains NaN or inf: did training diverge?")
    return sizes["V"], sizes["D"], sizes["H"], arrays


def _random_char_lm(rng, V, D, H, scale=0.5):
    """A char-LM parameter dict of ``PARAM_SHAPES``: W_embed ~ N(0, 1), every other entry ~ N(0, scale)."""
    sizes = {"V": V, "D": D, "H": H}
    return {key: rng.normal(0, 1.0 if key == "W_embed" else scale, tuple(sizes[d] for d in dims))
            for key, dims in PARAM_SHAPES.items()}


def oracle_char_lm_loss(params, x, y, h0):
    """(loss, grads, h_last) of the char-LM on one chunk, by torch autograd holding the same weights.

    Inputs: params, a dict of the arrays of ``PARAM_SHAPES``; x and y, (N, T) integer ids in [0, V);
    h0, the starting hidden state (N, H). The model is F.embedding -> nn.RNN (tanh) -> F.linear,
    the loss F.cross_entropy averaged over all N*T positions (the loss per character, in nats).
    Returns the loss (a float), grads (a dict with the gradient of that loss for every key of
    ``PARAM_SHAPES``, float64 arrays of the parameters' shapes) and h_last (N, H), the final state.
    ValueError for bad parameters, ids or shapes.
    """
    try:
        V, _, H, p = _check_params(params)
    except core.CheckFailure as error:
        raise ValueError(str(error)) from None
    x, y = _int_array(x, "x", 2, V), _int_array(y, "y", 2, V)
    h0 = _float_array(h0, "h0", 2)
    if y.shape != x.shape or h0.shape != (x.shape[0], H):
        raise ValueError(f"need x and y of the same shape (N, T) and h0 (N, {H}); got x {x.shape}, y {y.shape}, "
                         f"h0 {h0.shape}")
    W_embed, W_out, b_out = (tensor64(p[key], grad=True) for key in ("W_embed", "W_out", "b_out"))
    rnn = torch_recurrent("rnn", p["Wx"], p["Wh"], p["b"])
    h, _ = rnn(F.embedding(torch.as_tensor(x), W_embed), tensor64(h0)[None])
    scores = F.linear(h, W_out.T, b_out)
    loss = F.cross_entropy(scores.reshape(-1, V), torch.as_tensor(y).reshape(-1))
    loss.backward()
    rnn_grads = gradients(rnn)
    grads = {"W_embed": to_numpy64(W_embed.grad), "Wx": rnn_grads["dWx"], "Wh": rnn_grads["dWh"],
             "b": rnn_grads["db"], "W_out": to_numpy64(W_out.grad), "b_out": to_numpy64(b_out.grad)}
    return float(loss.detach()), grads, to_numpy64(h[:, -1])


@core.check
def check_char_lm_loss(char_lm_loss, N=3, T=4, V=6, D=3, H=5, seed=0):
    """Student's ``char_lm_loss(params, x, y, h0) -> (loss, grads, h_last)`` vs torch autograd.

    A random char-LM (``PARAM_SHAPES`` with these sizes), random ids x and targets y (N, T) and a
    random, non-zero h0 (N, H): the loss per character, h_last and the gradient of every parameter
    must match ``oracle_char_lm_loss``. grads must be a dict with every key of ``PARAM_SHAPES``.
    N, T, V, D, H: integers >= 1 (V >= 1 ids); seed: integer >= 0. ValueError naming a bad argument.
    """
    rng = _rng(seed)
    N, T, V, D, H = _size(N, "N"), _size(T, "T"), _size(V, "V"), _size(D, "D"), _size(H, "H")
    params = _random_char_lm(rng, V, D, H)
    x, y, h0 = rng.integers(0, V, (N, T)), rng.integers(0, V, (N, T)), rng.normal(0, 1, (N, H))
    result = core.call(char_lm_loss, {key: value.copy() for key, value in params.items()}, x.copy(), y.copy(),
                       h0.copy(), name="char_lm_loss", case=_case(N=N, T=T, V=V, D=D, H=H), numpy_only=NUMPY_ONLY,
                       hint="params is the dict of PARAM_SHAPES arrays, x and y (N, T) int ids, h0 (N, H); "
                            "return (loss, grads, h_last).")
    loss, grads, h_last = core.unpack(result, 3, "char_lm_loss", ("loss", "grads", "h_last"))
    expected_loss, expected_grads, expected_h = oracle_char_lm_loss(params, x, y, h0)
    if not isinstance(grads, dict) or set(PARAM_SHAPES) - set(grads):
        got = sorted(grads) if isinstance(grads, dict) else type(grads).__name__
        core.fail("char_lm_loss: grads", f"expected a dict with the keys {sorted(PARAM_SHAPES)}, got {got}.")
    errors = {"loss": core.compare(
        "char_lm_loss: loss (a scalar)", loss, expected_loss, TOL.forward,
        "the loss PER CHARACTER: temporal_softmax_loss(scores, y, mask of all True) divided by T (it sums over "
        "time and averages over N); the targets are y, the RNN starts from h0.")}
    errors["h_last"] = core.compare("char_lm_loss: h_last", h_last, expected_h, TOL.forward,
                                    "h_last = h[:, -1], the state after the chunk's last step, starting from h0.")
    hint = ("the gradient of the per-character loss: backpropagate dscores / T through temporal_affine_backward, "
            "rnn_backward and word_embedding_backward; grads['Wx'] is rnn_backward's dWx, grads['Wh'] its dWh.")
    for key in PARAM_SHAPES:
        errors[f"grads[{key!r}]"] = core.compare(f"char_lm_loss: grads[{key!r}]", grads[key], expected_grads[key],
                                                 TOL.backward, hint)
    return errors


def oracle_clip_grad_norm(grads, max_norm):
    """(clipped, total_norm) by ``torch.nn.utils.clip_grad_norm_``; ``grads`` itself is not changed.

    Inputs: grads, a non-empty dict name -> float array (any shapes); max_norm > 0. total_norm is
    the global norm of all arrays together, before clipping (a float); clipped has the same keys:
    every array times max_norm / (total_norm + 1e-6) when that factor is below 1, else unchanged.
    ValueError for an empty or non-dict ``grads`` or a bad ``max_norm``.
    """
    if not isinstance(grads, dict) or not grads:
        raise ValueError(f"grads must be a non-empty dict of arrays, got {type(grads).__name__}")
    max_norm = _number(max_norm, "max_norm", 0, low_open=True)
    leaves = {}
    for key, value in grads.items():
        array = np.asarray(value)
        if not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"grads[{key!r}] must be a numeric array, got dtype {array.dtype}")
        leaves[key] = torch.zeros(array.shape, dtype=torch.float64, requires_grad=True)
        leaves[key].grad = tensor64(array)
    total_norm = torch.nn.utils.clip_grad_norm_(list(leaves.values()), max_norm)
    return {key: to_numpy64(leaf.grad) for key, leaf in leaves.items()}, float(total_norm)


@core.check
def check_clip_grad_norm(clip_grad_norm, max_norm=5.0, ratio=3.0, seed=0, V=5, D=3, H=4):
    """Student's ``clip_grad_norm(grads, max_norm) -> total_norm`` vs ``torch.nn.utils.clip_grad_norm_``.

    The gradients are a dict shaped like a char-LM's (``PARAM_SHAPES`` with sizes V, D, H), random
    and scaled so that their global norm is ``ratio * max_norm``: ratio > 1 must be clipped, ratio
    <= 1 left unchanged, ratio = 0 gives all-zero gradients (unchanged, no NaN). After the call,
    ``grads[key]`` (changed in place or replaced in the dict) must equal the oracle's clipped array
    and the returned total_norm the global norm before clipping.
    ValueError naming a bad argument (max_norm > 0, ratio >= 0, sizes >= 1, seed >= 0).
    """
    rng = _rng(seed)
    max_norm, ratio = _number(max_norm, "max_norm", 0, low_open=True), _number(ratio, "ratio", 0)
    sizes = {"V": _size(V, "V"), "D": _size(D, "D"), "H": _size(H, "H")}
    grads = {key: rng.normal(0, 1, tuple(sizes[d] for d in dims)) for key, dims in PARAM_SHAPES.items()}
    norm = np.sqrt(sum(np.sum(g ** 2) for g in grads.values()))
    grads = {key: g * (ratio * max_norm / norm) for key, g in grads.items()}
    expected, expected_norm = oracle_clip_grad_norm(grads, max_norm)
    theirs = {key: g.copy() for key, g in grads.items()}
    case = {"max_norm": max_norm, "global norm": "0 (all zeros)" if ratio == 0 else f"{ratio:g} x max_norm"}
    total_norm = core.call(clip_grad_norm, theirs, max_norm, name="clip_grad_norm", case=case, numpy_only=NUMPY_ONLY,
                           hint="grads is a dict name -> array; clip it in place and return the global norm.")
    hint = ("the global norm is ONE number for all arrays together, sqrt(sum over every array of np.sum(g ** 2)); "
            "when it exceeds max_norm, multiply EVERY array by the same factor max_norm / (total_norm + 1e-6) (not "
            "each array by its own norm, not np.clip of the entries); otherwise leave them unchanged.")
    errors = {"total_norm": core.compare("clip_grad_norm: total_norm (returned, before clipping)", total_norm,
                                         expected_norm, TOL.forward, hint)}
    if not isinstance(theirs, dict) or set(theirs) != set(grads):
        core.fail("clip_grad_norm", f"the dict must keep its keys {sorted(grads)}, got {sorted(theirs)}.")
    for key in grads:
        errors[f"grads[{key!r}]"] = core.compare(f"clip_grad_norm: grads[{key!r}] after the call", theirs[key],
                                                 expected[key], TOL.backward, hint)
    return errors


def _char_lm_scores(params, x):
    """Scores (N, T, V) of the char-LM on ids x (N, T), each row read from h0 = 0, by torch."""
    V, _, H, p = _check_params(params)
    x = _int_array(x, "x", 2, V)
    rnn = torch_recurrent("rnn", p["Wx"], p["Wh"], p["b"])
    with torch.no_grad():
        emb = F.embedding(torch.as_tensor(x), tensor64(p["W_embed"]))
        h, _ = rnn(emb, tensor64(np.zeros((1, x.shape[0], H))))
        return to_numpy64(F.linear(h, tensor64(p["W_out"].T), tensor64(p["b_out"])))


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
    x, y = _val_pairs(val_ids, _size(n_streams, "n_streams"))
    scores = _char_lm_scores(params, x)
    return float(F.cross_entropy(tensor64(scores).reshape(-1, scores.shape[-1]), torch.as_tensor(y).reshape(-1)))


def bigram_loss(train_ids, val_ids, V, alpha=1.0, n_streams=50):
    """Validation loss (nats/char) of an add-``alpha`` smoothed bigram count model.

    P(b | a) = (count(a -> b in train) + alpha) / (count(a in train) + alpha * V), evaluated on
    the same (input, target) pairs as ``char_lm_val_loss(..., n_streams)``.
    """
    V = _size(V, "V")
    alpha = _number(alpha, "alpha", 0, low_open=True)
    train_ids = _int_array(train_ids, "train_ids", 1, V)
    counts = np.full((V, V), alpha)
    np.add.at(counts, (train_ids[:-1], train_ids[1:]), 1.0)
    log_p = np.log(counts / counts.sum(axis=1, keepdims=True))
    x, y = _val_pairs(_int_array(val_ids, "val_ids", 1, V), _size(n_streams, "n_streams"))
    return float(-log_p[x, y].mean())


@core.check
def check_char_lm(params, margin=0.3, val_fraction=0.1, corpus="shakespeare.txt"):
    """The trained char-LM must beat the bigram count model by ``margin`` nats/char on validation.

    The check rebuilds the data itself (``load_corpus(corpus)``, ``CharVocab.from_text``,
    ``train_val_split(..., val_fraction)`` of ``helpers.text``); params (dict of NumPy arrays of
    ``PARAM_SHAPES``) must use that vocabulary. Both models are scored on the same validation
    pairs; a loss exactly ``margin`` below the bigram's passes.
    """
    from helpers.text import CharVocab, load_corpus, train_val_split

    margin = _number(margin, "margin", 0)
    text = load_corpus(corpus)
    vocab = CharVocab.from_text(text)
    train_ids, val_ids = train_val_split(vocab.encode(text), val_fraction)
    _check_params(params, V=vocab.size)
    rnn, bigram = char_lm_val_loss(params, val_ids), bigram_loss(train_ids, val_ids, vocab.size)
    if not rnn <= bigram - margin:
        core.fail("char-LM", f"validation loss {rnn:.3f} does not beat the bigram model ({bigram:.3f}) by {margin} "
                             "nats/char.", "train longer or with a better learning rate, and make sure the targets "
                             "are the inputs shifted by one and that the hidden state is carried across chunks.")
    return {"validation loss": f"{rnn:.3f} nats/char, bigram model {bigram:.3f} (needed: <= {bigram - margin:.3f})"}


# ---------------------------------------------------------------- sampling
def _tiny_char_lm(seed, V=5, D=3, H=6, scale=1.5):
    """A small random char-LM (vocabulary 'abcde') with clearly non-uniform predictions."""
    rng = _rng(seed)
    return {"W_embed": rng.normal(0, 1, (V, D)), "Wx": rng.normal(0, scale, (D, H)),
            "Wh": rng.normal(0, scale, (H, H)), "b": rng.normal(0, 0.5, (H,)),
            "W_out": rng.normal(0, scale, (H, V)), "b_out": rng.normal(0, 0.5, (V,))}


def _sample_text(sample, params, vocab, prefix, length, temperature, rng, rng_name):
    """One call of the student's sampler, checked to return ``length`` characters of the vocabulary."""
    case = {"prefix": repr(prefix), "length": length, "temperature": temperature, "rng": rng_name}
    text = core.call(sample, {k: v.copy() for k, v in params.items()}, vocab, prefix, length,
                     temperature=temperature, rng=rng, name="sample", case=case, numpy_only=NUMPY_ONLY,
                     hint="read the prefix from h = 0, then generate `length` characters; return them as a str.")
    if not isinstance(text, str) or len(text) != length or set(text) - set(vocab.chars):
        core.fail("sample", f"expected a str of {length} characters from {vocab.chars!r} (the generated characters "
                            f"only, without the prefix), got {text!r} (case: {core.describe(case)}).")
    return text


def _check_greedy(sample, params, vocab, prefix, length, seed):
    """temperature=0: every generated character must be a most likely one given all the text before it."""
    got = _sample_text(sample, params, vocab, prefix, length, 0, np.random.default_rng(seed),
                       f"np.random.default_rng({seed})")
    ids = list(vocab.encode(prefix))
    for position, char in enumerate(got):
        probs = oracle_next_char_probs(params, ids)
        chosen, best = vocab.encode(char)[0], int(np.argmax(probs))
        if probs[chosen] < probs[best] - 1e-12:  # ties (equal probabilities) accept either character
            core.fail("sample", f"with temperature=0 (greedy) after {prefix!r} + {got[:position]!r} the most likely "
                                f"next character is {vocab.chars[best]!r} (p={probs[best]:.3f}), you generated "
                                f"{char!r} (p={probs[chosen]:.3f}); whole text {got!r}.",
                      "read the whole prefix from h0 = 0 first, then feed every generated character back in.")
        ids.append(chosen)


def _total_variation(sample, params, vocab, prefix, temperature, seed, n_draws):
    """Total variation between the first generated character's frequencies and the oracle's probabilities."""
    expected = oracle_next_char_probs(params, vocab.encode(prefix), temperature)
    rng = np.random.default_rng(seed + 1)
    draws = [_sample_text(sample, params, vocab, prefix, 1, temperature, rng, f"np.random.default_rng({seed + 1})")
             for _ in range(n_draws)]
    freq = np.array([draws.count(c) for c in vocab.chars]) / n_draws
    return 0.5 * float(np.abs(freq - expected).sum()), freq, expected


@core.check
def check_sample(sample, seed=0, prefix="abca", length=12, n_draws=1000, tv_tol=0.1):
    """Student's ``sample(params, vocab, prefix, length, temperature=1.0, rng=None) -> str``.

    On a small random char-LM over the vocabulary 'abcde' (from ``seed``):
    1. the result is a str of ``length`` characters of the vocabulary (without the prefix);
    2. the same ``rng`` seed gives the same text (every random number comes from ``rng``);
    3. temperature=0 is greedy: each character is a most likely one (torch oracle) given the
       prefix read from h0 = 0 and every character generated before it;
    4. at temperatures 1, 0.5 and 3 the first generated character's frequencies over ``n_draws``
       calls match softmax(scores / temperature) within total variation ``tv_tol`` (inclusive).
    ValueError naming a bad argument (prefix a non-empty str over 'abcde', n_draws >= 10, tv_tol in (0, 1]).
    """
    from helpers.text import CharVocab

    seed, length, n_draws = _size(seed, "seed", 0), _size(length, "length"), _size(n_draws, "n_draws", 10)
    tv_tol = _number(tv_tol, "tv_tol", 0, 1, low_open=True)
    if not isinstance(prefix, str) or not prefix or set(prefix) - set("abcde"):
        raise ValueError(f"prefix must be a non-empty string over 'abcde', got {prefix!r}")
    vocab, params = CharVocab("abcde"), _tiny_char_lm(seed)
    rng_name = f"np.random.default_rng({seed})"
    text = _sample_text(sample, params, vocab, prefix, length, 1.0, np.random.default_rng(seed), rng_name)
    again = _sample_text(sample, params, vocab, prefix, length, 1.0, np.random.default_rng(seed), rng_name)
    if again != text:
        core.fail("sample", f"two calls with rng={rng_name} gave {text!r} and {again!r}.",
                  "draw every random number from the rng argument (e.g. rng.choice(V, p=p)), never from np.random.")
    _check_greedy(sample, params, vocab, prefix, length, seed)
    result = {"text with a seeded rng": "reproducible", "greedy text (temperature 0)": "most likely characters"}
    for temperature in (1.0, 0.5, 3.0):
        tv, freq, expected = _total_variation(sample, params, vocab, prefix, temperature, seed, n_draws)
        if not tv <= tv_tol:
            core.fail("sample", f"at temperature {temperature} the first character's frequencies "
                                f"{np.round(freq, 3).tolist()} are far from softmax(scores / temperature) = "
                                f"{np.round(expected, 3).tolist()} (total variation {tv:.3f} > {tv_tol}).",
                      "divide the scores by the temperature before the softmax and sample from it "
                      "(e.g. rng.choice(V, p=p)).")
        result[f"first character at temperature {temperature}:"] = f"total variation {tv:.3f} (tolerance {tv_tol})"
    return result
