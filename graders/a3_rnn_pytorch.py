"""The grader of assignment a3_rnn_pytorch: recurrent layers, truncated BPTT and sampling in PyTorch.

Oracles, all independent of the students' code: ``torch.nn.LSTMCell`` / ``LSTM`` / ``RNN`` holding
the same weights (``graders.torch_layout``), autograd, ``torch.autograd.gradcheck``, and a tiny
float64 ``nn.LSTM`` language model for the TBPTT and sampling checks. Every check runs in float64
(tolerances ``core.TOL``) on the CPU or on ``device``, calls the student's code through
``core.call`` (an exception names the function, the case and a hint), returns
``{output: relative error}`` (decorated with ``core.check``: prints ``ok`` lines, returns None)
and raises ``core.CheckFailure``. Bad arguments to a check raise ValueError naming the argument.
"""
import copy
import math

import numpy as np
import torch

from graders import core, torch_layout
from helpers._validate import function as function_arg
from helpers._validate import integer, positive_number
from helpers.text import tbptt_batches

NUMPY_ONLY = False
self_check = core.self_check  # the notebook's self-check cells: grader.self_check(grader.check_x, ...)

TOL = core.TOL
GATE_ORDER = "PyTorch's gate order along the 4H axis is i, f, g, o (input, forget, candidate, output)."
NEW_ZEROS = ("with state=None, start from zeros of x's dtype and device: x.new_zeros(N, H). torch.zeros(N, H) "
             "is float32 on the CPU, but the grader's x is float64 (and on your device).")
SAME_DTYPE = ("compute in x's dtype on x's device: create new tensors with x.new_zeros(...) (or dtype=x.dtype, "
              "device=x.device) and do not convert with .float() or .cpu().")
MAX_TV = 0.06  # sample(): largest total-variation distance between sampled and expected frequencies
N_DRAWS = 2000  # sample(): ids drawn per temperature


# ---------------------------------------------------------------- small utilities
def _device(device):
    """``device`` (None = CPU, a string or a torch.device) as a torch.device; ValueError names ``device``."""
    if device is None:
        return torch.device("cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device must be a torch.device or a string like 'cpu', got {device!r}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device is 'cuda' but no CUDA device is available")
    return device


def _seed(seed):
    return integer(seed, "seed", 0)


def _tensor(array, device, grad=False):
    return torch_layout.tensor64(array, grad=grad, device=device)


def _leaves(tensors):
    """Fresh copies of ``tensors`` that require grad (one set per forward pass)."""
    return [t.detach().clone().requires_grad_(True) for t in tensors]


def _grad(tensor, name):
    if tensor.grad is None:
        core.fail(name, "got no gradient (None). Is the tensor used in the computation, and did you keep it in the "
                        "graph (no .detach(), .data or .item() on the way)?")
    return tensor.grad


def _same_dtype_device(name, got, x, case, hint=SAME_DTYPE):
    """Fail when a returned tensor's dtype or device differs from the input's."""
    if isinstance(got, torch.Tensor) and (got.dtype != x.dtype or got.device != x.device):
        dtype, x_dtype = (str(t.dtype).removeprefix("torch.") for t in (got, x))
        core.fail(name, f"returned {dtype} on {got.device.type} for {x_dtype} input on {x.device.type} "
                        f"(case: {core.describe(case)}).", hint)


def _student(fn, *args, name, case, hint, **kwargs):
    """``core.call`` of a student's function or class in this (PyTorch) assignment."""
    return core.call(fn, *args, name=name, case=case, hint=hint, numpy_only=NUMPY_ONLY, **kwargs)


# ---------------------------------------------------------------- Part 1: LSTMCellFunction
CELL_GRADS = ("dx", "dprev_h", "dprev_c", "dWx", "dWh", "db")
CELL_HINTS = {
    "dx": "dx = da @ Wx.T, where da stacks the four gate pre-activation gradients in the order i, f, g, o.",
    "dprev_h": "dprev_h = da @ Wh.T.",
    "dprev_c": "dprev_c = dc * f: the cell gradient flows to the previous cell through the forget gate; and dc "
               "must add dnext_c to the part coming from next_h (dnext_h * o * (1 - tanh(next_c)**2)).",
    "dWx": "dWx = x.T @ da (shape (D, 4H)).",
    "dWh": "dWh = prev_h.T @ da (shape (H, 4H)).",
    "db": "db = da.sum(dim=0), shape (4H,): the bias is shared by every row of the batch. (Autograd would sum an "
          "(N, 4H) db for you; the grader calls your backward directly and wants the documented shape.)",
}


def _cell_apply(function):
    """The autograd.Function subclass's ``apply`` (or a callable given directly)."""
    if isinstance(function, type) and issubclass(function, torch.autograd.Function):
        return function.apply
    if callable(function) and not isinstance(function, type):
        return function
    raise ValueError(f"function must be a torch.autograd.Function subclass or its apply, got {function!r}")


def _cell_forward(apply, inputs, case):
    """Run the student's forward on fresh leaves; return (leaves, next_h, next_c)."""
    leaves = _leaves(inputs)
    out = _student(apply, *leaves, name="LSTMCellFunction.forward", case=case,
                   hint="forward(ctx, x, prev_h, prev_c, Wx, Wh, b): a = x @ Wx + prev_h @ Wh + b is (N, 4H).")
    next_h, next_c = core.unpack(out, 2, "LSTMCellFunction.forward", ("next_h", "next_c"))
    return leaves, next_h, next_c


def _cell_backward(next_h, dnext_h, dnext_c, case):
    """The six values the student's ``backward`` returns, called directly (no autograd reshaping)."""
    node = getattr(next_h, "grad_fn", None)
    if node is None or not hasattr(node, "_forward_cls"):
        core.fail("LSTMCellFunction.forward", f"next_h is not the output of your Function (grad_fn={node}).",
                  "compute next_h and next_c inside forward from its inputs and return them; call it as "
                  "LSTMCellFunction.apply(x, prev_h, prev_c, Wx, Wh, b).")
    with torch.no_grad():  # as when autograd calls it
        grads = _student(node.apply, dnext_h, dnext_c, name="LSTMCellFunction.backward", case=case,
                         hint="backward(ctx, dnext_h, dnext_c) returns (dx, dprev_h, dprev_c, dWx, dWh, db).")
    return core.unpack(grads, 6, "LSTMCellFunction.backward", CELL_GRADS)


def _cell_gradcheck(apply, inputs, case):
    def run():
        try:
            torch.autograd.gradcheck(apply, _leaves(inputs), eps=1e-6, atol=1e-5, rtol=1e-3)
        except torch.autograd.gradcheck.GradcheckError as error:
            core.fail("LSTMCellFunction: torch.autograd.gradcheck",
                      f"{str(error).splitlines()[0]} (case: {core.describe(case)}).",
                      "backward must return one gradient per forward input, in the same order "
                      "(dx, dprev_h, dprev_c, dWx, dWh, db).")

    _student(run, name="LSTMCellFunction (torch.autograd.gradcheck)", case=case,
             hint="gradcheck calls forward and backward many times with float64 inputs.")


@core.check
def check_lstm_cell_function(function, N=3, D=4, H=5, seed=0, device=None):
    """Check an LSTM step written as a ``torch.autograd.Function`` with a hand-written backward.

    ``function.apply(x, prev_h, prev_c, Wx, Wh, b) -> (next_h, next_c)`` with x (N, D), prev_h and
    prev_c (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,), gate order i, f, g, o. In float64 on ``device``:

    1. forward against ``torch.nn.LSTMCell`` with the same weights (< TOL.forward);
    2. ``backward`` called directly with upstream gradients on both outputs, then on next_h only
       (dnext_c = 0): the six gradients must have the shapes of the inputs and match autograd
       through ``nn.LSTMCell`` (< TOL.backward);
    3. ``torch.autograd.gradcheck`` on the function.
    Inputs: function (the Function subclass or its ``apply``), N, D, H >= 1, seed >= 0, device.
    Raises CheckFailure naming the first wrong value; ValueError for bad arguments.
    """
    apply = _cell_apply(function)
    N, D, H, seed, device = integer(N, "N"), integer(D, "D"), integer(H, "H"), _seed(seed), _device(device)
    case = {"N": N, "D": D, "H": H, "dtype": "float64", "device": device.type}
    rng = np.random.default_rng(seed)
    x, h, c = rng.normal(size=(N, D)), rng.normal(size=(N, H)), rng.normal(size=(N, H))
    Wx, Wh, b = 0.5 * rng.normal(size=(D, 4 * H)), 0.5 * rng.normal(size=(H, 4 * H)), 0.5 * rng.normal(size=4 * H)
    inputs = [_tensor(a, device) for a in (x, h, c, Wx, Wh, b)]
    oracle = torch_layout.torch_recurrent("lstm", Wx, Wh, b, cell=True, seed=seed, device=device)
    errors = {}

    _, next_h, next_c = _cell_forward(apply, inputs, case)
    ref_h, ref_c = oracle(inputs[0], (inputs[1], inputs[2]))
    errors["next_c"] = core.compare("LSTMCellFunction: next_c", next_c, ref_c, TOL.forward, GATE_ORDER)
    errors["next_h"] = core.compare("LSTMCellFunction: next_h", next_h, ref_h, TOL.forward,
                                    "next_h = o * tanh(next_c). " + GATE_ORDER)

    for upstream in ("both", "next_h only"):
        dh = _tensor(rng.normal(size=(N, H)), device)
        dc = _tensor(rng.normal(size=(N, H)) if upstream == "both" else np.zeros((N, H)), device)
        _, next_h, _ = _cell_forward(apply, inputs, case)
        got = _cell_backward(next_h, dh, dc, dict(case, upstream=upstream))
        expected = _cell_oracle_grads(oracle, inputs, dh, dc)
        suffix = "" if upstream == "both" else " (loss of next_h only: dnext_c is zeros)"
        for name, g, e in zip(CELL_GRADS, got, expected):
            errors[name + suffix] = core.compare(f"LSTMCellFunction.backward: {name}{suffix}", g, e, TOL.backward,
                                                 CELL_HINTS[name])

    _cell_gradcheck(apply, inputs, case)
    errors["torch.autograd.gradcheck"] = "passed"
    return errors


def _cell_oracle_grads(oracle, inputs, dh, dc):
    """Autograd's (dx, dprev_h, dprev_c, dWx, dWh, db) through a copy of ``nn.LSTMCell``."""
    cell = copy.deepcopy(oracle)
    x, h, c = _leaves(inputs[:3])
    next_h, next_c = cell(x, (h, c))
    ((next_h * dh).sum() + (next_c * dc).sum()).backward()
    grads = torch_layout.gradients(cell)
    return x.grad, h.grad, c.grad, grads["dWx"], grads["dWh"], grads["db"]


# ---------------------------------------------------------------- Parts 2, 3, 5: LSTM / RNN modules
KINDS = {"LSTM": ("lstm", 4), "RNN": ("rnn", 1)}


def _module_class(cls):
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise ValueError(f"cls must be an nn.Module subclass, got {cls!r}")
    return cls


def _check_parameters(module, label, kind, D, H):
    """Wx (D, GH), Wh (H, GH), b (GH,) must be registered nn.Parameters of ``module``."""
    gates = KINDS[kind][1]
    registered = list(module.parameters())
    for name, shape in {"Wx": (D, gates * H), "Wh": (H, gates * H), "b": (gates * H,)}.items():
        value = getattr(module, name, None)
        if not isinstance(value, torch.nn.Parameter):
            core.fail(f"{label}.{name}", f"expected an nn.Parameter of shape {shape}, got {type(value).__name__}.",
                      "create it with nn.Parameter(...) in __init__ so that model.parameters() sees it.")
        if tuple(value.shape) != shape:
            core.fail(f"{label}.{name}", f"expected shape {shape}, got {tuple(value.shape)}.",
                      f"Wx is (D, {gates}H), Wh is (H, {gates}H), b is ({gates}H,): x @ Wx, not Wx @ x.")
        if not any(p is value for p in registered):
            core.fail(f"{label}.{name}", "is not registered as a parameter of the module.")


def _new_module(cls, kind, D, H, case):
    """``cls(D, H)`` through core.call, with its parameters checked."""
    label = f"{cls.__name__}({D}, {H})"
    module = _student(cls, D, H, name=label, case=case,
                      hint="__init__(self, D, H) creates Wx, Wh and b as nn.Parameter.")
    _check_parameters(module, label, kind, D, H)
    return module


def _weights(kind, D, H, seed):
    """Random course weights (Wx, Wh, b) as NumPy arrays."""
    gates = KINDS[kind][1]
    rng = np.random.default_rng(seed)
    return (rng.uniform(-0.6, 0.6, (D, gates * H)), rng.uniform(-0.6, 0.6, (H, gates * H)),
            rng.uniform(-0.6, 0.6, gates * H))


def _module_inputs(kind, N, T, D, H, seed, device):
    rng = np.random.default_rng(seed + 1)
    names = ["x", "h0", "c0", "dout", "dh", "dc"] if kind == "LSTM" else ["x", "h0", "dout", "dh"]
    shapes = {"x": (N, T, D), "dout": (N, T, H)}
    return {name: _tensor(rng.normal(size=shapes.get(name, (N, H))), device) for name in names}


def _run_module(module, kind, inputs, with_state, label, case):
    """The student's forward on fresh leaves: (leaves, out, {final name: tensor})."""
    leaves = dict(zip(inputs, _leaves(inputs.values())))
    if kind == "LSTM":
        args = (leaves["x"], (leaves["h0"], leaves["c0"])) if with_state else (leaves["x"],)
    else:
        args = (leaves["x"], leaves["h0"]) if with_state else (leaves["x"],)
    hint = "x[:, t] is (N, D); a = x_t @ Wx + h @ Wh + b." if with_state else NEW_ZEROS
    result = _student(module, *args, name=f"{label}.forward", case=case, hint=hint)
    out, final = core.unpack(result, 2, f"{label}.forward", ("out", "h_T" if kind == "RNN" else "(h_T, c_T)"))
    if kind == "LSTM":
        h_T, c_T = core.unpack(final, 2, f"{label}.forward: the final state", ("h_T", "c_T"))
        return leaves, out, {"h_T": h_T, "c_T": c_T}
    return leaves, out, {"h_T": final}


def _oracle_module(oracle, kind, inputs, with_state):
    """Oracle's (leaves, out, finals) for the same inputs."""
    leaves = dict(zip(inputs, _leaves(inputs.values())))
    x = leaves["x"]
    if kind == "LSTM":
        out, (h, c) = oracle(x, (leaves["h0"][None], leaves["c0"][None])) if with_state else oracle(x)
        return leaves, out, {"h_T": h[0], "c_T": c[0]}
    out, h = oracle(x, leaves["h0"][None]) if with_state else oracle(x)
    return leaves, out, {"h_T": h[0]}


def _module_and_oracle(cls, kind, D, H, seed, device, case):
    """The student's ``cls(D, H)`` in float64 on ``device`` and the torch oracle, with the same random weights."""
    module = _new_module(cls, kind, D, H, case).to(device=device, dtype=torch.float64)
    Wx, Wh, b = _weights(kind, D, H, seed)
    with torch.no_grad():
        for name, value in zip(("Wx", "Wh", "b"), (Wx, Wh, b)):
            getattr(module, name).copy_(_tensor(value, device))
    return module, torch_layout.torch_recurrent(KINDS[kind][0], Wx, Wh, b, seed=seed, device=device)


def _forward_errors(label, kind, what, got, expected, x, case):
    """Compare (out, finals) with the oracle's; outputs must have x's dtype and device."""
    (out, finals), (ref_out, ref_finals) = got, expected
    order = " " + GATE_ORDER if kind == "LSTM" else ""
    for name, value in {"out": out, **finals}.items():
        _same_dtype_device(f"{label}.forward ({what}): {name}", value, x, case)
    errors = {f"forward ({what}): out": core.compare(
        f"{label}.forward ({what}): out", out, ref_out, TOL.forward,
        "out[:, t] is the hidden state h_t of step t; loop over t in order." + order)}
    for name, value in finals.items():
        errors[f"forward ({what}): {name}"] = core.compare(
            f"{label}.forward ({what}): {name}", value, ref_finals[name], TOL.forward,
            "return the state after the last step, shape (N, H)." + order)
    return errors


def _upstream_loss(out, finals, inputs):
    """A scalar that sends random upstream gradients into out and every final state."""
    upstream = {"h_T": inputs["dh"], "c_T": inputs.get("dc")}
    return (out * inputs["dout"]).sum() + sum((value * upstream[name]).sum() for name, value in finals.items())


def _check_module(cls, kind, N, T, D, H, seed, with_state, device):
    cls = _module_class(cls)
    N, T, D, H = integer(N, "N"), integer(T, "T"), integer(D, "D"), integer(H, "H")
    seed, device = _seed(seed), _device(device)
    if not isinstance(with_state, bool):
        raise ValueError(f"with_state must be True or False, got {with_state!r}")
    what, label = ("state given" if with_state else "state=None"), cls.__name__
    case = {"N": N, "T": T, "D": D, "H": H, "state": "given" if with_state else "None", "dtype": "float64",
            "device": device.type}
    module, oracle = _module_and_oracle(cls, kind, D, H, seed, device, case)
    inputs = _module_inputs(kind, N, T, D, H, seed, device)
    leaves, out, finals = _run_module(module, kind, inputs, with_state, label, case)
    ref_leaves, ref_out, ref_finals = _oracle_module(oracle, kind, inputs, with_state)
    errors = _forward_errors(label, kind, what, (out, finals), (ref_out, ref_finals), leaves["x"], case)

    _student(_upstream_loss(out, finals, inputs).backward, name=f"{label} backward (autograd through your forward)",
             case=case, hint="autograd fails on in-place changes of tensors it saved (c += ..., h[:] = ...): write "
                             "c = ... instead; and keep every step in the graph (no .detach(), .data or .item()).")
    _upstream_loss(ref_out, ref_finals, inputs).backward()
    expected = torch_layout.gradients(oracle)
    states = [n for n in ("x", "h0", "c0") if n in leaves and (with_state or n == "x")]
    grads = [(f"d{n}", _grad(leaves[n], f"d{n}"), ref_leaves[n].grad) for n in states]
    grads += [(f"d{n}", _grad(getattr(module, n), f"d{n}"), expected[f"d{n}"]) for n in ("Wx", "Wh", "b")]
    for name, got, exp in grads:
        errors[f"backward ({what}): {name}"] = core.compare(
            f"{label} backward ({what}): {name}", got, exp, TOL.backward,
            "autograd computes these for you: make sure every step uses the module's parameters and the previous "
            "step's state, with no .detach() inside forward.")
    return errors


@core.check
def check_lstm_module(cls, N=2, T=3, D=4, H=5, seed=0, with_state=True, device=None):
    """Check an ``LSTM(nn.Module)`` (or a subclass such as ``FastLSTM``) against ``nn.LSTM(batch_first=True)``.

    ``cls(D, H)`` owns parameters ``Wx (D, 4H)``, ``Wh (H, 4H)``, ``b (4H,)``; ``forward(x, state=None)
    -> (out (N, T, H), (h_T, c_T))`` with x (N, T, D) and state ``(h_0, c_0)``, each (N, H), or None
    (zeros of x's dtype and device). The check copies random weights in (the oracle gets
    weight_ih = Wx.T, weight_hh = Wh.T, bias_ih + bias_hh = b), casts the module to float64, moves it
    to ``device``, calls ``forward(x, (h_0, c_0))`` (``with_state=True``) or ``forward(x)``, and
    compares out, h_T, c_T (dtype and device of x, < TOL.forward) and the gradients of x, h_0, c_0,
    Wx, Wh, b (< TOL.backward).
    Raises CheckFailure; ValueError for bad arguments.
    """
    return _check_module(cls, "LSTM", N, T, D, H, seed, with_state, device)


@core.check
def check_rnn_module(cls, N=2, T=3, D=4, H=5, seed=0, with_state=True, device=None):
    """Check a vanilla ``RNN(nn.Module)`` against ``nn.RNN(batch_first=True)`` (tanh).

    ``cls(D, H)`` owns ``Wx (D, H)``, ``Wh (H, H)``, ``b (H,)``; ``forward(x, h0=None) -> (out (N, T, H),
    h_T (N, H))``, h0 None meaning zeros of x's dtype and device. Compares the outputs (< TOL.forward)
    and the gradients of x, h0, Wx, Wh, b (< TOL.backward) in float64, like ``check_lstm_module``.
    """
    return _check_module(cls, "RNN", N, T, D, H, seed, with_state, device)


def _check_loader(cls, kind, D, H, seed, device):
    cls = _module_class(cls)
    D, H, seed, device = integer(D, "D"), integer(H, "H"), _seed(seed), _device(device)
    case = {"D": D, "H": H, "dtype": "float64", "device": device.type}
    gates = "4" if kind == "LSTM" else ""
    torch_kind = KINDS[kind][0]
    nn_module = torch_layout.torch_recurrent(torch_kind, *_weights(kind, D, H, seed), seed=seed, device=device)
    label = f"{cls.__name__}.from_torch"
    loader = getattr(cls, "from_torch", None)
    if loader is None:
        core.fail(label, "is missing.", "define it as a @classmethod from_torch(cls, module).")
    module = _student(loader, nn_module, name=label, case=case,
                      hint="from_torch is a @classmethod: cls(module.input_size, module.hidden_size), then copy "
                           "the weights under torch.no_grad().")
    if not isinstance(module, cls):
        core.fail(label, f"must return a {cls.__name__}, got {type(module).__name__}.")
    _check_parameters(module, label, kind, D, H)
    for name in ("Wx", "Wh", "b"):
        _same_dtype_device(f"{label}: {name}", getattr(module, name), nn_module.weight_ih_l0, case,
                           "move the new module with .to(device=..., dtype=...) of the nn module's weights.")
    Wx, Wh, b = torch_layout.course_weights(nn_module)
    errors = {
        "Wx": core.compare(f"{label}: Wx", module.Wx, Wx, TOL.forward,
                           f"nn.{kind} stores weight_ih_l0 as ({gates}H, D) for W x; your Wx is (D, {gates}H) for "
                           "x @ Wx: transpose it."),
        "Wh": core.compare(f"{label}: Wh", module.Wh, Wh, TOL.forward, "Wh = weight_hh_l0.T."),
        "b": core.compare(f"{label}: b", module.b, b, TOL.forward,
                          f"nn.{kind} has two biases, bias_ih and bias_hh, that are always added: b = b_ih + b_hh."),
    }
    with torch.no_grad():  # the copy must own its values
        for p in nn_module.parameters():
            p.add_(1.0)
    errors[f"Wx after changing the nn.{kind}"] = core.compare(
        f"{label}: Wx after changing the nn.{kind}", module.Wx, Wx, TOL.forward,
        "copy the values (e.g. .detach().clone()) so the two modules do not share storage.")
    return errors


@core.check
def check_lstm_loader(cls, D=4, H=5, seed=0, device=None):
    """Check ``cls.from_torch(nn.LSTM(D, H, batch_first=True))`` (float64, on ``device``): it returns a
    ``cls`` whose registered parameters Wx = weight_ih_l0.T, Wh = weight_hh_l0.T, b = bias_ih_l0 +
    bias_hh_l0 have the nn module's dtype and device and own their values."""
    return _check_loader(cls, "LSTM", D, H, seed, device)


@core.check
def check_rnn_loader(cls, D=4, H=5, seed=0, device=None):
    """Check ``cls.from_torch(nn.RNN(D, H, batch_first=True))`` like ``check_lstm_loader``."""
    return _check_loader(cls, "RNN", D, H, seed, device)


# ---------------------------------------------------------------- Part 4: truncated BPTT
class _TinyCharLM(torch.nn.Module):
    """The tiny language model of the TBPTT and sampling checks, built like the notebook's CharLM:
    ``model(idx (N, T) long, state=None) -> (logits (N, T, V), (h, c))``, h and c (1, N, H)."""

    def __init__(self, V, E, H):
        super().__init__()
        self.embed = torch.nn.Embedding(V, E)
        self.rnn = torch.nn.LSTM(E, H, batch_first=True)
        self.head = torch.nn.Linear(H, V)

    def forward(self, idx, state=None):
        out, state = self.rnn(self.embed(idx), state)
        return self.head(out), state


def _tiny_char_lm(V, seed, device, E=4, H=6):
    """A float64 ``_TinyCharLM`` initialised from ``seed`` without touching torch's global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _TinyCharLM(V, E, H)
    return model.to(device=device, dtype=torch.float64)


def _oracle_tbptt_step(model, optimizer, x, y, state, max_norm):
    logits, new_state = model(x, state)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item(), tuple(s.detach() for s in new_state)


def _tbptt_call(tbptt_step, model, optimizer, x, y, state, max_norm, case):
    """The student's step through core.call; returns (loss, (h, c))."""
    hint = ("with state=None the model starts from zeros: pass None on, model(x, None). A zero state you build "
            "yourself needs the model's dtype and device." if state is None else
            "state is the tuple (h, c) your previous call returned: pass it to model(x, state) as it is.")
    result = _student(tbptt_step, model, optimizer, x, y, state, max_norm, name="tbptt_step", case=case, hint=hint)
    loss, new_state = core.unpack(result, 2, f"tbptt_step, chunk {case['chunk']}", ("loss", "new_state"))
    return loss, core.unpack(new_state, 2, f"tbptt_step, chunk {case['chunk']}: new_state", ("h", "c"))


def _loss_number(loss, where):
    """The returned loss as a float: a Python number or a tensor with one value that holds no graph."""
    if isinstance(loss, torch.Tensor):
        if loss.numel() != 1:
            core.fail(where, f"loss must be a number, got a tensor of shape {tuple(loss.shape)}.")
        if loss.requires_grad:
            core.fail(where, "the returned loss still holds the graph.",
                      "return loss.item() (a Python float) so that nothing keeps the graph alive.")
        return loss.item()
    if isinstance(loss, bool) or not isinstance(loss, (int, float, np.floating, np.integer)):
        core.fail(where, f"loss must be a Python float, got {type(loss).__name__}.", "return loss.item().")
    return float(loss)


def _detached(where, name, s):
    if not isinstance(s, torch.Tensor):
        core.fail(f"{where}: new_state {name}", f"expected a tensor, got {type(s).__name__}.")
    if s.grad_fn is not None or s.requires_grad:
        core.fail(f"{where}: new_state {name}",
                  f"is still attached to the graph (grad_fn={type(s.grad_fn).__name__ if s.grad_fn else None}, "
                  f"requires_grad={s.requires_grad}).",
                  "return tuple(s.detach() for s in state). A carried state that is not detached keeps every "
                  "earlier chunk's graph alive: memory and backward time grow with each chunk.")


def _stream(V, N, length, seed, device):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, V, (N, length), generator=gen).to(device)


def _chunk_errors(where, got, expected, model, oracle):
    """Compare one chunk's loss, new state and updated parameters with the oracle's."""
    (loss, state), (loss_ref, state_ref) = got, expected
    errors = {"loss": core.compare(
        f"{where}: loss", _loss_number(loss, where), loss_ref, TOL.forward,
        "mean cross-entropy over all N*T positions, computed with the carried state, before the update: "
        "F.cross_entropy(logits.reshape(-1, V), y.reshape(-1)).")}
    for name, value, exp in zip(("h", "c"), state, state_ref):
        _detached(where, name, value)
        errors["new_state"] = max(errors.get("new_state", 0.0), core.compare(
            f"{where}: new_state {name}", value, exp, TOL.forward,
            "return the state the model produced at the end of this chunk."))
    errors["parameters after the update"] = max(core.compare(
        f"{where}: parameter {pname} after the update", p, p_ref, TOL.backward,
        "order: zero_grad(), loss.backward(), clip_grad_norm_(model.parameters(), max_norm), optimizer.step(). "
        "The gradient must come from this chunk only (detached state).")
        for (pname, p), p_ref in zip(model.named_parameters(), oracle.parameters()))
    return errors


@core.check
def check_tbptt_step(tbptt_step, N=3, T=5, V=7, chunks=3, max_norm=0.05, seed=0, device=None):
    """Check one truncated-BPTT update ``tbptt_step(model, optimizer, x, y, state, max_norm)``.

    It must return ``(loss, new_state)``: loss the mean cross-entropy of the chunk computed from
    the carried ``state`` (None for the first chunk) before the update, as a Python float; the
    parameters updated once with the gradient clipped to global norm ``max_norm`` (a max_norm above
    the gradient's norm changes nothing); ``new_state`` the final ``(h, c)`` detached from the graph.
    ``chunks`` consecutive chunks (N, T) of one stream of ids in [0, V) run through the student's
    step and through an oracle on a copy of a tiny float64 LSTM model (plain SGD, lr 0.5, so every
    gradient difference shows), comparing loss and state (< TOL.forward) and every parameter after
    every update (< TOL.backward). A state that is not detached is caught on the first chunk.
    """
    tbptt_step = function_arg(tbptt_step, "tbptt_step")
    N, T, V, chunks = integer(N, "N"), integer(T, "T"), integer(V, "V", 2), integer(chunks, "chunks")
    max_norm, seed, device = positive_number(max_norm, "max_norm"), _seed(seed), _device(device)
    model = _tiny_char_lm(V, seed, device)
    oracle = copy.deepcopy(model)
    optimizer, optimizer_ref = (torch.optim.SGD(m.parameters(), lr=0.5) for m in (model, oracle))
    stream = _stream(V, N, chunks * T + 1, seed + 7, device)
    state = state_ref = None
    worst = {"loss": 0.0, "new_state": 0.0, "parameters after the update": 0.0}
    for k in range(chunks):
        x, y = stream[:, k * T:(k + 1) * T], stream[:, k * T + 1:(k + 1) * T + 1]
        case = {"N": N, "T": T, "V": V, "chunk": f"{k + 1} of {chunks}", "state": "None" if k == 0 else "carried",
                "max_norm": max_norm, "dtype": "float64", "device": device.type}
        loss, state = _tbptt_call(tbptt_step, model, optimizer, x, y, state, max_norm, case)
        loss_ref, state_ref = _oracle_tbptt_step(oracle, optimizer_ref, x, y, state_ref, max_norm)
        errors = _chunk_errors(f"tbptt_step, chunk {k + 1} of {chunks}", (loss, state), (loss_ref, state_ref),
                               model, oracle)
        worst = {key: max(worst[key], error) for key, error in errors.items()}
    return worst


@core.check
def check_state_detached(tbptt_step, chunks=3, seed=0, device=None):
    """Quick guard before a training run: ``tbptt_step`` must hand back a carried state detached from
    the graph, chunk after chunk (otherwise each backward runs through all earlier chunks and
    training time grows quadratically). Uses the tiny float64 model (V=7, N=2, T=4) and Adam.
    """
    tbptt_step = function_arg(tbptt_step, "tbptt_step")
    chunks, seed, device = integer(chunks, "chunks", 2), _seed(seed), _device(device)
    model = _tiny_char_lm(7, seed, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    stream = _stream(7, 2, chunks * 4 + 1, seed + 5, device)
    state = None
    for k in range(chunks):
        case = {"N": 2, "T": 4, "V": 7, "chunk": f"{k + 1} of {chunks}", "state": "None" if k == 0 else "carried",
                "max_norm": 1.0, "dtype": "float64", "device": device.type}
        x, y = stream[:, 4 * k:4 * k + 4], stream[:, 4 * k + 1:4 * k + 5]
        _, state = _tbptt_call(tbptt_step, model, optimizer, x, y, state, 1.0, case)
        for name, s in zip(("h", "c"), state):
            _detached(f"tbptt_step, chunk {k + 1} of {chunks}", name, s)
    return {"new_state": f"detached after each of {chunks} chunks"}


# ---------------------------------------------------------------- Part 4: sampling
class _FixedLogits(torch.nn.Module):
    """A 'model' whose next-id logits never change."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.nn.Parameter(logits.clone(), requires_grad=False)

    def forward(self, idx, state=None):
        n, t = idx.shape
        return self.logits.expand(n, t, -1).clone(), state


class _RunningSum(torch.nn.Module):
    """A 'model' whose next id is (sum of every id it has read) mod V, kept in its state.

    A sampler that drops the state, or does not feed the whole prefix, continues differently.
    """

    def __init__(self, V, device):
        super().__init__()
        self.V = V
        self.scale = torch.nn.Parameter(torch.tensor(10.0, dtype=torch.float64, device=device), requires_grad=False)

    def forward(self, idx, state=None):
        total = idx.new_zeros(idx.shape[0]) if state is None else state[0]
        logits = []
        for t in range(idx.shape[1]):
            total = total + idx[:, t]
            logits.append(torch.nn.functional.one_hot(total % self.V, self.V).to(self.scale.dtype) * self.scale)
        return torch.stack(logits, dim=1), (total, total.clone())


def oracle_greedy(model, prefix, length):
    """Greedy continuation, recomputed from scratch on the whole text at every step.

    Returns (ids, margin): the ``length`` new ids and the smallest gap between the best and the
    second-best logit along the way (a grading case must not hinge on a near-tie).
    """
    ids, margin = list(prefix), math.inf
    device = next(model.parameters()).device
    with torch.no_grad():
        for _ in range(length):
            logits, _ = model(torch.tensor([ids], device=device))
            top = torch.topk(logits[0, -1], 2).values
            margin = min(margin, float(top[0] - top[1]))
            ids.append(int(logits[0, -1].argmax()))
    return ids[len(prefix):], margin


def _ids(result, name, length, V):
    """The ids a sampler returned, as an int64 array of ``length`` values in [0, V)."""
    if isinstance(result, (torch.Tensor, np.ndarray)):
        result = (result.detach().cpu() if isinstance(result, torch.Tensor) else result).reshape(-1).tolist()
    if not isinstance(result, (list, tuple)):
        core.fail(name, f"expected a list of {length} ints, got {type(result).__name__}.")
    ids = []
    for i in result:
        if isinstance(i, torch.Tensor) and i.numel() == 1 and not i.is_floating_point():
            i = i.item()
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            core.fail(name, f"expected a list of ints, got an entry of type {type(i).__name__} ({i!r}).",
                      "append int(next_id) to the list.")
        ids.append(int(i))
    if len(ids) != length:
        core.fail(name, f"expected {length} new ids, got {len(ids)}.", "return only the generated ids, not the prefix.")
    if any(not 0 <= i < V for i in ids):
        core.fail(name, f"ids must lie in [0, {V}), got {sorted(set(ids))[:5]}...")
    return np.array(ids, dtype=np.int64)


def _sample(sample, model, prefix, length, case, **kwargs):
    return _student(sample, model, prefix, length, name="sample", case=case, **kwargs,
                    hint="build the input on the model's device, torch.tensor([prefix], device=next(model.parameters())"
                         ".device), and pass the state the model returned back in (None at first).")


@core.check
def check_sample(sample, V=7, prefix_len=4, length=12, seed=0, device=None):
    """Check ``sample(model, prefix, length, temperature=1.0, generator=None)``.

    - temperature=0 (greedy): the ids must equal (exactly) an oracle that reruns the model on the
      whole text at every step, for a small float64 LSTM model and for a counting model whose next
      id is the running sum of all ids read (mod V), so forgetting to carry the state or to feed
      the prefix shows;
    - temperature: with a model of fixed logits l, 2000 sampled ids must follow softmax(l / temperature)
      (total-variation distance < 0.06) for temperatures 0.5 and 2.
    Inputs: V >= 2 ids, a prefix of prefix_len >= 1 ids, length >= 1 new ids, seed, device (the models live there).
    """
    sample = function_arg(sample, "sample")
    V, prefix_len, length = integer(V, "V", 2), integer(prefix_len, "prefix_len"), integer(length, "length")
    seed, device = _seed(seed), _device(device)
    case = {"V": V, "prefix_len": prefix_len, "length": length, "dtype": "float64", "device": device.type}
    model = _tiny_char_lm(V, seed, device, H=8)
    with torch.no_grad():  # sharpen the model so that greedy choices are clear-cut
        model.head.weight.mul_(6.0)
    model.eval()
    prefix = _stream(V, 1, prefix_len, seed + 3, "cpu")[0].tolist()
    hint = ("feed the whole prefix first, then feed each chosen id back in one at a time, carrying the state (h, c) "
            "from call to call; temperature=0 (greedy) picks the argmax of the last step's logits, without "
            "dividing by the temperature.")
    expected, _ = oracle_greedy(model, prefix, length)
    name = "sample(temperature=0)"
    got = _ids(_sample(sample, model, prefix, length, dict(case, temperature=0), temperature=0), name, length, V)
    core.compare_exact(name, got, expected, hint)
    errors = {"greedy ids (temperature=0)": f"all {length} equal"}

    counter = _RunningSum(V, device)
    name = "sample(temperature=0) with a model whose next id is the sum of all ids read so far (mod V)"
    got = _ids(_sample(sample, counter, prefix, length, dict(case, temperature=0, model="running sum"),
                       temperature=0), name, length, V)
    core.compare_exact(name, got, oracle_greedy(counter, prefix, length)[0],
                       "feed the whole prefix, then only the new id at each step, and pass the returned state back in.")
    errors["greedy ids of a model that needs the state"] = f"all {length} equal"

    logits = torch.linspace(-1.5, 1.5, V, dtype=torch.float64, device=device)
    for temperature in (0.5, 2.0):
        errors[f"temperature {temperature}"] = _check_temperature(sample, logits, temperature, seed, case)
    return errors


def _check_temperature(sample, logits, temperature, seed, case):
    V, device = logits.numel(), logits.device
    generator = torch.Generator(device=device).manual_seed(seed + 11)
    name = f"sample(temperature={temperature})"
    got = _ids(_sample(sample, _FixedLogits(logits), [0], N_DRAWS,
                       dict(case, prefix_len=1, length=N_DRAWS, temperature=temperature),
                       temperature=temperature, generator=generator), name, N_DRAWS, V)
    freq = np.bincount(got, minlength=V) / N_DRAWS
    probs = torch.softmax(logits / temperature, dim=0).cpu().numpy()
    tv = 0.5 * float(np.abs(freq - probs).sum())
    if not tv < MAX_TV:
        core.fail(name, f"the sampled ids do not follow softmax(logits / temperature): total-variation distance "
                        f"{tv:.3f} (expected < {MAX_TV}). Frequencies {np.round(freq, 3).tolist()}, expected "
                        f"{np.round(probs, 3).tolist()}.",
                  "probs = softmax(logits[last step] / temperature); draw with torch.multinomial(probs, 1, "
                  "generator=generator). Divide by the temperature, do not multiply.")
    return f"total-variation distance {tv:.3f} (< {MAX_TV})"


# ---------------------------------------------------------------- Part 4: char-LM training
def evaluate_char_lm(model, ids, seq_len=64, batch_size=16):
    """Mean next-character cross-entropy (nats) of ``model`` on the id sequence ``ids`` (the oracle).

    Reads ``ids`` exactly as the notebook's ``evaluate_loss`` is specified to:
    ``helpers.text.tbptt_batches(ids, batch_size, seq_len)`` with the state carried from chunk to
    chunk, in eval mode, without gradients, in float64; the model's mode is restored afterwards.
    ``model(idx (N, T), state) -> (logits (N, T, V), state)``; ``ids``: 1-D ints (array, tensor or list).
    Raises ValueError naming ``ids``/``seq_len``/``batch_size`` when not even one chunk fits.
    """
    seq_len, batch_size = integer(seq_len, "seq_len"), integer(batch_size, "batch_size")
    ids = torch.as_tensor(ids, dtype=torch.long).reshape(-1).cpu().numpy()
    if len(ids) // batch_size < seq_len + 1:
        raise ValueError(f"ids has {len(ids)} entries: too few for batch_size={batch_size} and seq_len={seq_len}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count, state = 0.0, 0, None
    try:
        with torch.no_grad():
            for x, y in tbptt_batches(ids, batch_size, seq_len):
                x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
                logits, state = model(x, state)
                total += torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]).double(), y.reshape(-1), reduction="sum").item()
                count += y.numel()
    finally:
        model.train(was_training)
    return total / count


def run_char_lm_training(train_char_lm, model, train_ids, val_ids, **kwargs):
    """Run the student's ``train_char_lm(model, train_ids, val_ids, **kwargs)`` through ``core.call``
    (an exception names the function, the run's settings and a hint); return its history."""
    train_char_lm = function_arg(train_char_lm, "train_char_lm")
    case = dict(kwargs, device=next(model.parameters()).device.type)
    return _student(train_char_lm, model, train_ids, val_ids, name="train_char_lm", case=case, **kwargs,
                    hint="one tbptt_step per chunk of tbptt_batches(train_ids, batch_size, seq_len), the state carried "
                         "(None at the start and whenever you restart the text); evaluate_loss every eval_every steps.")


def _check_history(history, steps, eval_every):
    """``history`` as the docstring of ``train_char_lm`` promises it."""
    if not isinstance(history, dict):
        core.fail("train_char_lm", f"must return a dict with 'train_loss', 'val_loss' and 'val_step', got "
                                   f"{type(history).__name__}.")
    for key in ("train_loss", "val_loss"):
        values = history.get(key)
        if not isinstance(values, (list, tuple)) or not values:
            core.fail(f"history[{key!r}]", "must be a non-empty list of losses.")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            core.fail(f"history[{key!r}]", "must hold finite Python floats.", "append loss.item(), not the tensor.")
    if steps is not None and len(history["train_loss"]) != steps:
        core.fail("history['train_loss']", f"expected one loss per step ({steps}), got {len(history['train_loss'])}.")
    if steps is not None and eval_every is not None:
        expected = [s for s in range(1, steps + 1) if s % eval_every == 0 or s == steps]
        if list(history.get("val_step", ())) != expected:
            core.fail("history['val_step']", f"expected {expected}, got {history.get('val_step')!r}.",
                      "evaluate every eval_every steps and after the last step; record the step numbers.")
        if len(history["val_loss"]) != len(expected):
            core.fail("history['val_loss']", f"expected {len(expected)} values (one per entry of val_step), got "
                                             f"{len(history['val_loss'])}.")


@core.check
def check_char_lm_training(model, history, val_ids, max_val_loss, steps=None, eval_every=None, seq_len=64,
                           batch_size=16):
    """Check a trained character-level language model on held-out text.

    - ``history`` (what ``train_char_lm`` returned) is a dict with non-empty lists ``"train_loss"``
      and ``"val_loss"`` of finite floats; with ``steps``, ``train_loss`` has ``steps`` entries; with
      ``steps`` and ``eval_every`` too, ``"val_step"`` lists every multiple of eval_every and the last
      step, one per validation loss;
    - the validation loss measured here with ``evaluate_char_lm``, independently of the student's
      code, must be below ``max_val_loss`` (nats per character);
    - the last entry of ``history["val_loss"]`` (the student's ``evaluate_loss`` after the last step)
      must equal that measurement within ``TOL.float32`` (relative error), so ``evaluate_loss`` is
      graded here too.
    Raises CheckFailure; ValueError for bad arguments.
    """
    max_val_loss = positive_number(max_val_loss, "max_val_loss")
    steps = None if steps is None else integer(steps, "steps")
    eval_every = None if eval_every is None else integer(eval_every, "eval_every")
    _check_history(history, steps, eval_every)
    val = evaluate_char_lm(model, val_ids, seq_len=seq_len, batch_size=batch_size)
    if not val < max_val_loss:
        core.fail("char-LM validation loss", f"{val:.3f} nats/char, expected < {max_val_loss}.",
                  "targets are the inputs shifted by one character; carry and detach the state between chunks; "
                  "move through the whole training text chunk after chunk.")
    error = core.compare(
        "history['val_loss'][-1] (your evaluate_loss after the last step)", history["val_loss"][-1], val,
        TOL.float32, f"the grader measures {val:.4f} nats/char. evaluate_loss is the mean cross-entropy over ALL "
                     f"positions of tbptt_batches(ids, {batch_size}, {seq_len}) with the state carried from chunk "
                     "to chunk, in eval mode, without gradients; the last evaluation comes after the last update.")
    return {"validation loss": f"{val:.3f} nats/char (< {max_val_loss})", "evaluate_loss": error}
