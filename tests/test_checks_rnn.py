"""Unit tests of helpers.checks_rnn: every check passes a correct implementation and fails
typical wrong ones. The correct "student" functions here are built on torch autograd (so that
no NumPy solution of the assignment lives in the test suite)."""
import numpy as np
import pytest
import torch

from helpers import checks_rnn as C
from helpers.text import CharVocab


# ----------------------------------------------------------------------------- torch-backed correct layers
def _t(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def _torch_layer(fn, n_params):
    """Make (forward, backward) NumPy layers from a torch function of n_params float inputs."""
    def forward(*args):
        tensors = [_t(a, grad=True) for a in args[:n_params]] + list(args[n_params:])
        out = fn(*tensors)
        return out.detach().numpy(), (tensors, out)

    def backward(dout, cache):
        tensors, out = cache
        grads = torch.autograd.grad(out, tensors[:n_params], _t(dout))
        return tuple(g.numpy() for g in grads)

    return forward, backward


step_fwd, _step_bwd = _torch_layer(lambda x, h, Wx, Wh, b: torch.tanh(x @ Wx + h @ Wh + b), 5)
step_bwd = _step_bwd


def _rnn(x, h0, Wx, Wh, b):
    hs, h = [], h0
    for t in range(x.shape[1]):
        h = torch.tanh(x[:, t] @ Wx + h @ Wh + b)
        hs.append(h)
    return torch.stack(hs, 1)


rnn_fwd, rnn_bwd = _torch_layer(_rnn, 5)
aff_fwd, aff_bwd = _torch_layer(lambda x, w, b: x @ w + b, 3)


def emb_fwd(x, W):
    out, (tensors, o) = _torch_layer(lambda W, x: W[torch.as_tensor(x)], 1)[0](W, x)
    return out, (tensors, o)


def emb_bwd(dout, cache):
    tensors, out = cache
    return torch.autograd.grad(out, tensors[0], _t(dout))[0].numpy()


def softmax_loss(x, y, mask):
    tx = _t(x, grad=True)
    N, T, V = x.shape
    per = torch.nn.functional.cross_entropy(tx.reshape(-1, V), torch.as_tensor(y).reshape(-1), reduction="none")
    loss = (per * _t(mask.astype(float)).reshape(-1)).sum() / N
    loss.backward()
    return float(loss.detach()), tx.grad.numpy()


# ----------------------------------------------------------------------------- layer checks
def test_layer_checks_pass_correct_implementations():
    assert C.check_rnn_step_forward.__wrapped__(step_fwd)["next_h"] < 1e-12
    errors = C.check_rnn_step_backward.__wrapped__(step_fwd, step_bwd, N=1, D=2, H=3, seed=4)
    assert set(errors) == {"dx", "dprev_h", "dWx", "dWh", "db"} and max(errors.values()) < 1e-12
    assert C.check_rnn_forward.__wrapped__(rnn_fwd, N=1, T=1)["h"] < 1e-12
    assert max(C.check_rnn_backward.__wrapped__(rnn_fwd, rnn_bwd, T=6).values()) < 1e-12
    assert C.check_word_embedding_forward.__wrapped__(emb_fwd)["out"] == 0
    assert C.check_word_embedding_backward.__wrapped__(emb_fwd, emb_bwd, N=1, T=1)["dW"] < 1e-12
    assert C.check_temporal_affine_forward.__wrapped__(aff_fwd)["out"] < 1e-12
    assert max(C.check_temporal_affine_backward.__wrapped__(aff_fwd, aff_bwd).values()) < 1e-12
    assert max(C.check_temporal_softmax_loss.__wrapped__(softmax_loss, scale=1000.0).values()) < 1e-12


def test_checks_print_and_return_none(capsys):
    assert C.check_rnn_step_forward(step_fwd) is None
    assert "ok    rnn_step_forward: next_h relative error" in capsys.readouterr().out
    assert C.check_sample(_torch_sample, n_draws=300, tv_tol=0.15) is None
    assert "first character at temperature 0.5: total variation" in capsys.readouterr().out


def test_not_implemented_propagates():
    def blank(*args, **kwargs):
        raise NotImplementedError()

    for check, args in [(C.check_rnn_step_forward, (blank,)), (C.check_rnn_step_backward, (step_fwd, blank)),
                        (C.check_rnn_forward, (blank,)), (C.check_rnn_backward, (rnn_fwd, blank)),
                        (C.check_word_embedding_forward, (blank,)),
                        (C.check_word_embedding_backward, (emb_fwd, blank)),
                        (C.check_temporal_affine_forward, (blank,)),
                        (C.check_temporal_affine_backward, (aff_fwd, blank)),
                        (C.check_temporal_softmax_loss, (blank,)), (C.check_sample, (blank,))]:
        with pytest.raises(NotImplementedError):
            check(*args)


def test_step_forward_wrong_versions_fail():
    transposed = lambda x, h, Wx, Wh, b: step_fwd(x, h, Wx, Wh.T, b)  # noqa: E731
    with pytest.raises(AssertionError, match="next_h.*relative error"):
        C.check_rnn_step_forward(transposed)
    with pytest.raises(AssertionError, match="tuple of 2"):
        C.check_rnn_step_forward(lambda *a: step_fwd(*a)[0])
    with pytest.raises(AssertionError, match="got None"):
        C.check_rnn_step_forward(lambda *a: (None, None))


def test_step_backward_wrong_versions_fail():
    def no_batch_sum(dout, cache):
        dx, dh, dWx, dWh, db = step_bwd(dout, cache)
        return dx, dh, dWx, dWh, np.tile(db / 3, (3, 1))

    with pytest.raises(AssertionError, match="db.*shape"):
        C.check_rnn_step_backward(step_fwd, no_batch_sum)

    def transposed_dWh(dout, cache):
        dx, dh, dWx, dWh, db = step_bwd(dout, cache)
        return dx, dh, dWx, dWh.T, db

    with pytest.raises(AssertionError, match="dWh"):
        C.check_rnn_step_backward(step_fwd, transposed_dWh)


def test_rnn_checks_catch_off_by_one_and_dropped_gradient():
    def shifted(x, h0, Wx, Wh, b):
        h, cache = rnn_fwd(x, h0, Wx, Wh, b)
        return np.concatenate([h0[:, None], h[:, :-1]], axis=1), cache

    with pytest.raises(AssertionError, match="rnn_forward: h"):
        C.check_rnn_forward(shifted)

    def last_step_only(dh, cache):  # gradient only from the final step's loss
        masked = np.zeros_like(dh)
        masked[:, -1] = dh[:, -1]
        return rnn_bwd(masked, cache)

    with pytest.raises(AssertionError, match="rnn_backward: dx"):
        C.check_rnn_backward(rnn_fwd, last_step_only)


def test_embedding_backward_catches_lost_repeats():
    def overwrite(dout, cache):
        (W, x), _ = cache[0], None
        dW = np.zeros(W.shape)
        dW[np.asarray(x)] = dout
        return dW

    with pytest.raises(AssertionError, match="SUM of its gradients"):
        C.check_word_embedding_backward(emb_fwd, overwrite)


def test_affine_backward_catches_db_over_batch_only():
    def bad(dout, cache):
        dx, dw, db = aff_bwd(dout, cache)
        return dx, dw, dout.sum(axis=0)

    with pytest.raises(AssertionError, match="db.*shape"):
        C.check_temporal_affine_backward(aff_fwd, bad)


def test_softmax_loss_checks_mask_and_normalisation():
    ignore_mask = lambda x, y, m: softmax_loss(x, y, np.ones_like(m))  # noqa: E731
    with pytest.raises(AssertionError, match="loss"):
        C.check_temporal_softmax_loss(ignore_mask)
    with pytest.raises(AssertionError, match="loss"):
        C.check_temporal_softmax_loss(lambda x, y, m: (softmax_loss(x, y, m)[0] / x.shape[1],
                                                       softmax_loss(x, y, m)[1]))

    def naive(x, y, mask):  # no max subtraction: overflows for large scores
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            p = np.exp(x) / np.exp(x).sum(-1, keepdims=True)
            loss = -np.sum(np.log(np.take_along_axis(p, y[..., None], -1))[..., 0] * mask) / x.shape[0]
        return loss, softmax_loss(x, y, mask)[1]

    C.check_temporal_softmax_loss(naive)  # fine on ordinary scores
    with pytest.raises(AssertionError, match="NaN|relative error"):
        C.check_temporal_softmax_loss(naive, scale=1000.0)


@pytest.mark.parametrize("kwargs, match", [({"N": 0}, "N"), ({"seed": -1}, "seed"), ({"D": 1.5}, "D")])
def test_checks_validate_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        C.check_rnn_step_forward(step_fwd, **kwargs)


def test_check_argument_errors():
    with pytest.raises(ValueError, match="rnn_forward"):
        C.check_rnn_forward("not a function")
    with pytest.raises(ValueError, match="mask_p"):
        C.check_temporal_softmax_loss(softmax_loss, mask_p=2)
    with pytest.raises(ValueError, match="scale"):
        C.check_temporal_softmax_loss(softmax_loss, scale=0)
    with pytest.raises(ValueError, match="mask"):
        C.oracle_temporal_softmax_loss(np.zeros((1, 2, 3)), np.zeros((1, 2), int), np.ones((2, 1), bool))
    with pytest.raises(ValueError, match="x"):
        C.oracle_word_embedding_forward(np.array([[5]]), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="Wx"):
        C.oracle_rnn_step_forward(np.zeros((1, 2)), np.zeros((1, 3)), np.zeros(2), np.zeros((3, 3)), np.zeros(3))


def test_oracles_closed_form():
    x = np.array([[0.5, -1.0]])
    h = np.array([[0.2, 0.1, -0.3]])
    Wx, Wh, b = np.ones((2, 3)) * 0.1, np.eye(3) * 0.5, np.arange(3) * 0.1
    assert np.allclose(C.oracle_rnn_step_forward(x, h, Wx, Wh, b), np.tanh(x @ Wx + h @ Wh + b))
    loss, dx = C.oracle_temporal_softmax_loss(np.zeros((2, 3, 4)), np.zeros((2, 3), int), np.ones((2, 3), bool))
    assert np.isclose(loss, 3 * np.log(4)) and np.isclose(dx.sum(), 0)
    # masked positions contribute nothing
    loss, dx = C.oracle_temporal_softmax_loss(np.zeros((1, 2, 4)), np.zeros((1, 2), int), np.array([[True, False]]))
    assert np.isclose(loss, np.log(4)) and np.all(dx[0, 1] == 0)


# ----------------------------------------------------------------------------- sampling
def _torch_sample(params, vocab, prefix, length, temperature=1.0, rng=None, feed_back=True, use_rng=True):
    rng = np.random.default_rng() if rng is None else rng
    ids = list(vocab.encode(prefix))
    out = []
    for _ in range(length):
        p = C.oracle_next_char_probs(params, ids, max(temperature, 1e-6))
        i = int(np.argmax(p)) if temperature == 0 else int((rng if use_rng else np.random).choice(len(p), p=p))
        out.append(vocab.chars[i])
        ids.append(i if feed_back else ids[-1])
    return "".join(out)


def test_check_sample_passes_a_correct_sampler():
    result = C.check_sample.__wrapped__(_torch_sample, n_draws=400, tv_tol=0.12)
    assert set(result) == {"tv@T=1.0", "tv@T=0.5", "tv@T=3.0"} and max(result.values()) < 0.12


def test_check_sample_catches_wrong_samplers():
    with pytest.raises(AssertionError, match="greedy"):
        C.check_sample(lambda *a, **k: _torch_sample(*a, **k, feed_back=False), n_draws=50)
    with pytest.raises(AssertionError, match="rng"):
        C.check_sample(lambda *a, **k: _torch_sample(*a, **k, use_rng=False), n_draws=50)
    with pytest.raises(AssertionError, match="str of 12"):
        C.check_sample(lambda p, v, prefix, n, **k: prefix + _torch_sample(p, v, prefix, n, **k), n_draws=50)

    def ignores_temperature(params, vocab, prefix, length, temperature=1.0, rng=None):
        return _torch_sample(params, vocab, prefix, length, 1.0 if temperature else 0, rng)

    with pytest.raises(AssertionError, match="at temperature (0.5|3.0)"):
        C.check_sample(ignores_temperature, n_draws=400)


def test_check_sample_argument_errors():
    with pytest.raises(ValueError, match="prefix"):
        C.check_sample(_torch_sample, prefix="xyz")
    with pytest.raises(ValueError, match="n_draws"):
        C.check_sample(_torch_sample, n_draws=1)
    with pytest.raises(ValueError, match="temperature"):
        C.oracle_next_char_probs(C._tiny_char_lm(0), [0], 0)


# ----------------------------------------------------------------------------- char-LM
def _bigram_as_rnn_params(log_p, H=None):
    """A char-LM whose prediction depends only on the current character: exactly a bigram model.

    The embedding is one-hot, the RNN copies it into h through a saturated-free small scale,
    and the output layer reads log P(next | current) back out.
    """
    V = log_p.shape[0]
    scale = 1e-3
    return {"W_embed": np.eye(V), "Wx": np.eye(V) * scale, "Wh": np.zeros((V, V)), "b": np.zeros(V),
            "W_out": log_p / np.tanh(scale), "b_out": np.zeros(V)}


def test_char_lm_val_loss_matches_bigram_for_a_bigram_network():
    rng = np.random.default_rng(0)
    V = 6
    train = rng.integers(0, V, 5000)
    val = rng.integers(0, V, 2001)
    counts = np.ones((V, V))
    np.add.at(counts, (train[:-1], train[1:]), 1)
    log_p = np.log(counts / counts.sum(1, keepdims=True))
    params = _bigram_as_rnn_params(log_p)
    # tanh(scale * onehot) / tanh(scale) == onehot exactly for the active unit
    assert np.isclose(C.char_lm_val_loss(params, val, n_streams=10), C.bigram_loss(train, val, V, n_streams=10),
                      atol=1e-6)


def test_check_char_lm_rejects_bad_params_and_weak_models():
    vocab = CharVocab.from_text(__import__("helpers.text", fromlist=["load_corpus"]).load_corpus())
    V, D, H = vocab.size, 4, 5
    rng = np.random.default_rng(0)
    params = {"W_embed": rng.normal(size=(V, D)), "Wx": rng.normal(size=(D, H)), "Wh": rng.normal(size=(H, H)),
              "b": np.zeros(H), "W_out": rng.normal(size=(H, V)), "b_out": np.zeros(V)}
    with pytest.raises(AssertionError, match="does not beat the bigram"):
        C.check_char_lm(params)
    with pytest.raises(AssertionError, match="missing"):
        C.check_char_lm({k: v for k, v in params.items() if k != "Wh"})
    with pytest.raises(AssertionError, match="shape"):
        C.check_char_lm({**params, "b": np.zeros(H + 1)})
    with pytest.raises(AssertionError, match="NaN"):
        C.check_char_lm({**params, "b": np.full(H, np.nan)})
    with pytest.raises(AssertionError, match="rows"):
        C.check_char_lm({**params, "W_embed": np.zeros((V - 1, D))})
    with pytest.raises(AssertionError, match="dict"):
        C.check_char_lm([1, 2])
    with pytest.raises(ValueError, match="margin"):
        C.check_char_lm(params, margin=-1)


def test_check_char_lm_a_bigram_network_equals_the_bigram_baseline():
    """The bigram model written as an RNN scores the bigram loss, so it fails any positive margin."""
    from helpers.text import load_corpus, train_val_split

    text = load_corpus()
    vocab = CharVocab.from_text(text)
    train, _ = train_val_split(vocab.encode(text), 0.1)
    counts = np.ones((vocab.size, vocab.size))
    np.add.at(counts, (train[:-1], train[1:]), 1)
    params = _bigram_as_rnn_params(np.log(counts / counts.sum(1, keepdims=True)))
    _, val = train_val_split(vocab.encode(text), 0.1)
    assert abs(C.char_lm_val_loss(params, val) - C.bigram_loss(train, val, vocab.size)) < 1e-4
    with pytest.raises(AssertionError, match="does not beat"):
        C.check_char_lm(params, margin=0.05)


def test_bigram_loss_arguments():
    with pytest.raises(ValueError, match="alpha"):
        C.bigram_loss(np.arange(5), np.arange(5), 5, alpha=0)
    with pytest.raises(ValueError, match="train_ids"):
        C.bigram_loss(np.arange(6), np.arange(5), 5)
    with pytest.raises(ValueError, match="too short"):
        C.bigram_loss(np.arange(5), np.arange(3), 5, n_streams=5)
    # uniform data: add-alpha bigram over V symbols costs about log V
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 4, 20000)
    assert abs(C.bigram_loss(ids, ids[:2001], 4) - np.log(4)) < 0.02
