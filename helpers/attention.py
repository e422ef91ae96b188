"""Tools for lecture 05 and assignment a4 (seq2seq and attention): tensors from encoded pairs,
exact-match accuracy, a small generic training loop with early stopping, attention heatmaps,
the logic of the attention explorer widget and sinusoidal positional encodings.

Nothing here is a model: the encoder, decoder, attention layers, greedy decoding and the loss
are what lecture 05 and assignment a4 build. ``fit`` only calls the loss function it is given.

Typical use::

    from helpers.data import date_splits, date_vocabs, encode_pairs
    from helpers.attention import to_tensors, fit, exact_match, plot_attention

    src_vocab, tgt_vocab = date_vocabs()
    splits = date_splits(20000)
    train = to_tensors(encode_pairs(splits["train"], src_vocab, tgt_vocab))
    history = fit(model, my_loss, train, steps=300, val=lambda m: exact_match(m, val_data))
"""
import math
import time
from numbers import Integral, Real

import numpy as np

from .data import END_ID, PAD_ID, Seq2SeqVocab, minibatch_indices

__all__ = ["attention_entropy", "exact_match", "explore", "fit", "plot_attention", "positional_encoding",
           "to_tensors", "trim_batch"]

_KEYS = ("src", "src_mask", "tgt_in", "tgt_out", "tgt_mask")


def _int(value, arg, minimum=0):
    if isinstance(value, bool) or not isinstance(value, (Integral, np.integer)) or value < minimum:
        raise ValueError(f"{arg} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_data(data, arg="data"):
    if not isinstance(data, dict) or any(k not in data for k in _KEYS):
        keys = f" with keys {sorted(data)}" if isinstance(data, dict) else ""
        raise ValueError(f"{arg} must be a dict with the keys {_KEYS} (see helpers.data.encode_pairs), "
                         f"got {type(data).__name__}{keys}")
    n = len(data["src"])
    if any(len(data[k]) != n for k in _KEYS):
        raise ValueError(f"{arg}: all arrays must have the same number of rows")
    return n


def to_tensors(encoded, device=None):
    """Torch tensors (int64 ids, bool masks) of a dict made by ``helpers.data.encode_pairs``.

    Inputs:
    - encoded: dict with "src", "src_mask", "tgt_in", "tgt_out", "tgt_mask" (NumPy arrays)
    - device: None (CPU) or a torch.device / str
    Returns: dict with the same keys holding torch tensors on ``device``.
    """
    import torch

    _check_data(encoded, "encoded")
    return {k: torch.as_tensor(np.asarray(encoded[k]), device=device) for k in _KEYS}


def trim_batch(batch):
    """Cut the columns that are padding in every row of a batch (shorter tensors, faster steps).

    Inputs: dict as returned by ``to_tensors`` (N rows). Returns: a new dict, same keys, with
    S' = longest real source and T' = longest real target in this batch.
    """
    _check_data(batch, "batch")
    s_len = int(batch["src_mask"].sum(1).max())
    t_len = int(batch["tgt_mask"].sum(1).max())
    out = {"src": batch["src"][:, :s_len], "src_mask": batch["src_mask"][:, :s_len]}
    out.update({k: batch[k][:, :t_len] for k in ("tgt_in", "tgt_out", "tgt_mask")})
    return out


def _model_device(model):
    """The device of a module's first parameter (CPU for parameter-free callables)."""
    import torch

    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration, TypeError):
        return torch.device("cpu")


def exact_match(model, data, batch_size=500):
    """Fraction of sequences whose whole target (``<end>`` included) the model gets right.

    The model is run with teacher forcing: ``logits, _ = model(src, src_mask, tgt_in)``, and a
    sequence counts when the argmax is right at every real target position. This equals the
    exact-match accuracy of greedy decoding: if every step is right when fed the true prefix,
    greedy decoding feeds itself exactly that prefix, and vice versa.

    Inputs:
    - model: callable ``model(src (N,S), src_mask (N,S), tgt_in (N,T)) -> (logits (N,T,V), ...)``
    - data: dict of tensors from ``to_tensors``
    - batch_size: int >= 1
    Returns: float in [0, 1]. The model is put back in the train/eval mode it was in.
    """
    import torch

    n = _check_data(data)
    batch_size = _int(batch_size, "batch_size", 1)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    device = _model_device(model)
    correct = 0
    try:
        with torch.no_grad():
            for start in range(0, n, batch_size):
                b = trim_batch({k: data[k][start:start + batch_size].to(device) for k in _KEYS})
                out = model(b["src"], b["src_mask"], b["tgt_in"])
                logits = out[0] if isinstance(out, (tuple, list)) else out
                if tuple(logits.shape[:2]) != tuple(b["tgt_out"].shape):
                    raise ValueError(f"model returned logits of shape {tuple(logits.shape)}, expected "
                                     f"({b['tgt_out'].shape[0]}, {b['tgt_out'].shape[1]}, V)")
                right = (logits.argmax(-1) == b["tgt_out"]) | ~b["tgt_mask"]
                correct += int(right.all(dim=1).sum())
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    return correct / n


def fit(model, loss_fn, data, steps, batch_size=256, lr=1e-2, clip=1.0, seed=0, val=None, eval_every=20,
        stop_at=None, give_up=None, max_seconds=None, progress=True, desc="training"):
    """A small training loop: Adam, gradient clipping, linear learning-rate decay, early stopping.

    Each step draws a minibatch (a fresh shuffled order every pass over the data), trims its
    padding columns, calls ``loss = loss_fn(model, batch)`` and takes one Adam step. Every
    ``eval_every`` steps (and at the end) ``val(model)`` is recorded when given.

    Inputs:
    - model: torch.nn.Module
    - loss_fn: callable ``loss_fn(model, batch) -> scalar tensor``; batch is a dict like ``data``
    - data: dict of tensors from ``to_tensors`` (the training set)
    - steps: int >= 1, the most optimisation steps to take
    - batch_size, lr, clip (max gradient norm, None = no clipping), seed
    - val: None or callable ``val(model) -> float`` (e.g. exact match on a validation set)
    - stop_at: None or float; stop as soon as ``val(model) >= stop_at``
    - give_up: None or (step, minimum); stop if ``val(model) < minimum`` at that step (a model that
      has learnt nothing by then will not reach the target: fix it rather than wait)
    - max_seconds: None or a number; stop (after recording ``val``) once this many CPU seconds
      have been spent
    - progress: show a tqdm progress bar
    Raises FloatingPointError as soon as the loss is NaN or infinite.
    Returns: dict with "steps" (steps taken), "loss" (list of per-step losses), "val" (list of
    (step, value)), "seconds" (CPU seconds of this process) and "stopped" ("target", "gave up",
    "time" or "steps").
    """
    import torch

    n = _check_data(data)
    steps = _int(steps, "steps", 1)
    batch_size = _int(batch_size, "batch_size", 1)
    eval_every = _int(eval_every, "eval_every", 1)
    if not callable(loss_fn):
        raise ValueError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    if val is not None and not callable(val):
        raise ValueError(f"val must be None or callable, got {type(val).__name__}")
    if isinstance(lr, bool) or not isinstance(lr, Real) or not lr > 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if stop_at is not None and val is None:
        raise ValueError("stop_at needs a val function")
    if max_seconds is not None and (isinstance(max_seconds, bool) or not isinstance(max_seconds, Real)
                                    or not max_seconds > 0):
        raise ValueError(f"max_seconds must be None or a positive number, got {max_seconds!r}")
    if give_up is not None:
        if val is None or not (isinstance(give_up, (tuple, list)) and len(give_up) == 2):
            raise ValueError(f"give_up must be a (step, minimum) pair and needs a val function, got {give_up!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    device = params[0].device
    optimizer = torch.optim.Adam(params, lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: max(0.05, 1.0 - k / steps))
    history = {"steps": 0, "loss": [], "val": [], "seconds": 0.0, "stopped": "steps"}
    start = time.process_time()
    bar = None
    if progress:
        from .training import tqdm
        bar = tqdm(total=steps, desc=desc, leave=False)
    model.train()
    order, epoch = [], 0
    try:
        for step in range(1, steps + 1):
            if not order:
                order = minibatch_indices(n, batch_size, seed=seed * 1000 + epoch)
                epoch += 1
            idx = torch.as_tensor(order.pop(0), device=data["src"].device)
            batch = trim_batch({k: data[k][idx].to(device) for k in _KEYS})
            loss = loss_fn(model, batch)
            if not torch.is_tensor(loss) or loss.dim() != 0:
                raise ValueError(f"loss_fn must return a scalar tensor, got {type(loss).__name__}"
                                 + (f" of shape {tuple(loss.shape)}" if torch.is_tensor(loss) else ""))
            if not torch.isfinite(loss.detach()):
                raise FloatingPointError(f"the loss is {loss.detach().item()} at step {step}: something produces "
                                         "NaN or inf (a softmax over a row that is entirely masked?)")
            optimizer.zero_grad()
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(params, clip)
            optimizer.step()
            scheduler.step()
            history["loss"].append(loss.detach().item())
            history["steps"] = step
            if bar is not None:
                bar.update(1)
            if val is not None and (step % eval_every == 0 or step == steps):
                value = float(val(model))
                history["val"].append((step, value))
                if bar is not None:
                    bar.set_postfix(loss=f"{history['loss'][-1]:.3f}", val=f"{value:.4f}")
                if stop_at is not None and value >= stop_at:
                    history["stopped"] = "target"
                    break
                if give_up is not None and step >= give_up[0] and value < give_up[1]:
                    history["stopped"] = "gave up"
                    break
            if max_seconds is not None and time.process_time() - start > max_seconds:
                if val is not None and (not history["val"] or history["val"][-1][0] != step):
                    history["val"].append((step, float(val(model))))
                history["stopped"] = "time"
                break
    finally:
        if bar is not None:
            bar.close()
        history["seconds"] = time.process_time() - start
    return history


def plot_attention(weights, src_tokens, tgt_tokens, ax=None, title=None, xlabel="input position (source character)",
                   ylabel="output step (generated character)", fontsize=8, rotation=90):
    """Heatmap of attention weights: one row per output token (query), one column per input token (key).

    Inputs:
    - weights: array-like (T, S), row t = where output token t looked (rows sum to about 1)
    - src_tokens: list of S strings (column labels); tgt_tokens: list of T strings (row labels)
    - ax: matplotlib Axes or None (a new figure); title: str or None
    - xlabel, ylabel: axis labels (the defaults describe a seq2seq decoder reading its source; a
      self-attention plot would say e.g. "key position" and "query position")
    - fontsize: tick-label size in points; rotation: angle of the column labels in degrees
      (0 suits single characters)
    Returns: the Axes.
    """
    import matplotlib.pyplot as plt

    if hasattr(weights, "detach"):
        weights = weights.detach().cpu().numpy()
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 2:
        raise ValueError(f"weights must be 2-D (T, S), got shape {weights.shape}")
    if len(src_tokens) != weights.shape[1] or len(tgt_tokens) != weights.shape[0]:
        raise ValueError(f"weights has shape {weights.shape} but got {len(tgt_tokens)} tgt_tokens (rows) and "
                         f"{len(src_tokens)} src_tokens (columns)")
    if ax is None:
        _, ax = plt.subplots(figsize=(0.32 * weights.shape[1] + 2.0, 0.32 * weights.shape[0] + 1.4))
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(src_tokens)), [repr(t)[1:-1] if t == " " else t for t in src_tokens],
                  fontsize=fontsize, rotation=rotation)
    ax.set_yticks(range(len(tgt_tokens)), tgt_tokens, fontsize=fontsize)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or "attention weights")
    ax.figure.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="weight")
    return ax


def explore(decode, src_vocab, tgt_vocab, text, reverse_source=False):
    """The logic of the attention explorer: decode one input and return what to display.

    Inputs:
    - decode: callable ``decode(src (1, S) int64 tensor, src_mask (1, S) bool tensor)`` returning
      ``(tokens (1, L), weights (1, L, S))``, e.g. a wrapper around a greedy decoder
    - src_vocab, tgt_vocab: Seq2SeqVocab of the task
    - text: str, the input (characters outside src_vocab raise ValueError)
    - reverse_source: bool, the model reads the source reversed
    Returns: dict with
    - "input": text; "output": the decoded string (up to <end>)
    - "src_tokens": list of S input characters (in the order the model read them)
    - "tgt_tokens": list of the generated tokens up to and including <end> (length T')
    - "weights": float ndarray (T', S), the attention rows of those tokens
    """
    import torch

    if not callable(decode):
        raise ValueError(f"decode must be callable, got {type(decode).__name__}")
    if not isinstance(src_vocab, Seq2SeqVocab) or not isinstance(tgt_vocab, Seq2SeqVocab):
        raise ValueError("src_vocab and tgt_vocab must be Seq2SeqVocab objects")
    if not isinstance(text, str) or not text:
        raise ValueError(f"text must be a non-empty string, got {text!r}")
    read = text[::-1] if reverse_source else text
    ids = src_vocab.encode(read)
    src = torch.tensor([ids], dtype=torch.long)
    mask = torch.ones_like(src, dtype=torch.bool)
    with torch.no_grad():
        tokens, weights = decode(src, mask)
    tokens = torch.as_tensor(tokens).reshape(-1).cpu().numpy()
    weights = torch.as_tensor(weights).detach().cpu().numpy()
    if weights.ndim != 3 or weights.shape[0] != 1 or weights.shape[1] != len(tokens) or weights.shape[2] != len(ids):
        raise ValueError(f"decode returned weights of shape {weights.shape}, expected (1, {len(tokens)}, {len(ids)})")
    ends = np.flatnonzero(tokens == END_ID)
    keep = int(ends[0]) + 1 if ends.size else len(tokens)
    keep = min(keep, int(np.sum(tokens != PAD_ID)) or keep)
    return {"input": text, "output": tgt_vocab.decode(tokens), "src_tokens": list(read),
            "tgt_tokens": tgt_vocab.tokens(tokens[:keep]), "weights": weights[0, :keep]}


def attention_entropy(weights):
    """Entropy (in nats) of each attention row: 0 = looks at one position, log(S) = uniform.

    Inputs: weights array-like (..., S), rows sum to 1. Returns: ndarray (...).
    """
    if hasattr(weights, "detach"):
        weights = weights.detach().cpu().numpy()
    weights = np.asarray(weights, dtype=float)
    if weights.ndim < 1 or weights.shape[-1] == 0:
        raise ValueError(f"weights must have a non-empty last axis, got shape {weights.shape}")
    if np.any(weights < -1e-12):
        raise ValueError("weights must be non-negative")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(weights > 0, weights * np.log(np.where(weights > 0, weights, 1.0)), 0.0)
    return -terms.sum(axis=-1)


def positional_encoding(length, dim):
    """Sinusoidal positional encodings of "Attention Is All You Need".

    PE[p, 2i] = sin(p / 10000^(2i/dim)), PE[p, 2i+1] = cos(p / 10000^(2i/dim)).

    Inputs: length (int >= 1, positions 0..length-1), dim (even int >= 2)
    Returns: float32 ndarray (length, dim)
    """
    length = _int(length, "length", 1)
    dim = _int(dim, "dim", 2)
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    positions = np.arange(length)[:, None]
    freqs = np.exp(-math.log(10000.0) * np.arange(0, dim, 2) / dim)[None, :]
    pe = np.zeros((length, dim))
    pe[:, 0::2] = np.sin(positions * freqs)
    pe[:, 1::2] = np.cos(positions * freqs)
    return pe.astype(np.float32)
