"""The logic behind the demos and widgets of lectures 01 (recurrence) and 02 (BPTT).

Plain, tested functions: the lecture cells (and their ipywidgets) only call these. Nothing
here solves a graded exercise of assignment a1 (no RNN layer forward/backward passes, no
training loop, no sampler): the demos use PyTorch modules or closed-form arithmetic.
"""
from numbers import Real

import numpy as np

from ._validate import integer as _positive_int

__all__ = [
    "softmax_with_temperature", "entropy", "padding_fraction", "rnn_parameter_counts",
    "saved_tensor_bytes", "bptt_saved_bytes", "inverse_sigmoid_schedule", "mix_in_predictions",
    "score_table", "plot_distribution", "plot_unrolled_graph", "plot_task_shapes",
]


def _number(value, arg, minimum=None, strict=False):
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value):
        raise ValueError(f"{arg} must be a finite number, got {value!r}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ValueError(f"{arg} must be {'>' if strict else '>='} {minimum}, got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------- sampling
def softmax_with_temperature(scores, temperature):
    """Turn scores into a distribution sharpened or flattened by a temperature.

    Inputs:
    - scores: 1-D array-like of V finite scores (logits)
    - temperature: float >= 0; p = softmax(scores / temperature). temperature = 0 is the
      greedy limit: all mass on the largest score (ties share it equally).
    Returns: float64 array (V,) summing to 1.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1 or scores.size == 0 or not np.all(np.isfinite(scores)):
        raise ValueError(f"scores must be a non-empty 1-D array of finite numbers, got shape {scores.shape}")
    temperature = _number(temperature, "temperature", minimum=0)
    if temperature == 0:
        top = scores == scores.max()
        return top / top.sum()
    z = scores / temperature
    p = np.exp(z - z.max())
    return p / p.sum()


def entropy(p):
    """Entropy in nats of a distribution p (1-D, non-negative, sums to 1); 0 log 0 = 0."""
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1 or p.size == 0 or np.any(p < 0) or not np.isclose(p.sum(), 1.0):
        raise ValueError("p must be a 1-D array of non-negative numbers summing to 1")
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum())


def score_table(scores, chars, inputs, targets):
    """A text table of a char-LM's scores at every step, its predictions and whether they are right.

    Inputs:
    - scores: (T, V) array of output scores y_t
    - chars: the V characters, in id order
    - inputs, targets: strings of length T (the character read and the one to predict)
    Returns: (table str, number of correct predictions)
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] != len(chars):
        raise ValueError(f"scores must have shape (T, {len(chars)}), got {scores.shape}")
    if not (len(inputs) == len(targets) == scores.shape[0]):
        raise ValueError(f"inputs and targets must both have length T={scores.shape[0]}")
    header = "step  input  " + "".join(f"{c!r:>8}" for c in chars) + "   predicted  target  right?"
    lines, correct = [header], 0
    for t in range(scores.shape[0]):
        pred = chars[int(np.argmax(scores[t]))]
        correct += pred == targets[t]
        row = "".join(f"{v:8.2f}" for v in scores[t])
        lines.append(f"{t + 1:>4}  {inputs[t]!r:>5}  {row}   {pred!r:>9}  {targets[t]!r:>6}  "
                     f"{'yes' if pred == targets[t] else 'no'}")
    return "\n".join(lines), correct


# ----------------------------------------------------------------------------- L01 arithmetic
def padding_fraction(lengths):
    """Share of a zero-padded batch that is padding, when every sequence is padded to the longest.

    Inputs: lengths, 1-D array-like of sequence lengths (integers >= 1)
    Returns: float in [0, 1): 1 - sum(lengths) / (len(lengths) * max(lengths)).
    """
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or lengths.size == 0 or not np.issubdtype(lengths.dtype, np.integer) or lengths.min() < 1:
        raise ValueError("lengths must be a non-empty 1-D array of integers >= 1")
    return float(1.0 - lengths.sum() / (lengths.size * lengths.max()))


def rnn_parameter_counts(D, H, T):
    """Parameters of a vanilla RNN layer vs. a layer with separate weights for every position.

    Inputs: D input size, H hidden size, T sequence length (positive ints).
    Returns: dict with
    - "shared": D*H + H*H + H (W_xh, W_hh, b, the same at every step; independent of T)
    - "per_position": T * (D*H + H*H + H) (a new W_xh, W_hh, b for each of the T positions)
    """
    D, H, T = _positive_int(D, "D"), _positive_int(H, "H"), _positive_int(T, "T")
    shared = D * H + H * H + H
    return {"shared": shared, "per_position": T * shared}


# ----------------------------------------------------------------------------- L02 memory
def saved_tensor_bytes(fn):
    """Bytes of the tensors autograd saves for the backward pass while ``fn()`` runs.

    Every tensor packed by autograd (through ``torch.autograd.graph.saved_tensors_hooks``) is
    counted once per save: this is the memory a backward pass keeps alive, and it does not
    depend on timing or on the allocator. Inputs: fn, a callable without arguments.
    Returns: (bytes, result of fn()).
    """
    import torch

    if not callable(fn):
        raise ValueError(f"fn must be callable, got {type(fn).__name__}")
    total = [0]

    def pack(tensor):
        total[0] += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        result = fn()
    return total[0], result


def bptt_saved_bytes(seq_len, chunk_len=None, N=8, D=16, H=64, seed=0):
    """Largest autograd memory (bytes of saved tensors) held at once by one backward pass.

    Runs an ``nn.RNN`` (tanh, float32) over a random sequence of ``seq_len`` steps and a
    summed loss. With ``chunk_len=None`` it is full BPTT: one graph over all steps. With a
    chunk length it is truncated BPTT: the sequence is processed in chunks, the carried state
    is detached between chunks, and each chunk's graph is freed by its backward pass, so the
    memory held at once is that of the largest chunk.

    Inputs: seq_len >= 1; chunk_len None or >= 1; N, D, H sizes; seed for the random data.
    Returns: int, bytes.
    """
    import torch

    seq_len = _positive_int(seq_len, "seq_len")
    chunk_len = seq_len if chunk_len is None else _positive_int(chunk_len, "chunk_len")
    N, D, H = _positive_int(N, "N"), _positive_int(D, "D"), _positive_int(H, "H")
    generator = torch.Generator().manual_seed(_positive_int(seed, "seed", 0))
    rnn = torch.nn.RNN(D, H, batch_first=True)
    x = torch.randn(N, seq_len, D, generator=generator)
    h = torch.zeros(1, N, H)
    peak = 0
    for start in range(0, seq_len, chunk_len):
        def chunk_forward(h=h, start=start):
            out, h_last = rnn(x[:, start:start + chunk_len], h)
            return out.pow(2).sum(), h_last

        saved, (loss, h_last) = saved_tensor_bytes(chunk_forward)
        loss.backward()                     # frees this chunk's graph
        peak = max(peak, saved)
        h = h_last.detach()                 # carry the state, cut the graph
    return peak


# ----------------------------------------------------------------------------- L02 scheduled sampling
def inverse_sigmoid_schedule(step, k=100.0):
    """Teacher-forcing probability of scheduled sampling: eps = k / (k + exp(step / k)).

    Starts near 1 (always feed the ground truth) and decays towards 0 (always feed the model's
    own prediction) as training proceeds; larger k decays later. Inputs: step >= 0, k >= 1.
    Returns: float in (0, 1).
    """
    step = _number(step, "step", minimum=0)
    k = _number(k, "k", minimum=1)
    return float(k / (k + np.exp(min(step / k, 700.0))))


def mix_in_predictions(inputs, predictions, p_model, rng):
    """Scheduled-sampling inputs: replace each ground-truth input by the model's prediction
    with probability ``p_model``.

    Inputs:
    - inputs: integer array (N, T) of ground-truth input ids (teacher forcing)
    - predictions: integer array (N, T); predictions[:, t] is the model's guess of inputs[:, t]
      made from the steps before t (the first column is never replaced)
    - p_model: float in [0, 1], probability of feeding the model's own prediction
    - rng: np.random.Generator
    Returns: (mixed ids (N, T), boolean mask (N, T) of the replaced positions)
    """
    inputs, predictions = np.asarray(inputs), np.asarray(predictions)
    if inputs.ndim != 2 or not np.issubdtype(inputs.dtype, np.integer):
        raise ValueError(f"inputs must be a 2-D integer array (N, T), got shape {inputs.shape}")
    if predictions.shape != inputs.shape or not np.issubdtype(predictions.dtype, np.integer):
        raise ValueError(f"predictions must be an integer array of shape {inputs.shape}, got {predictions.shape}")
    p_model = _number(p_model, "p_model", minimum=0)
    if p_model > 1:
        raise ValueError(f"p_model must be in [0, 1], got {p_model}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a np.random.Generator, got {type(rng).__name__}")
    replace = rng.random(inputs.shape) < p_model
    replace[:, 0] = False
    return np.where(replace, predictions, inputs), replace


# ----------------------------------------------------------------------------- plots
def plot_distribution(probs, labels, title="", ax=None):
    """Bar chart of a distribution over labelled outcomes (e.g. next characters).

    Inputs: probs (V,), labels (V,) strings, title, optional matplotlib Axes.
    Returns: the Axes.
    """
    import matplotlib.pyplot as plt

    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 1 or len(labels) != probs.size:
        raise ValueError(f"probs (shape {probs.shape}) and labels (length {len(labels)}) must match")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 2.8))
    ax.bar(range(probs.size), probs, color="tab:blue")
    ax.set_xticks(range(probs.size))
    ax.set_xticklabels([{" ": "␣", "\n": "\\n", "\t": "\\t"}.get(c, c) for c in labels])
    ax.set_ylim(0, 1)
    ax.set_xlabel("next character")
    ax.set_ylabel("probability")
    ax.set_title(title)
    return ax


def _box(ax, x, y, text, color, w=0.8, h=0.55):
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02",
                                facecolor=color, edgecolor="black", linewidth=0.8))
    ax.text(x, y, text, ha="center", va="center", fontsize=10)


def _arrow(ax, start, end, color="black", style="-|>", rad=0.0):
    from matplotlib.patches import FancyArrowPatch

    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=10, color=color,
                                 linewidth=0.9, connectionstyle=f"arc3,rad={rad}"))


def plot_unrolled_graph(T=4, ax=None):
    """Draw a vanilla RNN unrolled over T steps, with one weight node W feeding every step.

    Inputs: T (1 <= T <= 8), optional Axes. Returns: the Axes.
    """
    import matplotlib.pyplot as plt

    T = _positive_int(T, "T")
    if T > 8:
        raise ValueError(f"T must be at most 8 to stay readable, got {T}")
    if ax is None:
        _, ax = plt.subplots(figsize=(1.9 * T + 2, 4.2))
    _box(ax, 0, 1.5, "$h_0$", "#d9f2d9")
    for t in range(1, T + 1):
        _box(ax, 1.6 * t, 0, f"$x_{t}$", "#f9d5d3")
        _box(ax, 1.6 * t, 1.5, f"$f_W$\n$h_{t}$", "#d9f2d9", h=0.7)
        _box(ax, 1.6 * t, 3.0, f"$y_{t}$ / $L_{t}$", "#d6e4f5", w=1.0)
        _arrow(ax, (1.6 * t, 0.3), (1.6 * t, 1.13))
        _arrow(ax, (1.6 * t, 1.87), (1.6 * t, 2.7))
        _arrow(ax, (1.6 * (t - 1) + 0.42, 1.5), (1.6 * t - 0.42, 1.5))
        _arrow(ax, (0.8 * (T + 1), -1.1), (1.6 * t + 0.42, 1.2), color="tab:orange", rad=0.15)
    _box(ax, 0.8 * (T + 1), -1.3, "W (shared)", "#ffe8b3", w=1.4, h=0.4)
    ax.text(1.6 * T + 0.9, 3.0, "$L = \\sum_t L_t$", va="center", fontsize=11)
    ax.set_xlim(-0.7, 1.6 * T + 2.0)
    ax.set_ylim(-1.7, 3.5)
    ax.axis("off")
    ax.set_title(f"A vanilla RNN unrolled over T = {T} steps: the same W at every step")
    return ax


#: (name, example, input steps, output steps, delay) of the task shapes drawn by plot_task_shapes
TASK_SHAPES = [
    ("one to one", "image classification", [1], [1]),
    ("one to many", "image captioning", [1], [1, 2, 3]),
    ("many to one", "sentiment of a review,\nvideo classification", [1, 2, 3], [3]),
    ("many to many\n(aligned)", "a label per video frame,\nper-character LM", [1, 2, 3], [1, 2, 3]),
    ("many to many\n(seq2seq)", "machine translation", [1, 2, 3], [4, 5, 6]),
]


def plot_task_shapes():
    """Draw the five input/output shapes of sequence tasks (red inputs, green states, blue outputs).

    Returns: the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(TASK_SHAPES), figsize=(15, 3.6))
    for ax, (name, example, ins, outs) in zip(axes, TASK_SHAPES):
        steps = sorted(set(ins) | set(outs))
        for i, t in enumerate(steps):
            x = 0.9 * i
            _box(ax, x, 1.0, "", "#d9f2d9", w=0.55, h=0.45)
            if t in ins:
                _box(ax, x, 0.0, "", "#f9d5d3", w=0.55, h=0.45)
                _arrow(ax, (x, 0.23), (x, 0.77))
            if t in outs:
                _box(ax, x, 2.0, "", "#d6e4f5", w=0.55, h=0.45)
                _arrow(ax, (x, 1.23), (x, 1.77))
            if i:
                _arrow(ax, (x - 0.9 + 0.28, 1.0), (x - 0.28, 1.0))
        ax.set_xlim(-0.5, 0.9 * 5 + 0.5)
        ax.set_ylim(-0.6, 2.6)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(f"{name}\n", fontsize=11)
        ax.text(0.9 * 2.5, -0.55, example, ha="center", va="top", fontsize=9)
    fig.suptitle("Task shapes (red: inputs, green: hidden states, blue: outputs; time runs left to right)",
                 y=1.02)
    return fig
