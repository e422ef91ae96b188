"""How gradients flow backwards through time (lectures 03 and 04, assignment a2).

- ``tanh_derivative``, ``step_jacobian``: the two factors of one backward step of a vanilla RNN
- ``matrix_with_spectral_norm``, ``gradient_norms``, ``gradient_norm_curve``: ||dL/dh_t|| against t
  for a vanilla RNN (tanh or linear), the logic behind lecture 03's slider
- ``gradient_norm_grid``, ``survival_band``: ||dL/dh_0|| over a grid of spectral norms and input scales,
  and the range of spectral norms that keeps it within a given factor of 1
- ``cliff_loss``: a one-unit RNN whose loss has a cliff (for gradient clipping)
- ``state_gradient_norms``: ||dL/dh_t|| and ||dL/dc_t|| of torch RNN / LSTM / GRU cells
- ``rnn_forward_torch``, ``rnn_backward_torch``: a float64 torch-autograd vanilla RNN layer with
  the NumPy layer signatures of the course, the baseline of a2's experiments
- ``init_recurrent_params``: PyTorch-style initial weights of an RNN / LSTM / GRU in the course's layout
- ``flow_inputs``, ``flow_experiment``: a2's gradient-flow experiment (a student's LSTM vs the RNN)
- ``plot_gradient_norms``, ``plot_input_scale_sweep``, ``plot_tanh_derivative``: the figures

Conventions: row vectors, ``h_t = f(x_t @ Wx + h_{t-1} @ Wh + b)``; Wh has shape (H, H).
"""
from numbers import Real

import numpy as np

from ._validate import integer as _int_arg
from ._validate import positive_number, to_numpy

NONLINEARITIES = ("tanh", "linear")


def _nonlinearity(value):
    if value not in NONLINEARITIES:
        raise ValueError(f"nonlinearity must be one of {NONLINEARITIES}, got {value!r}")
    return value


def _square(W, arg):
    W = to_numpy(W, arg).astype(np.float64)
    if W.ndim != 2 or W.shape[0] != W.shape[1] or W.shape[0] == 0:
        raise ValueError(f"{arg} must be a square (H, H) matrix, got shape {W.shape}")
    return W


def tanh_derivative(a):
    """d tanh(a) / da = 1 - tanh(a)^2, elementwise. Always in (0, 1], equal to 1 only at a = 0.

    Inputs: a, array-like of any shape (pre-activations). Returns: float64 array of that shape.
    """
    a = to_numpy(a, "a").astype(np.float64)
    return 1.0 - np.tanh(a) ** 2


def step_jacobian(Wh, a, nonlinearity="tanh"):
    """Jacobian J[i, j] = d h_t[i] / d h_{t-1}[j] of one vanilla-RNN step
    ``h_t = f(a)``, ``a = x_t @ Wx + h_{t-1} @ Wh + b``, i.e. ``J = diag(f'(a)) @ Wh.T``.

    Backprop multiplies the upstream gradient by it: ``dh_{t-1} = dh_t @ J``.
    Its spectral norm is at most ``max|f'(a)| * ||Wh||_2`` (the tanh-derivative bound).

    Inputs: Wh (H, H); a (H,) pre-activation of the step; nonlinearity "tanh" or "linear"
    Returns: (H, H) float64
    """
    Wh = _square(Wh, "Wh")
    a = to_numpy(a, "a").astype(np.float64)
    if a.shape != (Wh.shape[0],):
        raise ValueError(f"a must have shape ({Wh.shape[0]},) to match Wh, got {a.shape}")
    slope = tanh_derivative(a) if _nonlinearity(nonlinearity) == "tanh" else np.ones_like(a)
    return slope[:, None] * Wh.T


def matrix_with_spectral_norm(H, spectral_norm, seed=0):
    """A random orthogonal (H, H) matrix times ``spectral_norm``.

    Every singular value, and every eigenvalue's modulus, equals ``spectral_norm``, so a linear
    recurrence scales the gradient by exactly that factor per step: the clean "below, at, above 1"
    case. (A scaled Gaussian matrix would have eigenvalues well inside its spectral norm.)

    Inputs: H >= 1, spectral_norm > 0, seed (int). Returns: float64 (H, H).
    """
    H = _int_arg(H, "H", 1)
    spectral_norm = positive_number(spectral_norm, "spectral_norm")
    q, r = np.linalg.qr(np.random.default_rng(_int_arg(seed, "seed", 0)).standard_normal((H, H)))
    return spectral_norm * q * np.sign(np.diag(r))  # sign fix: Haar-distributed orthogonal matrix


def gradient_norms(Wh, T, nonlinearity="tanh", input_scale=1.0, seed=0):
    """||dL/dh_t|| for t = 0..T of a vanilla RNN ``h_t = f(h_{t-1} @ Wh + x_t)``, h_0 = 0, where
    L = u . h_T for a random unit vector u (so ||dL/dh_T|| = 1) and x_t ~ N(0, input_scale^2).

    This is the backward pass of BPTT with only the last step's loss: each step back multiplies
    the gradient by the step Jacobian ``diag(f'(a_t)) Wh^T``.

    Inputs: Wh (H, H); T >= 1; nonlinearity "tanh" or "linear"; input_scale >= 0; seed (int)
    Returns: float64 array of shape (T + 1,), entry t = ||dL/dh_t||, last entry 1.0
    """
    return _run(Wh, T, nonlinearity, input_scale, seed)[0]


def _input_scale(value):
    if isinstance(value, bool) or not isinstance(value, Real) or not value >= 0:
        raise ValueError(f"input_scale must be a number >= 0, got {value!r}")
    return float(value)


def _run(Wh, T, nonlinearity, input_scale, seed):
    """``gradient_norms``'s forward and backward pass; returns (norms (T + 1,), pre-activations (T, H))."""
    Wh = _square(Wh, "Wh")
    T = _int_arg(T, "T", 1)
    nonlinearity = _nonlinearity(nonlinearity)
    input_scale = _input_scale(input_scale)
    H = Wh.shape[0]
    rng = np.random.default_rng(_int_arg(seed, "seed", 0))
    xs = rng.standard_normal((T, H)) * float(input_scale)
    u = rng.standard_normal(H)
    u /= np.linalg.norm(u)
    h, pre = np.zeros(H), []
    for t in range(T):
        a = h @ Wh + xs[t]
        pre.append(a)
        h = np.tanh(a) if nonlinearity == "tanh" else a
    norms = np.empty(T + 1)
    dh = u
    norms[T] = 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(T, 0, -1):
            da = dh * tanh_derivative(pre[t - 1]) if nonlinearity == "tanh" else dh
            dh = da @ Wh.T
            norms[t - 1] = np.linalg.norm(dh)
    return norms, np.array(pre)


def gradient_norm_curve(spectral_norm, T, nonlinearity="tanh", H=64, input_scale=1.0, seed=0):
    """The slider's logic: ``gradient_norms`` for a Wh with the given spectral norm.

    Inputs: spectral_norm > 0 (the slider "scale"), T >= 1 (sequence length), nonlinearity,
    H >= 1 hidden size, input_scale, seed. Returns: float64 (T + 1,), ||dL/dh_t|| for t = 0..T.
    """
    return gradient_norms(matrix_with_spectral_norm(H, spectral_norm, seed), T, nonlinearity,
                          input_scale=input_scale, seed=seed)


def _grid(values, arg, minimum_ok):
    array = to_numpy(values, arg).astype(np.float64)
    if array.ndim != 1 or array.size == 0 or not np.all(np.isfinite(array)) or not np.all(minimum_ok(array)):
        raise ValueError(f"{arg} must be a non-empty 1-D array of finite numbers in range, got {values!r}")
    return array


def gradient_norm_grid(spectral_norms, input_scales, T, H=64, seed=0):
    """The input-scale sweep behind lecture 03's slider: the tanh RNN of ``gradient_norm_curve`` for
    every pair (input scale, spectral norm), with the same seed (same orthogonal direction, inputs
    and loss vector) everywhere.

    Inputs: spectral_norms, 1-D array-like of numbers > 0, shape (S,); input_scales, 1-D array-like
    of numbers >= 0 (the standard deviation of x_t), shape (I,); T >= 1; H >= 1; seed (int >= 0).
    Returns: dict of float64 arrays of shape (I, S):
      "norm0": ||dL/dh_0|| with ||dL/dh_T|| = 1 (inf where it overflows float64);
      "mean_slope": the mean of tanh'(a_t) over all steps and units of the forward pass (1 = every
      unit in the linear middle of tanh, near 0 = saturated).
    Raises ValueError naming a bad argument.
    """
    spectral_norms = _grid(spectral_norms, "spectral_norms", lambda a: a > 0)
    input_scales = _grid(input_scales, "input_scales", lambda a: a >= 0)
    out = {key: np.empty((input_scales.size, spectral_norms.size)) for key in ("norm0", "mean_slope")}
    for i, scale in enumerate(input_scales):
        for j, sigma in enumerate(spectral_norms):
            norms, pre = _run(matrix_with_spectral_norm(H, float(sigma), seed), T, "tanh", float(scale), seed)
            out["norm0"][i, j] = norms[0] if np.isfinite(norms[0]) else np.inf
            out["mean_slope"][i, j] = tanh_derivative(pre).mean()
    return out


def survival_band(spectral_norms, norm0, factor=100.0):
    """The smallest and largest spectral norm whose ||dL/dh_0|| lies in [1 / factor, factor].

    Inputs: spectral_norms (S,) numbers; norm0 (S,) the matching ||dL/dh_0|| (a row of
    ``gradient_norm_grid(...)["norm0"]``); factor > 1.
    Returns: (low, high) floats, or None when no spectral norm qualifies. The band is reported by its
    ends; near them a sampled curve may dip in and out (check ``norm0`` itself if that matters).
    Raises ValueError for mismatched shapes or factor <= 1.
    """
    spectral_norms = to_numpy(spectral_norms, "spectral_norms").astype(np.float64)
    norm0 = to_numpy(norm0, "norm0").astype(np.float64)
    if spectral_norms.ndim != 1 or spectral_norms.shape != norm0.shape:
        raise ValueError(f"spectral_norms and norm0 must be 1-D of the same shape, got {spectral_norms.shape} "
                         f"and {norm0.shape}")
    factor = positive_number(factor, "factor")
    if factor <= 1:
        raise ValueError(f"factor must be > 1, got {factor!r}")
    inside = spectral_norms[(norm0 >= 1 / factor) & (norm0 <= factor)]
    return (float(inside.min()), float(inside.max())) if inside.size else None


def cliff_loss(w, T=30, h0=0.5, b=-0.3, target=-0.5):
    """Loss and gradient of a one-unit RNN whose loss surface has a cliff.

    ``h_t = tanh(w * h_{t-1} + b)`` for t = 1..T, ``L(w) = (h_T - target)^2``. Below a critical
    weight (about 1.7 with the defaults) the state falls to the negative fixed point, near the
    target (low loss); above it, it stays at the positive one (high loss). L jumps there and
    dL/dw is huge on the wall (the wall gets steeper and thinner as T grows).

    Inputs: w (float or array of floats), T >= 1, h0, b, target (floats)
    Returns: (L, dL/dw), floats or float64 arrays of the shape of w
    """
    T = _int_arg(T, "T", 1)
    w_arr = to_numpy(w, "w").astype(np.float64)
    hs = [np.full_like(w_arr, float(h0))]
    for _ in range(T):
        hs.append(np.tanh(w_arr * hs[-1] + b))
    loss = (hs[-1] - target) ** 2
    dh, dw = 2 * (hs[-1] - target), np.zeros_like(w_arr)
    for t in range(T, 0, -1):
        da = dh * (1 - hs[t] ** 2)
        dw += da * hs[t - 1]
        dh = da * w_arr
    if np.ndim(w) == 0:
        return float(loss), float(dw)
    return loss, dw


def state_gradient_norms(cell, x, seed=0):
    """||dL/dh_t|| (and ||dL/dc_t|| for an LSTM) for t = 0..T-1 of a torch cell unrolled over x,
    with L = u . h_{T-1} for a random unit vector u, and zero initial states.

    The gradient reaching a state is the total one: for an LSTM, dL/dc_t sums the paths
    through c_{t+1} (the highway) and through h_t.

    Inputs: cell, a torch.nn.RNNCell, LSTMCell or GRUCell; x, tensor (T, N, D) or (T, D)
    Returns: dict {"h": float64 (T,)} plus {"c": float64 (T,)} for an LSTMCell
    """
    import torch
    from torch import nn

    if not isinstance(cell, (nn.RNNCell, nn.LSTMCell, nn.GRUCell)):
        raise ValueError(f"cell must be a torch.nn.RNNCell, LSTMCell or GRUCell, got {type(cell).__name__}")
    if not isinstance(x, torch.Tensor) or x.ndim not in (2, 3) or x.shape[-1] != cell.input_size:
        raise ValueError(f"x must be a tensor of shape (T, N, {cell.input_size}) or (T, {cell.input_size}), "
                         f"got {getattr(x, 'shape', type(x).__name__)}")
    if x.ndim == 2:
        x = x[:, None]
    T, N = x.shape[:2]
    dtype = next(cell.parameters()).dtype
    x = x.to(dtype)
    h = torch.zeros(N, cell.hidden_size, dtype=dtype)
    c = torch.zeros_like(h)
    hs, cs = [], []
    for t in range(T):
        if isinstance(cell, nn.LSTMCell):
            h, c = cell(x[t], (h, c))
            c.retain_grad()
            cs.append(c)
        else:
            h = cell(x[t], h)
        h.retain_grad()
        hs.append(h)
    u = torch.randn(h.shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    (h * (u / u.norm())).sum().backward()
    out = {"h": np.array([float(s.grad.norm()) for s in hs])}
    if cs:
        out["c"] = np.array([float(s.grad.norm()) for s in cs])
    return out


# ------------------------------------------------------------------ torch baseline with NumPy signatures
def rnn_forward_torch(x, h0, Wx, Wh, b):
    """A vanilla tanh RNN layer run by torch autograd in float64, with the course's NumPy API.

    ``h_t = tanh(x_t @ Wx + h_{t-1} @ Wh + b)``. It is the baseline of a2's experiments; it is not
    NumPy, so it does not give away a1's hand-written backward pass.

    Inputs: x (N, T, D), h0 (N, H), Wx (D, H), Wh (H, H), b (H,), NumPy arrays
    Returns: (h, cache): h float64 (N, T, H); cache is opaque, pass it to ``rnn_backward_torch``
    """
    import torch
    from torch import nn

    arrays = {}
    for name, value in (("x", x), ("h0", h0), ("Wx", Wx), ("Wh", Wh), ("b", b)):
        arrays[name] = to_numpy(value, name).astype(np.float64)
    x, h0, Wx, Wh, b = arrays.values()
    if x.ndim != 3 or h0.ndim != 2 or Wx.shape != (x.shape[2], h0.shape[1]) or \
            Wh.shape != (h0.shape[1], h0.shape[1]) or b.shape != (h0.shape[1],) or h0.shape[0] != x.shape[0]:
        raise ValueError(f"shapes must be x (N, T, D), h0 (N, H), Wx (D, H), Wh (H, H), b (H,); got x "
                         f"{x.shape}, h0 {h0.shape}, Wx {Wx.shape}, Wh {Wh.shape}, b {b.shape}")
    layer = nn.RNN(x.shape[2], h0.shape[1], batch_first=True, dtype=torch.float64)
    with torch.no_grad():  # torch computes x W_ih^T + b_ih + h W_hh^T + b_hh: copy the transposes in
        layer.weight_ih_l0.copy_(torch.from_numpy(Wx.T))
        layer.weight_hh_l0.copy_(torch.from_numpy(Wh.T))
        layer.bias_ih_l0.copy_(torch.from_numpy(b))
        layer.bias_hh_l0.zero_()
    X = torch.tensor(x, requires_grad=True)
    H0 = torch.tensor(h0, requires_grad=True)
    out, _ = layer(X, H0[None])
    return out.detach().numpy().copy(), (out, X, H0, layer)


def rnn_backward_torch(dh, cache):
    """Backward pass of ``rnn_forward_torch``.

    Inputs: dh (N, T, H) upstream gradient of h; cache from the forward pass (usable once)
    Returns: (dx, dh0, dWx, dWh, db), float64 NumPy arrays of the shapes of x, h0, Wx, Wh, b
    """
    import torch

    out, X, H0, layer = cache
    dh = torch.tensor(to_numpy(dh, "dh"), dtype=torch.float64)
    if dh.shape != out.shape:
        raise ValueError(f"dh must have the shape of h, {tuple(out.shape)}, got {tuple(dh.shape)}")
    dx, dh0, dWx, dWh, db = torch.autograd.grad(
        out, (X, H0, layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0), dh)
    return tuple(g.numpy().copy() for g in (dx, dh0, dWx.T, dWh.T, db))


# ------------------------------------------------------------------ a2's experiments
_GATES = {"rnn": 1, "lstm": 4, "gru": 3}  # gate blocks per kind


def init_recurrent_params(kind, D, H, forget_bias=None, seed=0):
    """PyTorch-style initial weights in the course's layout: every weight and bias uniform in
    [-1/sqrt(H), 1/sqrt(H)] (one bias b, not torch's two; GRU: bx and bh).

    Inputs: kind "rnn" | "lstm" | "gru"; D, H sizes >= 1; forget_bias (LSTM only): the value the
    forget-gate bias b[H:2H] starts at (gate order i, f, g, o; None = uniform like the rest); seed (int >= 0)
    Returns: list of float64 arrays: rnn [Wx (D, H), Wh (H, H), b (H,)]; lstm [Wx (D, 4H), Wh (H, 4H),
    b (4H,)]; gru [Wx (D, 3H), Wh (H, 3H), bx (3H,), bh (3H,)]
    Raises ValueError naming a bad argument.
    """
    if kind not in _GATES:
        raise ValueError(f"kind must be one of {sorted(_GATES)}, got {kind!r}")
    D, H = _int_arg(D, "D"), _int_arg(H, "H")
    if forget_bias is not None and (kind != "lstm" or isinstance(forget_bias, bool)
                                    or not isinstance(forget_bias, Real)):
        raise ValueError(f"forget_bias must be None or a number, and only for kind='lstm'; got {forget_bias!r}")
    rng = np.random.default_rng(_int_arg(seed, "seed", 0))
    k, G = 1.0 / np.sqrt(H), _GATES[kind] * H
    params = [rng.uniform(-k, k, (D, G)), rng.uniform(-k, k, (H, G)), rng.uniform(-k, k, G)]
    if kind == "gru":
        params.append(rng.uniform(-k, k, G))
    if forget_bias is not None:
        params[2][H:2 * H] = float(forget_bias)
    return params


def flow_inputs(T=40, seed=0, D=6, H=16, N=8):
    """The inputs of a2's gradient-flow experiment: x ~ N(0, 1) of shape (N, T, D) and h0 = 0 (N, H)."""
    T, N, D, H = (_int_arg(v, name) for v, name in ((T, "T"), (N, "N"), (D, "D"), (H, "H")))
    x = np.random.default_rng(_int_arg(seed, "seed", 0)).normal(size=(N, T, D))
    return x, np.zeros((N, H))


def flow_experiment(gradient_norms_through_time, lstm_forward, lstm_backward, T=40, seed=0):
    """a2's gradient-flow experiment: ||dL/dx_t|| measured by ``gradient_norms_through_time`` for an
    LSTM (``lstm_forward`` / ``lstm_backward``, forget-gate bias 1) and for the torch vanilla RNN
    (``rnn_forward_torch``), same sizes (D=6, H=16, N=8), ``init_recurrent_params`` initialisation.

    Returns {"lstm": (T,), "rnn": (T,)}: the norms divided by their value at the last step (as
    returned when that value is not positive or the shape is not (T,)).
    """
    x, h0 = flow_inputs(T, seed)
    D, H = x.shape[2], h0.shape[1]
    curves = {}
    for kind, forward, backward, bias in (("lstm", lstm_forward, lstm_backward, 1.0),
                                          ("rnn", rnn_forward_torch, rnn_backward_torch, None)):
        params = init_recurrent_params(kind, D, H, forget_bias=bias, seed=seed)
        norms = np.asarray(gradient_norms_through_time(forward, backward, x.copy(), h0.copy(), params),
                           dtype=np.float64)
        curves[kind] = norms / norms[-1] if norms.shape == (x.shape[1],) and norms[-1] > 0 else norms
    return curves


# ------------------------------------------------------------------ figures
def plot_gradient_norms(curves, ax=None, title="Gradient norm flowing back through time", ylim=None):
    """Plot ||dL/dh_t|| against t on a log scale, one line per curve.

    Inputs: curves, dict {label: 1-D array of norms indexed by t}; ax (matplotlib Axes or None);
    title (str); ylim (None or (low, high)). Returns: the Axes.
    """
    import matplotlib.pyplot as plt

    if not isinstance(curves, dict) or not curves:
        raise ValueError("curves must be a non-empty dict {label: array of norms}")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for label, norms in curves.items():
        norms = to_numpy(norms, f"curves[{label!r}]").astype(np.float64)
        if norms.ndim != 1:
            raise ValueError(f"curves[{label!r}] must be 1-D, got shape {norms.shape}")
        shown = np.where(np.isfinite(norms) & (norms > 0), norms, np.nan)
        ax.semilogy(np.arange(len(norms)), shown, label=str(label))
    ax.set_xlabel("time step t")
    ax.set_ylabel(r"$\|\partial L / \partial h_t\|$ (log scale)")
    ax.set_title(title)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def plot_input_scale_sweep(spectral_norms, norm0, input_scales, T, factor=100.0, ax=None):
    """Plot ||dL/dh_0|| against the spectral norm, one line per input scale, on a log scale, with the
    band [1 / factor, factor] shaded. The y-limits cover every finite value.

    Inputs: spectral_norms (S,); norm0 (I, S) from ``gradient_norm_grid``; input_scales (I,);
    T (int, for the title); factor > 1; ax (matplotlib Axes or None). Returns: the Axes.
    """
    import matplotlib.pyplot as plt

    spectral_norms = to_numpy(spectral_norms, "spectral_norms").astype(np.float64)
    norm0 = to_numpy(norm0, "norm0").astype(np.float64)
    input_scales = to_numpy(input_scales, "input_scales").astype(np.float64)
    if norm0.shape != (input_scales.size, spectral_norms.size):
        raise ValueError(f"norm0 must have shape (len(input_scales), len(spectral_norms)) = "
                         f"{(input_scales.size, spectral_norms.size)}, got {norm0.shape}")
    factor = positive_number(factor, "factor")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5))
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, input_scales.size))
    styles = ["-", "--", "-.", ":"]
    for k, (row, scale, color) in enumerate(zip(norm0, input_scales, colors)):
        shown = np.where(np.isfinite(row) & (row > 0), row, np.nan)
        ax.semilogy(spectral_norms, shown, color=color, ls=styles[k % len(styles)], label=f"input scale {scale:g}")
    ax.axhspan(1 / factor, factor, color="gray", alpha=0.2, label=f"within a factor {factor:g} of 1")
    finite = norm0[np.isfinite(norm0) & (norm0 > 0)]
    if finite.size:
        low, high = min(finite.min(), 1 / factor) / 10, max(finite.max(), factor) * 10
        ax.set_ylim(low, high)
        step = max(1, int(np.ceil(np.log10(high / low) / 8)))          # at most about 8 labelled decades
        ax.set_yticks([10.0 ** e for e in range(int(np.ceil(np.log10(low))), int(np.log10(high)) + 1)
                       if e % step == 0])
        ax.minorticks_off()
    ax.set_xlabel(r"spectral norm $\sigma$ of $W_{hh}$")
    ax.set_ylabel(r"$\|\partial L / \partial h_0\|$ (log scale)")
    ax.set_title(f"tanh RNN: gradient left after {T} steps back")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")
    return ax


def plot_tanh_derivative(ax=None, limit=4.0):
    """Plot tanh(a) and its derivative 1 - tanh(a)^2 on [-limit, limit]. Returns the Axes."""
    import matplotlib.pyplot as plt

    limit = positive_number(limit, "limit")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    a = np.linspace(-limit, limit, 401)
    ax.plot(a, np.tanh(a), label=r"$\tanh(a)$")
    ax.plot(a, tanh_derivative(a), label=r"$\tanh'(a) = 1 - \tanh^2(a) \leq 1$")
    ax.axhline(1.0, color="gray", lw=0.8, ls="--")
    ax.set_xlabel("pre-activation a")
    ax.set_ylabel("value")
    ax.set_title("tanh squashes; its slope is at most 1")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return ax
