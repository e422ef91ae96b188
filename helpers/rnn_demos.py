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
    "saved_tensor_bytes", "bptt_saved_bytes", "chunk_sweep_row", "plot_chunk_sweep",
    "inverse_sigmoid_schedule", "mix_in_predictions",
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
    """Entropy in nats of a distribution p (1-D, non-negative, sums to 1); 0 log 0 = 0.

    Returns a float >= 0 (a one-hot p gives 0.0, not -0.0). Raises ValueError for any other p.
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1 or p.size == 0 or np.any(p < 0) or not np.isclose(p.sum(), 1.0):
        raise ValueError("p must be a 1-D array of non-negative numbers summing to 1")
    nz = p[p > 0]
    return max(0.0, float(-(nz * np.log(nz)).sum()))       # never -0.0 (which prints as "-0.00")


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
def saved_tensor_bytes(fn, per="storage"):
    """Bytes of memory that the autograd graph built by ``fn()`` keeps alive for its backward pass.

    Autograd saves tensors for the backward pass (seen here through
    ``torch.autograd.graph.saved_tensors_hooks``); each saved tensor references a storage, the
    block of memory that holds its values. With ``per="storage"`` (the default) every distinct
    storage is counted **once, at its full size** (``untyped_storage().nbytes()``), however often
    it is saved: a weight used at every step is one block of memory, and a saved view keeps its
    whole storage alive. That is what the graph keeps alive: the activations, and the inputs and
    weights it references (the latter two are usually alive anyway, held by the caller).
    With ``per="save"`` every save counts ``numel * element_size`` bytes, so memory saved several
    times is counted several times: an overcount, kept to show the difference.
    The count is exact and deterministic (no timing, no allocator). The saved tensors are held
    until ``fn`` returns, so a storage freed inside ``fn`` cannot be reused and counted twice.

    Inputs: fn, a callable without arguments; per, "storage" or "save".
    Returns: (bytes as an int, the result of fn()).
    Raises ValueError if fn is not callable or per is not one of the two choices.
    """
    import torch

    if not callable(fn):
        raise ValueError(f"fn must be callable, got {type(fn).__name__}")
    if per not in ("storage", "save"):
        raise ValueError(f"per must be 'storage' or 'save', got {per!r}")
    storages, per_save, kept = {}, [0], []

    def pack(tensor):
        kept.append(tensor)
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        per_save[0] += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        result = fn()
    return (sum(storages.values()) if per == "storage" else per_save[0]), result


def bptt_saved_bytes(seq_len, chunk_len=None, N=8, D=16, H=64, seed=0, per="storage"):
    """Memory (bytes) the autograd graph of one (truncated) BPTT pass keeps alive at its largest.

    Runs a one-layer ``nn.RNN`` (tanh, float32, CPU, ``batch_first``) over random inputs of shape
    (N, seq_len, D) from h_0 = 0, with the loss ``out.pow(2).sum()`` over the outputs (N, seq_len, H).
    With ``chunk_len=None`` it is full BPTT: one graph over all ``seq_len`` steps. With a chunk
    length it is truncated BPTT: the steps are processed in chunks of ``chunk_len`` (each chunk's
    input a tensor of its own, as a data loader delivers it), the state is carried and detached
    between chunks, and each chunk's graph is freed by its backward pass; the result is then the
    largest graph of a chunk. Each graph is measured by ``saved_tensor_bytes(..., per=per)``.

    What the graph keeps alive (``per="storage"``), for a graph over T >= 2 steps, in float32:
    4 * (N*T*D + N*H + N*H*T + H*H + N*T*H) bytes = the inputs, h_0, the T states h_t, W_hh once,
    and the (N, T, H) output tensor, which is a copy of the states (nn.RNN on the CPU in torch 2.x;
    for T = 1, W_hh is not saved because h_0 needs no gradient). It grows linearly in T.

    Inputs: seq_len >= 1 steps; chunk_len None or >= 1 steps; N, D, H >= 1 (batch, input and
    hidden sizes); seed >= 0 for the random inputs; per "storage" (memory kept alive) or "save"
    (every save counted, an overcount).
    Returns: int, bytes. Raises ValueError on a bad argument.
    """
    import torch

    seq_len = _positive_int(seq_len, "seq_len")
    chunk_len = seq_len if chunk_len is None else _positive_int(chunk_len, "chunk_len")
    N, D, H = _positive_int(N, "N"), _positive_int(D, "D"), _positive_int(H, "H")
    generator = torch.Generator().manual_seed(_positive_int(seed, "seed", 0))
    rnn = torch.nn.RNN(D, H, batch_first=True)
    h = torch.zeros(1, N, H)
    peak = 0
    for start in range(0, seq_len, chunk_len):
        x = torch.randn(N, min(chunk_len, seq_len - start), D, generator=generator)

        def chunk_forward(x=x, h=h):
            out, h_last = rnn(x, h)
            return out.pow(2).sum(), h_last

        saved, (loss, h_last) = saved_tensor_bytes(chunk_forward, per=per)
        loss.backward()                     # frees this chunk's graph
        peak = max(peak, saved)
        h = h_last.detach()                 # carry the state, cut the graph
    return peak


def _sweep_chunk(sweep, k):
    if not isinstance(sweep, dict) or not {"settings", "memory_bytes", "runs"} <= set(sweep):
        raise ValueError("sweep must be the dict of datasets/lecture02_chunk_sweep.json "
                         "(keys settings, memory_bytes, runs)")
    lens = list(sweep["settings"]["chunk_lens"])
    if isinstance(k, bool) or k not in lens:
        raise ValueError(f"k must be one of the chunk lengths of the sweep {lens}, got {k!r}")
    return lens


def chunk_sweep_row(sweep, k):
    """What the cached chunk-length sweep of lecture 02 measured at one chunk length k.

    Inputs:
    - sweep: the dict stored in datasets/lecture02_chunk_sweep.json (made by
      scripts/lecture02_chunk_sweep.py): ``settings`` (``chunk_lens``, ``budget_chars``, ...),
      ``memory_bytes`` {str(k): bytes} and ``runs`` {str(k): [one dict per seed with ``updates``,
      ``val_loss`` and ``val_curve`` = [[training characters, validation loss], ...]]}
    - k: a chunk length (truncation length, in steps) of ``settings["chunk_lens"]``
    Returns: dict with k; memory_mib, the MiB (2**20 bytes) the graph of one training chunk keeps
    alive; updates, the weight updates of a run; val_losses, the final validation loss (nats/char)
    of each seed; val_loss, their mean; best_k, the chunk length with the lowest mean.
    Raises ValueError if sweep does not have that layout or k is not one of its chunk lengths.
    """
    lens = _sweep_chunk(sweep, k)
    runs = sweep["runs"][str(k)]
    losses = [float(r["val_loss"]) for r in runs]
    means = {n: float(np.mean([r["val_loss"] for r in sweep["runs"][str(n)]])) for n in lens}
    return {"k": k, "memory_mib": sweep["memory_bytes"][str(k)] / 2**20, "updates": int(runs[0]["updates"]),
            "val_losses": losses, "val_loss": float(np.mean(losses)), "best_k": min(means, key=means.get)}


def plot_chunk_sweep(sweep, k):
    """Three panels of the chunk-length sweep with chunk length k highlighted: memory kept alive
    against k, final validation loss against k (mean and seeds), validation loss during training.

    Inputs: sweep and k as in ``chunk_sweep_row``. Returns: the matplotlib Figure.
    Raises ValueError as ``chunk_sweep_row``.
    """
    import matplotlib.pyplot as plt

    lens = _sweep_chunk(sweep, k)
    rows = [chunk_sweep_row(sweep, n) for n in lens]
    row = rows[lens.index(k)]
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(lens)))
    fig, (ax_mem, ax_loss, ax_curve) = plt.subplots(1, 3, figsize=(15, 4))
    ax_mem.plot(lens, [r["memory_mib"] for r in rows], "o-", color="tab:blue", label="one training chunk")
    ax_mem.plot([k], [row["memory_mib"]], "o", ms=12, mfc="none", mec="tab:red", mew=2, label=f"k = {k}")
    mem = [r["memory_mib"] for r in rows]
    ax_mem.set(xscale="log", yscale="log", xlabel="chunk length k (steps, log scale)",
               ylabel="memory kept alive (MiB, log scale)", title="Memory of one chunk's graph",
               ylim=(min(mem) / 1.5, max(mem) * 1.5))
    ticks = [2.0 ** e for e in range(-12, 12) if min(mem) / 1.5 <= 2.0 ** e <= max(mem) * 1.5]
    ax_mem.set_yticks(ticks)
    ax_mem.set_yticklabels([f"{t:g}" for t in ticks])
    ax_mem.minorticks_off()
    for n, r in zip(lens, rows):
        ax_loss.plot([n] * len(r["val_losses"]), r["val_losses"], ".", color="gray", alpha=0.7)
    ax_loss.plot(lens, [r["val_loss"] for r in rows], "o-", color="tab:orange", label="mean over seeds")
    ax_loss.plot([], [], ".", color="gray", label="each seed")
    ax_loss.plot([k], [row["val_loss"]], "o", ms=12, mfc="none", mec="tab:red", mew=2, label=f"k = {k}")
    ax_loss.set(xscale="log", xlabel="chunk length k (steps, log scale)", ylabel="validation loss (nats/char)",
                title=f"After {sweep['settings']['budget_chars']:,} training characters")
    for n, color in zip(lens, colors):
        curves = np.array([r["val_curve"] for r in sweep["runs"][str(n)]], dtype=float)
        ax_curve.plot(curves[0, :, 0] / 1e3, curves[:, :, 1].mean(0), color=color, lw=3 if n == k else 1,
                      alpha=1 if n == k else 0.45, label=f"k = {n}")
    ax_curve.set(xlabel="training characters read (thousands)", ylabel="validation loss (nats/char)",
                 title="During training (mean over seeds)")
    for ax in (ax_mem, ax_loss):
        ax.set_xticks(lens)
        ax.set_xticklabels([str(n) for n in lens])
        ax.minorticks_off()
        ax.legend(fontsize=8)
    ax_curve.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


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
