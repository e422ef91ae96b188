"""Unit tests of helpers.attention: tensors, exact match, the training loop, heatmaps, the
attention explorer's logic, attention entropy and positional encodings."""
import math

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
torch = pytest.importorskip("torch")

from helpers.attention import (  # noqa: E402
    attention_entropy,
    exact_match,
    explore,
    fit,
    plot_attention,
    positional_encoding,
    to_tensors,
    trim_batch,
)
from helpers.data import END_ID, PAD_ID, Seq2SeqVocab, encode_pairs  # noqa: E402

SRC, TGT = Seq2SeqVocab("abc"), Seq2SeqVocab("xyz")
PAIRS = [("abc", "xyz"), ("a", "x"), ("cb", "zy"), ("ca", "zx")]


def data():
    return to_tensors(encode_pairs(PAIRS, SRC, TGT))


class Oracle(torch.nn.Module):
    """Predicts tgt_out perfectly from a lookup, except for the rows listed in ``wrong``."""

    def __init__(self, batch, wrong=()):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.table = {tuple(s.tolist()): o for s, o in zip(batch["src"], batch["tgt_out"])}
        self.wrong = {tuple(batch["src"][i].tolist()) for i in wrong}

    def forward(self, src, src_mask, tgt_in):
        logits = torch.zeros(src.shape[0], tgt_in.shape[1], len(TGT))
        for n, row in enumerate(src):
            key = tuple(row.tolist()) + (0,) * (max(len(k) for k in self.table) - len(row))
            target = self.table[key][:tgt_in.shape[1]]
            logits[n, torch.arange(tgt_in.shape[1]), target] = 1.0
            if key in self.wrong:
                logits[n, 0, target[0]] = -1.0
        return logits + 0 * self.weight, None


def test_to_tensors_and_trim_batch():
    d = data()
    assert d["src"].dtype == torch.int64 and d["src_mask"].dtype == torch.bool and d["src"].shape == (4, 3)
    t = trim_batch({k: v[1:2] for k, v in d.items()})
    assert t["src"].shape == (1, 1) and t["tgt_in"].shape == (1, 2)
    assert t["tgt_out"].tolist() == [[TGT.stoi["x"], END_ID]]
    with pytest.raises(ValueError, match="keys"):
        to_tensors({"src": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="same number of rows"):
        trim_batch({**d, "src": d["src"][:2]})


def test_exact_match_counts_whole_sequences():
    d = data()
    assert exact_match(Oracle(d), d) == 1.0
    assert exact_match(Oracle(d, wrong=[0, 2]), d, batch_size=3) == 0.5
    model = Oracle(d)
    model.train()
    exact_match(model, d)
    assert model.training  # mode restored
    bad = lambda src, mask, tgt_in: (torch.zeros(src.shape[0], 1, 3), None)  # noqa: E731
    with pytest.raises(ValueError, match="logits of shape"):
        exact_match(bad, d)
    with pytest.raises(ValueError, match="batch_size"):
        exact_match(model, d, batch_size=0)


class TinyModel(torch.nn.Module):
    """Predicts each target token from the source token at the same position (a toy that can learn PAIRS)."""

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(len(SRC), 16)
        self.pos = torch.nn.Embedding(8, 16)
        self.out = torch.nn.Linear(16, len(TGT))

    def forward(self, src, src_mask, tgt_in):
        T = tgt_in.shape[1]
        padded = torch.nn.functional.pad(src, (0, max(0, T - src.shape[1])))[:, :T]
        h = self.emb(padded) + self.pos(torch.arange(T))
        return self.out(torch.tanh(h)), None


def ce(model, batch):
    logits, _ = model(batch["src"], batch["src_mask"], batch["tgt_in"])
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["tgt_out"].reshape(-1),
                                             ignore_index=PAD_ID)


def test_fit_learns_and_stops_at_target():
    torch.manual_seed(0)
    d = data()
    model = TinyModel()
    history = fit(model, ce, d, steps=300, batch_size=2, lr=0.05, val=lambda m: exact_match(m, d), eval_every=5,
                  stop_at=1.0, progress=False)
    assert history["stopped"] == "target" and history["val"][-1][1] == 1.0
    assert history["steps"] < 300 and len(history["loss"]) == history["steps"]
    assert history["loss"][-1] < history["loss"][0] and history["seconds"] >= 0


def test_fit_with_progress_bar_warns_nothing(capsys):
    """The progress bar's postfix shows the loss without converting a tensor that requires grad (that warned)."""
    import warnings

    d = data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = fit(TinyModel(), ce, d, steps=4, batch_size=2, val=lambda m: exact_match(m, d), eval_every=2,
                      progress=True, desc="demo")
    assert history["steps"] == 4 and len(history["val"]) == 2
    assert "demo" in capsys.readouterr().out


def test_fit_gives_up_and_runs_all_steps():
    d = data()
    history = fit(TinyModel(), ce, d, steps=12, batch_size=4, lr=1e-9, val=lambda m: 0.0, eval_every=4,
                  give_up=(8, 0.5), progress=False)
    assert history["stopped"] == "gave up" and history["steps"] == 8
    history = fit(TinyModel(), ce, d, steps=3, batch_size=4, progress=True)
    assert history["stopped"] == "steps" and history["steps"] == 3 and history["val"] == []
    history = fit(TinyModel(), ce, d, steps=10**6, batch_size=4, val=lambda m: 0.5, eval_every=1000,
                  max_seconds=0.05, progress=False)
    assert history["stopped"] == "time" and history["val"] == [(history["steps"], 0.5)]


def test_fit_nan_and_bad_arguments():
    d = data()
    nan_loss = lambda model, batch: ce(model, batch) * float("nan")  # noqa: E731
    with pytest.raises(FloatingPointError, match="NaN"):
        fit(TinyModel(), nan_loss, d, steps=2, progress=False)
    with pytest.raises(ValueError, match="scalar"):
        fit(TinyModel(), lambda m, b: torch.ones(2, requires_grad=True), d, steps=1, progress=False)
    for kwargs, match in [({"steps": 0}, "steps"), ({"steps": 1, "lr": 0}, "lr"), ({"steps": 1, "stop_at": 0.9}, "val"),
                          ({"steps": 1, "val": lambda m: 1.0, "give_up": 5}, "give_up"),
                          ({"steps": 1, "batch_size": 0}, "batch_size"), ({"steps": 1, "val": 3}, "val"),
                          ({"steps": 1, "max_seconds": 0}, "max_seconds")]:
        with pytest.raises(ValueError, match=match):
            fit(TinyModel(), ce, d, progress=False, **kwargs)
    with pytest.raises(ValueError, match="loss_fn"):
        fit(TinyModel(), None, d, steps=1, progress=False)
    with pytest.raises(ValueError, match="trainable"):
        fit(torch.nn.Identity(), ce, d, steps=1, progress=False)


def test_plot_attention_labels_and_errors():
    weights = np.array([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5]])
    ax = plot_attention(torch.tensor(weights), ["a", " ", "c"], ["x", "<end>"], title="demo")
    assert ax.get_title() == "demo"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x", "<end>"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", " ", "c"]
    assert "input" in ax.get_xlabel() and "output" in ax.get_ylabel()
    assert ax.get_xticklabels()[0].get_rotation() == 90
    ax = plot_attention(weights, ["a", "b", "c"], ["x", "y"], xlabel="key position", ylabel="query position",
                        fontsize=11, rotation=0)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("key position", "query position")
    assert ax.get_xticklabels()[0].get_rotation() == 0 and ax.get_xticklabels()[0].get_fontsize() == 11
    with pytest.raises(ValueError, match="2-D"):
        plot_attention(np.zeros(3), ["a"], ["x"])
    with pytest.raises(ValueError, match="tgt_tokens"):
        plot_attention(weights, ["a", "b", "c"], ["x"])
    matplotlib.pyplot.close("all")


def fake_decode(src, src_mask):
    """Copies the source (a -> x, b -> y, c -> z), then <end>, then padding; attends to position t."""
    S = src.shape[1]
    ids = [TGT.stoi["xyz"["abc".index(SRC.itos[i])]] for i in src[0].tolist()]
    tokens = torch.tensor([ids + [END_ID, PAD_ID]])
    weights = torch.zeros(1, S + 2, S)
    for t in range(S):
        weights[0, t, t] = 1.0
    weights[0, S, S - 1] = 1.0
    return tokens, weights


def test_explore_returns_what_the_widget_shows():
    view = explore(fake_decode, SRC, TGT, "cab")
    assert view["input"] == "cab" and view["output"] == "zxy"
    assert view["src_tokens"] == ["c", "a", "b"] and view["tgt_tokens"] == ["z", "x", "y", "<end>"]
    assert view["weights"].shape == (4, 3) and np.allclose(view["weights"][:3], np.eye(3))
    rev = explore(fake_decode, SRC, TGT, "cab", reverse_source=True)
    assert rev["src_tokens"] == ["b", "a", "c"] and rev["output"] == "yxz"


def test_explore_errors():
    with pytest.raises(ValueError, match="outside the vocabulary"):
        explore(fake_decode, SRC, TGT, "abd")
    with pytest.raises(ValueError, match="text"):
        explore(fake_decode, SRC, TGT, "")
    with pytest.raises(ValueError, match="decode"):
        explore(None, SRC, TGT, "a")
    with pytest.raises(ValueError, match="Seq2SeqVocab"):
        explore(fake_decode, "abc", TGT, "a")
    with pytest.raises(ValueError, match="weights of shape"):
        explore(lambda s, m: (torch.tensor([[3, 2]]), torch.zeros(1, 2, 9)), SRC, TGT, "a")


def test_attention_entropy():
    assert attention_entropy(np.array([1.0, 0.0, 0.0])) == pytest.approx(0.0)
    assert attention_entropy(torch.full((2, 4), 0.25)) == pytest.approx([math.log(4)] * 2)
    with pytest.raises(ValueError, match="non-negative"):
        attention_entropy(np.array([1.5, -0.5]))
    with pytest.raises(ValueError, match="last axis"):
        attention_entropy(np.zeros((2, 0)))


def test_positional_encoding_closed_form():
    pe = positional_encoding(50, 16)
    assert pe.shape == (50, 16) and pe.dtype == np.float32
    assert np.allclose(pe[0, 0::2], 0) and np.allclose(pe[0, 1::2], 1)
    assert pe[7, 2] == pytest.approx(math.sin(7 / 10000 ** (2 / 16)), abs=1e-6)
    assert pe[7, 3] == pytest.approx(math.cos(7 / 10000 ** (2 / 16)), abs=1e-6)
    # every pair (sin, cos) lies on the unit circle; distinct positions get distinct codes
    assert np.allclose(pe[:, 0::2] ** 2 + pe[:, 1::2] ** 2, 1, atol=1e-6)
    assert len({tuple(np.round(row, 4)) for row in pe}) == 50
    with pytest.raises(ValueError, match="even"):
        positional_encoding(5, 3)
    with pytest.raises(ValueError, match="length"):
        positional_encoding(0, 4)
