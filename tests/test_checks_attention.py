"""Unit tests of helpers.checks_attention: every check passes a correct implementation (written
here, independently of the assignment notebook), fails typical wrong ones with a helpful
message, and lets a blank (NotImplementedError) stub fail."""
import math

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from helpers import checks_attention as ca  # noqa: E402
from helpers.data import END_ID, PAD_ID, START_ID  # noqa: E402


# ---------------------------------------------------------------- correct implementations
class Additive(nn.Module):
    def __init__(self, hq, hk, a, bug=None):
        super().__init__()
        self.W_q, self.W_k, self.v = nn.Linear(hq, a, bias=False), nn.Linear(hk, a), nn.Linear(a, 1, bias=False)
        self.bug = bug

    def forward(self, query, keys, mask):
        pre = self.W_q(query).unsqueeze(1) + self.W_k(keys)
        scores = self.v(pre if self.bug == "no tanh" else torch.tanh(pre)).squeeze(-1)
        if self.bug == "mask after softmax":
            weights = torch.softmax(scores, dim=-1) * mask
        else:
            weights = torch.softmax(torch.where(mask, scores, torch.tensor(-1e30, dtype=scores.dtype)),
                                    dim=0 if self.bug == "batch axis" else -1)
        if self.bug == "detached":
            weights = weights.detach()
        return torch.einsum("ns,nsh->nh", weights, keys), weights


def dot(query, keys, values, mask=None, scale=True, bug=None):
    scores = query @ keys.transpose(-1, -2)
    if scale:
        scores = scores / math.sqrt((values if bug == "Ev" else query).shape[-1])
    if mask is not None:
        mask = mask.unsqueeze(1) if mask.dim() == 2 else mask
        scores = scores.masked_fill(~mask, -math.inf)
    weights = torch.softmax(scores, dim=1 if bug == "axis" else -1)
    return weights @ values, weights


class Enc(nn.Module):
    def __init__(self, V, E, H, bug=None):
        super().__init__()
        self.embedding = nn.Embedding(V, E, padding_idx=PAD_ID)
        self.rnn = nn.GRU(E, H, batch_first=True, bidirectional=True)
        self.bug = bug

    def forward(self, src, src_mask):
        x = self.embedding(src)
        H = self.rnn.hidden_size
        if self.bug == "no packing":
            out, h = self.rnn(x)
            return (out[..., :H] + out[..., H:]) * src_mask[..., None], h[0] + h[1]
        packed = nn.utils.rnn.pack_padded_sequence(x, src_mask.sum(1).cpu(), batch_first=True, enforce_sorted=False)
        out, h = self.rnn(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True,
                                                  total_length=None if self.bug == "no total_length" else src.shape[1])
        outputs = out[..., :H] + out[..., H:]
        final = outputs[:, -1] if self.bug == "last column" else h[0] + h[1]
        return outputs, final


class Dec(nn.Module):
    def __init__(self, V, E, H, attention, bug=None):
        super().__init__()
        self.embedding, self.attention = nn.Embedding(V, E, padding_idx=PAD_ID), attention
        self.cell, self.out = nn.GRUCell(E + H, H), nn.Linear(2 * H, V)
        self.bug = bug

    def step(self, y_prev, s_prev, enc_outputs, src_mask):
        context, weights = self.attention(s_prev, enc_outputs, src_mask)
        s = self.cell(torch.cat([self.embedding(y_prev), context], 1), s_prev)
        return self.out(torch.cat([s_prev if self.bug == "old state" else s, context], 1)), s, weights

    def forward(self, tgt_in, s0, enc_outputs, src_mask):
        s, logits, weights, y = s0, [], [], tgt_in[:, 0]
        for t in range(tgt_in.shape[1]):
            step_logits, s_new, w = self.step(y, s, enc_outputs, src_mask)
            s = s if self.bug == "state not carried" else s_new
            logits.append(step_logits)
            weights.append(w)
            if t + 1 < tgt_in.shape[1]:
                y = step_logits.argmax(1) if self.bug == "free running" else tgt_in[:, t + 1]
        return torch.stack(logits, 1), torch.stack(weights, 1)


def greedy(model, src, src_mask, max_len, start_id=START_ID, end_id=END_ID, pad_id=PAD_ID, bug=None):
    enc_outputs, s = model.encoder(src, src_mask)
    y = torch.full((src.shape[0],), start_id, dtype=torch.long)
    done = torch.zeros(src.shape[0], dtype=torch.bool)
    tokens, weights = [], []
    for _ in range(max_len):
        logits, s, w = model.decoder.step(start_id * torch.ones_like(y) if bug == "start" else y, s, enc_outputs,
                                          src_mask)
        y = logits.argmax(1)
        tokens.append(y if bug == "no end" else torch.where(done, torch.full_like(y, pad_id), y))
        weights.append(w if bug == "no end" else w * (~done)[:, None])
        done |= y == end_id
        if done.all() and bug != "no early stop":
            break
    return torch.stack(tokens, 1), torch.stack(weights, 1)


def loss(model, batch, bug=None):
    logits, _ = model(batch["src"], batch["src_mask"], batch["tgt_in"])
    target = batch["tgt_in" if bug == "unshifted" else "tgt_out"]
    if bug == "with padding":
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=PAD_ID)


def blank(*args, **kwargs):
    raise NotImplementedError()


class BlankModule(nn.Module):
    def __init__(self, *args):
        super().__init__()
        raise NotImplementedError()


# ---------------------------------------------------------------- tests
def test_correct_implementations_pass_every_check(capsys):
    ca.check_additive_attention(Additive)
    ca.check_additive_attention(Additive, seed=1, N=1, S=1, Hq=3, Hk=2, A=4)
    ca.check_dot_product_attention(dot)
    ca.check_dot_product_attention(dot, mask_kind=None)
    ca.check_dot_product_attention(dot, N=3, L=5, S=5, E=4, Ev=2, mask_kind="causal")
    ca.check_dot_product_attention(dot, E=16, Ev=3, scale=False)
    ca.check_encoder(Enc)
    ca.check_encoder(Enc, lengths=(3, 5, 2), extra_pad=2)
    ca.check_decoder(Dec)
    ca.check_decoder(Dec, N=1, S=1, T=1, V=5, E=2, H=3)
    ca.check_greedy_decode(greedy)
    ca.check_greedy_decode(greedy, offsets=(3,), end_at=(0,), lengths=(2,), V=7, max_len=5)
    ca.check_greedy_decode(greedy, offsets=(0, 5), end_at=(9, 9), lengths=(3, 5), V=11, max_len=6)
    ca.check_seq2seq_loss(loss)
    for preview, impl in [(ca.preview_additive_attention, Additive), (ca.preview_dot_product_attention, dot),
                          (ca.preview_encoder, Enc), (ca.preview_decoder, Dec), (ca.preview_greedy_decode, greedy),
                          (ca.preview_seq2seq_loss, loss)]:
        preview(impl)
    out = capsys.readouterr().out
    assert "FAIL" not in out and out.count("ok ") >= 10


@pytest.mark.parametrize("check, impl, match", [
    (ca.check_additive_attention, lambda *a: Additive(*a, bug="mask after softmax"), "BEFORE the softmax"),
    (ca.check_additive_attention, lambda *a: Additive(*a, bug="batch axis"), "weights"),
    (ca.check_additive_attention, lambda *a: Additive(*a, bug="no tanh"), "tanh"),
    (ca.check_additive_attention, lambda *a: Additive(*a, bug="detached"), "no gradient"),
    (ca.check_dot_product_attention, lambda *a, **k: dot(*a, **k, bug="axis"), "last axis"),
    (ca.check_dot_product_attention, lambda q, k, v, mask=None, scale=True: dot(q, k, v, mask, False), "sqrt"),
    (ca.check_dot_product_attention, lambda q, k, v, mask=None, scale=True: dot(q, k, v, None, scale), "masked"),
    (ca.check_dot_product_attention, lambda *a, **k: dot(*a, **k, bug="Ev"), "not of the values"),
    (ca.check_encoder, lambda *a: Enc(*a, bug="no packing"), "pack"),
    (ca.check_encoder, lambda *a: Enc(*a, bug="last column"), "final"),
    (ca.check_decoder, lambda *a: Dec(*a, bug="free running"), "teacher forcing"),
    (ca.check_decoder, lambda *a: Dec(*a, bug="state not carried"), "carry the state"),
    (ca.check_decoder, lambda *a: Dec(*a, bug="old state"), "NEW state"),
    (ca.check_greedy_decode, lambda *a, **k: greedy(*a, **k, bug="no end"), "pad_id"),
    (ca.check_greedy_decode, lambda *a, **k: greedy(*a, **k, bug="start"), "feed back the argmax"),
    (ca.check_greedy_decode, lambda *a, **k: greedy(*a, **k, bug="no early stop"), "shape"),
    (ca.check_seq2seq_loss, lambda m, b: loss(m, b, bug="with padding"), "ignore_index"),
    (ca.check_seq2seq_loss, lambda m, b: loss(m, b, bug="unshifted"), "shifted"),
    (ca.check_seq2seq_loss, lambda m, b: loss(m, b).item(), "scalar tensor"),
])
def test_checks_catch_typical_bugs(check, impl, match):
    with pytest.raises(AssertionError, match=match):
        check(impl)


def test_hidden_cases_catch_what_the_visible_case_misses():
    no_total = lambda *a: Enc(*a, bug="no total_length")  # noqa: E731
    ca.check_encoder(no_total)  # the visible batch has no extra padding column
    with pytest.raises(AssertionError):
        ca.check_encoder(no_total, lengths=(3, 5, 2), extra_pad=2)
    ev_bug = lambda *a, **k: dot(*a, **k, bug="Ev")  # noqa: E731
    with pytest.raises(AssertionError):
        ca.check_dot_product_attention(ev_bug, E=9, Ev=1, mask_kind=None)


@pytest.mark.parametrize("check, impl", [
    (ca.check_additive_attention, BlankModule), (ca.check_dot_product_attention, blank),
    (ca.check_encoder, BlankModule), (ca.check_decoder, BlankModule), (ca.check_greedy_decode, blank),
    (ca.check_seq2seq_loss, blank)])
def test_blank_stubs_fail(check, impl):
    with pytest.raises(NotImplementedError):
        check(impl)


def test_wrong_structure_messages():
    class NoLayers(nn.Module):
        def __init__(self, *args):
            super().__init__()

    with pytest.raises(AssertionError, match="nn.Linear"):
        ca.check_additive_attention(NoLayers)
    with pytest.raises(AssertionError, match="nn.Embedding"):
        ca.check_encoder(NoLayers)
    with pytest.raises(AssertionError, match="self.attention"):
        ca.check_decoder(NoLayers)

    class Uni(Enc):
        def __init__(self, V, E, H):
            super().__init__(V, E, H)
            self.rnn = nn.GRU(E, H, batch_first=True)

    with pytest.raises(AssertionError, match="bidirectional"):
        ca.check_encoder(Uni)
    with pytest.raises(AssertionError, match="tuple of 2"):
        ca.check_dot_product_attention(lambda *a, **k: None)
    with pytest.raises(ValueError, match="causal"):
        ca.check_dot_product_attention(dot, L=2, S=3, mask_kind="causal")


def test_accuracy_checks(capsys):
    class Perfect(nn.Module):
        def forward(self, src, src_mask, tgt_in):
            data = self.data
            index = {tuple(s[m].tolist()): i for i, (s, m) in enumerate(zip(data["src"], data["src_mask"]))}
            rows = [index[tuple(s[m].tolist())] for s, m in zip(src, src_mask)]
            target = data["tgt_out"][rows][:, :tgt_in.shape[1]]
            return F.one_hot(target, 14).float(), None

    model = Perfect()
    model.data = ca.dates_test_data()
    assert model.data["src"].shape[0] == 2000
    ca.check_dates_accuracy(model)
    assert "100.00%" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="trained model"):
        ca.check_dates_accuracy(None)

    class Constant(nn.Module):
        def forward(self, src, src_mask, tgt_in):
            return torch.zeros(src.shape[0], tgt_in.shape[1], 13), None

    with pytest.raises(AssertionError, match="below 95.0%"):
        ca.check_addition_accuracy(Constant())
    assert ca.addition_test_data(reverse_source=True)["src"].shape[0] == 2000
