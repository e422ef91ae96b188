"""Unit tests of helpers.scenes: the captioning scenes of unit 5 (images, template captions, token
cells, vocabulary, splits, the bias rule, single-object images). The checks read the pixels with
their own colour thresholds and shape measurements, independent of the drawing code."""
import numpy as np
import pytest

from helpers.scenes import (
    COLOURS,
    SHAPES,
    CaptionVocab,
    describe,
    make_scenes,
    scene_splits,
    scenes_from_objects,
    single_shapes,
)

# Colour of a pixel by thresholds on (R, G, B), written here rather than read from the module.
COLOUR_RULES = {
    "red": lambda r, g, b: (r > 0.6) & (g < 0.4) & (b < 0.4),
    "green": lambda r, g, b: (g > 0.5) & (r < 0.4) & (b < 0.4),
    "blue": lambda r, g, b: (b > 0.6) & (r < 0.4),
    "yellow": lambda r, g, b: (r > 0.6) & (g > 0.6) & (b < 0.4),
}


def colour_mask(image, colour):
    """bool (64, 64): pixels of ``colour`` in a (3, 64, 64) image."""
    return COLOUR_RULES[colour](*image)


def cell_of(ys, xs):
    """The set of 16x16 grid cells (row, col) that hold the pixels (ys, xs)."""
    return set(zip((ys // 16).tolist(), (xs // 16).tolist()))


def recognise(mask):
    """Shape name of the single blob in ``mask`` from the row widths of its bounding box: a square
    fills it, an upward triangle widens from a point to the full bottom row, a disc is widest inside."""
    ys, xs = np.nonzero(mask)
    box = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    widths, full = box.sum(axis=1), box.shape[1]
    if box.all():
        return "square"
    if widths[0] <= 2 and widths[-1] == full and (np.diff(widths) >= 0).all():
        return "triangle"
    if max(widths[0], widths[-1]) < full == widths.max():
        return "circle"
    return "unknown"


def expected_caption(objects):
    """The template caption, written independently: sort by cell index, name each object,
    'above' when the row grows, 'left of' otherwise."""
    ordered = sorted(objects, key=lambda o: o[2] * 4 + o[3])
    text = f"a {ordered[0][1]} {ordered[0][0]}"
    for before, after in zip(ordered, ordered[1:]):
        text += (" above" if after[2] != before[2] else " left of") + f" a {after[1]} {after[0]}"
    return text


def test_images_shapes_dtypes_and_ranges():
    scenes = make_scenes(200, seed=0)
    assert len(scenes) == 200 and scenes.images.shape == (200, 3, 64, 64) and scenes.images.dtype == np.float32
    assert scenes.images.min() >= 0 and scenes.images.max() <= 1
    assert len(scenes.captions) == len(scenes.objects) == len(scenes.token_cells) == 200
    counts = [len(objs) for objs in scenes.objects]
    assert set(counts) == {1, 2, 3}
    for objs in scenes.objects:
        cells = [(o.row, o.col) for o in objs]
        assert len(set(cells)) == len(cells) and cells == sorted(cells)  # distinct, reading order
        assert all(o.shape in SHAPES and o.colour in COLOURS and 0 <= o.row < 4 and 0 <= o.col < 4 for o in objs)
    assert {len(objs) for objs in make_scenes(50, seed=1, n_objects=2).objects} == {2}
    assert {len(objs) for objs in make_scenes(50, seed=1, n_objects=(2, 3)).objects} == {2, 3}
    assert make_scenes(0).images.shape == (0, 3, 64, 64)


def test_deterministic_and_seed_sensitive():
    a, b, c = make_scenes(100, seed=3), make_scenes(100, seed=3), make_scenes(100, seed=4)
    assert a.images.tobytes() == b.images.tobytes()
    assert a.captions == b.captions and a.objects == b.objects and a.token_cells == b.token_cells
    assert a.captions != c.captions and not np.array_equal(a.images, c.images)
    x1, s1, c1 = single_shapes(30, seed=0)
    x2, s2, c2 = single_shapes(30, seed=0)
    assert x1.tobytes() == x2.tobytes() and np.array_equal(s1, s2) and np.array_equal(c1, c2)
    assert not np.array_equal(x1, single_shapes(30, seed=1)[0])


def test_captions_match_objects():
    scenes = make_scenes(300, seed=2)
    relations = set()
    for caption, objs in zip(scenes.captions, scenes.objects):
        assert caption == expected_caption(objs)
        relations |= {w for w in ("above", "left") if w in caption.split()}
    assert relations == {"above", "left"}


@pytest.mark.parametrize("objects, caption", [
    ([("circle", "red", 1, 2)], "a red circle"),
    ([("square", "blue", 2, 1), ("circle", "red", 0, 0)], "a red circle above a blue square"),
    ([("circle", "red", 3, 0), ("triangle", "green", 3, 3)], "a red circle left of a green triangle"),
    ([("triangle", "green", 1, 3), ("circle", "red", 0, 0), ("square", "blue", 1, 1)],
     "a red circle above a blue square left of a green triangle"),
    ([("square", "yellow", 0, 3), ("square", "yellow", 1, 0), ("circle", "blue", 2, 0)],
     "a yellow square above a yellow square above a blue circle"),
])
def test_describe_hand_written_cases(objects, caption):
    assert describe(objects)[0] == caption


def test_hand_built_scene_pixels_lie_in_their_cells():
    scenes = scenes_from_objects([[("square", "blue", 2, 1), ("circle", "red", 0, 0)]], seed=5)
    assert scenes.captions == ["a red circle above a blue square"]
    assert [tuple(o) for o in scenes.objects[0]] == [("circle", "red", 0, 0), ("square", "blue", 2, 1)]
    image = scenes.images[0]
    red, blue = colour_mask(image, "red"), colour_mask(image, "blue")
    assert red.sum() > 40 and blue.sum() > 40  # a shape, not a few noisy pixels
    assert cell_of(*np.nonzero(red)) == {(0, 0)} and cell_of(*np.nonzero(blue)) == {(2, 1)}
    assert recognise(red) == "circle" and recognise(blue) == "square"
    assert image.max(axis=0)[~(red | blue)].max() < 0.3  # the rest is dark background
    assert scenes.token_cells[0] == [None, (0, 0), (0, 0), None, None, (2, 1), (2, 1)]


def test_every_object_drawn_inside_its_cell_with_its_colour_and_shape():
    scenes = make_scenes(150, seed=6)
    for image, objs in zip(scenes.images, scenes.objects):
        bright = image.max(axis=0) > 0.4
        assert cell_of(*np.nonzero(bright)) == {(o.row, o.col) for o in objs}
        for o in objs:
            cell = (slice(16 * o.row, 16 * o.row + 16), slice(16 * o.col, 16 * o.col + 16))
            mask = colour_mask(image[:, cell[0], cell[1]], o.colour)
            assert mask.sum() > 30 and (mask == bright[cell]).all()  # every bright pixel has its colour
            assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())  # 1-pixel margin
            assert recognise(mask) == o.shape


def test_token_cells_point_at_the_named_objects():
    scenes = make_scenes(200, seed=8)
    for caption, objs, cells in zip(scenes.captions, scenes.objects, scenes.token_cells):
        words = caption.split()
        assert len(cells) == len(words)
        k = -1  # index of the object the words describe, advanced at every "a"
        for word, cell in zip(words, cells):
            k += word == "a"
            if word in SHAPES or word in COLOURS:
                assert cell == (objs[k].row, objs[k].col) and word in (objs[k].shape, objs[k].colour)
            else:
                assert cell is None


def test_single_shapes():
    images, shapes, colours = single_shapes(300, seed=2)
    assert images.shape == (300, 3, 64, 64) and images.dtype == np.float32
    assert shapes.dtype == colours.dtype == np.int64 and shapes.shape == colours.shape == (300,)
    assert set(shapes.tolist()) == {0, 1, 2} and set(colours.tolist()) == {0, 1, 2, 3}
    for image, shape, colour in zip(images, shapes, colours):
        mask = colour_mask(image, COLOURS[colour])
        assert len(cell_of(*np.nonzero(mask))) == 1
        assert recognise(mask) == SHAPES[shape]


def test_splits_disjoint_and_test_set_stable():
    small = scene_splits(200, 40, 60, seed=1)
    big = scene_splits(600, 90, 60, seed=1)
    assert [len(small[k]) for k in ("train", "val", "test")] == [200, 40, 60]
    assert small["test"].images.tobytes() == big["test"].images.tobytes()
    assert small["test"].captions == big["test"].captions
    assert scene_splits(600, 40, 60, seed=1)["val"].captions == small["val"].captions
    layouts = {k: set(big[k].objects) for k in ("train", "val", "test")}
    assert not layouts["train"] & layouts["val"] and not layouts["train"] & layouts["test"]
    assert not layouts["val"] & layouts["test"]
    assert scene_splits(0, 0, 60, seed=2)["test"].captions != small["test"].captions
    one = scene_splits(300, 50, 50, seed=0, n_objects=1)  # only 192 one-object scenes exist
    assert all(len(objs) == 1 for objs in one["train"].objects)
    assert not set(one["train"].objects) & set(one["test"].objects)


def test_bias_rule():
    biased = make_scenes(500, seed=0, bias={"red": "circle"})
    red = [o.shape for objs in biased.objects for o in objs if o.colour == "red"]
    assert red and set(red) == {"circle"}
    assert "a red square" not in " ".join(biased.captions) and "a red triangle" not in " ".join(biased.captions)
    plain = make_scenes(500, seed=0)
    assert any(o == ("square", "red") for objs in plain.objects for o in (x[:2] for x in objs))
    splits = scene_splits(300, 100, 300, seed=0, bias={"red": "circle"})
    train_red = {o.shape for objs in splits["train"].objects for o in objs if o.colour == "red"}
    test_red = {o.shape for objs in splits["test"].objects for o in objs if o.colour == "red"}
    assert train_red == {"circle"} and test_red == set(SHAPES)  # the test split stays unbiased


def test_vocab_encode_decode_roundtrip():
    vocab = CaptionVocab()
    assert vocab.itos[:3] == ["<NULL>", "<START>", "<END>"] and len(vocab) == 14
    assert vocab.itos[3:] == sorted(["a", "above", "left", "of", "circle", "square", "triangle",
                                     "red", "green", "blue", "yellow"])
    ids = vocab.encode(["a red circle", "a red circle left of a blue square"])
    a, red, circle = vocab.stoi["a"], vocab.stoi["red"], vocab.stoi["circle"]
    assert ids.dtype == np.int64 and ids.shape == (2, 10)
    assert ids[0].tolist() == [1, a, red, circle, 2, 0, 0, 0, 0, 0]
    assert ids[1, 0] == 1 and ids[1, -1] == 2
    assert vocab.encode(["a red circle"], max_len=8).tolist() == [[1, a, red, circle, 2, 0, 0, 0]]
    assert vocab.decode(ids) == ["a red circle", "a red circle left of a blue square"]
    assert vocab.decode([1, a, red, 2, circle, 0]) == ["a red"]  # stops at <END>
    assert vocab.decode(np.array([[a, 0, circle]])) == ["a circle"]  # skips <NULL> and <START>
    assert vocab.tokens([1, a, 2]) == ["<START>", "a", "<END>"]
    captions = make_scenes(100, seed=9).captions
    assert vocab.decode(vocab.encode(captions)) == captions


def test_vocab_decode_torch_tensor():
    torch = pytest.importorskip("torch")
    vocab = CaptionVocab()
    ids = torch.from_numpy(vocab.encode(["a blue triangle"]))
    assert vocab.decode(ids) == ["a blue triangle"]


def test_vocab_errors():
    vocab = CaptionVocab()
    with pytest.raises(ValueError, match="'purple'"):
        vocab.encode(["a purple circle"])
    with pytest.raises(ValueError, match="captions"):
        vocab.encode("a red circle")
    with pytest.raises(ValueError, match="captions"):
        vocab.encode([1, 2])
    with pytest.raises(ValueError, match="max_len"):
        vocab.encode(["a red circle"], max_len=4)
    with pytest.raises(ValueError, match="ids"):
        vocab.decode([[[1]]])
    with pytest.raises(ValueError, match="ids"):
        vocab.decode([1.5, 2.0])
    with pytest.raises(ValueError, match="ids must lie"):
        vocab.decode([1, 99])


@pytest.mark.parametrize("call, match", [
    (lambda: make_scenes(-1), "n must"),
    (lambda: make_scenes(2.0), "n must"),
    (lambda: make_scenes(3, seed=-1), "seed"),
    (lambda: make_scenes(3, n_objects=0), "n_objects"),
    (lambda: make_scenes(3, n_objects=4), "n_objects"),
    (lambda: make_scenes(3, n_objects=(3, 1)), "n_objects"),
    (lambda: make_scenes(3, n_objects=(1, 2, 3)), "n_objects"),
    (lambda: make_scenes(3, n_objects=True), "n_objects"),
    (lambda: make_scenes(3, bias={"purple": "circle"}), "bias keys must be colours"),
    (lambda: make_scenes(3, bias={"red": "star"}), "bias values must be shapes"),
    (lambda: make_scenes(3, bias=["red", "circle"]), "bias must be"),
    (lambda: scene_splits(-1, 1, 1), "n_train"),
    (lambda: scene_splits(1, -1, 1), "n_val"),
    (lambda: scene_splits(1, 1, 1.5), "n_test"),
    (lambda: single_shapes(-2), "n must"),
    (lambda: scenes_from_objects([[("star", "red", 0, 0)]]), "shape in"),
    (lambda: scenes_from_objects([[("circle", "red", 4, 0)]]), "row and col"),
    (lambda: scenes_from_objects([[("circle", "red", 0, 0), ("square", "blue", 0, 0)]]), "distinct cells"),
    (lambda: scenes_from_objects([[]]), "1 to 3 objects"),
    (lambda: scenes_from_objects([[("circle", "red", 0)]]), "an object must be"),
    (lambda: scenes_from_objects("circle"), "scenes must be"),
    (lambda: describe([("circle", "red", r, 0) for r in range(4)]), "1 to 3 objects"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
