"""Dataset paths (offline data shipped in ``datasets/``), the deterministic seq2seq generators
of unit 4 (human-written dates -> ISO dates, additions "123+45" -> "168") and the images of
unit 5 (a Fashion-MNIST subset, scikit-learn's 8x8 digits)."""
import datetime as _dt
import os
from numbers import Integral as _Integral
from pathlib import Path

import numpy as np

#: Environment variable that points the helpers at another datasets folder.
DATASETS_ENV = "RNN_COURSE_DATASETS"


def datasets_dir():
    """Return the course's ``datasets/`` folder as a Path.

    It is found next to this package (editable install), unless the environment variable
    ``RNN_COURSE_DATASETS`` names another folder.
    """
    folder = Path(os.environ.get(DATASETS_ENV, Path(__file__).resolve().parent.parent / "datasets"))
    if not folder.is_dir():
        raise FileNotFoundError(f"datasets folder {folder} does not exist; set {DATASETS_ENV} to the "
                                "course's datasets/ folder")
    return folder


def dataset_path(name):
    """Return the path of the file ``name`` inside ``datasets/``.

    Inputs:
    - name: str, a file name relative to datasets/, e.g. "shakespeare.txt"
    Returns: Path to an existing file. Raises FileNotFoundError listing what is there.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if Path(name).is_absolute() or ".." in Path(name).parts:
        raise ValueError(f"name must be a path inside datasets/, got {name!r}")
    folder = datasets_dir()
    path = folder / name
    if not path.is_file():
        available = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        raise FileNotFoundError(f"no dataset {name!r} in {folder}; available: {', '.join(available) or 'none'}")
    return path


# ============================================================================================
# Seq2seq toy data (unit 4): human-written dates -> ISO dates, and "123+45" -> "168".
# Everything below is NumPy / standard library only and deterministic given a seed.
# ============================================================================================

#: Special tokens shared by every seq2seq vocabulary, always with these ids.
PAD, START, END = "<pad>", "<start>", "<end>"
PAD_ID, START_ID, END_ID = 0, 1, 2

MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: First and last date the date generator draws from (two-digit years map into this range).
DATE_RANGE = (_dt.date(1950, 1, 1), _dt.date(2049, 12, 31))


def _ordinal(day):
    if day in (11, 12, 13):
        return f"{day}th"
    return f"{day}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th')}"


#: The human formats of the date generator: name -> function(date) -> str.
DATE_FORMATS = {
    "month d, yyyy": lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",      # september 27, 1994
    "Month d, yyyy": lambda d: f"{MONTHS[d.month - 1].title()} {d.day}, {d.year}",  # September 27, 1994
    "d month yyyy": lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",        # 27 september 1994
    "dd/mm/yy": lambda d: f"{d.day:02d}/{d.month:02d}/{d.year % 100:02d}",       # 27/09/94
    "mm/dd/yyyy": lambda d: f"{d.month:02d}/{d.day:02d}/{d.year}",               # 09/27/1994
    "dd.mm.yyyy": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",               # 27.09.1994
    "Wkd dd Mon yyyy": lambda d: (f"{WEEKDAYS[d.weekday()][:3].title()} {d.day:02d} "
                                  f"{MONTHS[d.month - 1][:3].title()} {d.year}"),  # Tue 27 Sep 1994
    "weekday, month d, yyyy": lambda d: (f"{WEEKDAYS[d.weekday()]}, {MONTHS[d.month - 1]} "
                                         f"{d.day}, {d.year}"),                   # tuesday, september 27, 1994
    "d-mon-yyyy": lambda d: f"{d.day}-{MONTHS[d.month - 1][:3]}-{d.year}",      # 27-sep-1994
    "mon d yy": lambda d: f"{MONTHS[d.month - 1][:3]} {d.day} {d.year % 100:02d}",  # sep 27 94
    "the dth of month yyyy": lambda d: f"the {_ordinal(d.day)} of {MONTHS[d.month - 1]} {d.year}",
    "D MONTH YYYY": lambda d: f"{d.day} {MONTHS[d.month - 1].upper()} {d.year}",  # 27 SEPTEMBER 1994
    "yyyymmdd": lambda d: f"{d.year}{d.month:02d}{d.day:02d}",                     # 19940927
}


def _seq2seq_int(value, arg, minimum=0):
    if isinstance(value, bool) or not isinstance(value, (_Integral, np.integer)) or value < minimum:
        raise ValueError(f"{arg} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def render_date(date, fmt):
    """Write ``date`` in the human format ``fmt`` (a key of ``DATE_FORMATS``).

    Inputs:
    - date: datetime.date
    - fmt: str, e.g. "month d, yyyy" -> "september 27, 1994"
    Returns: str. The ISO target of the same date is ``date.isoformat()``.
    """
    if not isinstance(date, _dt.date):
        raise ValueError(f"date must be a datetime.date, got {type(date).__name__}")
    if fmt not in DATE_FORMATS:
        raise ValueError(f"fmt must be one of {sorted(DATE_FORMATS)}, got {fmt!r}")
    return DATE_FORMATS[fmt](date)


def random_dates(n, seed=0, formats=None):
    """``n`` random (human date, ISO date) pairs, e.g. ("27/09/94", "1994-09-27").

    Dates are uniform over ``DATE_RANGE`` (1950-01-01 .. 2049-12-31), the format uniform over
    ``formats`` (default: all of ``DATE_FORMATS``). Deterministic given ``seed``.

    Inputs:
    - n: int >= 0, number of pairs
    - seed: int >= 0
    - formats: None or a list of keys of DATE_FORMATS
    Returns: list of n (source str, target str) tuples
    """
    n = _seq2seq_int(n, "n")
    seed = _seq2seq_int(seed, "seed")
    formats = sorted(DATE_FORMATS) if formats is None else list(formats)
    if not formats or any(f not in DATE_FORMATS for f in formats):
        raise ValueError(f"formats must be a non-empty list of keys of DATE_FORMATS, got {formats!r}")
    rng = np.random.default_rng(seed)
    first, last = DATE_RANGE
    offsets = rng.integers(0, (last - first).days + 1, size=n)
    which = rng.integers(0, len(formats), size=n)
    pairs = []
    for offset, f in zip(offsets, which):
        date = first + _dt.timedelta(days=int(offset))
        pairs.append((render_date(date, formats[f]), date.isoformat()))
    return pairs


def date_splits(n_train, n_val=1000, n_test=2000, seed=0):
    """Train / validation / test sets of (human date, ISO date) pairs with disjoint sources.

    The test set is drawn first, then validation, then training; a source string that is
    already in an earlier split is redrawn, so held-out accuracy measures generalisation to
    date strings never seen in training. The test set depends only on (n_test, seed), so every
    training-set size is scored on the same test set. Deterministic given ``seed``.

    Returns: dict with keys "train", "val", "test", each a list of (source, target) pairs.
    """
    sizes = {"test": _seq2seq_int(n_test, "n_test"), "val": _seq2seq_int(n_val, "n_val"),
             "train": _seq2seq_int(n_train, "n_train")}
    seed = _seq2seq_int(seed, "seed")
    seen, splits, chunk = set(), {}, 0
    for name, size in sizes.items():
        out = []
        while len(out) < size:
            for src, tgt in random_dates(max(64, 2 * (size - len(out))), seed=seed * 1000 + chunk):
                if src not in seen and len(out) < size:
                    seen.add(src)
                    out.append((src, tgt))
            chunk += 1
        splits[name] = out
    return {name: splits[name] for name in ("train", "val", "test")}


def random_additions(n, seed=0, max_digits=3, unique=True):
    """``n`` random addition problems as (question, answer) strings, e.g. ("123+45", "168").

    Both operands are uniform integers in [0, 10**max_digits). With ``unique`` no question
    repeats. Deterministic given ``seed``.

    Inputs:
    - n: int >= 0; seed: int >= 0; max_digits: int >= 1; unique: bool
    Returns: list of n (question str, answer str) tuples
    """
    n = _seq2seq_int(n, "n")
    seed = _seq2seq_int(seed, "seed")
    max_digits = _seq2seq_int(max_digits, "max_digits", 1)
    top = 10 ** max_digits
    if unique and n > top * top:
        raise ValueError(f"n must be at most {top * top} for unique questions with max_digits={max_digits}, got {n}")
    rng = np.random.default_rng(seed)
    pairs, seen = [], set()
    while len(pairs) < n:
        a, b = (int(v) for v in rng.integers(0, top, size=2))
        if unique and (a, b) in seen:
            continue
        seen.add((a, b))
        pairs.append((f"{a}+{b}", str(a + b)))
    return pairs


def addition_splits(n_train, n_val=1000, n_test=2000, seed=0, max_digits=3):
    """Train / validation / test addition problems with disjoint questions (see random_additions).

    The test problems come first in the random stream, so the test set depends only on
    (n_test, seed, max_digits), whatever the training-set size.
    """
    sizes = [_seq2seq_int(v, arg) for v, arg in ((n_test, "n_test"), (n_val, "n_val"), (n_train, "n_train"))]
    pairs = random_additions(sum(sizes), seed=seed, max_digits=max_digits, unique=True)
    a, b = sizes[0], sizes[0] + sizes[1]
    return {"train": pairs[b:], "val": pairs[a:b], "test": pairs[:a]}


class Seq2SeqVocab:
    """A character vocabulary with the special tokens <pad>=0, <start>=1, <end>=2.

    ``Seq2SeqVocab("0123456789-")`` has 14 tokens: the 3 specials, then the sorted characters.
    """

    def __init__(self, chars):
        if isinstance(chars, str):
            chars = list(chars)
        chars = sorted(set(chars))
        if not chars or any(not isinstance(c, str) or len(c) != 1 for c in chars):
            raise ValueError(f"chars must be a non-empty collection of single characters, got {chars!r}")
        self.itos = [PAD, START, END] + chars
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    def __len__(self):
        return len(self.itos)

    def __repr__(self):
        return f"Seq2SeqVocab({''.join(self.itos[3:])!r}, size={len(self)})"

    def encode(self, text, start=False, end=False):
        """Token ids of ``text`` (list of int), optionally wrapped in <start> ... <end>."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a str, got {type(text).__name__}")
        unknown = sorted(set(text) - set(self.stoi))
        if unknown:
            raise ValueError(f"text contains characters outside the vocabulary: {unknown}")
        ids = [self.stoi[c] for c in text]
        return ([START_ID] if start else []) + ids + ([END_ID] if end else [])

    def decode(self, ids):
        """The string of ``ids`` (ints, list / array / tensor): stops at the first <end>,
        skips <pad> and <start>."""
        if hasattr(ids, "detach") and hasattr(ids, "cpu"):
            ids = ids.detach().cpu().numpy()
        ids = np.asarray(ids)
        if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
            raise ValueError(f"ids must be a 1-D sequence of integers, got shape {ids.shape} and dtype {ids.dtype}")
        out = []
        for i in ids.tolist():
            if not 0 <= i < len(self.itos):
                raise ValueError(f"ids holds {i}, outside the vocabulary of size {len(self.itos)}")
            if i == END_ID:
                break
            if i not in (PAD_ID, START_ID):
                out.append(self.itos[i])
        return "".join(out)

    def tokens(self, ids):
        """The token strings of ``ids`` (specials included, e.g. '<end>'), for plot labels."""
        if hasattr(ids, "detach") and hasattr(ids, "cpu"):
            ids = ids.detach().cpu().numpy()
        return [self.itos[int(i)] for i in np.asarray(ids).reshape(-1)]


def date_vocabs():
    """(source vocabulary, target vocabulary) of the date task: every character any format
    of DATE_FORMATS can write, and the ISO characters '0123456789-'."""
    chars = set("0123456789 ,/.-")
    for name in MONTHS + WEEKDAYS + ("the", "of", "st", "nd", "rd", "th"):
        chars |= set(name) | set(name.upper()) | set(name.title())
    return Seq2SeqVocab(chars), Seq2SeqVocab("0123456789-")


def addition_vocabs():
    """(source vocabulary, target vocabulary) of the addition task: '0123456789+' and '0123456789'."""
    return Seq2SeqVocab("0123456789+"), Seq2SeqVocab("0123456789")


def pad_sequences(seqs, pad_id=PAD_ID, length=None):
    """Right-pad lists of ids into one int64 array (N, T), T = ``length`` or the longest.

    Returns: (ids int64 (N, T), mask bool (N, T)) with mask True at real tokens.
    """
    seqs = [list(s) for s in seqs]
    if not seqs:
        raise ValueError("seqs must hold at least one sequence")
    longest = max(len(s) for s in seqs)
    length = longest if length is None else _seq2seq_int(length, "length", 1)
    if length < longest:
        raise ValueError(f"length must be >= the longest sequence ({longest}), got {length}")
    ids = np.full((len(seqs), length), _seq2seq_int(pad_id, "pad_id"), dtype=np.int64)
    mask = np.zeros((len(seqs), length), dtype=bool)
    for row, s in enumerate(seqs):
        ids[row, :len(s)] = s
        mask[row, :len(s)] = True
    return ids, mask


def encode_pairs(pairs, src_vocab, tgt_vocab, reverse_source=False):
    """Encode (source, target) string pairs into padded arrays for a seq2seq model.

    Inputs:
    - pairs: list of N (source str, target str)
    - src_vocab, tgt_vocab: Seq2SeqVocab
    - reverse_source: bool, feed the source characters in reverse order (the "reversed input" trick)
    Returns: dict of NumPy arrays
    - "src": int64 (N, S), source ids right-padded with PAD_ID (no <start>/<end>)
    - "src_mask": bool (N, S), True at real source tokens
    - "tgt_in": int64 (N, T), decoder inputs <start> y_1 ... y_L, then padding
    - "tgt_out": int64 (N, T), decoder targets y_1 ... y_L <end>, then padding
    - "tgt_mask": bool (N, T), True where tgt_out is a real token (incl. <end>)
    """
    if not isinstance(src_vocab, Seq2SeqVocab) or not isinstance(tgt_vocab, Seq2SeqVocab):
        raise ValueError("src_vocab and tgt_vocab must be Seq2SeqVocab objects")
    pairs = list(pairs)
    if not pairs or any(not isinstance(p, (tuple, list)) or len(p) != 2 for p in pairs):
        raise ValueError("pairs must be a non-empty list of (source, target) string pairs")
    src = [src_vocab.encode(s[::-1] if reverse_source else s) for s, _ in pairs]
    tgt = [tgt_vocab.encode(t) for _, t in pairs]
    src_ids, src_mask = pad_sequences(src)
    tgt_in, _ = pad_sequences([[START_ID] + t for t in tgt])
    tgt_out, tgt_mask = pad_sequences([t + [END_ID] for t in tgt])
    return {"src": src_ids, "src_mask": src_mask, "tgt_in": tgt_in, "tgt_out": tgt_out, "tgt_mask": tgt_mask}


def minibatch_indices(n, batch_size, seed=0, shuffle=True):
    """Index arrays that split range(n) into minibatches (the last one may be smaller).

    Deterministic given ``seed`` (use seed = base seed + epoch for a new order every epoch).
    Returns: list of int64 arrays.
    """
    n = _seq2seq_int(n, "n", 1)
    batch_size = _seq2seq_int(batch_size, "batch_size", 1)
    order = np.random.default_rng(_seq2seq_int(seed, "seed")).permutation(n) if shuffle else np.arange(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


# ============================================================================================
# Images (unit 5): the Fashion-MNIST subset and scikit-learn's digits as a "different domain".
# Both are returned as NumPy arrays in the layout torch's Conv2d expects, (N, 1, H, W).
# ============================================================================================

#: Class names of Fashion-MNIST, label 0..9.
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FASHION_FILE = "fashion_mnist_subset.npz"


def _relabelling(classes, what):
    """Array (10,) mapping each of the 10 labels to its position in ``classes`` (-1 if not picked);
    ValueError unless ``classes`` is a sequence of distinct integers in 0..9 (``what`` names them)."""
    picked = list(classes) if isinstance(classes, (list, tuple, range, np.ndarray)) else []
    if (not picked or len(set(picked)) != len(picked) or any(
            isinstance(c, bool) or not isinstance(c, (_Integral, np.integer)) or not 0 <= c <= 9 for c in picked)):
        raise ValueError(f"classes must be None or a sequence of distinct {what} in 0..9, got {classes!r}")
    new_label = np.full(10, -1)
    new_label[picked] = np.arange(len(picked))
    return new_label


def fashion_mnist(split, classes=None):
    """Images and labels of the shipped Fashion-MNIST subset (datasets/fashion_mnist_subset.npz).

    The subset is class-balanced: "train" has 1,000 images per class (from the official training
    file), "test" 200 per class (from the official test file); see scripts/make_fashion_subset.py.

    Inputs:
    - split: "train" or "test"
    - classes: None (all 10 classes, labels 0..9), or a sequence of distinct labels, e.g.
      (5, 6, 7, 8, 9): keep only those images and relabel them 0..len(classes)-1 in the given order
    Returns: (images, labels)
    - images: float32 (N, 1, 28, 28), pixel values in [0, 1] (0 = black background)
    - labels: int64 (N,)
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    with np.load(dataset_path(FASHION_FILE)) as npz:
        images, labels = npz[f"{split}_images"], npz[f"{split}_labels"].astype(np.int64)
    if classes is not None:
        new_label = _relabelling(classes, "labels")
        keep = new_label[labels] >= 0
        images, labels = images[keep], new_label[labels[keep]]
    return (images[:, None] / np.float32(255)).astype(np.float32), labels.astype(np.int64)


def digits_8x8(size=28):
    """scikit-learn's bundled handwritten digits (1,797 images of 8x8 pixels, labels 0-9; UCI
    "Optical Recognition of Handwritten Digits", shipped with scikit-learn, no download),
    scaled up with bilinear interpolation (torch.nn.functional.interpolate) to ``size`` x ``size``.
    A "different domain" for a network pretrained on Fashion-MNIST: same layout, other images.

    Inputs:
    - size: int >= 8, the side of the output images (28 matches Fashion-MNIST)
    Returns: (images float32 (1797, 1, size, size) in [0, 1], labels int64 (1797,))
    """
    import torch
    from sklearn.datasets import load_digits

    if isinstance(size, bool) or not isinstance(size, (_Integral, np.integer)) or size < 8:
        raise ValueError(f"size must be an integer >= 8, got {size!r}")
    digits = load_digits()
    small = torch.tensor(digits.images / 16.0, dtype=torch.float32)[:, None]  # pixel values 0..16
    images = torch.nn.functional.interpolate(small, size=(int(size), int(size)), mode="bilinear")
    return images.clamp(0, 1).numpy(), digits.target.astype(np.int64)


# --------------------------------------------------------------------------------------------
# Rotated images (unit 5, transfer learning): "photos taken at any orientation". Every image is
# padded to ROTATED_SIZE x ROTATED_SIZE and turned by its own random angle. A CNN is not rotation
# invariant, so a model pretrained on many rotated source images has learned something that 5
# target images per class cannot teach: pretraining pays (scripts/transfer_sweep.py measures it).
# --------------------------------------------------------------------------------------------

#: Fashion-MNIST labels of the source task (T-shirt/top, Trouser, Pullover, Dress, Coat) ...
SOURCE_CLASSES = (0, 1, 2, 3, 4)
#: ... and of the target task (Sandal, Shirt, Sneaker, Bag, Ankle boot) of unit 5.
TARGET_CLASSES = (5, 6, 7, 8, 9)
#: Side of a rotated image: 28 x 28 padded with 4 zero pixels on each side.
ROTATED_SIZE = 36
#: Images per class of rotated_digits("train"); the other 797 of the 1,797 digits are its test split.
DIGITS_TRAIN_PER_CLASS = 100


def rotate_images(images, seed=None, degrees=None):
    """Pad square images to 36 x 36 (zeros) and rotate each by its own angle about the centre.

    Bilinear interpolation, zeros outside the picture (torch.nn.functional.affine_grid +
    grid_sample, align_corners=False). Angles are counter-clockwise as the image is displayed
    (row 0 at the top), so 90 degrees equals ``np.rot90(padded, axes=(2, 3))`` up to interpolation
    error. The corners of a 28 x 28 picture leave the 36 x 36 canvas near 45 degrees and are cut.

    Inputs:
    - images: float32 array (N, 1, S, S), S even and 2 <= S <= 36 (e.g. 28)
    - seed: int >= 0; the angles are ``np.random.default_rng(seed).uniform(0, 360, N)`` (image i gets
      the i-th draw). Give exactly one of seed and degrees.
    - degrees: array-like (N,) of angles in degrees, instead of a seed
    Returns: float32 array (N, 1, 36, 36)
    """
    import torch
    import torch.nn.functional as F

    images = np.asarray(images)
    if images.dtype != np.float32 or images.ndim != 4 or images.shape[1] != 1 or images.shape[2] != images.shape[3]:
        raise ValueError(f"images must be a float32 array (N, 1, S, S), got dtype {images.dtype} and shape "
                         f"{images.shape}")
    side = images.shape[2]
    if not 2 <= side <= ROTATED_SIZE or side % 2:
        raise ValueError(f"images must have an even side S with 2 <= S <= {ROTATED_SIZE}, got S = {side}")
    if (seed is None) == (degrees is None):
        raise ValueError("give exactly one of seed (random angles) and degrees (given angles)")
    if seed is not None:
        degrees = np.random.default_rng(_seq2seq_int(seed, "seed")).uniform(0.0, 360.0, len(images))
    degrees = np.asarray(degrees, dtype=np.float64)
    if degrees.shape != (len(images),) or not np.isfinite(degrees).all():
        raise ValueError(f"degrees must be {len(images)} finite angles (one per image), got shape {degrees.shape}")
    margin = (ROTATED_SIZE - side) // 2
    x = F.pad(torch.from_numpy(images), (margin, margin, margin, margin))
    # Output pixel p samples the input at R p (normalised x right, y down): the picture turns by
    # -angle in those coordinates, i.e. counter-clockwise on screen.
    radians = torch.from_numpy(np.deg2rad(degrees)).float()
    cos, sin, zero = radians.cos(), radians.sin(), torch.zeros(len(images))
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False).numpy()


def _split_seed(split, seed):
    """Seed of the angles of a split: 2 * seed for "train", 2 * seed + 1 for "test"."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return 2 * _seq2seq_int(seed, "seed") + (split == "test")


def rotated_fashion(split, classes, seed=0):
    """The Fashion-MNIST subset (see fashion_mnist), each image rotated by its own random angle.

    Every picture of the split keeps one angle whatever ``classes`` asks for: the angles are drawn
    for all 10,000 (train) or 2,000 (test) images of the subset in file order, with
    ``rotate_images(..., seed=2 * seed)`` for "train" and ``seed=2 * seed + 1`` for "test", so the
    two splits never share an angle stream.

    Inputs:
    - split: "train" (1,000 images per class) or "test" (200 per class)
    - classes: sequence of distinct labels in 0..9, e.g. TARGET_CLASSES
    - seed: int >= 0
    Returns: (images float32 (N, 1, 36, 36) in [0, 1], labels int64 (N,) in 0..len(classes)-1, relabelled
    in the order of ``classes``)
    """
    angle_seed = _split_seed(split, seed)
    if classes is None:
        raise ValueError("classes must be a sequence of distinct labels in 0..9, got None")
    _, all_labels = fashion_mnist(split)
    images, labels = fashion_mnist(split, classes)
    degrees = np.random.default_rng(angle_seed).uniform(0.0, 360.0, len(all_labels))
    return rotate_images(images, degrees=degrees[np.isin(all_labels, classes)]), labels


def rotated_digits(split, classes=None, seed=0):
    """scikit-learn's digits at 28 x 28 (digits_8x8(28)), each rotated by its own random angle: the
    "different domain" of unit 5.

    Split: 100 images per digit (1,000) for "train", the other 797 for "test", drawn once per class
    with ``np.random.default_rng(0).choice`` (fixed: independent of ``seed``). Angles as in
    rotated_fashion: drawn for all 1,797 digits in file order with seed 2 * seed ("train") or
    2 * seed + 1 ("test").

    Inputs:
    - split: "train" or "test"
    - classes: None (all ten digits) or a sequence of distinct digits in 0..9, relabelled
      0..len(classes)-1 in the given order
    - seed: int >= 0
    Returns: (images float32 (N, 1, 36, 36) in [0, 1], labels int64 (N,)), in file order
    """
    angle_seed = _split_seed(split, seed)
    images, labels = digits_8x8(28)
    pick = np.random.default_rng(0)
    train = np.zeros(len(labels), dtype=bool)
    for digit in range(10):
        train[pick.choice(np.flatnonzero(labels == digit), DIGITS_TRAIN_PER_CLASS, replace=False)] = True
    keep = train if split == "train" else ~train
    if classes is not None:
        new_label = _relabelling(classes, "digits")
        keep &= new_label[labels] >= 0
        labels = new_label[labels]
    degrees = np.random.default_rng(angle_seed).uniform(0.0, 360.0, len(labels))
    return rotate_images(images[keep], degrees=degrees[keep]), labels[keep].astype(np.int64)


def few_shot_indices(labels, per_class, seed):
    """Sorted positions of ``per_class`` examples of every class in ``labels``, drawn without
    replacement with ``np.random.default_rng(seed)`` (class by class, in increasing label order).

    Inputs:
    - labels: 1-D integer array (N,); every distinct value is a class
    - per_class: int >= 1
    - seed: int >= 0
    Returns: int64 array (per_class * number of classes,). Raises ValueError when a class has fewer
    than per_class examples.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a non-empty 1-D integer array, got shape {labels.shape} and dtype "
                         f"{labels.dtype}")
    per_class = _seq2seq_int(per_class, "per_class", 1)
    rng = np.random.default_rng(_seq2seq_int(seed, "seed"))
    picks = []
    for c in np.unique(labels):
        where = np.flatnonzero(labels == c)
        if len(where) < per_class:
            raise ValueError(f"per_class={per_class} but class {c} has only {len(where)} examples in labels")
        picks.append(rng.choice(where, per_class, replace=False))
    return np.sort(np.concatenate(picks)).astype(np.int64)
