"""Unit tests of helpers.text (corpus, vocabulary, split, truncated-BPTT batches)."""
import numpy as np
import pytest

from helpers.text import CharVocab, load_corpus, num_tbptt_batches, tbptt_batches, train_val_split


def test_load_corpus_is_the_shakespeare_text():
    text = load_corpus()
    assert 900_000 < len(text) < 1_100_000
    assert text.isascii() and "\r" not in text
    assert text.startswith("HAMLET, PRINCE OF DENMARK")
    assert "To be, or not to be" in text
    assert load_corpus(max_chars=10) == text[:10]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10"])
def test_load_corpus_rejects_bad_max_chars(bad):
    with pytest.raises(ValueError, match="max_chars"):
        load_corpus(max_chars=bad)


def test_load_corpus_missing_file():
    with pytest.raises(FileNotFoundError):
        load_corpus("no_such_file.txt")


def test_vocab_roundtrip_and_order():
    vocab = CharVocab.from_text("hello world")
    assert vocab.chars == sorted(set("hello world"))
    assert vocab.size == len(vocab) == 8
    ids = vocab.encode("hello")
    assert ids.dtype == np.int64 and ids.shape == (5,)
    assert ids.tolist() == [vocab.stoi[c] for c in "hello"]
    assert vocab.decode(ids) == "hello"
    assert vocab.decode(ids.tolist()) == "hello"
    assert vocab.decode(np.array([], dtype=np.int64)) == ""
    assert "size=8" in repr(vocab)


def test_vocab_from_explicit_chars_keeps_order():
    vocab = CharVocab(["h", "e", "l", "o"])
    assert vocab.encode("hello").tolist() == [0, 1, 2, 2, 3]
    assert CharVocab("helo").chars == ["h", "e", "l", "o"]


def test_vocab_decode_accepts_torch():
    torch = pytest.importorskip("torch")
    vocab = CharVocab("abc")
    assert vocab.decode(torch.tensor([2, 0, 1])) == "cab"


def test_vocab_one_hot():
    vocab = CharVocab("helo")
    oh = vocab.one_hot(np.array([[0, 3], [2, 2]]))
    assert oh.shape == (2, 2, 4) and oh.dtype == np.float64
    assert np.array_equal(oh.argmax(-1), [[0, 3], [2, 2]]) and np.all(oh.sum(-1) == 1)
    with pytest.raises(ValueError, match="ids"):
        vocab.one_hot(np.array([4]))
    with pytest.raises(ValueError, match="integers"):
        vocab.one_hot(np.array([0.5]))


@pytest.mark.parametrize("chars, match", [([], "non-empty"), (["a", "a"], "repeat"), (["ab"], "one-character"),
                                          (None, "non-empty"), ([1], "one-character")])
def test_vocab_rejects_bad_chars(chars, match):
    with pytest.raises(ValueError, match=match):
        CharVocab(chars)


def test_vocab_errors():
    vocab = CharVocab("abc")
    with pytest.raises(ValueError, match="'z'"):
        vocab.encode("abz")
    with pytest.raises(ValueError, match="string"):
        vocab.encode(["a"])
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        vocab.decode([0, 3])
    with pytest.raises(ValueError, match="1-D"):
        vocab.decode(np.zeros((2, 2), dtype=int))
    with pytest.raises(ValueError, match="integers"):
        vocab.decode(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="encode the text first"):
        vocab.decode("abc")
    with pytest.raises(ValueError, match="text"):
        CharVocab.from_text("")


def test_train_val_split_is_contiguous():
    ids = np.arange(100)
    train, val = train_val_split(ids, 0.1)
    assert train.tolist() == list(range(90)) and val.tolist() == list(range(90, 100))
    assert train.dtype == np.int64
    train, val = train_val_split(list(range(7)), 0.3)
    assert len(train) + len(val) == 7 and len(val) == 2


@pytest.mark.parametrize("frac", [0, 1, -0.1, 1.5, "0.1", True])
def test_train_val_split_rejects_bad_fraction(frac):
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(np.arange(10), frac)


def test_train_val_split_too_short():
    with pytest.raises(ValueError, match="too short"):
        train_val_split(np.arange(3), 0.1)


def test_tbptt_batches_shapes_targets_and_continuity():
    ids = np.arange(1000)
    N, T = 4, 7
    chunks = list(tbptt_batches(ids, N, T))
    assert len(chunks) == num_tbptt_batches(1000, N, T) == (250 - 1) // 7
    for x, y in chunks:
        assert x.shape == y.shape == (N, T) and x.dtype == np.int64
        assert np.array_equal(y, x + 1)                    # targets = inputs shifted by one
    for (x0, _), (x1, _) in zip(chunks, chunks[1:]):
        assert np.array_equal(x1[:, 0], x0[:, -1] + 1)     # row n continues where it stopped
    # streams are contiguous slices of length 250
    assert [int(r[0]) for r in chunks[0][0]] == [0, 250, 500, 750]


def test_tbptt_batches_offset_and_independence():
    ids = np.arange(100)
    x, y = next(tbptt_batches(ids, 2, 5, offset=3))
    assert x[0].tolist() == [3, 4, 5, 6, 7] and x[1, 0] == 3 + 48
    x[0, 0] = -1                                           # chunks are copies
    assert next(tbptt_batches(ids, 2, 5, offset=3))[0][0, 0] == 3


def test_tbptt_batches_minimal_and_errors():
    assert len(list(tbptt_batches(np.arange(6), 1, 5))) == 1
    with pytest.raises(ValueError, match="too short"):
        list(tbptt_batches(np.arange(5), 1, 5))
    with pytest.raises(ValueError, match="batch_size"):
        list(tbptt_batches(np.arange(50), 0, 5))
    with pytest.raises(ValueError, match="seq_len"):
        list(tbptt_batches(np.arange(50), 2, 2.0))
    with pytest.raises(ValueError, match="offset"):
        list(tbptt_batches(np.arange(50), 2, 2, offset=50))
    with pytest.raises(ValueError, match="1-D"):
        list(tbptt_batches(np.zeros((5, 5), dtype=int), 2, 2))
    with pytest.raises(ValueError, match="n_ids"):
        num_tbptt_batches(-1, 2, 2)
    assert num_tbptt_batches(3, 2, 2) == 0
