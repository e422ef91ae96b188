"""Unit tests of the seq2seq data generators of helpers.data (dates, addition, vocabularies,
padding, <start>/<end>, minibatches)."""
import datetime as dt

import numpy as np
import pytest

from helpers import data
from helpers.data import (
    DATE_FORMATS,
    END_ID,
    PAD_ID,
    START_ID,
    Seq2SeqVocab,
    addition_splits,
    addition_vocabs,
    date_splits,
    date_vocabs,
    encode_pairs,
    minibatch_indices,
    pad_sequences,
    random_additions,
    random_dates,
    render_date,
)

SEPT_27 = dt.date(1994, 9, 27)  # a Tuesday


@pytest.mark.parametrize("fmt, expected", [
    ("month d, yyyy", "september 27, 1994"),
    ("Month d, yyyy", "September 27, 1994"),
    ("d month yyyy", "27 september 1994"),
    ("dd/mm/yy", "27/09/94"),
    ("mm/dd/yyyy", "09/27/1994"),
    ("dd.mm.yyyy", "27.09.1994"),
    ("Wkd dd Mon yyyy", "Tue 27 Sep 1994"),
    ("weekday, month d, yyyy", "tuesday, september 27, 1994"),
    ("d-mon-yyyy", "27-sep-1994"),
    ("mon d yy", "sep 27 94"),
    ("the dth of month yyyy", "the 27th of september 1994"),
    ("D MONTH YYYY", "27 SEPTEMBER 1994"),
    ("yyyymmdd", "19940927"),
])
def test_render_date_every_format(fmt, expected):
    assert render_date(SEPT_27, fmt) == expected


def test_every_format_is_tested_and_ordinals():
    assert len(DATE_FORMATS) == 13
    fmt = "the dth of month yyyy"
    got = [render_date(dt.date(2000, 1, d), fmt).split()[1] for d in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 31)]
    assert got == ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "31st"]


def test_render_date_bad_arguments():
    with pytest.raises(ValueError, match="date"):
        render_date("1994-09-27", "dd/mm/yy")
    with pytest.raises(ValueError, match="fmt"):
        render_date(SEPT_27, "yyyy")


def test_random_dates_deterministic_and_correct():
    a = random_dates(200, seed=3)
    assert a == random_dates(200, seed=3) and a != random_dates(200, seed=4)
    first, last = data.DATE_RANGE
    for source, target in a:
        day = dt.date.fromisoformat(target)
        assert first <= day <= last
        assert source in {render_date(day, f) for f in DATE_FORMATS}
    # two-digit years land in the range: 50..99 -> 19xx, 00..49 -> 20xx
    pairs = random_dates(500, seed=0, formats=["dd/mm/yy"])
    for source, target in pairs:
        yy = int(source[-2:])
        assert int(target[:4]) == (1900 + yy if yy >= 50 else 2000 + yy)


def test_random_dates_bad_arguments():
    with pytest.raises(ValueError, match="n must"):
        random_dates(-1)
    with pytest.raises(ValueError, match="seed"):
        random_dates(3, seed=1.5)
    with pytest.raises(ValueError, match="formats"):
        random_dates(3, formats=["nope"])
    with pytest.raises(ValueError, match="formats"):
        random_dates(3, formats=[])


def test_date_splits_disjoint_and_stable_test_set():
    small, big = date_splits(300, n_val=50, n_test=80, seed=1), date_splits(900, n_val=50, n_test=80, seed=1)
    assert [len(small[k]) for k in ("train", "val", "test")] == [300, 50, 80]
    assert small["test"] == big["test"] and small["val"] == big["val"]
    sources = [{s for s, _ in big[k]} for k in ("train", "val", "test")]
    assert not (sources[0] & sources[1]) and not (sources[0] & sources[2]) and not (sources[1] & sources[2])
    assert len(sources[0]) == 900  # no duplicate inside a split either
    with pytest.raises(ValueError, match="n_train"):
        date_splits(-5)


def test_random_additions():
    pairs = random_additions(1000, seed=2, max_digits=3)
    assert pairs == random_additions(1000, seed=2, max_digits=3)
    assert len({q for q, _ in pairs}) == 1000
    for question, answer in pairs:
        a, b = question.split("+")
        assert 0 <= int(a) < 1000 and 0 <= int(b) < 1000 and int(answer) == int(a) + int(b)
        assert a == str(int(a)) and b == str(int(b))  # no leading zeros
    assert random_additions(100, max_digits=1, unique=True)[0][0][1] == "+"
    with pytest.raises(ValueError, match="at most 100"):
        random_additions(101, max_digits=1)
    with pytest.raises(ValueError, match="max_digits"):
        random_additions(3, max_digits=0)


def test_addition_splits():
    small, big = addition_splits(100, 20, 30, seed=0), addition_splits(400, 20, 30, seed=0)
    assert small["test"] == big["test"] and small["val"] == big["val"]
    questions = [{q for q, _ in big[k]} for k in ("train", "val", "test")]
    assert len(questions[0]) == 400 and not (questions[0] & questions[2]) and not (questions[1] & questions[2])


def test_vocab_encode_decode_roundtrip():
    vocab = Seq2SeqVocab("ba-")
    assert vocab.itos == ["<pad>", "<start>", "<end>", "-", "a", "b"] and len(vocab) == 6
    assert (PAD_ID, START_ID, END_ID) == (0, 1, 2)
    assert vocab.encode("ab") == [4, 5]
    assert vocab.encode("ab", start=True, end=True) == [1, 4, 5, 2]
    assert vocab.decode([1, 4, 5, 2, 3, 3]) == "ab"  # stops at <end>, skips <start>
    assert vocab.decode(np.array([4, 0, 5])) == "ab"  # skips <pad>
    assert vocab.tokens([1, 4, 2]) == ["<start>", "a", "<end>"]
    assert "Seq2SeqVocab" in repr(vocab)


def test_vocab_errors():
    vocab = Seq2SeqVocab("ab")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocab.encode("abc")
    with pytest.raises(ValueError, match="text"):
        vocab.encode(["a"])
    with pytest.raises(ValueError, match="ids"):
        vocab.decode([[1, 2]])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocab.decode([9])
    with pytest.raises(ValueError, match="chars"):
        Seq2SeqVocab("")
    with pytest.raises(ValueError, match="chars"):
        Seq2SeqVocab(["ab"])


def test_task_vocabs_cover_their_data():
    src, tgt = date_vocabs()
    for source, target in random_dates(2000, seed=5):
        src.encode(source)
        tgt.encode(target)
    assert len(tgt) == 14
    src, tgt = addition_vocabs()
    assert len(src) == 14 and len(tgt) == 13
    for question, answer in random_additions(200):
        src.encode(question)
        tgt.encode(answer)


def test_torch_tensor_decode():
    torch = pytest.importorskip("torch")
    vocab = Seq2SeqVocab("01")
    assert vocab.decode(torch.tensor([3, 4, 2])) == "01"
    assert vocab.tokens(torch.tensor([3])) == ["0"]


def test_pad_sequences():
    ids, mask = pad_sequences([[5, 6, 7], [8]])
    assert ids.dtype == np.int64 and ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[True, True, True], [True, False, False]]
    ids, mask = pad_sequences([[1]], pad_id=9, length=3)
    assert ids.tolist() == [[1, 9, 9]]
    with pytest.raises(ValueError, match="length"):
        pad_sequences([[1, 2, 3]], length=2)
    with pytest.raises(ValueError, match="at least one"):
        pad_sequences([])


def test_encode_pairs_shift_and_masks():
    src_vocab, tgt_vocab = Seq2SeqVocab("abc"), Seq2SeqVocab("xy")
    out = encode_pairs([("abc", "xy"), ("a", "y")], src_vocab, tgt_vocab)
    x, y = tgt_vocab.stoi["x"], tgt_vocab.stoi["y"]
    assert out["src"].tolist() == [[3, 4, 5], [3, 0, 0]]
    assert out["src_mask"].tolist() == [[True] * 3, [True, False, False]]
    assert out["tgt_in"].tolist() == [[START_ID, x, y], [START_ID, y, PAD_ID]]
    assert out["tgt_out"].tolist() == [[x, y, END_ID], [y, END_ID, PAD_ID]]
    assert out["tgt_mask"].tolist() == [[True] * 3, [True, True, False]]
    rev = encode_pairs([("abc", "xy")], src_vocab, tgt_vocab, reverse_source=True)
    assert rev["src"].tolist() == [[5, 4, 3]]


def test_encode_pairs_errors():
    vocab = Seq2SeqVocab("ab")
    with pytest.raises(ValueError, match="Seq2SeqVocab"):
        encode_pairs([("a", "b")], vocab, "ab")
    with pytest.raises(ValueError, match="pairs"):
        encode_pairs([], vocab, vocab)
    with pytest.raises(ValueError, match="pairs"):
        encode_pairs(["ab"], vocab, vocab)


def test_minibatch_indices():
    batches = minibatch_indices(10, 4, seed=1)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    assert all((a == b).all() for a, b in zip(batches, minibatch_indices(10, 4, seed=1)))
    assert np.concatenate(minibatch_indices(5, 2, shuffle=False)).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="batch_size"):
        minibatch_indices(10, 0)
    with pytest.raises(ValueError, match="n must"):
        minibatch_indices(0, 2)
