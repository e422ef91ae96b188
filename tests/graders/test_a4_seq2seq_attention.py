"""Unit tests of graders.a4_seq2seq_attention.

Correct implementations are written here, independently of the assignment notebook (and the
notebook's own solution cells are run through the same checks); the wrong ones are typical
mistakes. Every check must pass the correct code, fail each mistake with a helpful message,
report exceptions with the function and the case, reject bad arguments with a ValueError naming
them, and compare token ids exactly.
"""
import json
import math
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from graders import a4_seq2seq_attention as grader  # noqa: E402
from graders.core import CheckFailure, self_check  # noqa: E402
from helpers.attention import to_tensors  # noqa: E402
from helpers.data import (  # noqa: E402
    END_ID,
    PAD_ID,
    START_ID,
    addition_splits,
    addition_vocabs,
    date_splits,
    date_vocabs,
    encode_pairs,
)

NOTEBOOK = Path(__file__).resolve().parents[2] / "solutions" / "a4_seq2seq_attention" / "a4_seq2seq_attention.ipynb"
IMPORT = "from graders import a4_seq2seq_attention as grader"


# ---------------------------------------------------------------- correct implementations (and bugs)
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
        if self.bug == "squeeze all":  # (N, Hk) only while N > 1
            return torch.bmm(weights[:, None, :], keys).squeeze(), weights
        return torch.einsum("ns,nsh->nh", weights, keys), weights


def dot(query, keys, values, mask=None, scale=True, bug=None):
    scores = query @ keys.transpose(-1, -2)
    if scale or bug == "always scaled":
        scores = scores / math.sqrt((values if bug == "Dv" else query).shape[-1])
    if mask is not None or bug == "mask required":
        mask = mask.unsqueeze(1) if mask.dim() == 2 else mask
        scores = scores.masked_fill(~mask, -math.inf)
    weights = torch.softmax(scores, dim=1 if bug == "axis" else -1)
    return weights @ values, weights


class Enc(nn.Module):
    def __init__(self, V, E, H, bug=None):
        super().__init__()
        self.embedding = nn.Embedding(V, E, padding_idx=None if bug == "no padding_idx" else PAD_ID)
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
        if self.bug == "attends twice":
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
        y_in = torch.full_like(y, start_id) if bug == "start" else y
        logits, s, w = model.decoder.step(y_in, s, enc_outputs, src_mask)
        y = logits.argmax(1).squeeze() if bug == "squeeze" else logits.argmax(1)
        tokens.append(y if bug == "no end" else torch.where(done, torch.full_like(y, pad_id), y))
        weights.append(w if bug in ("no end", "weights kept") else w * (~done)[:, None])
        done |= y == end_id
        if done.all() and bug != "no early stop":
            break
    tokens = torch.stack(tokens, 1)
    return (tokens.float() if bug == "float tokens" else tokens), torch.stack(weights, 1)


def loss(model, batch, bug=None):
    logits, _ = model(batch["src"], batch["src_mask"], batch["tgt_in"])
    target = batch["tgt_in" if bug == "unshifted" else "tgt_out"]
    if bug == "with padding":
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))
    if bug == "sum":
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=PAD_ID,
                               reduction="sum")
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=PAD_ID)


def blank(*args, **kwargs):
    raise NotImplementedError()


class BlankModule(nn.Module):
    def __init__(self, *args):
        super().__init__()
        raise NotImplementedError()


def buggy(impl, bug):
    """``impl`` with a bug switched on (classes and functions alike)."""
    return lambda *a, **k: impl(*a, **k, bug=bug)


IMPLEMENTATIONS = {"additive": Additive, "dot": dot, "encoder": Enc, "decoder": Dec, "greedy": greedy, "loss": loss}
CHECKS = {"additive": grader.check_additive_attention, "dot": grader.check_dot_product_attention,
          "encoder": grader.check_encoder, "decoder": grader.check_decoder, "greedy": grader.check_greedy_decode,
          "loss": grader.check_seq2seq_loss}


# ---------------------------------------------------------------- the notebook's test cells
def _cells():
    return {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nbformat.read(NOTEBOOK, 4).cells}


TEST_CELLS = {"additive": "test_additive_attention", "dot": "test_dot_product_attention", "encoder": "test_encoder",
              "decoder": "test_decoder", "greedy": "test_greedy_decode", "loss": "test_seq2seq_loss"}
NAMES = {"additive": "AdditiveAttention", "dot": "dot_product_attention", "encoder": "Encoder",
         "decoder": "AttnDecoder", "greedy": "greedy_decode", "loss": "seq2seq_loss"}


def _split(source):
    """(visible lines, hidden lines) of a test cell."""
    visible, hidden, inside = [], [], False
    for line in source.splitlines():
        if "### BEGIN HIDDEN TESTS" in line or "### END HIDDEN TESTS" in line:
            inside = "BEGIN" in line
        else:
            (hidden if inside else visible).append(line)
    return "\n".join(visible), "\n".join(hidden)


def run_test_cell(part, impl, hidden=True):
    """Run a notebook test cell (its visible part, and the hidden part too when ``hidden``) on ``impl``."""
    visible, hidden_lines = _split(_cells()[TEST_CELLS[part]].source)
    exec(compile(visible + ("\n" + hidden_lines if hidden else ""), TEST_CELLS[part], "exec"), {NAMES[part]: impl})


@pytest.fixture(scope="module")
def notebook_solution():
    """The notebook's own solution cells, executed."""
    cells = _cells()
    ns = {"math": math, "torch": torch, "nn": nn, "F": F, "PAD_ID": PAD_ID, "START_ID": START_ID, "END_ID": END_ID}
    for gid in ("additive_attention", "dot_product_attention", "encoder", "decoder", "greedy_decode", "seq2seq_loss"):
        exec(compile(cells[gid].source, gid, "exec"), ns)
    return {"additive": ns["AdditiveAttention"], "dot": ns["dot_product_attention"], "encoder": ns["Encoder"],
            "decoder": ns["AttnDecoder"], "greedy": ns["greedy_decode"], "loss": ns["seq2seq_loss"]}


# ---------------------------------------------------------------- correct code passes
@pytest.mark.parametrize("part", sorted(TEST_CELLS))
def test_correct_implementations_pass_every_test_cell(part, notebook_solution, capsys):
    run_test_cell(part, IMPLEMENTATIONS[part])
    run_test_cell(part, notebook_solution[part])
    out = capsys.readouterr().out
    assert "ok " in out and "FAIL" not in out


def test_checks_return_none_and_undecorated_checks_return_errors(capsys):
    assert grader.check_dot_product_attention(dot) is None
    errors = grader.check_dot_product_attention.__wrapped__(dot)
    assert set(errors) == {"weights", "out"} and all(e <= grader.TOL.forward for e in errors.values())
    assert "ok    dot_product_attention: weights relative error" in capsys.readouterr().out


@pytest.mark.parametrize("part, case", [
    ("additive", {"N": 2, "S": 4, "Hq": 3, "Hk": 5, "A": 6, "lengths": [4, 2]}),
    ("dot", {}), ("encoder", {"lengths": (5, 3, 1), "extra_pad": 1}), ("decoder", {"N": 2, "S": 5, "T": 3}),
    ("greedy", {}), ("loss", {})])
def test_self_check_prints_ok_for_correct_code(part, case, capsys):
    self_check(CHECKS[part], IMPLEMENTATIONS[part], **case)
    out = capsys.readouterr().out
    assert out.strip().endswith("all checks passed") and "FAIL" not in out


def test_checks_leave_the_global_torch_rng_alone():
    state = torch.get_rng_state()
    grader.check_additive_attention(Additive)
    grader.check_encoder(Enc)
    grader.check_decoder(Dec)
    grader.check_greedy_decode(greedy)
    assert torch.equal(state, torch.get_rng_state())


def test_scripted_model_supports_parameter_based_device_lookup():
    model = grader.ScriptedSeq2Seq([0], [1], V=6)
    assert next(model.parameters()).dtype == torch.float64


# ---------------------------------------------------------------- wrong code fails, with a message
BUGS = [
    ("additive", "mask after softmax", "BEFORE the softmax"),
    ("additive", "batch axis", "weights"),
    ("additive", "no tanh", "tanh"),
    ("additive", "detached", "no gradient"),
    ("dot", "axis", "last axis"),
    ("dot", "Dv", "not Dv, the size of the values"),
    ("encoder", "no packing", "pack"),
    ("encoder", "last column", "final"),
    ("encoder", "no padding_idx", "padding_idx=0"),
    ("decoder", "free running", "teacher forcing"),
    ("decoder", "state not carried", "carry the state"),
    ("decoder", "old state", "NEW state"),
    ("decoder", "attends twice", "exactly once"),
    ("greedy", "no end", "pad_id"),
    ("greedy", "start", "feed back the argmax"),
    ("greedy", "no early stop", "shape"),
    ("greedy", "weights kept", "rows after a sequence's <end> are 0"),
    ("greedy", "float tokens", "integer tensor"),
    ("loss", "with padding", "ignore_index"),
    ("loss", "unshifted", "shifted"),
    ("loss", "sum", "average over real tokens"),
]
EDGE_BUGS = [("additive", "squeeze all"), ("greedy", "squeeze"), ("dot", "always scaled"), ("dot", "mask required"),
             ("encoder", "no total_length")]  # bugs that only some shapes / options reveal


@pytest.mark.parametrize("part, bug, match", BUGS)
def test_checks_catch_typical_bugs(part, bug, match):
    with pytest.raises(CheckFailure, match=match):
        CHECKS[part](buggy(IMPLEMENTATIONS[part], bug))


@pytest.mark.parametrize("check, impl, match", [
    (grader.check_dot_product_attention, lambda q, k, v, mask=None, scale=True: dot(q, k, v, mask, False), "sqrt"),
    (grader.check_dot_product_attention, lambda q, k, v, mask=None, scale=True: dot(q, k, v, None, scale), "masked"),
    (grader.check_seq2seq_loss, lambda m, b: loss(m, b).item(), "scalar tensor"),
    (grader.check_dot_product_attention, lambda *a, **k: None, "tuple of 2 values"),
    (grader.check_dot_product_attention, lambda q, k, v, **kw: tuple(x.numpy() for x in dot(q, k, v, **kw)),
     "torch tensor"),
])
def test_checks_catch_wrong_outputs(check, impl, match):
    with pytest.raises(CheckFailure, match=match):
        check(impl)


@pytest.mark.parametrize("part, bug", [(part, bug) for part, bug, _ in BUGS] + EDGE_BUGS)
def test_visible_cases_catch_every_bug_the_hidden_ones_catch(part, bug):
    """Nothing hidden-only: every bug that the whole test cell catches, its visible part catches."""
    with pytest.raises(CheckFailure):
        run_test_cell(part, buggy(IMPLEMENTATIONS[part], bug))
    with pytest.raises(CheckFailure):
        run_test_cell(part, buggy(IMPLEMENTATIONS[part], bug), hidden=False)


@pytest.mark.parametrize("bug, wrong", [("start", "index (0, 1)"), ("no end", "index (0, 3)")])
def test_greedy_token_ids_are_compared_exactly(bug, wrong, capsys):
    """Known bug 2: these two decoders printed `ok` under a relative-error tolerance on token ids."""
    with pytest.raises(CheckFailure, match=re.escape(wrong)):
        grader.check_greedy_decode(buggy(greedy, bug))
    self_check(grader.check_greedy_decode, buggy(greedy, bug))
    out = capsys.readouterr().out
    assert out.startswith("FAIL  greedy_decode: tokens") and "ok " not in out and "all checks passed" not in out


def test_greedy_one_wrong_token_fails():
    def off_by_one(model, src, src_mask, max_len):
        tokens, weights = greedy(model, src, src_mask, max_len)
        tokens[1, 2] += 1
        return tokens, weights

    with pytest.raises(CheckFailure, match=r"1 of 15 entries differ; first at index \(1, 2\)"):
        grader.check_greedy_decode(off_by_one)


@pytest.mark.parametrize("bug", ["no end", "mask after softmax"])
def test_self_check_prints_fail_and_does_not_raise(bug, capsys):
    impl, check = (greedy, grader.check_greedy_decode) if bug == "no end" else (Additive,
                                                                              grader.check_additive_attention)
    assert self_check(check, buggy(impl, bug)) is None
    assert capsys.readouterr().out.startswith("FAIL  ")


@pytest.mark.parametrize("part", sorted(CHECKS))
def test_blank_stubs_fail_as_not_implemented(part, capsys):
    stub = BlankModule if part in ("additive", "encoder", "decoder") else blank
    with pytest.raises(CheckFailure, match=f"{NAMES[part]}: not implemented yet"):
        CHECKS[part](stub)
    self_check(CHECKS[part], stub)
    assert "FAIL  " in capsys.readouterr().out


@pytest.mark.parametrize("part, name, case", [
    ("additive", "AdditiveAttention.forward", "N=3, S=5, Hq=4, Hk=6, A=7"),
    ("dot", "dot_product_attention", "N=2, L=3, S=4, Dk=5, Dv=6, mask=padding"),
    ("encoder", "Encoder.forward", "N=4, S=5, V=9"),
    ("decoder", "AttnDecoder.step", "N=3, S=5, T=4"),
    ("greedy", "greedy_decode", "N=3, S=4, V=9, max_len=8"),
    ("loss", "seq2seq_loss", "N=3, T=5, V=7"),
])
def test_exceptions_name_the_function_and_the_case(part, name, case):
    def boom(*args, **kwargs):
        raise RuntimeError("shapes do not match")

    impl = IMPLEMENTATIONS[part]
    if isinstance(impl, type):
        attr = "step" if part == "decoder" else "forward"
        impl = type("Broken", (impl,), {attr: boom})
    else:
        impl = boom
    message = f"{name}: raised RuntimeError: shapes do not match (case: {case}"
    with pytest.raises(CheckFailure, match=re.escape(message)):
        CHECKS[part](impl)


def test_wrong_structure_messages():
    class NoLayers(nn.Module):
        def __init__(self, *args):
            super().__init__()

    with pytest.raises(CheckFailure, match="nn.Linear"):
        grader.check_additive_attention(NoLayers)
    with pytest.raises(CheckFailure, match="nn.Embedding"):
        grader.check_encoder(NoLayers)
    with pytest.raises(CheckFailure, match="self.attention"):
        grader.check_decoder(NoLayers)

    class Uni(Enc):
        def __init__(self, V, E, H):
            super().__init__(V, E, H)
            self.rnn = nn.GRU(E, H, batch_first=True)

    class Lstm(Enc):
        def __init__(self, V, E, H):
            super().__init__(V, E, H)
            self.rnn = nn.LSTM(E, H, batch_first=True, bidirectional=True)

    class NotAModule:
        def __init__(self, *args):
            pass

    class BiasedQuery(Additive):
        def __init__(self, hq, hk, a):
            super().__init__(hq, hk, a)
            self.W_q = nn.Linear(hq, a)

    class NoOutBias(Dec):
        def __init__(self, V, E, H, attention):
            super().__init__(V, E, H, attention)
            self.out = nn.Linear(2 * H, V, bias=False)

    with pytest.raises(CheckFailure, match="bidirectional"):
        grader.check_encoder(Uni)
    with pytest.raises(CheckFailure, match=r"nn.GRU\(4, 5, batch_first=True, bidirectional=True\)"):
        grader.check_encoder(Lstm)
    with pytest.raises(CheckFailure, match=re.escape("does __init__ call super().__init__()?")):
        grader.check_additive_attention(NotAModule)
    with pytest.raises(CheckFailure, match="bias=False"):
        grader.check_additive_attention(BiasedQuery)
    with pytest.raises(CheckFailure, match="with a bias"):
        grader.check_decoder(NoOutBias)


@pytest.mark.parametrize("check, kwargs, arg", [
    (grader.check_additive_attention, {"N": 0}, "N"),
    (grader.check_additive_attention, {"lengths": [5, 6, 1]}, "lengths"),
    (grader.check_additive_attention, {"seed": -1}, "seed"),
    (grader.check_dot_product_attention, {"mask_kind": "future"}, "mask_kind"),
    (grader.check_dot_product_attention, {"L": 2, "S": 3, "mask_kind": "causal"}, "mask_kind"),
    (grader.check_dot_product_attention, {"scale": 1}, "scale"),
    (grader.check_dot_product_attention, {"Dk": 2.5}, "Dk"),
    (grader.check_encoder, {"lengths": ()}, "lengths"),
    (grader.check_encoder, {"V": 3}, "V"),
    (grader.check_encoder, {"extra_pad": -1}, "extra_pad"),
    (grader.check_decoder, {"lengths": [1, 2]}, "lengths"),
    (grader.check_decoder, {"T": True}, "T"),
    (grader.check_greedy_decode, {"end_at": (1, 2)}, "offsets, end_at and lengths"),
    (grader.check_greedy_decode, {"max_len": 0}, "max_len"),
    (grader.check_greedy_decode, {"lengths": (4, 0, 4)}, "lengths"),
    (grader.check_seq2seq_loss, {"lengths": (6, 3, 2)}, "lengths"),
    (grader.check_seq2seq_loss, {"V": 2}, "V"),
])
def test_bad_arguments_raise_value_error_naming_them(check, kwargs, arg):
    part = next(p for p, c in CHECKS.items() if c is check)
    with pytest.raises(ValueError, match=re.escape(arg)):
        check(IMPLEMENTATIONS[part], **kwargs)


# ---------------------------------------------------------------- oracles at the edges
@pytest.mark.parametrize("magnitude", [1e-9, 1.0, 1e6])
def test_additive_oracle_matches_torch_at_tiny_and_huge_magnitudes(magnitude):
    rng = np.random.default_rng(3)
    query, keys = rng.normal(size=(2, 3)) * magnitude, rng.normal(size=(2, 4, 5)) * magnitude
    W_q, W_k, b_k, v = rng.normal(size=(6, 3)), rng.normal(size=(6, 5)), rng.normal(size=6), rng.normal(size=(1, 6))
    mask = np.array([[True, True, True, False], [True, False, False, False]])
    context, weights = grader.oracle_additive_attention(query, keys, mask, W_q, W_k, b_k, v)
    layer = Additive(3, 5, 6).double()
    with torch.no_grad():
        for p, value in ((layer.W_q.weight, W_q), (layer.W_k.weight, W_k), (layer.W_k.bias, b_k), (layer.v.weight, v)):
            p.copy_(torch.from_numpy(value))
        exp_context, exp_weights = layer(*(torch.from_numpy(x) for x in (query, keys, mask)))
    np.testing.assert_allclose(weights, exp_weights.numpy(), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(context, exp_context.numpy(), rtol=1e-12, atol=1e-300)
    assert np.all(weights[~mask] == 0) and np.allclose(weights.sum(1), 1)


def test_dot_oracle_scales_by_the_key_size_and_handles_saturated_and_tied_scores():
    q = torch.full((1, 2, 4), 30.0, dtype=torch.float64)
    k = torch.stack([torch.full((4,), 30.0), torch.full((4,), 30.0), torch.zeros(4)]).double()[None]
    v = torch.arange(6, dtype=torch.float64).reshape(1, 3, 2)
    out, weights = grader.oracle_dot_product_attention(q, k, v)
    assert torch.allclose(weights, torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64).expand(1, 2, 3))
    _, w_scaled = grader.oracle_dot_product_attention(q[..., :1] / 30, k[..., :1] / 30 + 1, v)
    _, w_manual = dot(q[..., :1] / 30, k[..., :1] / 30 + 1, v)
    assert torch.allclose(w_scaled, w_manual, rtol=1e-14)
    _, unscaled = grader.oracle_dot_product_attention(q[..., :1] / 30, k[..., :1] / 30 + 1, v, scale=False)
    assert torch.allclose(unscaled, dot(q[..., :1] / 30, k[..., :1] / 30 + 1, v, scale=False)[1], rtol=1e-14)


def test_loss_oracle_is_the_mean_over_real_tokens_at_huge_logits():
    base = torch.zeros(2, 3, 5, dtype=torch.float64)
    base[0, 0, 3] = 1e4  # a huge, confident, right logit: loss 0 at that token
    model = grader.LogitsModel(base)
    batch = {"src": torch.ones(2, 1, dtype=torch.long), "src_mask": torch.ones(2, 1, dtype=torch.bool),
             "tgt_in": torch.tensor([[1, 3, 0], [1, 0, 0]]), "tgt_out": torch.tensor([[3, 2, 0], [2, 0, 0]]),
             "tgt_mask": torch.tensor([[True, True, False], [True, False, False]])}
    logits = model(batch["src"], batch["src_mask"], batch["tgt_in"])[0].detach()
    nll = -torch.log_softmax(logits, -1).gather(2, batch["tgt_out"][..., None])[..., 0]
    expected = (nll * batch["tgt_mask"]).sum() / batch["tgt_mask"].sum()
    assert torch.allclose(grader.oracle_seq2seq_loss(model, batch), expected, rtol=1e-14)


def test_scripted_greedy_output():
    tokens, weights = grader.scripted_greedy([0, 1], [1, 0], [2, 3], V=6, max_len=4)
    assert tokens.tolist() == [[3 + (START_ID * 2 + 0) % 3, END_ID], [END_ID, PAD_ID]]
    assert weights.shape == (2, 2, 3) and weights[1, 1].sum() == 0 and weights[0, 1, 1] == 1
    tokens, _ = grader.scripted_greedy([0], [9], [2], V=6, max_len=3)
    assert tokens.shape == (1, 3) and END_ID not in tokens


# ---------------------------------------------------------------- trained models and held-out data
class Lookup(nn.Module):
    """A 'model' that answers every source it was given (teacher-forced logits), wrong on ``wrong``."""

    def __init__(self, pairs, vocabs, wrong=()):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        data = encode_pairs(pairs, *vocabs)
        self.V, self.answers = len(vocabs[1]), {}
        for (source, _), out in zip(pairs, data["tgt_out"]):
            out = torch.as_tensor(out)
            if source in set(wrong):
                out = torch.where(out == END_ID, torch.full_like(out, 3), out)
            self.answers[tuple(vocabs[0].encode(source))] = out
        self.src_vocab = vocabs[0]

    def forward(self, src, src_mask, tgt_in):
        rows = [self.answers[tuple(s[m].tolist())][:tgt_in.shape[1]] for s, m in zip(src, src_mask)]
        return F.one_hot(torch.stack(rows), self.V).float(), None


@pytest.mark.parametrize("task", ["dates", "addition"])
def test_held_out_splits_are_disjoint_from_training_and_fixed_by_their_seed(task):
    held_out = grader._dates_held_out if task == "dates" else grader._addition_held_out
    recipe = grader.DATES_RECIPE if task == "dates" else grader.ADDITION_RECIPE
    splits = (date_splits if task == "dates" else addition_splits)(**recipe)
    hidden = held_out(12345)
    sources = [s for s, _ in hidden]
    assert len(hidden) == grader.HELD_OUT_SIZE == len(set(sources))
    assert not set(sources) & {s for pairs in splits.values() for s, _ in pairs}
    assert held_out(None) == splits["test"] and hidden == held_out(12345) != held_out(12346)
    if task == "addition":
        assert all(int(a) + int(b) == int(t) for (s, t) in hidden for a, b in [s.split("+")])
    else:
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", t) for _, t in hidden)


def test_no_module_level_name_holds_held_out_data():
    for name, value in vars(grader).items():
        if isinstance(value, (list, tuple, dict, set, np.ndarray)) and not name.startswith("__"):
            assert len(value) < 100, name
        assert not torch.is_tensor(value), name


@pytest.mark.parametrize("task, seed", [("dates", None), ("dates", 7), ("addition", None), ("addition", 7)])
def test_accuracy_checks_use_the_split_of_their_seed(task, seed, capsys):
    check, held_out, vocabs = ((grader.check_dates_accuracy, grader._dates_held_out, date_vocabs()) if task == "dates"
                               else (grader.check_addition_accuracy, grader._addition_held_out, addition_vocabs()))
    check(Lookup(held_out(seed), vocabs), held_out_seed=seed)
    out = capsys.readouterr().out
    assert "100.00%" in out and ("public test split" if seed is None else "fresh held-out split") in out
    other = held_out(None if seed is not None else 7)
    with pytest.raises(CheckFailure, match=f"{task} model: raised KeyError"):  # it only knows the other split
        check(Lookup(other, vocabs), held_out_seed=seed)


def test_accuracy_threshold_is_inclusive():
    pairs = grader._addition_held_out(3)
    wrong = [s for s, _ in pairs[:100]]  # 100 of 2000 wrong: exactly 95 %
    grader.check_addition_accuracy(Lookup(pairs, addition_vocabs(), wrong), minimum=0.95, held_out_seed=3)
    with pytest.raises(CheckFailure, match=r"94\.95% on a fresh held-out split .* below 95\.0%"):
        grader.check_addition_accuracy(Lookup(pairs, addition_vocabs(), wrong + [pairs[100][0]]), held_out_seed=3)


def test_accuracy_check_failures():
    with pytest.raises(CheckFailure, match="trained model"):
        grader.check_dates_accuracy(None)

    class Constant(nn.Module):
        def forward(self, src, src_mask, tgt_in):
            return torch.zeros(src.shape[0], tgt_in.shape[1], 13), None

    with pytest.raises(CheckFailure, match="below 95.0%"):
        grader.check_addition_accuracy(Constant())

    class WrongShape(nn.Module):
        def forward(self, src, src_mask, tgt_in):
            return torch.zeros(src.shape[0], 1, 13), None

    with pytest.raises(CheckFailure, match="addition model: raised ValueError.*case: data=the public test split"):
        grader.check_addition_accuracy(WrongShape())
    for kwargs, arg in [({"minimum": 0}, "minimum"), ({"minimum": 95}, "minimum"), ({"held_out_seed": -2}, "held_out"),
                        ({"reverse_source": "yes"}, "reverse_source")]:
        with pytest.raises(ValueError, match=arg):
            grader.check_addition_accuracy(Constant(), **kwargs)


def test_reversed_source_model_is_scored_on_reversed_questions():
    pairs = grader._addition_held_out(None)
    model = Lookup([(s[::-1], t) for s, t in pairs], (addition_vocabs()[0], addition_vocabs()[1]))
    grader.check_addition_accuracy(model, reverse_source=True)
    data = to_tensors(encode_pairs(pairs, *addition_vocabs(), reverse_source=True))
    assert data["src"].shape[0] == 2000


# ---------------------------------------------------------------- the notebook follows the conventions
def test_notebook_imports_the_grader_once_and_every_test_cell_reimports_it():
    nb = nbformat.read(NOTEBOOK, 4)
    text = "\n".join(c.source for c in nb.cells)
    assert "checks_attention" not in text and "preview_" not in text and "import *" not in text
    assert _cells()["setup"].source.count(IMPORT) == 1
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade"):
            assert cell.source.startswith(IMPORT + "\n"), meta["grade_id"]
            assert "HIDDEN" in cell.source, meta["grade_id"]
        if cell.cell_type == "code" and meta.get("grade_id", "").endswith("self_check"):
            assert cell.source.startswith("grader.self_check(grader.check_"), meta["grade_id"]


@pytest.mark.parametrize("task", ["dates", "addition"])
def test_hidden_accuracy_seed_is_only_in_the_hidden_block_and_recipe_matches(task):
    cells = _cells()
    visible, hidden = _split(cells[f"test_{task}_accuracy" if task == "dates" else "test_addition_attention"].source)
    assert "held_out_seed" not in visible and re.search(r"held_out_seed=\d+", hidden)
    seed = re.search(r"held_out_seed=(\d+)", hidden).group(1)
    text = "\n".join(c.source for gid, c in cells.items() if gid != f"test_{task}_accuracy"
                     and gid != "test_addition_attention")
    assert seed not in text
    recipe = grader.DATES_RECIPE if task == "dates" else grader.ADDITION_RECIPE
    call = (f"date_splits({recipe['n_train']}, n_val={recipe['n_val']}, n_test={recipe['n_test']}, "
            f"seed={recipe['seed']})" if task == "dates" else
            f"addition_splits({recipe['n_train']}, n_val={recipe['n_val']}, n_test={recipe['n_test']}, "
            f"seed={recipe['seed']})")
    assert call in cells[f"{task}_train"].source


def test_performance_notes_and_q1_quote_the_measurements():
    """The numbers of the performance notes (and those Q1 quotes) are the ones scripts/seq2seq_goals.py stored."""
    goals = json.loads((NOTEBOOK.parents[2] / "scripts" / "seq2seq_goals.json").read_text())
    cells = _cells()
    notes, question = cells["performance_md"].source, cells["q1_md"].source
    dates, add = goals["dates"], goals["addition"]
    first = dates["first_at_99_9"]
    assert (f"**{100 * next(a for s, a in dates['test_exact_match_curve'] if s == first['step']):.1f} %** after "
            f"{first['step']} steps ({first['epochs']:.1f} epochs, {first['train_cpu_seconds']:.1f} s of CPU training)"
            in notes)
    curve = dates["test_exact_match_curve"]
    perfect = next(s for i, (s, _) in enumerate(curve) if all(a == 1.0 for _, a in curve[i:]))
    assert (f"**100 %** from step {perfect} ({perfect * 256 / 20000:.1f} epochs, about "
            f"{perfect * dates['train_cpu_seconds'] / dates['steps']:.0f} s) to the end of the run "
            f"({dates['steps']} steps, {dates['train_cpu_seconds']:.0f} s)") in notes
    per_epoch = add["test_exact_match_per_epoch"]
    always = next(i + 1 for i in range(len(per_epoch)) if all(a >= 0.99 for a in per_epoch[i:]))
    epoch = add["first_epoch_at_99"]
    assert (f"first **≥ 99 %** after epoch {epoch} ({100 * per_epoch[epoch - 1]:.1f} %), "
            f"≥ 99 % at every epoch from {always} on; **{100 * add['final']:.2f} %** after {add['epochs']} epochs "
            f"({add['cpu_seconds']:.0f} s of CPU)") in notes
    plain, reversed_ = goals["addition_plain"], goals["addition_plain_reversed"]
    assert plain["first_epoch_at_99"] is None and f"{100 * plain['final']:.1f} % after 30 epochs (never 99 %)" in notes
    assert f"{100 * plain['final']:.1f} %" in question and f"{100 * reversed_['final']:.1f} % after 30 epochs" in notes
    long = goals["addition_long"]
    assert long["max_digits"] == 6 and long["plain"]["steps"] == long["attention"]["steps"]
    att, plain6, reversed6 = (100 * long[k]["test_exact_match"] for k in ("attention", "plain", "plain_reversed"))
    assert (f"after {long['attention']['steps']} steps: attention **{att:.1f} %**, plain {plain6:.2f} %, "
            f"reversed input {reversed6:.2f} %") in notes
