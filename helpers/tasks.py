"""Deterministic long-range-dependency tasks (copy, adding, delayed recall) and a tiny torch
training loop for the delayed-recall experiment of lecture 04.

Every generator is a pure function of its arguments and ``seed``: the same call returns the same
arrays on every machine. Token sequences are int64 arrays of shape (N, T); ``one_hot`` turns
them into float64 inputs of shape (N, T, V).
"""

import numpy as np

from ._validate import integer as _int_arg


def one_hot(tokens, vocab_size):
    """One-hot encode integer tokens.

    Inputs:
    - tokens: int array of any shape S, values in [0, vocab_size)
    - vocab_size: int V >= 1
    Returns: float64 array of shape S + (V,)
    """
    vocab_size = _int_arg(vocab_size, "vocab_size", 1)
    tokens = np.asarray(tokens)
    if not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"tokens must be an integer array, got dtype {tokens.dtype}")
    if tokens.size and (tokens.min() < 0 or tokens.max() >= vocab_size):
        raise ValueError(f"tokens must lie in [0, {vocab_size}), got values in [{tokens.min()}, {tokens.max()}]")
    return np.eye(vocab_size)[tokens]


def recall_input_size(n_symbols=4, n_noise=16):
    """Input size D of ``delayed_recall``: symbols + distractor tokens + the query marker."""
    return _int_arg(n_symbols, "n_symbols", 2) + _int_arg(n_noise, "n_noise", 1) + 1


def delayed_recall(n, gap, n_symbols=4, n_noise=16, seed=0, onehot=True):
    """The delayed-recall task: remember the first token across ``gap`` distractors.

    A sequence is ``[s, d_1, ..., d_gap, ?]``: a signal symbol s in [0, n_symbols), ``gap``
    random distractor tokens in [n_symbols, n_symbols + n_noise), and the query marker
    ``n_symbols + n_noise``. The target is s, to be predicted from the last hidden state.
    Chance accuracy is 1 / n_symbols. T = gap + 2, D = n_symbols + n_noise + 1.

    Inputs:
    - n: number of sequences N >= 1
    - gap: number of distractors between the signal and the query, >= 0
    - n_symbols (>= 2), n_noise (>= 1): sizes of the two token sets
    - seed: int; the result is a pure function of all arguments
    - onehot: True -> x is float64 (N, T, D); False -> x is int64 tokens (N, T)
    Returns: (x, y) with y int64 of shape (N,)
    """
    n, gap = _int_arg(n, "n", 1), _int_arg(gap, "gap", 0)
    vocab = recall_input_size(n_symbols, n_noise)
    rng = np.random.default_rng(_int_arg(seed, "seed", 0))
    y = rng.integers(0, n_symbols, size=n)
    tokens = np.empty((n, gap + 2), dtype=np.int64)
    tokens[:, 0] = y
    tokens[:, 1:-1] = rng.integers(n_symbols, n_symbols + n_noise, size=(n, gap))
    tokens[:, -1] = vocab - 1
    return (one_hot(tokens, vocab) if onehot else tokens), y.astype(np.int64)


def copy_task(n, gap, length=5, n_symbols=8, seed=0):
    """The copy task: read ``length`` symbols, wait, then write them back.

    Tokens: 0 = blank, 1..n_symbols = symbols, n_symbols + 1 = the "go" delimiter.
    Input  ``[s_1..s_L, 0 x (gap - 1), go, 0 x L]``; target ``[0 x (L + gap), s_1..s_L]``.
    T = 2 * length + gap, V = n_symbols + 2. A model that always answers blank scores
    (L + gap) / T per step but 0 on the copied symbols.

    Inputs: n >= 1, gap >= 1, length >= 1, n_symbols >= 1, seed (int)
    Returns: (x, y), both int64 of shape (N, T)
    """
    n, gap = _int_arg(n, "n", 1), _int_arg(gap, "gap", 1)
    length, n_symbols = _int_arg(length, "length", 1), _int_arg(n_symbols, "n_symbols", 1)
    rng = np.random.default_rng(_int_arg(seed, "seed", 0))
    T = 2 * length + gap
    symbols = rng.integers(1, n_symbols + 1, size=(n, length))
    x = np.zeros((n, T), dtype=np.int64)
    y = np.zeros((n, T), dtype=np.int64)
    x[:, :length] = symbols
    x[:, length + gap - 1] = n_symbols + 1
    y[:, -length:] = symbols
    return x, y


def adding_task(n, length, seed=0):
    """The adding problem: add the two marked numbers of a long sequence.

    Each step carries [value, marker]: values uniform in [0, 1); exactly two markers are 1,
    one in the first half of the sequence and one in the second half. The target is the sum of
    the two marked values. Always predicting 1.0 gives a mean squared error of about 1/6.

    Inputs: n >= 1 sequences, length T >= 2, seed (int)
    Returns: x float64 (N, T, 2), y float64 (N,)
    """
    n, length = _int_arg(n, "n", 1), _int_arg(length, "length", 2)
    rng = np.random.default_rng(_int_arg(seed, "seed", 0))
    values = rng.random((n, length))
    half = length // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, length, size=n)
    markers = np.zeros((n, length))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1)
    return x, values[rows, first] + values[rows, second]


# ------------------------------------------------------------------ torch experiment (lecture 04)
def make_recurrent_classifier(kind, input_size, hidden_size, n_classes, memory_bias=None, seed=0,
                              input_gate_bias=None):
    """A recurrent layer (torch.nn.RNN / LSTM / GRU, batch_first, tanh) + a linear readout
    applied to the last hidden state. Call it on x (N, T, D) -> scores (N, n_classes).

    memory_bias: the value that the bias (b_ih + b_hh) of the gate that keeps the old state starts
    at -- the forget gate f of an LSTM, the update gate z of a GRU (z -> 1 copies h forward);
    None = torch's default initialisation. Not allowed for kind="rnn", which has no gate.
    input_gate_bias: the value that the LSTM's input-gate bias (b_ih + b_hh of gate i) starts at
    (e.g. -3 makes every write start at sigma(-3) = 0.05 of the candidate); None = torch's default.
    Only for kind="lstm".
    """
    import torch
    from torch import nn

    kinds = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
    if kind not in kinds:
        raise ValueError(f"kind must be one of {sorted(kinds)}, got {kind!r}")
    if memory_bias is not None and kind == "rnn":
        raise ValueError("memory_bias needs a gated layer (kind='lstm' or 'gru'), got kind='rnn'")
    if input_gate_bias is not None and kind != "lstm":
        raise ValueError(f"input_gate_bias needs kind='lstm' (the only layer with an input gate), got kind={kind!r}")
    torch.manual_seed(_int_arg(seed, "seed", 0))

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = kinds[kind](input_size, hidden_size, batch_first=True)
            self.head = nn.Linear(hidden_size, n_classes)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.head(out[:, -1])

    model = Classifier()
    if memory_bias is not None:  # LSTM gates i, f, g, o and GRU gates r, z, n: both at [H:2H]
        H = hidden_size
        with torch.no_grad():
            model.rnn.bias_ih_l0[H:2 * H] = float(memory_bias)
            model.rnn.bias_hh_l0[H:2 * H] = 0.0
    if input_gate_bias is not None:  # LSTM gate i: rows [0:H]
        H = hidden_size
        with torch.no_grad():
            model.rnn.bias_ih_l0[:H] = float(input_gate_bias)
            model.rnn.bias_hh_l0[:H] = 0.0
    return model


def train_recall(kind, gap, hidden_size=32, steps=300, batch_size=32, lr=1e-2, memory_bias=None,
                 n_symbols=4, n_noise=16, n_test=512, seed=0, progress=False, input_gate_bias=None):
    """Train a torch recurrent classifier on ``delayed_recall`` with fresh batches, Adam and
    gradient clipping (global norm 5); stops early once the mean loss of the last 10 steps is
    below 0.02.

    Inputs: kind in {"rnn", "lstm", "gru"}, gap >= 0, sizes and optimiser settings,
    memory_bias and input_gate_bias (see ``make_recurrent_classifier``), seed; progress shows a
    tqdm bar.
    Returns: dict with "accuracy" (float, on n_test held-out sequences of another seed),
    "losses" (list of training losses, one per step taken) and "params" (parameters of the
    recurrent layer).
    """
    import torch
    from torch import nn

    steps, batch_size = _int_arg(steps, "steps", 1), _int_arg(batch_size, "batch_size", 1)
    vocab = recall_input_size(n_symbols, n_noise)
    model = make_recurrent_classifier(kind, vocab, _int_arg(hidden_size, "hidden_size", 1), n_symbols,
                                      memory_bias=memory_bias, seed=seed, input_gate_bias=input_gate_bias)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    bar = None
    if progress:
        from .training import tqdm
        bar = tqdm(total=steps, desc=f"{kind} gap={gap}", leave=False)
    try:
        for step in range(steps):
            x, y = delayed_recall(batch_size, gap, n_symbols, n_noise, seed=1000 * seed + step + 1)
            loss = loss_fn(model(torch.from_numpy(x).float()), torch.from_numpy(y))
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimiser.step()
            losses.append(loss.item())
            if bar is not None:
                bar.update(1)           # counts the steps taken, also the last one before an early stop
            if step >= 20 and np.mean(losses[-10:]) < 0.02:
                break
    finally:
        if bar is not None:
            bar.close()
    x, y = delayed_recall(n_test, gap, n_symbols, n_noise, seed=10**6 + seed)
    with torch.no_grad():
        accuracy = (model(torch.from_numpy(x).float()).argmax(1).numpy() == y).mean()
    return {"accuracy": float(accuracy), "losses": losses,
            "params": sum(p.numel() for p in model.rnn.parameters())}


def final_cell_stats(model, x, y):
    """What an LSTM classifier's last cell state looks like before training, and where the gradient goes.

    Runs ``model`` (from ``make_recurrent_classifier(kind="lstm", ...)``) on x and measures the
    final cell state c_T, which the read-out sees only through h_T = o * tanh(c_T), and the
    gradient of the cross-entropy loss with respect to the inputs.

    Inputs: x float array or tensor (N, T, D); y int array or tensor (N,) of targets.
    Returns: dict of floats
    - "mean_abs_c": mean of |c_T| over the N x H units
    - "saturated": share of the N x H units whose tanh slope 1 - tanh(c_T)^2 is below 0.1
      (|c_T| > 1.82: the gradient from h_T into c_T is cut by more than 10x there)
    - "slope": mean tanh slope 1 - tanh(c_T)^2
    - "grad_first_over_last": ||dL/dx_0|| / ||dL/dx_{T-1}|| (norms over N and D): how much gradient
      reaches the first input (the symbol) compared with the last one (the query)
    Raises ValueError when the model has no LSTM layer ``rnn`` or x is not 3-D.
    """
    import torch
    from torch import nn

    if not isinstance(getattr(model, "rnn", None), nn.LSTM):
        raise ValueError("model must come from make_recurrent_classifier(kind='lstm', ...)")
    x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x, dtype=torch.float32).clone()
    if x.dim() != 3:
        raise ValueError(f"x must have shape (N, T, D), got {tuple(x.shape)}")
    y = torch.as_tensor(np.asarray(y) if not torch.is_tensor(y) else y, dtype=torch.int64)
    x.requires_grad_(True)
    out, (_, c) = model.rnn(x)
    loss = nn.functional.cross_entropy(model.head(out[:, -1]), y)
    grad = torch.autograd.grad(loss, x)[0].norm(dim=(0, 2))
    slope = 1 - torch.tanh(c[0].detach()) ** 2
    return {"mean_abs_c": float(c.detach().abs().mean()), "saturated": float((slope < 0.1).float().mean()),
            "slope": float(slope.mean()), "grad_first_over_last": float(grad[0] / grad[-1])}


def plot_recall_accuracy(gaps, curves, ax=None, title=None, chance=None):
    """Accuracy against the gap: one line of per-gap means per curve, every seed as a dot on top.

    Inputs:
    - gaps: sequence of G gaps (the x values)
    - curves: dict {label: array (G, S)} of accuracies in [0, 1] (S seeds; S may differ by curve)
    - ax: matplotlib Axes or None (a new 7 x 4 inch figure); title: str or None
    - chance: None or the chance accuracy (a dashed grey line)
    The dots are drawn after (above) the lines, half transparent, and shifted sideways by a fixed
    amount per curve and per seed (no randomness) so equal values stay visible.
    Returns the Axes. Raises ValueError when a curve does not have G rows.
    """
    import matplotlib.pyplot as plt

    gaps = np.asarray(gaps, dtype=float)
    if ax is None:
        ax = plt.subplots(figsize=(7, 4))[1]
    spread = 0.008 * (gaps.max() - gaps.min() if len(gaps) > 1 else 1.0)
    markers = "os^Dv<>p"
    for k, (label, acc) in enumerate(curves.items()):
        acc = np.asarray(acc, dtype=float)
        if acc.ndim != 2 or acc.shape[0] != len(gaps):
            raise ValueError(f"curves[{label!r}] must have shape ({len(gaps)}, n_seeds), got {acc.shape}")
        shift = (k - (len(curves) - 1) / 2) * spread * (acc.shape[1] + 1)
        line, = ax.plot(gaps, acc.mean(axis=1), "-", color=f"C{k}", lw=1.5, zorder=2,
                        label=f"{label} (mean of {acc.shape[1]} seeds; dots = seeds)")
        offsets = shift + (np.arange(acc.shape[1]) - (acc.shape[1] - 1) / 2) * spread
        ax.scatter((gaps[:, None] + offsets[None, :]).ravel(), acc.ravel(), s=22, alpha=0.6, zorder=3,
                   marker=markers[k % len(markers)], color=line.get_color(), edgecolors="black", linewidths=0.4)
    if chance is not None:
        ax.axhline(chance, color="gray", ls="--", lw=0.8, zorder=1, label="chance")
    ax.set(xlabel="gap (distractors between the symbol and the query)", ylabel="test accuracy (fraction)",
           ylim=(0, 1.05), xticks=gaps)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, loc="lower left")
    return ax


def forget_bias_view(sweep, forget_bias):
    """The cached forget-bias sweep (lecture 04) at one forget-gate bias: what the slider shows.

    Inputs:
    - sweep: the "bias_sweep" part of datasets/lecture04_runs.json: a dict with "gaps" (G ints),
      "forget_biases" (numbers), "input_gate_biases" (labels) and "runs", where
      runs[input_label][str(forget_bias)][str(gap)] is a dict with "accuracy" (S floats) and
      "init" (dict of mean initial-cell statistics, see ``final_cell_stats``)
    - forget_bias: one of sweep["forget_biases"]
    Returns: dict with "gaps" (list), "forget_gate" (sigma(b), the initial forget gate),
    "kept_over_gap" (list: sigma(b)^gap, what the cell path keeps of a gradient over each gap),
    "curves" ({input label: array (G, S) of accuracies}) and "saturated" ({input label: list of G
    initial shares of saturated units}).
    Raises ValueError for a forget_bias that the sweep does not hold.
    """
    allowed = [float(b) for b in sweep["forget_biases"]]
    if isinstance(forget_bias, bool) or not isinstance(forget_bias, (int, float)) or float(forget_bias) not in allowed:
        raise ValueError(f"forget_bias must be one of {allowed}, got {forget_bias!r}")
    key, gaps = str(float(forget_bias)), list(sweep["gaps"])
    f = 1.0 / (1.0 + np.exp(-float(forget_bias)))
    curves, saturated = {}, {}
    for label in sweep["input_gate_biases"]:
        runs = sweep["runs"][label][key]
        curves[label] = np.array([runs[str(g)]["accuracy"] for g in gaps], dtype=float)
        saturated[label] = [runs[str(g)]["init"]["saturated"] for g in gaps]
    return {"gaps": gaps, "forget_gate": float(f), "kept_over_gap": [float(f ** g) for g in gaps],
            "curves": curves, "saturated": saturated}
