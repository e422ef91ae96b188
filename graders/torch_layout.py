"""The NumPy <-> torch weight layout, written once, and the torch modules the oracles use.

The course's recurrent layers keep ``Wx (D, G*H)``, ``Wh (H, G*H)`` and one bias ``b (G*H,)``
(GRU: ``bx`` and ``bh``) and compute ``x @ Wx + h @ Wh + b``; torch keeps ``weight_ih (G*H, D)``,
``weight_hh (G*H, H)``, ``bias_ih`` and ``bias_hh`` and computes ``x @ weight_ih.T + ...``.
So (PyTorch docs of nn.RNN / nn.LSTM / nn.GRU)::

    Wx = weight_ih.T      Wh = weight_hh.T      b = bias_ih + bias_hh   (GRU: bx = bias_ih, bh = bias_hh)

with the gates in torch's order (LSTM i, f, g, o; GRU r, z, n), so weights are interchangeable.
"""
import numpy as np

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
_MODULES = {("rnn", True): "RNNCell", ("rnn", False): "RNN", ("lstm", True): "LSTMCell",
            ("lstm", False): "LSTM", ("gru", True): "GRUCell", ("gru", False): "GRU"}


def _kind(kind):
    if kind not in GATES:
        raise ValueError(f"kind must be one of {sorted(GATES)}, got {kind!r}")
    return kind


def split_bias(b, seed=0):
    """Two random arrays ``(bias_ih, bias_hh)`` that add up to ``b``: tests that b = b_ih + b_hh."""
    part = np.random.default_rng(int(seed) + 7919).normal(size=np.shape(b))
    return np.asarray(b, dtype=np.float64) - part, part


def torch_recurrent(kind, Wx, Wh, b=None, bx=None, bh=None, cell=False, seed=0, dtype=None, device=None):
    """A torch ``nn.RNN``/``LSTM``/``GRU`` (batch_first) or its ``*Cell`` holding the course's weights.

    Inputs:
    - kind: "rnn" (tanh), "lstm" or "gru"
    - Wx (D, G*H), Wh (H, G*H): NumPy arrays or tensors, G = 1 / 4 / 3 gates
    - b (G*H,) for rnn/lstm (split over bias_ih/bias_hh at random, from ``seed``); bx, bh for gru
    - cell: True for the single-step ``*Cell`` module
    - dtype: torch dtype (default float64); device: torch device (default CPU)
    Returns the module. Raises ValueError for inconsistent shapes.
    """
    import torch

    kind = _kind(kind)
    Wx, Wh = _numpy(Wx), _numpy(Wh)
    D, G = Wx.shape
    H = Wh.shape[0]
    if G != GATES[kind] * H or Wh.shape != (H, G):
        raise ValueError(f"{kind} weights must be Wx (D, {GATES[kind]}H) and Wh (H, {GATES[kind]}H); "
                         f"got Wx {Wx.shape}, Wh {Wh.shape}")
    biases = (bx, bh) if kind == "gru" else split_bias(_numpy(b), seed)
    module = getattr(torch.nn, _MODULES[kind, cell])(D, H, **({} if cell else {"batch_first": True}))
    module = module.to(dtype=dtype or torch.float64, device=device)
    suffix = "" if cell else "_l0"
    with torch.no_grad():
        for name, value in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), (Wx.T, Wh.T, *biases)):
            getattr(module, name + suffix).copy_(torch.as_tensor(_numpy(value)))
    return module


def course_weights(module, layer=0):
    """The course's ``(Wx, Wh, b)`` (GRU: ``(Wx, Wh, bx, bh)``) of a torch recurrent module, as tensors.

    Works for nn.RNN/LSTM/GRU (``layer`` picks ``_l<layer>``) and their cells; the tensors are
    detached copies on the module's device.
    """
    suffix = "" if hasattr(module, "weight_ih") else f"_l{layer}"
    get = {name: getattr(module, name + suffix).detach().clone()
           for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    Wx, Wh = get["weight_ih"].T.contiguous(), get["weight_hh"].T.contiguous()
    if type(module).__name__.startswith("GRU"):
        return Wx, Wh, get["bias_ih"], get["bias_hh"]
    return Wx, Wh, get["bias_ih"] + get["bias_hh"]


def gradients(module, layer=0):
    """Gradients of a torch recurrent module in the course's layout, as float64 NumPy arrays.

    Returns ``{"dWx", "dWh", "db"}`` (GRU: ``"dbx", "dbh"`` instead of ``"db"``); the gradient
    of ``b`` is that of ``bias_ih`` (equal to that of ``bias_hh``: both are added).
    """
    suffix = "" if hasattr(module, "weight_ih") else f"_l{layer}"
    grad = {name: to_numpy64(getattr(module, name + suffix).grad)
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    out = {"dWx": grad["weight_ih"].T, "dWh": grad["weight_hh"].T}
    if type(module).__name__.startswith("GRU"):
        out.update(dbx=grad["bias_ih"], dbh=grad["bias_hh"])
    else:
        out["db"] = grad["bias_ih"]
    return out


def tensor64(array, grad=False, device=None):
    """A float64 torch tensor (a copy) of an array-like, optionally requiring grad."""
    import torch

    return torch.tensor(_numpy(array), dtype=torch.float64, device=device).requires_grad_(grad)


def to_numpy64(tensor):
    """A float64 NumPy array (a copy) of a torch tensor, detached and on the CPU."""
    return tensor.detach().cpu().numpy().astype(np.float64)


def _numpy(value):
    if hasattr(value, "detach"):
        return to_numpy64(value)
    return np.asarray(value, dtype=np.float64)
