"""Deterministic scenes of coloured shapes with template captions, for image captioning (lecture 06,
assignment a5_transfer_captioning). No real captioning data is available offline, so we make our own.

Images: 64x64 RGB, float32 in [0, 1], torch layout (N, 3, 64, 64) as NumPy arrays. An image is a
4x4 grid of 16x16 cells -- the same grid as the 4x4 feature map of a CNN that downsamples by 16, so
each spatial attention position of "Show, Attend and Tell" sees one cell. A scene holds 1 to 3
objects, each in its own cell and never leaving it: a shape in {circle, square, triangle} (filled
disc, axis-aligned square, upward triangle) in a colour in {red, green, blue, yellow}, with its
size and offset jittered a little, on a dark background with small pixel noise.

Captions list the objects in reading order of their cells (row by row, left to right) and chain a
relation between consecutive objects: "above" when the next object is in a lower row, "left of"
when it is in the same row (reading order allows no other case)::

    1 object:  "a red circle"
    2 objects: "a red circle above a blue square"      "a red circle left of a blue square"
    3 objects: "a red circle above a blue square left of a green triangle"

Words are tokens ("left" and "of" are two). ``CaptionVocab`` maps them to ids with <NULL>=0
(padding), <START>=1 and <END>=2. Every scene is annotated with its objects (shape, colour, row,
col) and, for every caption token, the grid cell (row, col) of the object it names (colour words
and shape nouns) or None ("a", "above", "left", "of").

Typical use::

    from helpers.scenes import CaptionVocab, scene_splits

    splits = scene_splits(5000, 500, 500, seed=0)
    vocab = CaptionVocab()
    ids = vocab.encode(splits["train"].captions)         # int64 (N, T): <START> words <END> <NULL>...

Everything is NumPy only and a pure function of its arguments: the same call gives byte-identical
arrays on every machine.
"""
import hashlib
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._validate import integer as _int_arg
from ._validate import to_numpy

__all__ = ["COLOURS", "SHAPES", "CaptionVocab", "SceneObject", "Scenes", "describe", "make_scenes",
           "scene_splits", "scenes_from_objects", "single_shapes"]

IMAGE_SIZE, GRID, CELL = 64, 4, 16  # pixels per side, cells per side, pixels per cell side
SHAPES = ("circle", "square", "triangle")
COLOURS = ("red", "green", "blue", "yellow")
RGB = np.array([[0.90, 0.15, 0.15], [0.15, 0.75, 0.20], [0.20, 0.35, 0.95], [0.95, 0.85, 0.15]],
               dtype=np.float32)  # one row per colour of COLOURS
BACKGROUND, NOISE = 0.10, 0.05  # background grey level; pixel noise is uniform in [-NOISE, NOISE]
SIZE_RANGE = (4.5, 6.5)  # half-width of a shape in pixels; centre jitter keeps it 1 pixel inside its cell
HELD_OUT = 0.125  # share of all possible scenes reserved for the test split, and as much for validation

NULL, START, END = "<NULL>", "<START>", "<END>"
NULL_ID, START_ID, END_ID = 0, 1, 2
WORDS = tuple(sorted({"a", "above", "left", "of"} | set(SHAPES) | set(COLOURS)))  # the caption words


class SceneObject(NamedTuple):
    """One object of a scene: shape in SHAPES, colour in COLOURS, grid cell (row, col) in 0..3."""
    shape: str
    colour: str
    row: int
    col: int


@dataclass
class Scenes:
    """N scenes: images, captions and their annotations.

    - images: float32 (N, 3, 64, 64) in [0, 1]
    - captions: list of N str, e.g. "a red circle above a blue square"
    - objects: list of N tuples of SceneObject, in reading order (the order of the caption)
    - token_cells: list of N lists, one entry per caption word (``caption.split()``): the cell
      (row, col) of the object a colour word or shape noun names, None for the other words.
      In ``CaptionVocab.encode`` ids, word t sits at position t + 1 (after <START>).
    """
    images: np.ndarray
    captions: list
    objects: list
    token_cells: list

    def __len__(self):
        return len(self.captions)


def describe(objects):
    """Caption and token cells of one scene.

    Inputs:
    - objects: 1 to 3 SceneObject (or (shape, colour, row, col) tuples) in distinct cells, any order
    Returns: (caption str, token_cells list with one (row, col) or None per word)
    """
    return _describe(_check_objects(objects))


def make_scenes(n, seed=0, n_objects=(1, 3), bias=None):
    """``n`` random scenes with captions. Deterministic given the arguments.

    Inputs:
    - n: int >= 0, number of scenes
    - seed: int >= 0
    - n_objects: int in 1..3, or a pair (low, high) with 1 <= low <= high <= 3; the number of
      objects of each scene is uniform over low..high
    - bias: None, or a dict colour -> shape for the dataset-bias experiment, e.g. {"red": "circle"}
      makes every red object a circle
    Returns: Scenes (images float32 (n, 3, 64, 64))
    """
    n, rng = _int_arg(n, "n", 0), np.random.default_rng(_int_arg(seed, "seed", 0))
    layouts = _sample_layouts(rng, n, _check_n_objects(n_objects), _check_bias(bias))
    return _build(layouts, rng)


def scenes_from_objects(scenes, seed=0):
    """Render scenes that you choose, e.g. ``scenes_from_objects([[("circle", "red", 0, 0)]])``.

    Inputs:
    - scenes: list of N scenes, each a list of 1 to 3 (shape, colour, row, col) in distinct cells
    - seed: int >= 0, for the size/offset jitter and the pixel noise
    Returns: Scenes, objects sorted into reading order
    """
    if not isinstance(scenes, (list, tuple)):
        raise ValueError(f"scenes must be a list of scenes (lists of objects), got {type(scenes).__name__}")
    layouts = [_check_objects(objects) for objects in scenes]
    return _build(layouts, np.random.default_rng(_int_arg(seed, "seed", 0)))


def scene_splits(n_train, n_val=500, n_test=500, seed=0, n_objects=(1, 3), bias=None):
    """Train / validation / test scenes; no scene (same objects in the same cells) is in two splits.

    Every possible scene belongs to one split, by a hash of (seed, objects): 12.5 % of them to
    test, 12.5 % to validation, the rest to training. Each split then draws from its own random
    stream, keeping only its own scenes, so the test set depends only on (n_test, seed, n_objects),
    whatever the other sizes. (Drawing test first and excluding its scenes later, as date_splits
    does, would use up the 192 one-object scenes.) A scene may repeat inside a split, with other
    jitter and noise. ``bias`` (see make_scenes) applies to the training split only, so that
    validation and test measure what a biased training set does.

    Returns: dict with keys "train", "val", "test", each a Scenes
    """
    sizes = {"train": _int_arg(n_train, "n_train", 0), "val": _int_arg(n_val, "n_val", 0),
             "test": _int_arg(n_test, "n_test", 0)}
    seed, counts, bias = _int_arg(seed, "seed", 0), _check_n_objects(n_objects), _check_bias(bias)
    splits = {}
    for index, (name, size) in enumerate(sizes.items()):
        rng, layouts = np.random.default_rng([seed, index]), []
        while len(layouts) < size:  # draw in chunks, keep the scenes of this split
            drawn = _sample_layouts(rng, 1024, counts, bias if name == "train" else {})
            layouts += [lay for lay in drawn if _split_of(lay, seed) == name][:size - len(layouts)]
        splits[name] = _build(layouts, rng)
    return splits


def single_shapes(n, seed=0):
    """``n`` images of one object in a random cell, with class labels, to pretrain a CNN encoder.

    Returns: (images float32 (n, 3, 64, 64), shape labels int64 (n,) indexing SHAPES (3 classes),
    colour labels int64 (n,) indexing COLOURS (4 classes))
    """
    scenes = make_scenes(n, seed, n_objects=1)
    shapes = np.array([SHAPES.index(objs[0].shape) for objs in scenes.objects], dtype=np.int64)
    colours = np.array([COLOURS.index(objs[0].colour) for objs in scenes.objects], dtype=np.int64)
    return scenes.images, shapes, colours


class CaptionVocab:
    """The caption vocabulary: <NULL>=0 (padding), <START>=1, <END>=2, then WORDS in sorted order."""

    def __init__(self):
        self.itos = [NULL, START, END] + list(WORDS)
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    def __len__(self):
        return len(self.itos)

    def __repr__(self):
        return f"CaptionVocab(size={len(self)})"

    def encode(self, captions, max_len=None):
        """Ids of ``captions`` as <START> words <END>, right-padded with <NULL>.

        Inputs:
        - captions: list of N str
        - max_len: None (the longest caption + 2) or the total length T, <START> and <END> included
        Returns: int64 array (N, T)
        """
        if not isinstance(captions, (list, tuple)) or not all(isinstance(c, str) for c in captions):
            raise ValueError("captions must be a list of strings (use [caption] for a single one)")
        ids = []
        for caption in captions:
            unknown = [w for w in caption.split() if w not in self.stoi]
            if unknown:
                raise ValueError(f"caption {caption!r} holds the word {unknown[0]!r}, which is not in the vocabulary")
            ids.append([START_ID] + [self.stoi[w] for w in caption.split()] + [END_ID])
        longest = max((len(s) for s in ids), default=2)
        length = longest if max_len is None else _int_arg(max_len, "max_len", 2)
        if length < longest:
            raise ValueError(f"max_len must be >= {longest} (longest caption + <START> + <END>), got {length}")
        out = np.full((len(ids), length), NULL_ID, dtype=np.int64)
        for row, seq in enumerate(ids):
            out[row, :len(seq)] = seq
        return out

    def decode(self, ids):
        """Captions of ``ids`` (int array / tensor (N, T), or (T,) for one): each stops at the
        first <END> and skips <START> and <NULL>. Returns: list of N str."""
        ids = to_numpy(ids, "ids")
        ids = ids[None] if ids.ndim == 1 else ids
        if ids.ndim != 2 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
            raise ValueError(f"ids must be an integer array (N, T) or (T,), got shape {ids.shape}, dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"ids must lie in [0, {len(self)}), got values in [{ids.min()}, {ids.max()}]")
        captions = []
        for row in ids.tolist():
            row = row[:row.index(END_ID)] if END_ID in row else row
            captions.append(" ".join(self.itos[i] for i in row if i not in (NULL_ID, START_ID)))
        return captions

    def tokens(self, ids):
        """The token strings of 1-D ``ids`` (specials included, e.g. '<END>'), for plot labels."""
        return [self.itos[int(i)] for i in to_numpy(ids, "ids").reshape(-1)]


# --- internals ---------------------------------------------------------------------------------

def _check_n_objects(n_objects):
    """(low, high) from an int or a pair, both in 1..3."""
    pair = (n_objects, n_objects) if isinstance(n_objects, (int, np.integer)) else n_objects
    ok = (isinstance(pair, (tuple, list)) and len(pair) == 2
          and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair)
          and 1 <= pair[0] <= pair[1] <= 3)
    if not ok:
        raise ValueError(f"n_objects must be an int in 1..3 or a pair (low, high) with 1 <= low <= high <= 3, "
                         f"got {n_objects!r}")
    return int(pair[0]), int(pair[1])


def _check_bias(bias):
    if bias is None:
        return {}
    if not isinstance(bias, dict):
        raise ValueError(f"bias must be None or a dict colour -> shape, e.g. {{'red': 'circle'}}, got {bias!r}")
    for colour, shape in bias.items():
        if colour not in COLOURS:
            raise ValueError(f"bias keys must be colours in {COLOURS}, got {colour!r}")
        if shape not in SHAPES:
            raise ValueError(f"bias values must be shapes in {SHAPES}, got {shape!r} for {colour!r}")
    return dict(bias)


def _check_objects(objects):
    """A tuple of SceneObject in reading order, after checking every field."""
    if not isinstance(objects, (list, tuple)) or not 1 <= len(objects) <= 3:
        raise ValueError(f"a scene must be a list of 1 to 3 objects (shape, colour, row, col), got {objects!r}")
    checked = []
    for obj in objects:
        if not isinstance(obj, (list, tuple)) or len(obj) != 4:
            raise ValueError(f"an object must be a tuple (shape, colour, row, col), got {obj!r}")
        shape, colour, row, col = obj
        if shape not in SHAPES or colour not in COLOURS:
            raise ValueError(f"an object needs a shape in {SHAPES} and a colour in {COLOURS}, got {obj!r}")
        if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < GRID for v in (row, col)):
            raise ValueError(f"an object's row and col must be integers in 0..{GRID - 1}, got {obj!r}")
        checked.append(SceneObject(shape, colour, int(row), int(col)))
    if len({(o.row, o.col) for o in checked}) < len(checked):
        raise ValueError(f"the objects of a scene must lie in distinct cells, got {objects!r}")
    return tuple(sorted(checked, key=lambda o: (o.row, o.col)))


def _sample_layouts(rng, n, counts, bias):
    """n random scenes (tuples of SceneObject in reading order) with counts[0]..counts[1] objects."""
    k = rng.integers(counts[0], counts[1] + 1, size=n)
    cells = np.argsort(rng.random((n, GRID * GRID)), axis=1)[:, :3]  # 3 distinct cells per scene
    cells = np.sort(np.where(np.arange(3) < k[:, None], cells, GRID * GRID), axis=1)  # the k used, in reading order
    shapes, colours = rng.integers(0, len(SHAPES), (n, 3)), rng.integers(0, len(COLOURS), (n, 3))
    return [tuple(SceneObject(bias.get(COLOURS[c], SHAPES[s]), COLOURS[c], int(cell) // GRID, int(cell) % GRID)
                  for s, c, cell in zip(shapes[i, :k[i]], colours[i, :k[i]], cells[i, :k[i]]))
            for i in range(n)]


def _split_of(layout, seed):
    """The split a scene belongs to: a fixed hash of (seed, objects), the same on every machine."""
    digest = hashlib.blake2b(repr((seed, [tuple(o) for o in layout])).encode(), digest_size=8).digest()
    u = int.from_bytes(digest, "little") / 2 ** 64
    return "test" if u < HELD_OUT else "val" if u < 2 * HELD_OUT else "train"


def _describe(objects):
    """describe() without the checks, for objects already in reading order."""
    words, cells = [], []
    for i, obj in enumerate(objects):
        if i > 0:
            relation = ["above"] if obj.row > objects[i - 1].row else ["left", "of"]
            words += relation
            cells += [None] * len(relation)
        words += ["a", obj.colour, obj.shape]
        cells += [None, (obj.row, obj.col), (obj.row, obj.col)]
    return " ".join(words), cells


def _build(layouts, rng):
    described = [_describe(layout) for layout in layouts]
    return Scenes(_render(layouts, rng), [d[0] for d in described], list(layouts), [d[1] for d in described])


def _render(layouts, rng):
    """Draw the scenes: every object is a mask over the 16x16 pixels of its cell. float32 (N, 3, 64, 64)."""
    table = np.array([(i, SHAPES.index(o.shape), COLOURS.index(o.colour), o.row, o.col)
                      for i, layout in enumerate(layouts) for o in layout], dtype=np.int64).reshape(-1, 5)
    scene, shape, colour, row, col = table.T
    half = rng.uniform(*SIZE_RANGE, size=len(table))[:, None, None]  # half-width of each shape
    slack = CELL / 2 - 1 - half  # how far the centre may move and keep the shape 1 pixel inside
    cx = CELL / 2 + slack * rng.uniform(-1, 1, size=half.shape)
    cy = CELL / 2 + slack * rng.uniform(-1, 1, size=half.shape)
    y, x = np.mgrid[:CELL, :CELL] + 0.5  # pixel centres inside a cell
    dx, dy = x - cx, y - cy  # (M, 16, 16) offsets from each object's centre
    masks = np.stack([dx ** 2 + dy ** 2 <= half ** 2,                       # circle
                      (np.abs(dx) <= half) & (np.abs(dy) <= half),          # square
                      (dy <= half) & (2 * np.abs(dx) <= dy + half)])        # triangle, apex at the top
    mask = masks[shape, np.arange(len(table))]
    images = np.full((len(layouts), 3, IMAGE_SIZE, IMAGE_SIZE), BACKGROUND, dtype=np.float32)
    grid = images.reshape(len(layouts), 3, GRID, CELL, GRID, CELL)  # a view: grid[i, :, row, :, col, :] is a cell
    grid[scene, :, row, :, col, :] = np.where(mask[:, None], RGB[colour][:, :, None, None], np.float32(BACKGROUND))
    noise = rng.random(images.shape, dtype=np.float32)
    noise -= 0.5
    images += (2 * NOISE) * noise  # uniform in [-NOISE, NOISE]
    return np.clip(images, 0, 1, out=images)
