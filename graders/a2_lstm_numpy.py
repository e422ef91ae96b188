"""The grader of assignment a2_lstm_numpy: LSTM and GRU layers in NumPy, gradient clipping, and the
gradient-flow and long-range experiments.

Oracles (float64): ``torch.nn.LSTMCell`` / ``LSTM`` / ``GRUCell`` / ``RNN`` holding the same weights
(``graders.torch_layout``; LSTM gates i, f, g, o, GRU r, z, n), gradients by autograd; clipping by
the closed form the notebook specifies. A student's ``cache`` is opaque: a check passes what the
student's forward returned into the student's backward. This assignment is NumPy only: every call
of student code is ``core.call(..., numpy_only=NUMPY_ONLY)``.
"""
from numbers import Real

import numpy as np

from helpers._validate import integer as _integer
from helpers._validate import positive_number
from helpers.gradient_flow import flow_inputs, init_recurrent_params

from . import core
from .core import TOL, report, self_check
from .torch_layout import gradients, tensor64, to_numpy64, torch_recurrent

NUMPY_ONLY = True
#: Long-range recall: the student's LSTM must reach this accuracy and lead the vanilla RNN by this much.
RECALL_MIN_ACCURACY = 0.9
RECALL_MIN_LEAD = 0.3
#: Gradient flow: at t = 0 the LSTM keeps at least this many times more (relative) gradient than the RNN.
FLOW_MIN_RATIO = 100.0
_TIE = 1e-12  # a value on a threshold passes although decimal ties round (0.95 - 0.65 < 0.3 in floats)

__all__ = [
    "NUMPY_ONLY", "TOL", "RECALL_MIN_ACCURACY", "RECALL_MIN_LEAD", "FLOW_MIN_RATIO", "report", "self_check",
    "oracle_lstm_step_forward", "oracle_lstm_step_backward", "oracle_lstm_forward", "oracle_lstm_backward",
    "oracle_gru_step_forward", "oracle_gru_step_backward", "oracle_clip_grad_norm",
    "oracle_gradient_norms_through_time",
    "check_lstm_step_forward", "check_lstm_step_backward", "check_lstm_forward", "check_lstm_backward",
    "check_gru_step_forward", "check_gru_step_backward", "check_clip_grad_norm",
    "check_gradient_norms_through_time", "check_gradient_flow", "train_lstm", "check_long_range",
]

HINTS = {
    "lstm_forward": "the gates come in PyTorch's order i, f, g, o (columns [0:H], [H:2H], [2H:3H], [3H:4H]); "
                    "g uses tanh, i, f and o use sigmoid; next_c = f * prev_c + i * g, next_h = o * tanh(next_c).",
    "lstm_step_backward": "lstm_step_backward receives exactly the cache your lstm_step_forward returned.",
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
    "clip_call": "clip_grad_norm(grads, max_norm) gets a list of float arrays and returns one number.",
    "clip_total": "return the global norm sqrt(sum of all squared entries of all arrays) measured BEFORE clipping.",
    "clip_above": "scale every array in place (g *= factor) by the same factor max_norm / total_norm, where "
                  "total_norm is the norm of all arrays together, not of each one (and no epsilon).",
    "clip_equal": "a global norm equal to max_norm is scaled by max_norm / total_norm = 1: the values stay.",
    "clip_below": "when the global norm is below max_norm the gradients must not change.",
    "flow_call": "call forward(x, h0, *params) with the arguments you were given, then backward(dh, cache) "
                 "with the cache that forward returned.",
    "flow_norms": "upstream gradient: ones at the LAST step only (dh[:, -1] = 1), zeros elsewhere; then the "
                  "norm of dx[:, t] over the batch and the features, one number per step: shape (T,).",
    "flow_lstm": "your lstm_forward / lstm_backward and gradient_norms_through_time pass their own tests first?",
    "recall": "your lstm_forward / lstm_backward pass their own tests first? The loop calls "
              "lstm_forward(x, h0, Wx, Wh, b) and lstm_backward(dh, cache).",
}
_FORWARD_ARGS, _BACKWARD_ARGS = ("x", "h0", "Wx", "Wh", "b"), ("dh", "cache")


# ----------------------------------------------------------------------------- small tools
def _case(seed, **sizes):
    """(sizes as ints plus the dtype, for ``core.call``'s ``case``; seed as an int).

    Raises ValueError naming a size that is not an int >= 1 or a seed that is not an int >= 0.
    """
    case = {name: _integer(value, name) for name, value in sizes.items()}
    return case | {"dtype": "float64"}, _integer(seed, "seed", 0)


def _arrays(seed, shapes, scale=1.0):
    rng = np.random.default_rng(seed)
    return [rng.normal(scale=scale, size=shape) for shape in shapes]


def _copies(*arrays):
    return [a.copy() for a in arrays]


def _compare_all(prefix, case, got, expected, tol, hints):
    """``core.compare`` of every named output; the failure names the case. Returns {name: error}."""
    return {name: core.compare(f"{prefix}: {name} (case: {core.describe(case)})", value, want, tol, hints.get(name))
            for (name, value), want in zip(got.items(), expected)}


def _guarded(fn, name, arg_names, hint):
    """``fn`` wrapped so that every call is a ``core.call`` (NumPy only, an error names the shapes)."""
    def wrapper(*args):
        case = {arg: getattr(value, "shape", type(value).__name__)
                for arg, value in zip(arg_names, args) if arg != "cache"}
        return core.call(fn, *args, name=name, case=case, hint=hint, numpy_only=NUMPY_ONLY)

    return wrapper


def _state(kind, H0):
    """torch's initial state for an (N, H) tensor: h0[None] (rnn) or (h0[None], c0 = 0) (lstm)."""
    import torch

    return (H0[None], torch.zeros_like(H0)[None]) if kind == "lstm" else H0[None]


# ----------------------------------------------------------------------------- oracles
def oracle_lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """torch.nn.LSTMCell holding Wx (D, 4H), Wh (H, 4H), b (4H,). Returns (next_h, next_c), float64 (N, H)."""
    cell = torch_recurrent("lstm", Wx, Wh, b, cell=True)
    h, c = cell(tensor64(x), (tensor64(prev_h), tensor64(prev_c)))
    return to_numpy64(h), to_numpy64(c)


def oracle_lstm_step_backward(x, prev_h, prev_c, Wx, Wh, b, dnext_h, dnext_c):
    """Autograd gradients of sum(next_h * dnext_h + next_c * dnext_c) through torch.nn.LSTMCell.

    Returns (dx, dprev_h, dprev_c, dWx, dWh, db) in the NumPy layout, float64.
    """
    cell = torch_recurrent("lstm", Wx, Wh, b, cell=True)
    inputs = [tensor64(v, grad=True) for v in (x, prev_h, prev_c)]
    h, c = cell(inputs[0], (inputs[1], inputs[2]))
    ((h * tensor64(dnext_h)).sum() + (c * tensor64(dnext_c)).sum()).backward()
    weights = gradients(cell)
    return (*(to_numpy64(v.grad) for v in inputs), weights["dWx"], weights["dWh"], weights["db"])


def oracle_lstm_forward(x, h0, Wx, Wh, b):
    """torch.nn.LSTM (batch_first, c0 = 0) holding the weights. Returns h, float64 (N, T, H)."""
    layer = torch_recurrent("lstm", Wx, Wh, b)
    return to_numpy64(layer(tensor64(x), _state("lstm", tensor64(h0)))[0])


def oracle_lstm_backward(x, h0, Wx, Wh, b, dh):
    """Autograd gradients of sum(h * dh) through torch.nn.LSTM (c0 = 0). Returns (dx, dh0, dWx, dWh, db)."""
    layer = torch_recurrent("lstm", Wx, Wh, b)
    X, H0 = tensor64(x, grad=True), tensor64(h0, grad=True)
    (layer(X, _state("lstm", H0))[0] * tensor64(dh)).sum().backward()
    weights = gradients(layer)
    return to_numpy64(X.grad), to_numpy64(H0.grad), weights["dWx"], weights["dWh"], weights["db"]


def oracle_gru_step_forward(x, prev_h, Wx, Wh, bx, bh):
    """torch.nn.GRUCell (weight_ih = Wx.T, weight_hh = Wh.T, bias_ih = bx, bias_hh = bh). Returns next_h (N, H)."""
    cell = torch_recurrent("gru", Wx, Wh, bx=bx, bh=bh, cell=True)
    return to_numpy64(cell(tensor64(x), tensor64(prev_h)))


def oracle_gru_step_backward(x, prev_h, Wx, Wh, bx, bh, dnext_h):
    """Autograd gradients of sum(next_h * dnext_h) through torch.nn.GRUCell.

    Returns (dx, dprev_h, dWx, dWh, dbx, dbh) in the NumPy layout, float64.
    """
    cell = torch_recurrent("gru", Wx, Wh, bx=bx, bh=bh, cell=True)
    X, H = tensor64(x, grad=True), tensor64(prev_h, grad=True)
    (cell(X, H) * tensor64(dnext_h)).sum().backward()
    weights = gradients(cell)
    return to_numpy64(X.grad), to_numpy64(H.grad), weights["dWx"], weights["dWh"], weights["dbx"], weights["dbh"]


def oracle_clip_grad_norm(grads, max_norm):
    """The notebook's spec in closed form: ||g|| = sqrt(sum_k ||g_k||_F^2); if ||g|| >= max_norm every
    array is multiplied by exactly max_norm / ||g||, otherwise nothing changes.

    (``torch.nn.utils.clip_grad_norm_`` divides by ||g|| + 1e-6 instead: it agrees only when ||g|| is large.)
    Inputs: grads, list of array-likes (not modified); max_norm > 0.
    Returns (clipped float64 copies, the global norm before clipping as a float).
    Raises ValueError for a max_norm that is not a positive number.
    """
    max_norm = positive_number(max_norm, "max_norm")
    arrays = [np.array(g, dtype=np.float64) for g in grads]
    total = float(np.sqrt(sum(np.sum(a * a) for a in arrays)))
    if total >= max_norm:
        arrays = [a * (max_norm / total) for a in arrays]
    return arrays, total


def oracle_gradient_norms_through_time(kind, x, h0, params):
    """||dL/dx_t|| for t = 0..T-1 with L = sum(h[:, T-1]), by autograd through torch's ``kind`` layer
    ("rnn" (tanh) or "lstm", c0 = 0) holding params = [Wx, Wh, b]. Returns float64 (T,)."""
    if kind not in ("rnn", "lstm"):
        raise ValueError(f"kind must be 'rnn' or 'lstm', got {kind!r}")
    layer = torch_recurrent(kind, *params)
    X = tensor64(x, grad=True)
    layer(X, _state(kind, tensor64(h0)))[0][:, -1].sum().backward()
    return np.sqrt(np.sum(to_numpy64(X.grad) ** 2, axis=(0, 2)))


def _replay_layer(kind, x, h0, params):
    """A NumPy layer (forward, backward) replaying torch's ``kind`` layer on exactly these inputs.

    forward(x, h0, *params) returns torch's h (and refuses any other inputs); backward(dh, cache)
    returns (dx, dh0, dWx, dWh, db) from Jacobians recorded here, so a student's measuring function
    runs NumPy only while the layer it measures is torch's.
    """
    import torch

    layer = torch_recurrent(kind, *params)
    X, H0 = tensor64(x, grad=True), tensor64(h0, grad=True)
    out = layer(X, _state(kind, H0))[0]
    leaves = (X, H0, layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0)
    rows = [torch.autograd.grad(entry, leaves, retain_graph=True) for entry in out.reshape(-1)]
    jacobians = [np.stack([to_numpy64(row[j]) for row in rows]) for j in range(len(leaves))]
    h, recorded = to_numpy64(out), [np.array(v, dtype=np.float64) for v in (x, h0, *params)]

    def forward(*given):
        if len(given) != len(recorded) or not all(np.array_equal(np.asarray(a), b) for a, b in zip(given, recorded)):
            raise ValueError("the check's layer runs only on the x, h0 and params it gave your function: "
                             "call forward(x, h0, *params) with them unchanged")
        return h.copy(), ("replayed", kind)

    def backward(dh, cache):
        dh = np.asarray(dh, dtype=np.float64)
        if dh.shape != h.shape:
            raise ValueError(f"dh must have the shape of h, {h.shape}; got {dh.shape}")
        dx, dh0, dwi, dwh, db = (np.tensordot(dh.ravel(), J, axes=1) for J in jacobians)
        return dx, dh0, dwi.T, dwh.T, db

    return forward, backward


# ----------------------------------------------------------------------------- LSTM checks
def _lstm_step_case(case, seed):
    N, D, H = case["N"], case["D"], case["H"]
    x, prev_h, prev_c = _arrays(seed, [(N, D), (N, H), (N, H)])
    Wx, Wh, b = _arrays(seed + 1, [(D, 4 * H), (H, 4 * H), (4 * H,)], scale=0.5)
    return x, prev_h, prev_c, Wx, Wh, b


@core.check
def check_lstm_step_forward(lstm_step_forward, N=3, D=4, H=5, seed=0):
    """Compare (next_h, next_c) with torch.nn.LSTMCell (TOL.forward). Raises CheckFailure / ValueError."""
    case, seed = _case(seed, N=N, D=D, H=H)
    args = _lstm_step_case(case, seed)
    result = core.call(lstm_step_forward, *_copies(*args), name="lstm_step_forward", case=case,
                       hint=HINTS["lstm_forward"], numpy_only=NUMPY_ONLY)
    next_h, next_c, _ = core.unpack(result, 3, "lstm_step_forward", ("next_h", "next_c", "cache"))
    hints = {"next_h": HINTS["lstm_forward"], "next_c": HINTS["lstm_forward"]}
    return _compare_all("lstm_step_forward", case, {"next_h": next_h, "next_c": next_c},
                        oracle_lstm_step_forward(*args), TOL.forward, hints)


@core.check
def check_lstm_step_backward(lstm_step_forward, lstm_step_backward, N=3, D=4, H=5, seed=0):
    """Compare the six gradients of lstm_step_backward with autograd through torch.nn.LSTMCell (TOL.backward)."""
    case, seed = _case(seed, N=N, D=D, H=H)
    args = _lstm_step_case(case, seed)
    dnext_h, dnext_c = _arrays(seed + 2, [(N, H), (N, H)])
    result = core.call(lstm_step_forward, *_copies(*args), name="lstm_step_forward", case=case,
                       hint=HINTS["lstm_forward"], numpy_only=NUMPY_ONLY)
    cache = core.unpack(result, 3, "lstm_step_forward", ("next_h", "next_c", "cache"))[2]
    names = ("dx", "dprev_h", "dprev_c", "dWx", "dWh", "db")
    result = core.call(lstm_step_backward, dnext_h.copy(), dnext_c.copy(), cache, name="lstm_step_backward",
                       case=case, hint=HINTS["lstm_step_backward"], numpy_only=NUMPY_ONLY)
    got = dict(zip(names, core.unpack(result, 6, "lstm_step_backward", names)))
    hints = {n: HINTS[n] + " " + HINTS["lstm_c_path"] for n in names} | {"dprev_c": HINTS["dprev_c"]}
    return _compare_all("lstm_step_backward", case, got, oracle_lstm_step_backward(*args, dnext_h, dnext_c),
                        TOL.backward, hints)


def _lstm_seq_case(case, seed):
    N, T, D, H = case["N"], case["T"], case["D"], case["H"]
    x, h0 = _arrays(seed, [(N, T, D), (N, H)])
    Wx, Wh, b = _arrays(seed + 1, [(D, 4 * H), (H, 4 * H), (4 * H,)], scale=0.5)
    return x, h0, Wx, Wh, b


@core.check
def check_lstm_forward(lstm_forward, N=2, T=4, D=3, H=5, seed=0):
    """Compare h (N, T, H) with torch.nn.LSTM, c0 = 0 (TOL.forward). Raises CheckFailure / ValueError."""
    case, seed = _case(seed, N=N, T=T, D=D, H=H)
    args = _lstm_seq_case(case, seed)
    result = core.call(lstm_forward, *_copies(*args), name="lstm_forward", case=case, hint=HINTS["lstm_seq"],
                       numpy_only=NUMPY_ONLY)
    h, _ = core.unpack(result, 2, "lstm_forward", ("h", "cache"))
    return _compare_all("lstm_forward", case, {"h": h}, [oracle_lstm_forward(*args)], TOL.forward,
                        {"h": HINTS["lstm_seq"] + " Check lstm_step_forward first."})


@core.check
def check_lstm_backward(lstm_forward, lstm_backward, N=2, T=4, D=3, H=5, seed=0):
    """Compare (dx, dh0, dWx, dWh, db) with autograd through torch.nn.LSTM (TOL.backward)."""
    case, seed = _case(seed, N=N, T=T, D=D, H=H)
    args = _lstm_seq_case(case, seed)
    dh = _arrays(seed + 2, [(N, T, H)])[0]
    result = core.call(lstm_forward, *_copies(*args), name="lstm_forward", case=case, hint=HINTS["lstm_seq"],
                       numpy_only=NUMPY_ONLY)
    cache = core.unpack(result, 2, "lstm_forward", ("h", "cache"))[1]
    names = ("dx", "dh0", "dWx", "dWh", "db")
    result = core.call(lstm_backward, dh.copy(), cache, name="lstm_backward", case=case, hint=HINTS["lstm_seq"],
                       numpy_only=NUMPY_ONLY)
    got = dict(zip(names, core.unpack(result, 5, "lstm_backward", names)))
    return _compare_all("lstm_backward", case, got, oracle_lstm_backward(*args, dh), TOL.backward,
                        dict.fromkeys(names, HINTS["lstm_seq"]))


# ----------------------------------------------------------------------------- GRU checks
def _gru_case(case, seed):
    N, D, H = case["N"], case["D"], case["H"]
    x, prev_h = _arrays(seed, [(N, D), (N, H)])
    return (x, prev_h, *_arrays(seed + 1, [(D, 3 * H), (H, 3 * H), (3 * H,), (3 * H,)], scale=0.5))


@core.check
def check_gru_step_forward(gru_step_forward, N=3, D=4, H=5, seed=0):
    """Compare next_h with torch.nn.GRUCell (TOL.forward). Raises CheckFailure / ValueError."""
    case, seed = _case(seed, N=N, D=D, H=H)
    args = _gru_case(case, seed)
    result = core.call(gru_step_forward, *_copies(*args), name="gru_step_forward", case=case,
                       hint=HINTS["gru_forward"], numpy_only=NUMPY_ONLY)
    next_h, _ = core.unpack(result, 2, "gru_step_forward", ("next_h", "cache"))
    return _compare_all("gru_step_forward", case, {"next_h": next_h}, [oracle_gru_step_forward(*args)],
                        TOL.forward, {"next_h": HINTS["gru_forward"]})


@core.check
def check_gru_step_backward(gru_step_forward, gru_step_backward, N=3, D=4, H=5, seed=0):
    """Compare (dx, dprev_h, dWx, dWh, dbx, dbh) with autograd through torch.nn.GRUCell (TOL.backward)."""
    case, seed = _case(seed, N=N, D=D, H=H)
    args = _gru_case(case, seed)
    dnext_h = _arrays(seed + 2, [(N, H)])[0]
    result = core.call(gru_step_forward, *_copies(*args), name="gru_step_forward", case=case,
                       hint=HINTS["gru_forward"], numpy_only=NUMPY_ONLY)
    cache = core.unpack(result, 2, "gru_step_forward", ("next_h", "cache"))[1]
    names = ("dx", "dprev_h", "dWx", "dWh", "dbx", "dbh")
    result = core.call(gru_step_backward, dnext_h.copy(), cache, name="gru_step_backward", case=case,
                       hint=HINTS["gru_backward"], numpy_only=NUMPY_ONLY)
    got = dict(zip(names, core.unpack(result, 6, "gru_step_backward", names)))
    return _compare_all("gru_step_backward", case, got, oracle_gru_step_backward(*args, dnext_h), TOL.backward,
                        dict.fromkeys(names, HINTS["gru_backward"]))


# ----------------------------------------------------------------------------- clipping
def _clip_shapes(shapes):
    """``shapes`` as a list of tuples of positive ints; ValueError naming ``shapes`` otherwise."""
    try:
        shapes = [tuple(_integer(n, "shapes") for n in shape) for shape in shapes]
    except TypeError:
        shapes = []
    if not shapes:
        raise ValueError("shapes must be a non-empty list of array shapes (tuples of positive ints)")
    return shapes


def _number(value, name, hint):
    """A student's returned scalar as a float; CheckFailure for anything else (None, arrays, bools)."""
    if isinstance(value, (Real, np.ndarray, np.generic)) and not isinstance(value, (bool, np.bool_)):
        array = np.asarray(value)
        if array.ndim == 0 and array.dtype.kind in "iuf":
            return float(array)
    core.fail(name, f"expected the total norm as a number, got {type(value).__name__}.", hint)


def _clip_case(clip_grad_norm, grads, total, label, max_norm, shapes):
    """One call of clip_grad_norm on copies of ``grads``; returns (total_norm error, largest grads error).

    Comparisons are divided by the global norm, so tiny and huge gradients are judged alike.
    """
    arrays = _copies(*grads)
    given = list(arrays)
    case = {"shapes": shapes, "global norm": f"{total:.3g}", "max_norm": f"{max_norm:.3g}"}
    returned = core.call(clip_grad_norm, given, max_norm, name="clip_grad_norm", case=case,
                         hint=HINTS["clip_call"], numpy_only=NUMPY_ONLY)
    name = f"clip_grad_norm ({label}; case: {core.describe(case)})"
    total_got = _number(returned, f"{name}: returned total_norm", HINTS["clip_total"])
    total_error = core.compare(f"{name}: returned total_norm", total_got / total, 1.0, TOL.forward,
                               HINTS["clip_total"])
    hint = HINTS["clip_above" if total > max_norm else "clip_equal" if total == max_norm else "clip_below"]
    errors = [0.0]
    for k, (array, want) in enumerate(zip(arrays, oracle_clip_grad_norm(grads, max_norm)[0])):
        if given[k] is not array:
            core.fail(name, f"grads[{k}] was replaced by a new array; modify the arrays themselves in place.", hint)
        errors.append(core.compare(f"{name}: grads[{k}] after the call", array / total, want / total,
                                   TOL.forward, hint))
    return total_error, max(errors)


@core.check
def check_clip_grad_norm(clip_grad_norm, seed=0, shapes=((3, 4), (5,), (2, 2, 2)), scale=3.0):
    """Check clip_grad_norm(grads, max_norm) -> total_norm against the spec's closed form (TOL.forward).

    Gradients N(0, scale^2) of the given shapes, four thresholds: below the global norm (every array
    scaled in place by max_norm / total_norm), equal to it (factor 1), just above it and far above
    it (nothing changes). Each must return the global norm before clipping.
    Raises CheckFailure; ValueError for bad seed, shapes or scale.
    """
    shapes = _clip_shapes(shapes)
    grads = _arrays(_integer(seed, "seed", 0), shapes, scale=positive_number(scale, "scale"))
    total = oracle_clip_grad_norm(grads, 1.0)[1]
    cases = {"norm above max_norm": 0.3 * total, "norm equal to max_norm": total,
             "norm just below max_norm": total * (1 + 1e-9), "norm below max_norm": 2.0 * total}
    errors = [_clip_case(clip_grad_norm, grads, total, label, max_norm, shapes) for label, max_norm in cases.items()]
    return {"returned total_norm (4 thresholds)": max(e[0] for e in errors),
            "grads after the call (4 thresholds)": max(e[1] for e in errors)}


# ----------------------------------------------------------------------------- the experiments
@core.check
def check_gradient_norms_through_time(gradient_norms_through_time, T=12, seed=0):
    """Run the student's measuring function on torch.nn.LSTM and torch.nn.RNN layers (N=2, D=3, H=4)
    replayed in NumPy; the result must be ||dL/dx_t|| for t = 0..T-1 with L = sum(h[:, T-1]) (TOL.backward)."""
    T = _integer(T, "T")
    x, h0 = flow_inputs(T, seed, D=3, H=4, N=2)
    errors = {}
    for kind in ("lstm", "rnn"):
        params = init_recurrent_params(kind, 3, 4, seed=seed)
        forward, backward = _replay_layer(kind, x, h0, params)
        case = {"layer": f"torch.nn.{kind.upper()} replayed in NumPy", "N": 2, "T": T, "D": 3, "H": 4}
        got = core.call(gradient_norms_through_time, forward, backward, x.copy(), h0.copy(), _copies(*params),
                        name="gradient_norms_through_time", case=case, hint=HINTS["flow_call"],
                        numpy_only=NUMPY_ONLY)
        errors[f"norms ({kind} layer)"] = core.compare(
            f"gradient_norms_through_time (case: {core.describe(case)})", got,
            oracle_gradient_norms_through_time(kind, x, h0, params), TOL.backward, HINTS["flow_norms"])
    return errors


@core.check
def check_gradient_flow(gradient_norms_through_time, lstm_forward, lstm_backward, T=40, seed=0):
    """The experiment of Part 5 (N=8, D=6, H=16, forget-gate bias 1): the student's function on the
    student's LSTM must give torch.nn.LSTM's ||dL/dx_t|| (TOL.backward), and at t = 0, relative to the
    last step, at least FLOW_MIN_RATIO times the torch vanilla RNN's."""
    x, h0 = flow_inputs(T, seed)
    (N, T, D), H = x.shape, h0.shape[1]
    lstm_params = init_recurrent_params("lstm", D, H, forget_bias=1.0, seed=seed)
    case = {"N": N, "T": T, "D": D, "H": H, "forget bias": 1.0}
    forward = _guarded(lstm_forward, "lstm_forward", _FORWARD_ARGS, HINTS["flow_lstm"])
    backward = _guarded(lstm_backward, "lstm_backward", _BACKWARD_ARGS, HINTS["flow_lstm"])
    got = core.call(gradient_norms_through_time, forward, backward, x.copy(), h0.copy(), _copies(*lstm_params),
                    name="gradient_norms_through_time", case=case, hint=HINTS["flow_call"], numpy_only=NUMPY_ONLY)
    error = core.compare(f"gradient flow: ||dL/dx_t|| through your LSTM (case: {core.describe(case)})", got,
                         oracle_gradient_norms_through_time("lstm", x, h0, lstm_params), TOL.backward,
                         HINTS["flow_lstm"])
    lstm = np.asarray(got, dtype=np.float64)
    rnn = oracle_gradient_norms_through_time("rnn", x, h0, init_recurrent_params("rnn", D, H, seed=seed))
    lstm_first, rnn_first = lstm[0] / lstm[-1], rnn[0] / rnn[-1]
    if not lstm_first >= FLOW_MIN_RATIO * rnn_first:
        core.fail("gradient flow", f"the LSTM's gradient at t=0 is {lstm_first:.2e} of its last-step value, the RNN's "
                                   f"{rnn_first:.2e}; expected the LSTM's to be >= {FLOW_MIN_RATIO:g} times larger.")
    return {"||dL/dx_t|| of your LSTM": error,
            "gradient at t=0": f"LSTM {lstm_first:.1e}, RNN {rnn_first:.1e} of their last-step values "
                               f"(LSTM >= {FLOW_MIN_RATIO:g} x RNN)"}


def train_lstm(train, lstm_forward, lstm_backward, params):
    """Run the notebook's training loop ``train(forward, backward, params)`` on the student's LSTM.

    Every call of ``lstm_forward`` / ``lstm_backward`` is a ``core.call`` (NumPy only; an error names
    the function and the shapes). Returns what ``train`` returns: (accuracy, losses).
    """
    forward = _guarded(lstm_forward, "lstm_forward", _FORWARD_ARGS, HINTS["recall"])
    backward = _guarded(lstm_backward, "lstm_backward", _BACKWARD_ARGS, HINTS["recall"])
    return core.call(train, forward, backward, params, name="train_on_recall with your lstm_forward / lstm_backward",
                     case="delayed recall, gap 40", hint=HINTS["recall"], numpy_only=NUMPY_ONLY)


@core.check
def check_long_range(lstm_accuracy, rnn_accuracy):
    """Behaviour: the student's LSTM solves delayed recall (accuracy >= RECALL_MIN_ACCURACY) and beats the
    vanilla RNN by at least RECALL_MIN_LEAD; values on a threshold pass. Raises CheckFailure."""
    for name, value in (("lstm_accuracy", lstm_accuracy), ("rnn_accuracy", rnn_accuracy)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Real, np.number)) \
                or not 0.0 <= float(value) <= 1.0:
            core.fail("long-range recall", f"{name} must be an accuracy between 0 and 1, got {value!r}.")
    lstm_accuracy, rnn_accuracy = float(lstm_accuracy), float(rnn_accuracy)
    if lstm_accuracy < RECALL_MIN_ACCURACY - _TIE:
        core.fail("long-range recall", f"your LSTM reached accuracy {lstm_accuracy:.3f}, below {RECALL_MIN_ACCURACY}.",
                  "if your layers pass their tests, check that the training cell ran unchanged.")
    if lstm_accuracy - rnn_accuracy < RECALL_MIN_LEAD - _TIE:
        core.fail("long-range recall", f"LSTM {lstm_accuracy:.3f} vs RNN {rnn_accuracy:.3f}; the LSTM should lead "
                                       f"by at least {RECALL_MIN_LEAD}.")
    return {"LSTM accuracy": f"{lstm_accuracy:.3f} (>= {RECALL_MIN_ACCURACY})",
            "lead over the RNN": f"{lstm_accuracy - rnn_accuracy:.3f} (>= {RECALL_MIN_LEAD})"}
