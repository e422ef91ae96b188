"""The character-level LSTM language model of unit 6 (lecture 07, a6): the model, its Shakespeare
data, random training windows, a fixed evaluation and a plain, deterministic training loop.
Lecture 04 adds the model it improves one step at a time (``StackedCharLM``: stacked layers,
dropout between them, ``LockedDropout``, weight drop on W_hh in ``WeightDropLSTM``, weight tying)
and the figure of that ladder (``plot_improvement_ladder``).

Nothing here tunes anything: sampling configurations, random search, the learning-rate range
test, reading learning curves and weight averaging are what lecture 07 and assignment a6 build.
``train`` only offers the hooks they plug into: ``lr_at`` (a learning-rate schedule),
``after_step`` (called after every update, e.g. to update an averaged copy of the weights) and
``eval_model`` (which module the evaluation points measure, e.g. that averaged copy).

Notation: N batch, T sequence length, V vocabulary size, E embedding size, H hidden size.
Losses are mean cross-entropies in nats per character; ln V is the loss of a uniform guess.

Typical use::

    from helpers.charlm import CharLSTM, char_lm_data, evaluate, train

    data = char_lm_data(train_chars=200_000, val_chars=20_000)
    model = CharLSTM(data.vocab.size, hidden_size=128)
    print(evaluate(model, data.val_ids))            # {'loss': ~ln V, 'accuracy': ...}
    history = train(model, data, steps=300, lr=3e-3, eval_every=50)
    print(history["eval_step"], history["val_loss"])
"""
import math
import time
import warnings
from dataclasses import dataclass
from numbers import Real

import numpy as np
import torch
from torch import nn

from ._validate import function as _function_arg
from ._validate import integer as _int_arg
from ._validate import positive_number as _positive_arg
from ._validate import probability as _probability
from .text import CharVocab, _ids_arg, load_corpus, train_val_split

#: The window length of every evaluation ``train`` makes (the same for every configuration).
EVAL_SEQ_LEN = 128

__all__ = ["EVAL_SEQ_LEN", "CharLMData", "CharLSTM", "LockedDropout", "StackedCharLM", "WeightDropLSTM", "char_lm_data",
           "evaluate", "plot_improvement_ladder", "random_windows", "train"]


class CharLSTM(nn.Module):
    """Embedding -> one-layer LSTM -> dropout -> linear read-out to V scores per position.

    Inputs:
    - vocab_size: V >= 1
    - emb_size: E >= 1 (default 32); hidden_size: H >= 1 (default 128)
    - dropout: float in [0, 1), applied to the LSTM outputs before the read-out (training only)
    - out_init_scale: None keeps PyTorch's default initialisation of the read-out; a number
      s >= 0 draws ``out.weight`` from N(0, s^2) and sets ``out.bias`` to zero (a large s gives
      confident random predictions and an initial loss far above ln V)
    Uses the global torch RNG for its initial weights: seed it first (``seed_everything``).
    """

    def __init__(self, vocab_size, emb_size=32, hidden_size=128, dropout=0.0, out_init_scale=None):
        super().__init__()
        vocab_size = _int_arg(vocab_size, "vocab_size", 1)
        emb_size = _int_arg(emb_size, "emb_size", 1)
        hidden_size = _int_arg(hidden_size, "hidden_size", 1)
        dropout = _probability(dropout, "dropout")
        self.embedding = nn.Embedding(vocab_size, emb_size)
        self.lstm = nn.LSTM(emb_size, hidden_size, batch_first=True)
        self.dropout = nn.Dropout(float(dropout))
        self.out = nn.Linear(hidden_size, vocab_size)
        if out_init_scale is not None:
            if isinstance(out_init_scale, bool) or not isinstance(out_init_scale, Real) or not out_init_scale >= 0:
                raise ValueError(f"out_init_scale must be None or a number >= 0, got {out_init_scale!r}")
            with torch.no_grad():
                self.out.weight.normal_(0.0, float(out_init_scale))
                self.out.bias.zero_()

    def forward(self, x, state=None):
        """Scores of the next character at every position.

        Inputs:
        - x: int64 tensor (N, T) of character ids in [0, V)
        - state: None (zeros) or the (h, c) pair returned by a previous call, each (1, N, H)
        Returns: (scores, state): scores float (N, T, V), unnormalised (softmax gives the
        probabilities); state the final (h, c), each (1, N, H).
        """
        if not torch.is_tensor(x) or x.dim() != 2 or x.dtype not in (torch.int64, torch.int32):
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"x must be an int64 tensor of shape (N, T), got {shape}"
                             + (f" with dtype {x.dtype}" if torch.is_tensor(x) else ""))
        hidden, state = self.lstm(self.embedding(x), state)
        return self.out(self.dropout(hidden)), state


@dataclass(frozen=True)
class CharLMData:
    """The data of ``char_lm_data``: ``vocab`` (CharVocab of the whole corpus, V = vocab.size),
    ``train_ids`` and ``val_ids`` (1-D int64 NumPy arrays of character ids)."""

    vocab: CharVocab
    train_ids: np.ndarray
    val_ids: np.ndarray


def char_lm_data(train_chars=200_000, val_chars=20_000):
    """Shakespeare as character ids: a leading training text and the validation text after it.

    The vocabulary holds every character of the whole corpus (so V does not depend on the
    sizes); the first ``train_chars + val_chars`` characters are split with
    ``helpers.text.train_val_split``: training text first, then the next ``val_chars``
    characters as validation (contiguous, disjoint, unseen running text). Deterministic.

    Inputs:
    - train_chars: int >= 2 (default 200,000); val_chars: int >= 2 (default 20,000); together
      at most the corpus length (~1 M characters)
    Returns: CharLMData(vocab, train_ids (train_chars,), val_ids (val_chars,)), int64 arrays.
    """
    train_chars = _int_arg(train_chars, "train_chars", 2)
    val_chars = _int_arg(val_chars, "val_chars", 2)
    text = load_corpus()
    if train_chars + val_chars > len(text):
        raise ValueError(f"train_chars + val_chars must be at most the corpus length {len(text)}, "
                         f"got {train_chars} + {val_chars}")
    vocab = CharVocab.from_text(text)
    ids = vocab.encode(text[:train_chars + val_chars])
    train_ids, val_ids = train_val_split(ids, val_fraction=val_chars / (train_chars + val_chars))
    return CharLMData(vocab, train_ids, val_ids)


def _ids_tensor(ids, seq_len, arg="ids"):
    """``ids`` as a 1-D int64 CPU tensor with at least seq_len + 1 entries."""
    ids = torch.from_numpy(_ids_arg(ids, arg))
    if len(ids) < seq_len + 1:
        raise ValueError(f"{arg} must hold at least seq_len + 1 = {seq_len + 1} ids, got {len(ids)}")
    return ids


def random_windows(ids, batch_size, seq_len, generator):
    """A batch of N windows of T + 1 consecutive ids at random offsets: inputs and targets.

    Inputs:
    - ids: 1-D integer array or tensor (L,), L >= T + 1
    - batch_size: N >= 1; seq_len: T >= 1
    - generator: torch.Generator (CPU) that draws the N start offsets uniformly from
      [0, L - T - 1]: the batches are a function of the generator's seed only
    Returns: (x, y), int64 CPU tensors (N, T), with y[:, t] the id that follows x[:, t].
    """
    batch_size = _int_arg(batch_size, "batch_size", 1)
    seq_len = _int_arg(seq_len, "seq_len", 1)
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    ids = _ids_tensor(ids, seq_len)
    starts = torch.randint(0, len(ids) - seq_len, (batch_size,), generator=generator)
    windows = ids[starts[:, None] + torch.arange(seq_len + 1)]
    return windows[:, :-1], windows[:, 1:]


def _device_of(model):
    """The device of the model's first parameter (CPU for a model without parameters)."""
    return next(iter(model.parameters()), torch.empty(0)).device


def evaluate(model, ids, seq_len=EVAL_SEQ_LEN, batch_size=64, max_chars=None):
    """Mean next-character loss and accuracy over fixed, non-overlapping windows of ``ids``.

    ``ids`` (its first ``max_chars`` ids if given) is cut into K = (L - 1) // T windows
    ``ids[k*T : (k+1)*T]`` whose targets are the same positions shifted by one; the tail that
    does not fill a window is left out. Every window starts from the zero state. The model runs
    in eval mode under ``torch.no_grad()``; its previous train/eval mode is restored.

    Inputs:
    - model: a module mapping int64 (N, T) to (scores (N, T, V), state), like CharLSTM
    - ids: 1-D integer array or tensor (L,), L >= seq_len + 1 (after max_chars)
    - seq_len: T >= 1 (default 128); batch_size: windows per forward pass (default 64)
    - max_chars: None or int >= 2, use only the first max_chars ids
    Returns: dict(loss=float nats per character, accuracy=float share of next characters
    whose highest score is the right one), both over the K * T predicted characters.
    """
    seq_len = _int_arg(seq_len, "seq_len", 1)
    batch_size = _int_arg(batch_size, "batch_size", 1)
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    ids = _ids_tensor(ids, seq_len)
    if max_chars is not None:
        ids = _ids_tensor(ids[:_int_arg(max_chars, "max_chars", 2)], seq_len, "ids[:max_chars]")
    k = (len(ids) - 1) // seq_len
    x, y = ids[:k * seq_len].view(k, seq_len), ids[1:k * seq_len + 1].view(k, seq_len)
    device, was_training = _device_of(model), model.training
    total_loss, correct = 0.0, 0
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, k, batch_size):
                xb, yb = x[start:start + batch_size].to(device), y[start:start + batch_size].to(device)
                scores = model(xb)[0]
                total_loss += nn.functional.cross_entropy(scores.flatten(0, 1), yb.flatten(), reduction="sum").item()
                correct += int((scores.argmax(-1) == yb).sum())
    finally:
        model.train(was_training)
    return {"loss": total_loss / (k * seq_len), "accuracy": correct / (k * seq_len)}


def _check_train_args(model, data, lr, weight_decay, lr_at, after_step, eval_model, max_norm, diverge_above):
    """Raise ValueError naming the first bad argument of ``train``."""
    if not isinstance(model, nn.Module) or not any(p.requires_grad for p in model.parameters()):
        raise ValueError("model must be a torch.nn.Module with trainable parameters")
    if not (hasattr(data, "train_ids") and hasattr(data, "val_ids")):
        raise ValueError(f"data must have train_ids and val_ids (see char_lm_data), got {type(data).__name__}")
    _positive_arg(lr, "lr")
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, Real) or not weight_decay >= 0:
        raise ValueError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
    if isinstance(eval_model, nn.Module):
        raise ValueError("eval_model must be a zero-argument function returning the module to evaluate "
                         "(e.g. lambda: averaged_model), got the module itself")
    for fn, arg in ((lr_at, "lr_at"), (after_step, "after_step"), (eval_model, "eval_model")):
        if fn is not None:
            _function_arg(fn, arg)
    if max_norm is not None:
        _positive_arg(max_norm, "max_norm")
    if diverge_above is not None:
        _positive_arg(diverge_above, "diverge_above")


def _lr_of(lr_at, lr, step):
    """The learning rate of ``step``: ``lr_at(step)`` when given (checked), else ``lr``."""
    if lr_at is None:
        return float(lr)
    value = lr_at(step)
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value < math.inf:
        raise ValueError(f"lr_at({step}) must return a finite number >= 0, got {value!r}")
    return float(value)


_HISTORY_KEYS = ("step", "lr", "train_loss", "eval_step", "train_eval_loss", "train_eval_acc", "val_loss", "val_acc")


def _record_eval(history, step, module, train_ids, val_ids):
    """Append the train-slice and validation metrics of ``module`` at ``step`` to ``history``."""
    if not isinstance(module, nn.Module):
        raise ValueError(f"eval_model() must return a torch.nn.Module, got {type(module).__name__}")
    train_metrics, val_metrics = evaluate(module, train_ids), evaluate(module, val_ids)
    history["eval_step"].append(step)
    history["train_eval_loss"].append(train_metrics["loss"])
    history["train_eval_acc"].append(train_metrics["accuracy"])
    history["val_loss"].append(val_metrics["loss"])
    history["val_acc"].append(val_metrics["accuracy"])


def _step(model, optimizer, params, x, y, max_norm, limit):
    """One update on the batch (x, y); returns the loss (float). Skips the update when the loss
    is not finite or above ``limit``."""
    scores = model(x)[0]
    loss = nn.functional.cross_entropy(scores.flatten(0, 1), y.flatten())
    if not (math.isfinite(loss.item()) and loss.item() <= limit):
        return loss.item()
    optimizer.zero_grad()
    loss.backward()
    if max_norm is not None:
        nn.utils.clip_grad_norm_(params, max_norm)
    optimizer.step()
    return loss.item()


def _fork_rng(device):
    """A context in which the global torch RNG (of ``device``) may be reseeded without effect outside."""
    if device.type != "cuda":
        return torch.random.fork_rng(devices=[])
    devices = [device.index if device.index is not None else torch.cuda.current_device()]
    return torch.random.fork_rng(devices=devices)


def train(model, data, steps, lr, weight_decay=0.0, batch_size=32, seq_len=64, seed=0, eval_every=50,
          lr_at=None, after_step=None, eval_model=None, max_norm=1.0, diverge_above=None, progress=False):
    """Train a character language model with AdamW on random windows of the training text.

    Step k (k = 1 .. steps) draws N windows of T + 1 characters with ``random_windows`` (a
    torch.Generator seeded with ``seed``), each starting from the zero state, sets the learning
    rate of every parameter group to ``lr_at(k)`` (or ``lr``), takes one AdamW step on the mean
    cross-entropy with the gradient's global norm clipped to ``max_norm``, then calls
    ``after_step(model, k)``. Dropout draws from the global torch RNG reseeded with ``seed``
    inside this call (and restored after it), so the result is a function of the initial
    weights, the data and the arguments only.

    At step 0 (before training), every ``eval_every`` steps and after the last step, the module
    ``eval_model()`` (default: ``model``) is measured with ``evaluate`` (T = EVAL_SEQ_LEN = 128,
    the same for every configuration) on the validation text and on a training slice of the
    same size (the first len(val_ids) training ids), so the two losses are comparable. A run
    that diverges is not measured after its last step.

    A training loss that is not finite (or above ``diverge_above``) ends the run without an
    update: its step, learning rate and loss are still recorded and ``history["diverged"]`` is
    that step. Nothing is raised. (A too-large learning rate usually makes the loss huge but
    finite: pass e.g. ``diverge_above=2 * math.log(V)`` to stop such runs early.)

    Inputs:
    - model: torch.nn.Module mapping int64 (N, T) to (scores (N, T, V), state), e.g. CharLSTM;
      trained in place on its own device, left in the train/eval mode it had
    - data: CharLMData (or any object with train_ids and val_ids)
    - steps: int >= 1; lr: positive number (ignored when lr_at is given); weight_decay >= 0
      (AdamW, decoupled, on every parameter)
    - batch_size: N >= 1; seq_len: T >= 1; seed: int >= 0; eval_every: int >= 1
    - lr_at: None or ``lr_at(step) -> float >= 0`` for step = 1 .. steps (a schedule)
    - after_step: None or ``after_step(model, step)``, called after each update
    - eval_model: None or a zero-argument callable returning the module to evaluate
    - max_norm: positive number, or None for no clipping
    - diverge_above: None, or a number: a training loss above it counts as divergence
    - progress: show a progress bar (helpers.training.progress)
    Returns: dict of lists "step", "lr", "train_loss" (one entry per step taken), "eval_step",
    "train_eval_loss", "train_eval_acc", "val_loss", "val_acc" (one per evaluation point),
    "diverged" (None, or the step whose loss was not finite or above diverge_above) and
    "seconds" (CPU seconds of the whole call, time.process_time).
    """
    _check_train_args(model, data, lr, weight_decay, lr_at, after_step, eval_model, max_norm, diverge_above)
    limit = math.inf if diverge_above is None else float(diverge_above)
    steps, eval_every = _int_arg(steps, "steps", 1), _int_arg(eval_every, "eval_every", 1)
    batch_size, seq_len = _int_arg(batch_size, "batch_size", 1), _int_arg(seq_len, "seq_len", 1)
    seed = _int_arg(seed, "seed", 0)
    train_ids = _ids_tensor(data.train_ids, max(seq_len, EVAL_SEQ_LEN), "data.train_ids")
    val_ids = _ids_tensor(data.val_ids, EVAL_SEQ_LEN, "data.val_ids")
    train_slice = train_ids[:len(val_ids)]
    history = {key: [] for key in _HISTORY_KEYS}
    history["diverged"] = None
    start, device, was_training = time.process_time(), _device_of(model), model.training
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=float(lr), weight_decay=float(weight_decay))
    generator = torch.Generator().manual_seed(seed)
    measured = eval_model if eval_model is not None else (lambda: model)
    bar = None
    if progress:
        from .training import progress as progress_bar
        bar = progress_bar(total=steps, desc="training", leave=False)
    try:
        with _fork_rng(device):
            torch.manual_seed(seed)
            _record_eval(history, 0, measured(), train_slice, val_ids)
            for step in range(1, steps + 1):
                rate = _lr_of(lr_at, lr, step)
                for group in optimizer.param_groups:
                    group["lr"] = rate
                x, y = random_windows(train_ids, batch_size, seq_len, generator)
                model.train()
                loss = _step(model, optimizer, params, x.to(device), y.to(device), max_norm, limit)
                history["step"].append(step)
                history["lr"].append(rate)
                history["train_loss"].append(loss)
                if bar is not None:
                    bar.update(1)
                if not (math.isfinite(loss) and loss <= limit):
                    history["diverged"] = step
                    break
                if after_step is not None:
                    after_step(model, step)
                if step % eval_every == 0 or step == steps:
                    _record_eval(history, step, measured(), train_slice, val_ids)
    finally:
        model.train(was_training)
        if bar is not None:
            bar.close()
        history["seconds"] = time.process_time() - start
    return history


# ------------------------------------------------------------ the improvement ladder of lecture 04
def _check_ids_batch(x):
    """Raise ValueError unless x is an integer tensor of shape (N, T)."""
    if not torch.is_tensor(x) or x.dim() != 2 or x.dtype not in (torch.int64, torch.int32):
        shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise ValueError(f"x must be an int64 tensor of shape (N, T), got {shape}")


class LockedDropout(nn.Module):
    """Dropout with one mask per sequence, shared by every time step ("locked" or variational dropout).

    Input x of shape (N, T, F) -> same shape. In training mode each of the N x F mask entries is
    0 with probability p and 1 / (1 - p) otherwise, and the same entry multiplies x[n, t, f] at
    every t; in eval mode (or with p = 0) x is returned unchanged. The mask comes from the
    global torch RNG.

    Inputs: p, a float in [0, 1). Raises ValueError for anything else, or for x not 3-D.
    """

    def __init__(self, p):
        super().__init__()
        p = _probability(p, "p")
        self.p = float(p)

    def forward(self, x):
        if x.dim() != 3:
            raise ValueError(f"x must have shape (N, T, F), got {tuple(x.shape)}")
        if not self.training or self.p == 0:
            return x
        mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(1 - self.p) / (1 - self.p)
        return x * mask  # (N, 1, F) broadcast over the T steps


class WeightDropLSTM(nn.Module):
    """A one-layer LSTM (batch_first) whose recurrent matrix W_hh is regularised by DropConnect.

    In training mode every forward pass draws one dropout mask over the entries of
    ``weight_hh_l0`` (PyTorch's (4H, H) matrix, the transpose of the course's W_hh / ``Wh``): each
    entry is 0 with probability ``weight_drop`` and scaled by 1 / (1 - weight_drop) otherwise.
    Because the same matrix is used at every step, the h_{t-1} -> h_t connection loses the same
    weights at every step of the batch (AWD-LSTM's "weight drop"). In eval mode, or with
    weight_drop = 0, it is a plain ``nn.LSTM``.

    Inputs: input_size D >= 1, hidden_size H >= 1, weight_drop in [0, 1).
    forward(x (N, T, D), state None or (h, c) each (1, N, H)) -> (out (N, T, H), (h, c)).
    """

    def __init__(self, input_size, hidden_size, weight_drop=0.0):
        super().__init__()
        weight_drop = _probability(weight_drop, "weight_drop")
        self.weight_drop = float(weight_drop)
        self.lstm = nn.LSTM(_int_arg(input_size, "input_size", 1), _int_arg(hidden_size, "hidden_size", 1),
                            batch_first=True)

    def forward(self, x, state=None):
        if not self.training or self.weight_drop == 0:
            return self.lstm(x, state)
        dropped = nn.functional.dropout(self.lstm.weight_hh_l0, self.weight_drop, training=True)
        with warnings.catch_warnings():  # CUDA only: "weights are not part of single contiguous chunk"
            warnings.filterwarnings("ignore", message=".*contiguous chunk of memory.*")
            return torch.func.functional_call(self.lstm, {"weight_hh_l0": dropped}, (x, state))


class StackedCharLM(nn.Module):
    """The character language model that lecture 04 improves one step at a time.

    Embedding (V -> H) -> ``num_layers`` LSTM layers of size H -> linear read-out (H -> V). With
    ``dropout = p > 0`` a dropout layer sits on every vertical connection: on the embeddings
    (the input of layer 1), between layers, and on the last layer's output before the read-out;
    it is ``nn.Dropout`` (a fresh mask at every position) or, with ``locked=True``,
    ``LockedDropout`` (one mask per sequence for all time steps). Nothing is dropped on the
    horizontal h_{t-1} -> h_t connection except by ``weight_drop`` (DropConnect on each layer's
    W_hh, see ``WeightDropLSTM``). ``tie=True`` makes the read-out use the embedding matrix
    (one (V, H) matrix for both; the read-out keeps its own bias).

    Inputs:
    - vocab_size: V >= 1; hidden_size: H >= 1 (also the embedding size); num_layers >= 1
    - dropout, weight_drop: floats in [0, 1); locked, tie: bools
    Uses the global torch RNG for its initial weights: seed it first (``seed_everything``).
    """

    def __init__(self, vocab_size, hidden_size=128, num_layers=1, dropout=0.0, locked=False, weight_drop=0.0,
                 tie=False):
        super().__init__()
        vocab_size = _int_arg(vocab_size, "vocab_size", 1)
        hidden_size = _int_arg(hidden_size, "hidden_size", 1)
        num_layers = _int_arg(num_layers, "num_layers", 1)
        dropout = _probability(dropout, "dropout")
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        self.layers = nn.ModuleList(WeightDropLSTM(hidden_size, hidden_size, weight_drop) for _ in range(num_layers))
        self.drop = LockedDropout(dropout) if locked else nn.Dropout(float(dropout))
        self.out = nn.Linear(hidden_size, vocab_size)
        if tie:
            self.out.weight = self.embedding.weight

    def forward(self, x, state=None):
        """Scores of the next character at every position.

        Inputs: x int64 (N, T) of ids in [0, V); state None (zeros) or the list of per-layer
        (h, c) pairs, each (1, N, H), returned by a previous call.
        Returns: (scores float (N, T, V), state: list of num_layers (h, c) pairs).
        """
        _check_ids_batch(x)
        states = [None] * len(self.layers) if state is None else list(state)
        h = self.drop(self.embedding(x))                          # vertical: into layer 1
        for k, layer in enumerate(self.layers):
            h, states[k] = layer(h, states[k])                    # horizontal: weight drop only
            h = self.drop(h)                                      # vertical: between layers / before the read-out
        return self.out(h), states


def plot_improvement_ladder(ladder, axes=None):
    """The improvement ladder of lecture 04: validation loss of every rung, and its curves.

    Inputs:
    - ladder: the "ladder" part of datasets/lecture04_runs.json: {"rungs": [{"name", "runs": [{"eval_step",
      "val_loss", ...} per seed]}, ...], "data": {"ln_V", ...}}
    - axes: None (a new 12 x 4 inch figure) or two matplotlib Axes
    Left: the final validation loss of each rung, one dot per seed (drawn above a line at the mean) and
    a hollow marker for the lowest validation loss seen during the run. Right: the validation loss
    (mean over seeds) against the step from step 100 on (earlier points lie far above, near ln V).
    Returns the two Axes.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        axes = plt.subplots(1, 2, figsize=(12, 4.2))[1]
    left, right = axes
    rungs = ladder["rungs"]
    for k, rung in enumerate(rungs):
        final = np.array([run["val_loss"][-1] for run in rung["runs"]])
        best = np.array([min(run["val_loss"]) for run in rung["runs"]])
        offsets = k + np.linspace(-0.12, 0.12, len(final))
        left.hlines(final.mean(), k - 0.3, k + 0.3, color=f"C{k}", lw=3, alpha=0.6, zorder=1)
        left.scatter(offsets, final, color=f"C{k}", edgecolors="black", linewidths=0.5, s=30, zorder=3)
        left.scatter(offsets, best, facecolors="none", edgecolors=f"C{k}", s=30, zorder=3)
        steps = np.array(rung["runs"][0]["eval_step"])
        curve = np.mean([run["val_loss"] for run in rung["runs"]], axis=0)
        keep = steps >= 100
        right.plot(steps[keep], curve[keep], "-o", ms=3, color=f"C{k}", label=f"{k}. {rung['name']}")
    finals = [run["val_loss"][-1] for rung in rungs for run in rung["runs"]]
    bests = [min(run["val_loss"]) for rung in rungs for run in rung["runs"]]
    low, high = min(finals + bests), max(finals + bests)
    left.set(ylim=(low - 0.05, high + 0.05), xticks=range(len(rungs)),
             ylabel="validation loss (nats / character)",
             title="After the last step (filled: each seed; line: mean)\nhollow: lowest during the run")
    left.set_xticklabels([f"{k}. {rung['name']}" for k, rung in enumerate(rungs)], rotation=30, ha="right", fontsize=8)
    right.set(xlabel="training step", ylabel="validation loss (nats / character)",
              title="Validation loss during training (mean of the seeds)")
    right.legend(fontsize=8)
    return axes
