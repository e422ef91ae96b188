"""Character-level text data for language models: corpus loading, a character vocabulary,
a train/validation split and the batch iterator of truncated backpropagation through time.

Typical use (NumPy or PyTorch alike)::

    from helpers.text import load_corpus, CharVocab, train_val_split, tbptt_batches

    text = load_corpus()                        # datasets/shakespeare.txt as one str
    vocab = CharVocab.from_text(text)           # V = vocab.size distinct characters
    train_ids, val_ids = train_val_split(vocab.encode(text), val_fraction=0.1)
    h = None                                    # hidden state carried across chunks
    for x, y in tbptt_batches(train_ids, batch_size=32, seq_len=25):
        ...                                     # x, y: int64 (N, T); y is x shifted by one

Row ``n`` of chunk ``k + 1`` continues row ``n`` of chunk ``k`` exactly where it stopped, so
the final hidden state of one chunk is the right initial state of the next (in PyTorch,
``h = h.detach()`` between chunks). Everything here is deterministic; nothing trains a model.
"""
from numbers import Real

import numpy as np

from ._validate import integer as _int_arg
from .data import dataset_path

__all__ = ["CharVocab", "load_corpus", "num_tbptt_batches", "tbptt_batches", "train_val_split"]


def _ids_arg(ids, arg="ids"):
    """Return ``ids`` as a 1-D int64 NumPy array (torch tensors and lists accepted)."""
    if hasattr(ids, "detach") and hasattr(ids, "cpu"):  # a torch.Tensor
        ids = ids.detach().cpu().numpy()
    if isinstance(ids, (str, bytes)):
        raise ValueError(f"{arg} must be a 1-D array of integer ids, got a {type(ids).__name__}; "
                         "encode the text first (vocab.encode(text))")
    array = np.asarray(ids)
    if array.ndim != 1:
        raise ValueError(f"{arg} must be 1-D (a sequence of ids), got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{arg} must hold integers, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def load_corpus(name="shakespeare.txt", max_chars=None):
    """Read a text file of ``datasets/`` as one string.

    Inputs:
    - name: str, file name inside datasets/ (default the Shakespeare corpus, ~1 MB ASCII)
    - max_chars: None (whole file) or int >= 1, keep only the first ``max_chars`` characters
    Returns: str
    """
    if max_chars is not None:
        max_chars = _int_arg(max_chars, "max_chars", 1)
    text = dataset_path(name).read_text(encoding="utf-8")
    return text if max_chars is None else text[:max_chars]


class CharVocab:
    """A character vocabulary: character <-> integer id, ids 0 .. V-1 in sorted order.

    Build it with ``CharVocab.from_text(text)`` (every distinct character of ``text``) or
    ``CharVocab(chars)`` (an explicit list of distinct one-character strings, kept in order).

    Attributes:
    - chars: list of the V characters; ``chars[i]`` is the character with id i
    - stoi: dict character -> id
    - size: V (also ``len(vocab)``)
    """

    def __init__(self, chars):
        if isinstance(chars, str):
            chars = list(chars)
        if not isinstance(chars, (list, tuple)) or not chars:
            raise ValueError(f"chars must be a non-empty list of characters, got {chars!r}")
        for c in chars:
            if not isinstance(c, str) or len(c) != 1:
                raise ValueError(f"chars must hold one-character strings, got {c!r}")
        if len(set(chars)) != len(chars):
            raise ValueError("chars must not repeat a character")
        self.chars = list(chars)
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text):
        """The vocabulary of all distinct characters of ``text`` (a non-empty str), sorted."""
        if not isinstance(text, str) or not text:
            raise ValueError(f"text must be a non-empty string, got {type(text).__name__}")
        return cls(sorted(set(text)))

    @property
    def size(self):
        """V, the number of characters."""
        return len(self.chars)

    def __len__(self):
        return len(self.chars)

    def __repr__(self):
        return f"CharVocab(size={self.size}, chars={''.join(self.chars)!r})"

    def encode(self, text):
        """str of length L -> int64 array of shape (L,). Unknown characters raise ValueError."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a string, got {type(text).__name__}")
        try:
            return np.fromiter((self.stoi[c] for c in text), dtype=np.int64, count=len(text))
        except KeyError as missing:
            raise ValueError(f"text contains {missing.args[0]!r}, which is not in the vocabulary") from None

    def decode(self, ids):
        """1-D ids (array, list or torch tensor) of shape (L,) -> str of length L."""
        ids = _ids_arg(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= self.size):
            raise ValueError(f"ids must lie in [0, {self.size - 1}], got values from {ids.min()} to {ids.max()}")
        return "".join(self.chars[i] for i in ids)

    def one_hot(self, ids):
        """ids of any integer shape S -> float64 array of shape S + (V,), one 1 per row."""
        ids = np.asarray(ids)
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"ids must hold integers, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.size):
            raise ValueError(f"ids must lie in [0, {self.size - 1}]")
        return np.eye(self.size)[ids]


def train_val_split(ids, val_fraction=0.1):
    """Split a sequence into a leading training part and a trailing validation part.

    The split is contiguous (no shuffling), so the validation text is unseen running text.

    Inputs:
    - ids: 1-D integer array (L,) (or list / torch tensor)
    - val_fraction: float in (0, 1), the share of the sequence kept for validation
    Returns: (train_ids, val_ids), int64 arrays of shapes (L - n_val,) and (n_val,), where
    n_val = round(L * val_fraction); both are non-empty.
    """
    ids = _ids_arg(ids)
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, Real) or not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be a number in (0, 1), got {val_fraction!r}")
    n_val = int(round(len(ids) * val_fraction))
    if n_val < 1 or n_val >= len(ids):
        raise ValueError(f"ids (length {len(ids)}) is too short to split with val_fraction={val_fraction}")
    return ids[:-n_val], ids[-n_val:]


def num_tbptt_batches(n_ids, batch_size, seq_len):
    """How many chunks ``tbptt_batches`` yields for a sequence of ``n_ids`` ids (offset 0)."""
    n_ids = _int_arg(n_ids, "n_ids", 0)
    batch_size = _int_arg(batch_size, "batch_size", 1)
    seq_len = _int_arg(seq_len, "seq_len", 1)
    stream_len = n_ids // batch_size
    return max(0, (stream_len - 1) // seq_len)


def tbptt_batches(ids, batch_size, seq_len, offset=0):
    """Yield (x, y) chunks for truncated BPTT with the hidden state carried across chunks.

    The sequence (after dropping its first ``offset`` ids) is cut into ``batch_size`` equal,
    contiguous streams, one per batch row; stream n is ``ids[offset + n*S : offset + (n+1)*S]``
    with S = (len(ids) - offset) // batch_size. Chunk k holds positions [k*T, (k+1)*T) of every
    stream, and its targets are the same positions shifted by one. Hence row n of chunk k + 1
    starts exactly where row n of chunk k ended: carry the final hidden state over.

    Inputs:
    - ids: 1-D integer array (L,)
    - batch_size: N >= 1, the number of parallel streams (batch rows)
    - seq_len: T >= 1, the number of time steps per chunk (the truncation length)
    - offset: int in [0, L), ids skipped at the start (e.g. a random offset per epoch so the
      chunk boundaries move)
    Yields: (x, y), int64 arrays of shape (N, T) with y[:, t] the id that follows x[:, t].
    The number of chunks is ``num_tbptt_batches(L - offset, N, T)``; a partial chunk at the
    end is dropped. Raises ValueError when not even one chunk fits.
    """
    ids = _ids_arg(ids)
    batch_size = _int_arg(batch_size, "batch_size", 1)
    seq_len = _int_arg(seq_len, "seq_len", 1)
    offset = _int_arg(offset, "offset", 0)
    if offset >= max(1, len(ids)):
        raise ValueError(f"offset must be smaller than len(ids)={len(ids)}, got {offset}")
    ids = ids[offset:]
    n_chunks = num_tbptt_batches(len(ids), batch_size, seq_len)
    if n_chunks == 0:
        raise ValueError(f"ids of length {len(ids)} are too short for batch_size={batch_size} and "
                         f"seq_len={seq_len}: each stream needs at least seq_len + 1 ids")
    stream_len = len(ids) // batch_size
    streams = ids[:batch_size * stream_len].reshape(batch_size, stream_len)
    for k in range(n_chunks):
        start = k * seq_len
        yield streams[:, start:start + seq_len].copy(), streams[:, start + 1:start + seq_len + 1].copy()
