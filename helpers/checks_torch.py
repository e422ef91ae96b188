"""The graders' checks of assignment a3_rnn_pytorch (recurrent layers in PyTorch).

Every oracle here is independent of the students' code: ``torch.nn.LSTMCell``,
``torch.nn.LSTM`` and ``torch.nn.RNN`` with the same weights copied in, autograd, and
``torch.autograd.gradcheck`` for hand-written backward passes. The checks only use what the
notebook's docstrings promise (class names, parameter names and shapes, call signatures).

Tolerances (relative error, see ``helpers.rel_error``): float64 forward < 1e-7, gradients
against the oracle < 1e-6. Every check raises ``AssertionError`` with a message that names
the wrong output and gives a hint; bad arguments to a check raise ``ValueError``.
"""
import copy
import math

import numpy as np

from .checks import check_error as _check_error
from ._validate import integer as _size

FWD_TOL = 1e-7
BWD_TOL = 1e-6
_VERBOSE = [False]  # set by self_check: print every comparison, not only failures


def assert_close(name, got, expected, tol, hint=None):
    """``helpers.assert_close`` that also prints the comparison inside ``self_check``."""
    error = _check_error(name, got, expected, tol, hint=hint)
    if _VERBOSE[0]:
        print(f"ok    {name}: relative error {error:.2e} (tolerance {tol:.0e})")
    return error


def self_check(check, *args, **kwargs):
    """Run one of this module's checks for a self-check cell: print every comparison and,
    instead of raising, a FAIL line with the reason. Returns None (nothing extra is displayed).

    Example: ``self_check(check_lstm_module, LSTM)`` prints "ok ..." lines with relative errors.
    """
    if not callable(check):
        raise ValueError(f"check must be one of the check functions, got {type(check).__name__}")
    _VERBOSE[0] = True
    try:
        check(*args, **kwargs)
    except NotImplementedError:
        print("FAIL  not implemented yet (NotImplementedError)")
        return
    except AssertionError as failure:
        print(f"FAIL  {failure}")
        return
    finally:
        _VERBOSE[0] = False
    print("all checks passed")


# ---------------------------------------------------------------- small utilities
def _torch():
    import torch  # lazily: NumPy-only notebooks never pay for the import

    return torch


def _device(device):
    torch = _torch()
    if device is None:
        return torch.device("cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device must be a torch.device or a string like 'cpu', got {device!r}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device is 'cuda' but no CUDA device is available")
    return device


def _fail(name, message, hint=None):
    raise AssertionError(f"{name}: {message}" + (f"\nHint: {hint}" if hint else ""))


def _as_tuple(value, name, length):
    if not isinstance(value, (tuple, list)) or len(value) != length:
        _fail(name, f"expected a tuple of {length} values, got {type(value).__name__}"
              + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else ""))
    return tuple(value)


def _grad(tensor, name):
    if tensor.grad is None:
        _fail(name, "got no gradient (None). Is the tensor used in the computation, and did you keep it in the "
                    "graph (no .detach(), .data or .item() on the way)?")
    return tensor.grad


def _is_tensor(value):
    return isinstance(value, _torch().Tensor)


# ---------------------------------------------------------------- LSTMCellFunction
def _cell_fn(function):
    """Accept the autograd.Function subclass itself or its ``apply``."""
    torch = _torch()
    if isinstance(function, type) and issubclass(function, torch.autograd.Function):
        return function.apply
    if callable(function):
        return function
    raise ValueError(f"function must be a torch.autograd.Function subclass or callable, got {type(function).__name__}")


def check_lstm_cell_function(function, N=3, D=4, H=5, seed=0, device=None):
    """Check an LSTM cell written as a ``torch.autograd.Function`` with a hand-written backward.

    ``function.apply(x, prev_h, prev_c, Wx, Wh, b) -> (next_h, next_c)`` with x (N, D),
    prev_h and prev_c (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,), PyTorch gate order i, f, g, o.

    1. forward against ``torch.nn.LSTMCell`` with the same weights (float64, < 1e-7);
    2. the six input gradients against autograd through ``nn.LSTMCell`` (< 1e-6), for a random
       upstream gradient on both outputs and for a loss that uses next_h only;
    3. ``torch.autograd.gradcheck`` (float64, centred differences) on the function itself.
    Returns None; raises AssertionError naming the first wrong value.
    """
    torch = _torch()
    apply = _cell_fn(function)
    N, D, H = _size(N, "N"), _size(D, "D"), _size(H, "H")
    device = _device(device)
    gen = torch.Generator().manual_seed(int(seed))

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).to(device)

    inputs = [rand(N, D), rand(N, H), rand(N, H), rand(D, 4 * H, scale=0.5), rand(H, 4 * H, scale=0.5),
              rand(4 * H, scale=0.5)]
    names = ["dx", "dprev_h", "dprev_c", "dWx", "dWh", "db"]
    hints = {
        "dx": "dx = da @ Wx.T, where da stacks the four gate pre-activation gradients in the order i, f, g, o.",
        "dprev_h": "dprev_h = da @ Wh.T.",
        "dprev_c": "dprev_c = dc * f: the cell gradient flows to the previous cell through the forget gate; and dc "
                   "must add dnext_c to the part coming from next_h (dnext_h * o * (1 - tanh(next_c)**2)).",
        "dWx": "dWx = x.T @ da (shape (D, 4H)).",
        "dWh": "dWh = prev_h.T @ da (shape (H, 4H)).",
        "db": "db = da.sum(dim=0): the bias is shared by every row of the batch.",
    }
    cell = torch.nn.LSTMCell(D, H).to(device=device, dtype=torch.float64)
    with torch.no_grad():
        cell.weight_ih.copy_(inputs[3].T)
        cell.weight_hh.copy_(inputs[4].T)
        cell.bias_ih.copy_(inputs[5])
        cell.bias_hh.zero_()

    # 1. forward
    leaves = [t.clone().requires_grad_(True) for t in inputs]
    out = apply(*leaves)
    next_h, next_c = _as_tuple(out, "LSTMCellFunction.forward", 2)
    ref_h, ref_c = cell(inputs[0], (inputs[1], inputs[2]))
    order = "Check the gate order: PyTorch uses i, f, g, o (input, forget, candidate, output) along the 4H axis."
    assert_close("LSTMCellFunction: next_c", next_c, ref_c.detach(), FWD_TOL, hint=order)
    assert_close("LSTMCellFunction: next_h", next_h, ref_h.detach(), FWD_TOL,
                 hint="next_h = o * tanh(next_c). " + order)

    # 2. backward against autograd, both outputs used, then next_h only
    for case in ("both", "h_only"):
        dh, dc = rand(N, H), (rand(N, H) if case == "both" else None)
        leaves = [t.clone().requires_grad_(True) for t in inputs]
        next_h, next_c = apply(*leaves)
        loss = (next_h * dh).sum() + ((next_c * dc).sum() if dc is not None else 0.0)
        loss.backward()
        ref_leaves = [t.clone().requires_grad_(True) for t in inputs[:3]]
        ref_cell = copy.deepcopy(cell)
        rh, rc = ref_cell(ref_leaves[0], (ref_leaves[1], ref_leaves[2]))
        ref_loss = (rh * dh).sum() + ((rc * dc).sum() if dc is not None else 0.0)
        ref_loss.backward()
        expected = [ref_leaves[0].grad, ref_leaves[1].grad, ref_leaves[2].grad, ref_cell.weight_ih.grad.T,
                    ref_cell.weight_hh.grad.T, ref_cell.bias_ih.grad]
        suffix = "" if case == "both" else " (loss uses next_h only, so dnext_c arrives as zeros)"
        for name, leaf, exp in zip(names, leaves, expected):
            assert_close(f"LSTMCellFunction backward: {name}{suffix}", _grad(leaf, name), exp, BWD_TOL,
                         hint=hints[name])

    # 3. gradcheck on the function itself
    leaves = [t.clone().requires_grad_(True) for t in inputs]
    try:
        torch.autograd.gradcheck(lambda *a: apply(*a), leaves, eps=1e-6, atol=1e-5, rtol=1e-3)
    except torch.autograd.gradcheck.GradcheckError as error:
        _fail("LSTMCellFunction: torch.autograd.gradcheck", str(error).splitlines()[0],
              hint="backward must return one gradient per forward input, in the same order "
                   "(dx, dprev_h, dprev_c, dWx, dWh, db).")


# ---------------------------------------------------------------- LSTM / RNN modules
_KINDS = {
    "LSTM": {"gates": 4, "names": ("Wx", "Wh", "b")},
    "RNN": {"gates": 1, "names": ("Wx", "Wh", "b")},
}


def _check_parameters(module, kind, D, H):
    label = f"{kind}({D}, {H})"
    torch = _torch()
    gates = _KINDS[kind]["gates"]
    expected = {"Wx": (D, gates * H), "Wh": (H, gates * H), "b": (gates * H,)}
    params = dict(module.named_parameters())
    for name, shape in expected.items():
        value = getattr(module, name, None)
        if not isinstance(value, torch.nn.Parameter):
            _fail(f"{label}.{name}", f"expected an nn.Parameter of shape {shape}, got {type(value).__name__}",
                  hint="create it with nn.Parameter(...) in __init__ so that model.parameters() sees it.")
        if tuple(value.shape) != shape:
            _fail(f"{label}.{name}", f"expected shape {shape}, got {tuple(value.shape)}",
                  hint="Wx is (D, %dH), Wh is (H, %dH), b is (%dH,): x @ Wx, not Wx @ x." % (gates, gates, gates))
        if not any(p is value for p in params.values()):
            _fail(f"{label}.{name}", "is not registered as a parameter of the module")


def _reference(kind, D, H, device, seed):
    torch = _torch()
    torch.manual_seed(int(seed))
    cls = torch.nn.LSTM if kind == "LSTM" else torch.nn.RNN
    ref = cls(D, H, batch_first=True).to(device=device, dtype=torch.float64)
    with torch.no_grad():  # make the two biases differ clearly so that b = b_ih + b_hh is tested
        for p in ref.parameters():
            p.uniform_(-0.6, 0.6)
    return ref


def _load_into(module, ref):
    torch = _torch()
    with torch.no_grad():
        module.Wx.copy_(ref.weight_ih_l0.T)
        module.Wh.copy_(ref.weight_hh_l0.T)
        module.b.copy_(ref.bias_ih_l0 + ref.bias_hh_l0)


def _check_module(cls, kind, N, T, D, H, seed, with_state, device):
    torch = _torch()
    N, T, D, H = _size(N, "N"), _size(T, "T"), _size(D, "D"), _size(H, "H")
    device = _device(device)
    if not isinstance(cls, type) or not issubclass(cls, torch.nn.Module):
        raise ValueError(f"cls must be an nn.Module subclass, got {cls!r}")
    label = f"{cls.__name__}"
    module = cls(D, H)
    _check_parameters(module, kind, D, H)
    module = module.to(device=device, dtype=torch.float64)
    ref = _reference(kind, D, H, device, seed)
    _load_into(module, ref)

    gen = torch.Generator().manual_seed(int(seed) + 1)
    x = torch.randn(N, T, D, generator=gen, dtype=torch.float64).to(device)
    h0 = torch.randn(N, H, generator=gen, dtype=torch.float64).to(device)
    c0 = torch.randn(N, H, generator=gen, dtype=torch.float64).to(device)
    dout = torch.randn(N, T, H, generator=gen, dtype=torch.float64).to(device)
    dh = torch.randn(N, H, generator=gen, dtype=torch.float64).to(device)
    dc = torch.randn(N, H, generator=gen, dtype=torch.float64).to(device)

    xs, h0s, c0s = (t.clone().requires_grad_(True) for t in (x, h0, c0))
    xr, h0r, c0r = (t.clone().requires_grad_(True) for t in (x, h0, c0))
    if kind == "LSTM":
        state = (h0s, c0s) if with_state else None
        result = module(xs, state) if with_state else module(xs)
        out, final = _as_tuple(result, f"{label}.forward", 2)
        hT, cT = _as_tuple(final, f"{label}.forward: the final state (h_T, c_T)", 2)
        ref_out, (ref_h, ref_c) = ref(xr, (h0r[None], c0r[None])) if with_state else ref(xr)
        ref_h, ref_c = ref_h[0], ref_c[0]
        finals = [("h_T", hT, ref_h, dh), ("c_T", cT, ref_c, dc)]
    else:
        result = module(xs, h0s) if with_state else module(xs)
        out, hT = _as_tuple(result, f"{label}.forward", 2)
        ref_out, ref_h = ref(xr, h0r[None]) if with_state else ref(xr)
        ref_h = ref_h[0]
        finals = [("h_T", hT, ref_h, dh)]

    what = "with an initial state" if with_state else "with state=None (zeros)"
    order = (" PyTorch's gate order along the 4H axis is i, f, g, o." if kind == "LSTM" else "")
    assert_close(f"{label} forward ({what}): out", out, ref_out.detach(), FWD_TOL,
                 hint="out[:, t] is the hidden state h_t of step t; loop over t in order." + order)
    for name, got, exp, _ in finals:
        assert_close(f"{label} forward ({what}): {name}", got, exp.detach(), FWD_TOL,
                     hint="return the state after the last step, shape (N, H)." + order)

    loss = (out * dout).sum() + sum((got * up).sum() for _, got, _, up in finals)
    loss.backward()
    ref_loss = (ref_out * dout).sum() + sum((exp * up).sum() for _, _, exp, up in finals)
    ref_loss.backward()
    grads = [("dx", _grad(xs, "dx"), xr.grad)]
    if with_state:
        grads.append(("dh0", _grad(h0s, "dh0"), h0r.grad))
        if kind == "LSTM":
            grads.append(("dc0", _grad(c0s, "dc0"), c0r.grad))
    grads += [("dWx", _grad(module.Wx, "dWx"), ref.weight_ih_l0.grad.T),
              ("dWh", _grad(module.Wh, "dWh"), ref.weight_hh_l0.grad.T),
              ("db", _grad(module.b, "db"), ref.bias_ih_l0.grad)]
    for name, got, exp in grads:
        assert_close(f"{label} backward ({what}): {name}", got, exp, BWD_TOL,
                     hint="autograd computes these for you: make sure every step uses the module's "
                          "parameters and the previous step's state, with no .detach() inside forward.")


def check_lstm_module(cls, N=2, T=3, D=4, H=5, seed=0, with_state=True, device=None):
    """Check an ``LSTM(nn.Module)`` against ``torch.nn.LSTM(batch_first=True)`` (the oracle).

    ``cls(D, H)`` must own parameters ``Wx (D, 4H)``, ``Wh (H, 4H)``, ``b (4H,)`` and
    ``forward(x, state=None) -> (out (N, T, H), (h_T, c_T))`` with x (N, T, D), state
    ``(h_0, c_0)`` each (N, H). The check copies nn.LSTM's weights in itself (Wx = weight_ih.T,
    Wh = weight_hh.T, b = bias_ih + bias_hh), casts to float64 and compares out, h_T, c_T
    (< 1e-7) and the gradients of x, h_0, c_0, Wx, Wh, b (< 1e-6).
    """
    _check_module(cls, "LSTM", N, T, D, H, seed, with_state, device)


def check_rnn_module(cls, N=2, T=3, D=4, H=5, seed=0, with_state=True, device=None):
    """Check a vanilla ``RNN(nn.Module)`` against ``torch.nn.RNN(batch_first=True)`` (tanh).

    ``cls(D, H)`` owns ``Wx (D, H)``, ``Wh (H, H)``, ``b (H,)``;
    ``forward(x, h0=None) -> (out (N, T, H), h_T (N, H))``. Compares outputs (< 1e-7) and the
    gradients of x, h0, Wx, Wh, b (< 1e-6) in float64.
    """
    _check_module(cls, "RNN", N, T, D, H, seed, with_state, device)


def _check_loader(cls, kind, D, H, seed, device):
    torch = _torch()
    D, H = _size(D, "D"), _size(H, "H")
    device = _device(device)
    ref = _reference(kind, D, H, device, seed)
    loader = getattr(cls, "from_torch", None)
    if loader is None:
        _fail(f"{cls.__name__}.from_torch", "is missing", hint="define it as a @classmethod.")
    module = loader(ref)
    if not isinstance(module, cls):
        _fail(f"{cls.__name__}.from_torch", f"must return a {cls.__name__}, got {type(module).__name__}")
    _check_parameters(module, kind, D, H)
    for name in ("Wx", "Wh", "b"):
        p = getattr(module, name)
        if p.dtype != ref.weight_ih_l0.dtype or p.device != ref.weight_ih_l0.device:
            _fail(f"{cls.__name__}.from_torch: {name}", f"has dtype {p.dtype} on {p.device}, but the nn.{kind} "
                  f"has dtype {ref.weight_ih_l0.dtype} on {ref.weight_ih_l0.device}",
                  hint="create the module and move it with .to(device=..., dtype=...) of the nn module's weights.")
    transposed = "nn.%s stores weight_ih as (%sH, D) for W x; your Wx is (D, %sH) for x @ Wx: transpose it." % (
        kind, "4" if kind == "LSTM" else "", "4" if kind == "LSTM" else "")
    assert_close(f"{cls.__name__}.from_torch: Wx", module.Wx, ref.weight_ih_l0.T, 1e-12, hint=transposed)
    assert_close(f"{cls.__name__}.from_torch: Wh", module.Wh, ref.weight_hh_l0.T, 1e-12,
                 hint="Wh = weight_hh_l0.T.")
    assert_close(f"{cls.__name__}.from_torch: b", module.b, ref.bias_ih_l0 + ref.bias_hh_l0, 1e-12,
                 hint="nn.%s has two biases, bias_ih and bias_hh, that are always added: b = b_ih + b_hh." % kind)
    with torch.no_grad():  # the copy must own its values
        for p in ref.parameters():
            p.add_(1.0)
    assert_close(f"{cls.__name__}.from_torch: Wx after changing the nn.{kind}", module.Wx,
                 ref.weight_ih_l0.T - 1.0, 1e-12,
                 hint="copy the values (e.g. .detach().clone()) so the two modules do not share storage.")


def check_lstm_loader(cls, D=4, H=5, seed=0, device=None):
    """Check ``cls.from_torch(nn.LSTM(D, H, batch_first=True))``: returns a ``cls`` whose
    Wx = weight_ih_l0.T, Wh = weight_hh_l0.T, b = bias_ih_l0 + bias_hh_l0, with the nn module's
    dtype and device, as parameters that own their values."""
    _check_loader(cls, "LSTM", D, H, seed, device)


def check_rnn_loader(cls, D=4, H=5, seed=0, device=None):
    """Check ``cls.from_torch(nn.RNN(D, H, batch_first=True))`` like ``check_lstm_loader``."""
    _check_loader(cls, "RNN", D, H, seed, device)


# ---------------------------------------------------------------- truncated BPTT
class TinyCharLM:
    """Factory of the tiny float64 LSTM language model the TBPTT checks use.

    ``model(idx (N, T) long, state=None) -> (logits (N, T, V), (h, c))`` with h, c of shape
    (1, N, H), like the notebook's ``CharLM``.
    """

    @staticmethod
    def build(V=7, E=4, H=6, seed=0, device=None):
        torch = _torch()
        device = _device(device)

        class _LM(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = torch.nn.Embedding(V, E)
                self.rnn = torch.nn.LSTM(E, H, batch_first=True)
                self.head = torch.nn.Linear(H, V)

            def forward(self, idx, state=None):
                out, state = self.rnn(self.embed(idx), state)
                return self.head(out), state

        torch.manual_seed(int(seed))
        return _LM().to(device=device, dtype=torch.float64)


def _oracle_tbptt_step(model, optimizer, x, y, state, max_norm):
    torch = _torch()
    logits, new_state = model(x, state)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item(), tuple(s.detach() for s in new_state)


def check_tbptt_step(tbptt_step, N=3, T=5, V=7, chunks=3, max_norm=0.05, seed=0, device=None):
    """Check one truncated-BPTT training step ``tbptt_step(model, optimizer, x, y, state, max_norm)``.

    It must return ``(loss: float, new_state)`` where loss is the mean cross-entropy of the
    chunk computed from the carried ``state`` (before the update), the parameters are updated
    once with the gradient clipped to global norm ``max_norm``, and ``new_state`` is the final
    ``(h, c)`` *detached* from the graph.

    The check runs ``chunks`` consecutive chunks of one stream through the student's step and
    through an oracle on a copy of the model (plain SGD, so every gradient difference shows),
    comparing losses, states and every parameter after every step. A carried state that is not
    detached either fails the second backward or (with retain_graph=True) lets the gradient leak
    into earlier chunks -- and its grad_fn is not None; all three are caught.
    """
    torch = _torch()
    N, T, V, chunks = _size(N, "N"), _size(T, "T"), _size(V, "V", 2), _size(chunks, "chunks")
    if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float)) or not max_norm > 0:
        raise ValueError(f"max_norm must be a positive number, got {max_norm!r}")
    device = _device(device)
    model = TinyCharLM.build(V=V, seed=seed, device=device)
    oracle = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    opt_ref = torch.optim.SGD(oracle.parameters(), lr=0.5)
    gen = torch.Generator().manual_seed(int(seed) + 7)
    stream = torch.randint(0, V, (N, chunks * T + 1), generator=gen).to(device)
    state = state_ref = None
    for k in range(chunks):
        x = stream[:, k * T:(k + 1) * T]
        y = stream[:, k * T + 1:(k + 1) * T + 1]
        where = f"tbptt_step, chunk {k + 1} of {chunks}"
        result = tbptt_step(model, opt, x, y, state, max_norm)
        loss, state = _as_tuple(result, where, 2)
        loss_ref, state_ref = _oracle_tbptt_step(oracle, opt_ref, x, y, state_ref, max_norm)
        if _is_tensor(loss):
            if loss.numel() != 1:
                _fail(where, f"loss must be a number, got a tensor of shape {tuple(loss.shape)}")
            if loss.requires_grad:
                _fail(where, "the returned loss still holds the graph",
                      hint="return loss.item() (a Python float) so that nothing keeps the graph alive.")
            loss = loss.item()
        assert_close(f"{where}: loss", np.float64(loss), loss_ref, FWD_TOL,
                     hint="mean cross-entropy over all N*T positions, computed with the carried state, before "
                          "the update: F.cross_entropy(logits.reshape(-1, V), y.reshape(-1)).")
        state = _as_tuple(state, f"{where}: new_state", 2)
        for name, got, exp in zip(("h", "c"), state, state_ref):
            if not _is_tensor(got):
                _fail(f"{where}: new_state {name}", f"expected a tensor, got {type(got).__name__}")
            if got.grad_fn is not None or got.requires_grad:
                _fail(f"{where}: new_state {name}", "is still attached to the graph (grad_fn="
                      f"{type(got.grad_fn).__name__ if got.grad_fn is not None else None}, requires_grad="
                      f"{got.requires_grad})",
                      hint="return tuple(s.detach() for s in state). A carried state that is not detached keeps "
                           "every earlier chunk's graph alive: memory and backward time grow with each chunk.")
            assert_close(f"{where}: new_state {name}", got, exp, FWD_TOL,
                         hint="return the state the model produced at the end of this chunk.")
        worst = 0.0
        for (pname, p), p_ref in zip(model.named_parameters(), oracle.parameters()):
            worst = max(worst, _check_error(
                f"{where}: parameter {pname} after the update", p, p_ref, BWD_TOL,
                hint="order: zero_grad(), loss.backward(), clip_grad_norm_(model.parameters(), max_norm), "
                     "optimizer.step(). The gradient must come from this chunk only (detached state)."))
        if _VERBOSE[0]:
            print(f"ok    {where}: all parameters after the update: largest relative error {worst:.2e} "
                  f"(tolerance {BWD_TOL:.0e})")


def check_state_detached(tbptt_step, chunks=3, seed=0, device=None):
    """Quick guard run before a training loop: ``tbptt_step`` must hand back a carried state that
    is detached from the graph, chunk after chunk (otherwise every backward runs through all
    earlier chunks and training time grows quadratically). Uses a tiny float64 model and Adam.
    """
    torch = _torch()
    chunks = _size(chunks, "chunks", 2)
    device = _device(device)
    model = TinyCharLM.build(seed=seed, device=device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(int(seed) + 5)
    stream = torch.randint(0, 7, (2, chunks * 4 + 1), generator=gen).to(device)
    state = None
    for k in range(chunks):
        where = f"tbptt_step, chunk {k + 1} of {chunks}"
        result = tbptt_step(model, opt, stream[:, 4 * k:4 * k + 4], stream[:, 4 * k + 1:4 * k + 5], state, 1.0)
        _, state = _as_tuple(result, where, 2)
        for name, s in zip(("h", "c"), _as_tuple(state, f"{where}: new_state", 2)):
            if not _is_tensor(s) or s.grad_fn is not None or s.requires_grad:
                _fail(f"{where}: new_state {name}", "is not a tensor detached from the graph",
                      hint="return tuple(s.detach() for s in state): the carried state must not drag the previous "
                           "chunks' graphs along, or every backward runs through the whole history.")


# ---------------------------------------------------------------- sampling
class _FixedLogits:
    """A 'model' whose next-character logits never change; it counts its calls."""

    @staticmethod
    def build(logits):
        torch = _torch()

        class _Fixed(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.logits = torch.nn.Parameter(logits.clone(), requires_grad=False)
                self.calls = 0

            def forward(self, idx, state=None):
                self.calls += 1
                n, t = idx.shape
                return self.logits.expand(n, t, -1).clone(), state

        return _Fixed()


class _RunningSum:
    """A 'model' whose next id is (sum of every id it has read) mod V, kept in its state.

    A sampler that drops the state, or does not feed the whole prefix, continues differently.
    """

    @staticmethod
    def build(V, device):
        torch = _torch()

        class _Sum(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.scale = torch.nn.Parameter(torch.tensor(10.0, dtype=torch.float64, device=device),
                                                requires_grad=False)

            def forward(self, idx, state=None):
                total = idx.new_zeros(idx.shape[0]) if state is None else state[0]
                logits = []
                for t in range(idx.shape[1]):
                    total = total + idx[:, t]
                    logits.append(torch.nn.functional.one_hot(total % V, V).to(self.scale.dtype) * self.scale)
                return torch.stack(logits, dim=1), (total, total.clone())

        return _Sum()


def _greedy_oracle(model, prefix, length):
    """Greedy continuation recomputed from scratch on the whole text at every step."""
    torch = _torch()
    ids = list(prefix)
    with torch.no_grad():
        for _ in range(length):
            logits, _ = model(torch.tensor([ids], device=next(model.parameters()).device))
            ids.append(int(logits[0, -1].argmax()))
    return ids[len(prefix):]


def _ids(result, name, length, V):
    torch = _torch()
    if _is_tensor(result):
        result = result.detach().cpu().reshape(-1).tolist()
    if not isinstance(result, (list, tuple)):
        _fail(name, f"expected a list of {length} ints, got {type(result).__name__}")
    result = [int(i) for i in result]
    if len(result) != length:
        _fail(name, f"expected {length} new ids, got {len(result)}",
              hint="return only the generated ids, not the prefix.")
    if any(not 0 <= i < V for i in result):
        _fail(name, f"ids must lie in [0, {V}), got {sorted(set(result))[:5]}...")
    del torch
    return result


def check_sample(sample, V=7, prefix_len=4, length=12, seed=0, device=None):
    """Check ``sample(model, prefix, length, temperature=1.0, greedy=False, generator=None)``.

    - greedy: the ids must equal an oracle that reruns the model on the whole text at every
      step, for a small LSTM model and for a counting model whose next id is the running sum of
      all ids read (mod V), so forgetting to carry the state or to feed the prefix shows;
    - temperature: with a model of fixed logits l, 2000 sampled ids must follow
      softmax(l / temperature) (total-variation distance < 0.06) for temperatures 0.5 and 2.
    """
    torch = _torch()
    V, prefix_len, length = _size(V, "V", 2), _size(prefix_len, "prefix_len"), _size(length, "length")
    device = _device(device)
    model = TinyCharLM.build(V=V, H=8, seed=seed, device=device)
    with torch.no_grad():  # sharpen the model so that greedy choices are clear-cut
        model.head.weight.mul_(6.0)
    model.eval()
    gen = torch.Generator().manual_seed(int(seed) + 3)
    prefix = torch.randint(0, V, (prefix_len,), generator=gen).tolist()
    got = _ids(sample(model, prefix, length, greedy=True), "sample(greedy=True)", length, V)
    expected = _greedy_oracle(model, prefix, length)
    if got != expected:
        first = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
        _fail("sample(greedy=True)", f"ids differ from the expected greedy continuation from position {first}: "
              f"got {got}, expected {expected}",
              hint="feed the whole prefix first, then feed each chosen id back in one at a time, carrying the "
                   "state (h, c) from call to call; greedy picks argmax of the last step's logits.")

    counter = _RunningSum.build(V, device)
    got = _ids(sample(counter, prefix, length, greedy=True), "sample(greedy=True) with a counting model", length, V)
    expected, total = [], sum(prefix)
    for _ in range(length):
        expected.append(total % V)
        total += expected[-1]
    if got != expected:
        _fail("sample(greedy=True) with a model whose next id is the sum of all ids read so far (mod V)",
              f"got {got}, expected {expected}",
              hint="feed the whole prefix, then only the new id at each step, and pass the returned state back in.")

    logits = torch.linspace(-1.5, 1.5, V, dtype=torch.float64).to(device)
    for temperature in (0.5, 2.0):
        fixed = _FixedLogits.build(logits)
        g = torch.Generator(device=device).manual_seed(int(seed) + 11)
        n = 2000
        got = _ids(sample(fixed, [0], n, temperature=temperature, generator=g), f"sample(temperature={temperature})",
                   n, V)
        freq = np.bincount(got, minlength=V) / n
        probs = torch.softmax(logits / temperature, dim=0).cpu().numpy()
        tv = 0.5 * np.abs(freq - probs).sum()
        if not tv < 0.06:
            _fail(f"sample(temperature={temperature})",
                  f"the sampled ids do not follow softmax(logits / temperature): total-variation distance "
                  f"{tv:.3f} (expected < 0.06). Frequencies {np.round(freq, 3).tolist()}, "
                  f"expected {np.round(probs, 3).tolist()}",
                  hint="probs = softmax(logits[last step] / temperature); draw with torch.multinomial(probs, 1, "
                       "generator=generator). Divide by the temperature, do not multiply.")


# ---------------------------------------------------------------- char-LM training
def evaluate_char_lm(model, ids, seq_len=64, batch_size=16):
    """Mean next-character cross-entropy (nats) of ``model`` on the id sequence ``ids``.

    The text is cut into ``batch_size`` parallel streams that are read in chunks of
    ``seq_len`` characters with the state carried from chunk to chunk (as in training).
    ``model(idx (N, T), state) -> (logits (N, T, V), state)``; ``ids`` is a 1-D LongTensor or
    sequence of ints. Runs in eval mode without gradients and restores the mode afterwards.
    """
    torch = _torch()
    seq_len, batch_size = _size(seq_len, "seq_len"), _size(batch_size, "batch_size")
    ids = torch.as_tensor(ids, dtype=torch.long).reshape(-1)
    per_stream = (ids.numel() - 1) // batch_size
    if per_stream < 1:
        raise ValueError(f"ids has {ids.numel()} entries: too few for batch_size={batch_size}")
    device = next(model.parameters()).device
    x_all = ids[:per_stream * batch_size].view(batch_size, per_stream).to(device)
    y_all = ids[1:per_stream * batch_size + 1].view(batch_size, per_stream).to(device)
    was_training = model.training
    model.eval()
    total, count, state = 0.0, 0, None
    try:
        with torch.no_grad():
            for start in range(0, per_stream, seq_len):
                x, y = x_all[:, start:start + seq_len], y_all[:, start:start + seq_len]
                logits, state = model(x, state)
                total += torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]).double(), y.reshape(-1), reduction="sum").item()
                count += y.numel()
    finally:
        model.train(was_training)
    return total / count


def check_char_lm_training(model, history, val_ids, max_val_loss, seq_len=64, batch_size=16):
    """Check a trained character-level language model on held-out text.

    - ``history`` is a dict with non-empty lists ``"train_loss"`` and ``"val_loss"`` of finite
      numbers (what the training loop recorded);
    - the validation loss measured here, independently of the student's code, with
      ``evaluate_char_lm`` must be below ``max_val_loss`` (nats per character).
    Returns the measured validation loss.
    """
    if not isinstance(history, dict):
        _fail("train_char_lm", f"must return a dict with 'train_loss' and 'val_loss', got {type(history).__name__}")
    for key in ("train_loss", "val_loss"):
        values = history.get(key)
        if not isinstance(values, (list, tuple)) or not values:
            _fail(f"history[{key!r}]", "must be a non-empty list of losses")
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            _fail(f"history[{key!r}]", "must hold finite Python floats (use loss.item())")
    if isinstance(max_val_loss, bool) or not isinstance(max_val_loss, (int, float)) or not max_val_loss > 0:
        raise ValueError(f"max_val_loss must be a positive number, got {max_val_loss!r}")
    val = evaluate_char_lm(model, val_ids, seq_len=seq_len, batch_size=batch_size)
    if not val < max_val_loss:
        _fail("char-LM validation loss", f"{val:.3f} nats/char, expected < {max_val_loss}",
              hint="targets are the inputs shifted by one character; carry and detach the state between chunks; "
                   "move through the whole training text chunk after chunk.")
    return val
