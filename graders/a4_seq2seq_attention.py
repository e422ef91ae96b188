"""The grader of assignment a4_seq2seq_attention: attention layers, the encoder, the attention
decoder, greedy decoding, the loss and the exact match of the two trained models.

Oracles are independent of any solution:

- ``AdditiveAttention``: the documented formula ``e_i = v . tanh(W_q q + W_k k_i + b)`` in float64 NumPy;
- ``dot_product_attention``: ``torch.nn.functional.scaled_dot_product_attention`` (scale ``1/sqrt(Dk)``,
  Dk = the query/key size);
- ``Encoder``: every sequence run alone (no padding) through a fresh ``nn.GRU`` holding the
  student's weights;
- ``AttnDecoder``: the documented step with a stand-in attention that records its queries and
  the student's ``GRUCell`` weights in a torch ``nn.GRU`` (``graders.torch_layout``);
- ``greedy_decode``: a scripted model whose greedy output is known by construction; token ids
  are compared exactly (``core.compare_exact``), never with a tolerance;
- ``seq2seq_loss``: ``F.cross_entropy(..., ignore_index=PAD_ID)``, the mean over real target tokens;
- the trained models: exact match on 2000 held-out pairs. The visible tests use the public test
  split of the notebook's recipe; the hidden tests pass ``held_out_seed`` and get a split drawn
  here, whose sources are in none of the recipe's splits. No module-level name holds it.

Every check runs on float64 inputs and compares with ``TOL.forward``.
"""
import datetime
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F

from helpers._validate import integer
from helpers.attention import exact_match, to_tensors
from helpers.data import (
    DATE_FORMATS,
    DATE_RANGE,
    END_ID,
    PAD_ID,
    START_ID,
    addition_splits,
    addition_vocabs,
    date_splits,
    date_vocabs,
    encode_pairs,
    render_date,
)

from . import core, modules, torch_layout
from .core import TOL, self_check  # noqa: F401 (the notebook's self-check cells: grader.self_check)

NUMPY_ONLY = False

#: The splits the notebook trains on (its training cells call date_splits / addition_splits so).
DATES_RECIPE = {"n_train": 20000, "n_val": 1000, "n_test": 2000, "seed": 0}
ADDITION_RECIPE = {"n_train": 40000, "n_val": 1000, "n_test": 2000, "seed": 0, "max_digits": 3}
HELD_OUT_SIZE = 2000

MASK_HINT = ("set the scores of padded positions to -inf (masked_fill) BEFORE the softmax; multiplying the "
             "weights by the mask afterwards leaves rows that do not sum to 1")


# ============================================================================ shared pieces
def _lengths(lengths, N, S):
    """The N sequence lengths of a case (default S, S-1, ... cycling); ValueError names ``lengths``."""
    if lengths is None:
        return [S - (i % S) for i in range(N)]
    values = list(lengths) if isinstance(lengths, (list, tuple)) else []
    if len(values) != N or any(isinstance(v, bool) or not isinstance(v, Integral) or not 1 <= v <= S
                               for v in values):
        raise ValueError(f"lengths must be a list of N={N} integers in 1..S={S}, got {lengths!r}")
    return [int(v) for v in values]


def _int_list(values, arg, minimum):
    """A non-empty list of integers >= minimum; ValueError names ``arg``."""
    values = list(values) if isinstance(values, (list, tuple)) else []
    if not values:
        raise ValueError(f"{arg} must be a non-empty list of integers, got {values!r}")
    return [integer(v, arg, minimum) for v in values]


def _flag(value, arg):
    """``value`` if it is True or False; ValueError names ``arg``."""
    if value is not True and value is not False:
        raise ValueError(f"{arg} must be True or False, got {value!r}")
    return value


def _mask(lengths, S):
    """Bool (N, S): True at the first lengths[n] positions of row n."""
    return torch.arange(S)[None, :] < torch.as_tensor(lengths)[:, None]


def _embedding(name, owner, V, E):
    emb = modules.layer(name, owner, "embedding", torch.nn.Embedding, f"nn.Embedding({V}, {E}, padding_idx=PAD_ID)")
    if (emb.num_embeddings, emb.embedding_dim, emb.padding_idx) != (V, E, PAD_ID):
        core.fail(name, f"self.embedding must be nn.Embedding({V}, {E}, padding_idx={PAD_ID}), got "
                        f"nn.Embedding({emb.num_embeddings}, {emb.embedding_dim}, padding_idx={emb.padding_idx}).")
    return emb


# ============================================================================ additive attention
def _additive_case(seed, N, S, Hq, Hk, A, lengths):
    rng = np.random.default_rng(seed)
    case = {"query": rng.normal(size=(N, Hq)), "keys": rng.normal(size=(N, S, Hk)),
            "W_q": rng.normal(scale=0.6, size=(A, Hq)), "W_k": rng.normal(scale=0.6, size=(A, Hk)),
            "b_k": rng.normal(scale=0.3, size=A), "v": rng.normal(size=(1, A))}
    case["mask"] = np.arange(S)[None, :] < np.asarray(lengths)[:, None]
    return case


def oracle_additive_attention(query, keys, mask, W_q, W_k, b_k, v):
    """Float64 NumPy value of the documented formula, masked positions excluded from the softmax.

    Inputs: query (N, Hq), keys (N, S, Hk), mask bool (N, S) (>= 1 True per row), W_q (A, Hq),
    W_k (A, Hk), b_k (A,), v (1, A). Returns (context (N, Hk), weights (N, S)).
    """
    pre = (query @ W_q.T)[:, None, :] + keys @ W_k.T + b_k
    scores = np.where(mask, (np.tanh(pre) @ v.T)[..., 0], -np.inf)
    weights = np.exp(scores - scores.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    return np.einsum("ns,nsh->nh", weights, keys), weights


def _build_additive(AdditiveAttention, params, case, seed):
    return modules.additive_attention(AdditiveAttention, params, "W_q", "W_k", "AdditiveAttention", case, seed,
                                      "__init__(query_size, key_size, attn_size) creates self.W_q, self.W_k and "
                                      "self.v", NUMPY_ONLY)


@core.check
def check_additive_attention(AdditiveAttention, seed=0, N=3, S=5, Hq=4, Hk=6, A=7, lengths=None):
    """Check ``AdditiveAttention`` against its docstring on one float64 case.

    Weights and context against the float64 formula (masked positions exactly 0), the same
    context when the padded keys hold garbage, and gradients reaching every parameter.
    lengths: N real lengths in 1..S (default S, S-1, ...). Raises CheckFailure; ValueError for bad arguments.
    """
    seed = integer(seed, "seed", 0)
    N, S, Hq, Hk, A = (integer(v, k) for v, k in ((N, "N"), (S, "S"), (Hq, "Hq"), (Hk, "Hk"), (A, "A")))
    lengths = _lengths(lengths, N, S)
    case = {"N": N, "S": S, "Hq": Hq, "Hk": Hk, "A": A, "lengths": lengths, "dtype": "float64"}
    params = _additive_case(seed, N, S, Hq, Hk, A, lengths)
    exp_context, exp_weights = oracle_additive_attention(*(params[k] for k in ("query", "keys", "mask", "W_q",
                                                                                "W_k", "b_k", "v")))
    layer = _build_additive(AdditiveAttention, params, case, seed)
    query, keys, mask = (torch.from_numpy(params[k]) for k in ("query", "keys", "mask"))
    name = "AdditiveAttention.forward"
    hint = "forward(query (N, Hq), keys (N, S, Hk), mask (N, S)) -> (context, weights)"

    def forward(q, k):
        out = core.call(layer, q, k, mask.clone(), name=name, case=case, hint=hint, numpy_only=NUMPY_ONLY)
        return modules.tensors(name, out, ("context", "weights"))

    context, weights = forward(query.clone(), keys.clone())
    results = {"weights": core.compare(
        "AdditiveAttention: weights", weights, exp_weights, TOL.forward,
        "e_i = v . tanh(W_q q + W_k k_i + b), then a softmax over the S positions (dim=1); " + MASK_HINT)}
    modules.zero_where_masked("AdditiveAttention: weights", weights, mask, MASK_HINT)
    results["context"] = core.compare("AdditiveAttention: context", context, exp_context, TOL.forward,
                                      "the context is the weighted sum of the keys: sum_i a_i k_i")
    noisy = keys.clone()
    noisy[~mask] = 1e3
    results["context with garbage at padded keys"] = core.compare(
        "AdditiveAttention: context with garbage at padded keys", forward(query.clone(), noisy)[0], exp_context,
        TOL.forward, MASK_HINT)
    query, keys = query.clone().requires_grad_(True), keys.clone().requires_grad_(True)
    context, weights = forward(query, keys)
    (context.sum() + (weights * torch.arange(S, dtype=weights.dtype)).sum()).backward()
    needs = [("keys", keys)]
    if max(lengths) > 1:  # with one real position its weight is 1 whatever the score: no gradient
        needs += [("W_q.weight", layer.W_q.weight), ("W_k.weight", layer.W_k.weight), ("W_k.bias", layer.W_k.bias),
                  ("v.weight", layer.v.weight), ("query", query)]
    modules.reaches("AdditiveAttention", needs)
    return results


# ============================================================================ dot-product attention
MASK_KINDS = (None, "padding", "causal")


def _dot_case(seed, N, L, S, Dk, Dv, mask_kind):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(N, L, Dk, generator=gen, dtype=torch.float64) * 1.5
    k = torch.randn(N, S, Dk, generator=gen, dtype=torch.float64)
    v = torch.randn(N, S, Dv, generator=gen, dtype=torch.float64)
    if mask_kind == "padding":
        return q, k, v, _mask([S - (i % S) for i in range(N)], S)
    if mask_kind == "causal":
        return q, k, v, torch.tril(torch.ones(L, S, dtype=torch.bool)).expand(N, L, S).clone()
    return q, k, v, None


def oracle_dot_product_attention(query, keys, values, mask=None, scale=True):
    """torch's scaled_dot_product_attention (scale 1/sqrt(Dk), or 1 with scale=False).

    mask: None, bool (N, S) or (N, L, S), True = may attend. The weights are its output for
    identity values. Returns (out (N, L, Dv), weights (N, L, S)).
    """
    N, L, _ = query.shape
    S = keys.shape[1]
    attn_mask = None if mask is None else (mask[:, None, :] if mask.dim() == 2 else mask).expand(N, L, S)
    kwargs = {} if scale else {"scale": 1.0}
    out = F.scaled_dot_product_attention(query, keys, values, attn_mask=attn_mask, **kwargs)
    eye = torch.eye(S, dtype=query.dtype).expand(N, S, S)
    return out, F.scaled_dot_product_attention(query, keys, eye, attn_mask=attn_mask, **kwargs)


@core.check
def check_dot_product_attention(dot_product_attention, seed=0, N=2, L=3, S=4, Dk=5, Dv=6, mask_kind="padding",
                                scale=True):
    """Check ``dot_product_attention`` against torch.nn.functional.scaled_dot_product_attention.

    mask_kind: None (no mask argument), "padding" (bool (N, S)) or "causal" (bool (N, L, S), needs L == S);
    scale: passed as scale=False when False. Raises CheckFailure; ValueError for bad arguments.
    """
    seed = integer(seed, "seed", 0)
    N, L, S, Dk, Dv = (integer(v, k) for v, k in ((N, "N"), (L, "L"), (S, "S"), (Dk, "Dk"), (Dv, "Dv")))
    if mask_kind not in MASK_KINDS:
        raise ValueError(f"mask_kind must be one of {MASK_KINDS}, got {mask_kind!r}")
    if mask_kind == "causal" and L != S:
        raise ValueError(f"mask_kind='causal' needs L == S, got L={L}, S={S}")
    scale = _flag(scale, "scale")
    q, k, v, mask = _dot_case(seed, N, L, S, Dk, Dv, mask_kind)
    exp_out, exp_weights = oracle_dot_product_attention(q, k, v, mask, scale)
    kwargs = ({} if mask is None else {"mask": mask.clone()}) | ({} if scale else {"scale": False})
    case = {"N": N, "L": L, "S": S, "Dk": Dk, "Dv": Dv, "mask": mask_kind, "scale": scale, "dtype": "float64"}
    name = "dot_product_attention"
    out, weights = modules.tensors(name, core.call(dot_product_attention, q.clone(), k.clone(), v.clone(), name=name,
                                            case=case, hint="returns (out, weights)", numpy_only=NUMPY_ONLY,
                                            **kwargs), ("out", "weights"))
    scale_hint = ("scores = Q K^T / sqrt(Dk), Dk = the size of the query/key vectors (not Dv, the size of the values)"
                  if scale else "with scale=False the scores are the plain dot products Q K^T")
    where = f"({core.describe(case)})"
    results = {"weights": core.compare(
        f"{name}: weights {where}", weights, exp_weights, TOL.forward,
        scale_hint + "; softmax over the last axis (the S keys); masked scores -> -inf before the softmax")}
    if mask is not None:
        modules.zero_where_masked(f"{name}: weights {where}", weights,
                                  mask[:, None, :].expand(N, L, S) if mask.dim() == 2 else mask,
                                  "set masked scores to -inf before the softmax")
    results["out"] = core.compare(f"{name}: out {where}", out, exp_out, TOL.forward, "out = weights @ values")
    return results


# ============================================================================ encoder
def _encoder_case(seed, V, lengths, extra_pad):
    gen = torch.Generator().manual_seed(seed)
    S = max(lengths) + extra_pad
    src = torch.randint(3, V, (len(lengths), S), generator=gen)
    mask = _mask(lengths, S)
    src[~mask] = PAD_ID
    return src, mask


def _build_encoder(Encoder, V, E, H, seed, case):
    name = "Encoder"
    enc = modules.construct(Encoder, (V, E, H), name, case, seed, "__init__(vocab_size, emb_size, hidden_size)",
                            NUMPY_ONLY)
    _embedding(name, enc, V, E)
    rnn = modules.layer(name, enc, "rnn", torch.nn.GRU, f"nn.GRU({E}, {H}, batch_first=True, bidirectional=True)")
    got = (rnn.input_size, rnn.hidden_size, rnn.num_layers, rnn.batch_first, rnn.bidirectional)
    if got != (E, H, 1, True, True):
        core.fail(name, f"self.rnn must be nn.GRU({E}, {H}, batch_first=True, bidirectional=True) (one layer), got "
                        f"input_size={got[0]}, hidden_size={got[1]}, num_layers={got[2]}, batch_first={got[3]}, "
                        f"bidirectional={got[4]}.")
    return enc.double()


def oracle_encoder(embedding_weight, rnn, src, mask):
    """Each sequence run alone (no padding) through a fresh bidirectional nn.GRU with ``rnn``'s weights.

    Returns (outputs (N, S, H): forward + backward states, 0 at padding; final (N, H): last
    forward state + last backward state).
    """
    with torch.random.fork_rng(devices=[]):  # its random initial weights must not move the notebook's RNG
        gru = torch.nn.GRU(rnn.input_size, rnn.hidden_size, batch_first=True, bidirectional=True).double()
    gru.load_state_dict(rnn.state_dict())
    N, S = src.shape
    H = rnn.hidden_size
    outputs = torch.zeros(N, S, H, dtype=torch.float64)
    final = torch.zeros(N, H, dtype=torch.float64)
    with torch.no_grad():
        for n in range(N):
            L = int(mask[n].sum())
            out, h = gru(F.embedding(src[n:n + 1, :L], embedding_weight))
            outputs[n, :L] = out[0, :, :H] + out[0, :, H:]
            final[n] = h[0, 0] + h[1, 0]
    return outputs, final


@core.check
def check_encoder(Encoder, seed=0, V=9, E=4, H=5, lengths=(5, 3, 1, 4), extra_pad=0):
    """Check that the encoder treats every sequence of a padded batch exactly as if it were alone.

    lengths: the N real lengths; the batch has S = max(lengths) + extra_pad columns (extra_pad > 0:
    columns that are padding in every row). Raises CheckFailure; ValueError for bad arguments.
    """
    seed, V, E, H = integer(seed, "seed", 0), integer(V, "V", 4), integer(E, "E"), integer(H, "H")
    lengths, extra_pad = _int_list(lengths, "lengths", 1), integer(extra_pad, "extra_pad", 0)
    case = {"N": len(lengths), "S": max(lengths) + extra_pad, "V": V, "E": E, "H": H, "lengths": lengths,
            "dtype": "float64"}
    enc = _build_encoder(Encoder, V, E, H, seed, case)
    src, mask = _encoder_case(seed, V, lengths, extra_pad)
    exp_outputs, exp_final = oracle_encoder(enc.embedding.weight.detach(), enc.rnn, src, mask)
    name = "Encoder.forward"
    outputs, final = modules.tensors(name, core.call(enc, src.clone(), mask.clone(), name=name, case=case,
                                              hint="forward(src (N, S), src_mask (N, S)) -> (outputs, final)",
                                              numpy_only=NUMPY_ONLY), ("outputs", "final"))
    pack_hint = ("pack the padded batch (nn.utils.rnn.pack_padded_sequence with the true lengths, "
                 "enforce_sorted=False) so that the backward direction starts at each sequence's last "
                 "real token, and unpack with total_length=S")
    results = {"outputs": core.compare("Encoder: outputs", outputs, exp_outputs, TOL.forward,
                                       "outputs = forward half + backward half of the GRU outputs; " + pack_hint)}
    if torch.any(outputs.detach()[~mask] != 0):
        core.fail("Encoder: outputs", "outputs at padded positions must be exactly 0.", pack_hint)
    results["final"] = core.compare("Encoder: final", final, exp_final, TOL.forward,
                                    "final = h_n[0] + h_n[1] of the packed run (not the output at column S-1, "
                                    "which is padding for short sequences)")
    if not outputs.requires_grad:
        core.fail("Encoder", "outputs carry no gradient.", "no .detach() or torch.no_grad() in forward")
    outputs.sum().backward()
    modules.reaches("Encoder", [("the embedding", enc.embedding.weight)])
    return results


# ============================================================================ decoder
class ProbeAttention(torch.nn.Module):
    """A stand-in attention with a known, query-dependent output (not additive attention):
    score_i = mean(tanh(query)) * (i + 1) + mean(k_i), masked softmax, context = sum_i a_i k_i.
    It records the queries it is called with."""

    def __init__(self):
        super().__init__()
        self.queries = []

    def forward(self, query, keys, mask):
        self.queries.append(query.detach().clone())
        pos = torch.arange(1, keys.shape[1] + 1, dtype=keys.dtype)
        scores = torch.tanh(query).mean(dim=1, keepdim=True) * pos + keys.mean(dim=2)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        return (weights[:, :, None] * keys).sum(dim=1), weights


def _build_decoder(AttnDecoder, V, E, H, seed, case):
    name = "AttnDecoder"
    probe = ProbeAttention()
    dec = modules.construct(AttnDecoder, (V, E, H, probe), name, case, seed,
                            "__init__(vocab_size, emb_size, hidden_size, attention)", NUMPY_ONLY)
    if getattr(dec, "attention", None) is not probe:
        core.fail(name, "self.attention must be the attention module passed to __init__.")
    _embedding(name, dec, V, E)
    cell = modules.layer(name, dec, "cell", torch.nn.GRUCell, f"nn.GRUCell({E} + {H}, {H})")
    if (cell.input_size, cell.hidden_size) != (E + H, H):
        core.fail(name, f"self.cell must be nn.GRUCell({E} + {H}, {H}): its input is [embedding; context], got "
                        f"nn.GRUCell({cell.input_size}, {cell.hidden_size}).")
    out = modules.layer(name, dec, "out", torch.nn.Linear, f"nn.Linear(2 * {H}, {V})")
    if (out.in_features, out.out_features, out.bias is not None) != (2 * H, V, True):
        core.fail(name, f"self.out must be nn.Linear(2 * {H}, {V}) (with a bias): its input is [new state; context], "
                        f"got nn.Linear({out.in_features}, {out.out_features}, bias={out.bias is not None}).")
    with torch.no_grad():  # make the output layer's bias visible in the logits
        out.bias.copy_(torch.randn(V, generator=torch.Generator().manual_seed(seed)))
    return dec.double(), probe


def oracle_decoder_step(dec, y_prev, s_prev, enc_outputs, src_mask):
    """One documented step with ``dec``'s weights: attention(s_prev), the GRU update computed by a
    torch nn.GRU holding ``dec.cell``'s weights, logits = out([s; context]). Returns (logits, s, weights)."""
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        context, weights = ProbeAttention()(s_prev, enc_outputs, src_mask)
        x = torch.cat([dec.embedding.weight[y_prev], context], dim=1)
        Wx, Wh, bx, bh = torch_layout.course_weights(dec.cell)
        gru = torch_layout.torch_recurrent("gru", Wx, Wh, bx=bx, bh=bh)
        s = gru(x[:, None, :], s_prev[None])[1][0]
        logits = F.linear(torch.cat([s, context], dim=1), dec.out.weight, dec.out.bias)
    return logits, s, weights


def oracle_decoder_forward(dec, tgt_in, s0, enc_outputs, src_mask):
    """Teacher forcing: the oracle step fed tgt_in[:, t] at step t. Returns (logits (N, T, V), weights (N, T, S))."""
    s, all_logits, all_weights = s0, [], []
    for t in range(tgt_in.shape[1]):
        logits, s, weights = oracle_decoder_step(dec, tgt_in[:, t], s, enc_outputs, src_mask)
        all_logits.append(logits)
        all_weights.append(weights)
    return torch.stack(all_logits, dim=1), torch.stack(all_weights, dim=1)


def _decoder_case(seed, N, S, T, V, H, lengths):
    gen = torch.Generator().manual_seed(seed + 1)
    enc_outputs = torch.randn(N, S, H, generator=gen, dtype=torch.float64)
    src_mask = _mask(lengths, S)
    enc_outputs[~src_mask] = 0
    s0 = torch.randn(N, H, generator=gen, dtype=torch.float64)
    tgt_in = torch.randint(3, V, (N, T), generator=gen)
    tgt_in[:, 0] = START_ID
    return enc_outputs, src_mask, s0, tgt_in


@core.check
def check_decoder(AttnDecoder, seed=0, N=3, S=5, T=4, V=8, E=3, H=4, lengths=None):
    """Check ``AttnDecoder.step`` and the teacher-forced ``AttnDecoder.forward`` against the docstring.

    A stand-in attention module is passed in, so the decoder is checked on its own: the query
    must be the previous state s_{t-1}, the GRU cell input [embedding; context], the output layer
    input [s_t; context], and forward must feed the true token tgt_in[:, t] at step t.
    lengths: N source lengths in 1..S. Raises CheckFailure; ValueError for bad arguments.
    """
    seed = integer(seed, "seed", 0)
    N, S, T, E, H = (integer(v, k) for v, k in ((N, "N"), (S, "S"), (T, "T"), (E, "E"), (H, "H")))
    V = integer(V, "V", 4)
    lengths = _lengths(lengths, N, S)
    case = {"N": N, "S": S, "T": T, "V": V, "E": E, "H": H, "lengths": lengths, "dtype": "float64"}
    dec, probe = _build_decoder(AttnDecoder, V, E, H, seed, case)
    enc_outputs, src_mask, s0, tgt_in = _decoder_case(seed, N, S, T, V, H, lengths)
    exp_logits, exp_s, exp_weights = oracle_decoder_step(dec, tgt_in[:, 0], s0, enc_outputs, src_mask)
    name = "AttnDecoder.step"
    out = core.call(getattr(dec, "step", None), tgt_in[:, 0].clone(), s0.clone(), enc_outputs, src_mask, name=name,
                    case=case, hint="step(y_prev, s_prev, enc_outputs, src_mask) -> (logits, s, weights)",
                    numpy_only=NUMPY_ONLY)
    logits, s, weights = modules.tensors(name, out, ("logits", "s", "weights"))
    core.compare_exact(f"{name}: calls of self.attention per step", len(probe.queries), 1,
                       "call self.attention exactly once per step")
    results = {"attention query": core.compare(
        f"{name}: attention query", probe.queries[0], s0, TOL.forward,
        "Bahdanau attention: the query is the previous decoder state s_{t-1} (s_prev)")}
    results["weights"] = core.compare(f"{name}: weights", weights, exp_weights, TOL.forward,
                                      "return the weights of self.attention(s_prev, enc_outputs, src_mask)")
    results["new state s"] = core.compare(f"{name}: new state s", s, exp_s, TOL.forward,
                                          "s = self.cell(torch.cat([embedding(y_prev), context], dim=1), s_prev)")
    results["logits"] = core.compare(f"{name}: logits", logits, exp_logits, TOL.forward,
                                     "logits = self.out(torch.cat([s, context], dim=1)) with the NEW state s")
    exp_logits, exp_weights = oracle_decoder_forward(dec, tgt_in, s0, enc_outputs, src_mask)
    name = "AttnDecoder.forward"
    out = core.call(dec, tgt_in.clone(), s0.clone(), enc_outputs, src_mask, name=name, case=case,
                    hint="forward(tgt_in, s0, enc_outputs, src_mask) -> (logits, weights)", numpy_only=NUMPY_ONLY)
    logits, weights = modules.tensors(name, out, ("logits", "weights"))
    tf_hint = ("teacher forcing: at step t feed the TRUE token tgt_in[:, t] (never the model's own "
               "prediction) and carry the state s from one step to the next; stack along dim=1")
    results["forward logits"] = core.compare(f"{name}: logits", logits, exp_logits, TOL.forward, tf_hint)
    results["forward weights"] = core.compare(f"{name}: weights", weights, exp_weights, TOL.forward, tf_hint)
    logits.sum().backward()
    modules.reaches(name, [("self.embedding", dec.embedding.weight), ("self.cell", dec.cell.weight_ih),
                    ("self.out", dec.out.weight)])
    return results


# ============================================================================ greedy decoding
class ScriptedSeq2Seq(torch.nn.Module):
    """A stand-in seq2seq model whose greedy output is known by construction (``scripted_greedy``).

    Row n's next token after y at step t is ``3 + (y * (n + 2) + t + offsets[n]) % (V - 3)``, except
    that row n says <end> at step ``end_at[n]``. The decoder state counts the steps taken and holds
    the offsets (the encoder's final state), so a loop that does not start from the encoder's state,
    does not pass the returned state back in, or does not feed back its own argmax produces other
    tokens. Step t puts all attention on position ``t % length_n``.
    """

    def __init__(self, offsets, end_at, V, H=3):
        super().__init__()
        self.offsets, self.end_at, self.V, self.H = list(offsets), list(end_at), V, H
        self.noise = torch.Generator().manual_seed(0)
        self.anchor = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))  # for next(model.parameters())
        self.encoder, self.decoder = _ScriptedPart(self.encode), _ScriptedPart(self.step)

    def encode(self, src, src_mask):
        N, S = src.shape
        final = torch.zeros(N, self.H, dtype=torch.float64)
        final[:, 1] = torch.as_tensor(self.offsets, dtype=torch.float64)
        return torch.zeros(N, S, self.H, dtype=torch.float64), final

    def step(self, y_prev, s_prev, enc_outputs, src_mask):
        N, rows = y_prev.shape[0], torch.arange(y_prev.shape[0])
        t = s_prev[:, 0].round().long()
        nxt = 3 + (y_prev * (rows + 2) + t + s_prev[:, 1].round().long()) % (self.V - 3)
        nxt = torch.where(t == torch.as_tensor(self.end_at), torch.full_like(nxt, END_ID), nxt)
        logits = torch.randn(N, self.V, generator=self.noise, dtype=torch.float64) * 0.1
        logits[rows, nxt] = 5.0
        weights = torch.zeros(N, src_mask.shape[1], dtype=torch.float64)
        weights[rows, t % src_mask.sum(dim=1)] = 1.0
        s = s_prev.clone()
        s[:, 0] += 1
        return logits, s, weights


class _ScriptedPart(torch.nn.Module):
    """``model.encoder`` / ``model.decoder`` of ScriptedSeq2Seq: forward (encoder) or step (decoder)."""

    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, *args):
        return self.function(*args)

    def step(self, *args):
        return self.function(*args)


def scripted_greedy(offsets, end_at, lengths, V, max_len):
    """The greedy output of ScriptedSeq2Seq: (tokens int64 (N, L), weights (N, L, S)), pad_id and
    zero rows after a row's <end>, L = the step at which the last row ended (or max_len)."""
    N, S = len(offsets), max(lengths)
    tokens = np.full((N, max_len), PAD_ID, dtype=np.int64)
    weights = np.zeros((N, max_len, S))
    last = 0
    for n in range(N):
        y = START_ID
        for t in range(max_len):
            y = END_ID if t == end_at[n] else 3 + (y * (n + 2) + t + offsets[n]) % (V - 3)
            tokens[n, t] = y
            weights[n, t, t % lengths[n]] = 1.0
            if y == END_ID:
                break
        last = max(last, t + 1)
    return tokens[:, :last], weights[:, :last]


@core.check
def check_greedy_decode(greedy_decode, offsets=(0, 1, 2), end_at=(2, 4, 1), lengths=(4, 3, 4), V=9, max_len=8):
    """Check ``greedy_decode`` on a scripted model: argmax fed back, state carried, <end> stops a row
    (pad_id after it, zero weight rows), the loop stops when every row has ended (L <= max_len).

    offsets, end_at, lengths: one entry per row (end_at[n] = the step at which row n says <end>).
    Token ids are compared exactly. Raises CheckFailure; ValueError for bad arguments.
    """
    offsets, end_at = _int_list(offsets, "offsets", 0), _int_list(end_at, "end_at", 0)
    lengths, V, max_len = _int_list(lengths, "lengths", 1), integer(V, "V", 4), integer(max_len, "max_len")
    if not len(offsets) == len(end_at) == len(lengths):
        raise ValueError(f"offsets, end_at and lengths must have one entry per row, got lengths {len(offsets)}, "
                         f"{len(end_at)}, {len(lengths)}")
    S = max(lengths)
    case = {"N": len(offsets), "S": S, "V": V, "max_len": max_len, "ends at steps": end_at}
    src = torch.randint(3, V, (len(offsets), S), generator=torch.Generator().manual_seed(V))
    src_mask = _mask(lengths, S)
    src[~src_mask] = PAD_ID
    exp_tokens, exp_weights = scripted_greedy(offsets, end_at, lengths, V, max_len)
    name = "greedy_decode"
    out = core.call(greedy_decode, ScriptedSeq2Seq(offsets, end_at, V), src, src_mask, max_len, name=name, case=case,
                    hint="greedy_decode(model, src, src_mask, max_len) -> (tokens, weights)", numpy_only=NUMPY_ONLY)
    tokens, weights = modules.tensors(name, out, ("tokens", "weights"))
    if tokens.dtype not in (torch.int64, torch.int32):
        core.fail(f"{name}: tokens", f"must be an integer tensor (int64), got {tokens.dtype}.")
    hint = ("start from start_id and the encoder's final state; feed back the argmax of each step's logits and the "
            "state the step returned; after a row's <end> write pad_id; stop as soon as every row has produced "
            f"<end> (and never run more than max_len steps)\nyour tokens:     {tokens.tolist()}\n"
            f"expected tokens: {exp_tokens.tolist()}")
    core.compare_exact(f"{name}: tokens", tokens, exp_tokens, hint)
    results = {"tokens": f"equal ({exp_tokens.shape[0]} rows, {exp_tokens.shape[1]} steps, compared exactly)"}
    results["weights"] = core.compare(
        f"{name}: weights", weights, exp_weights, TOL.forward,
        "weights[:, t] are the attention weights of step t; rows after a sequence's <end> are 0")
    return results


# ============================================================================ loss
def _loss_case(seed, N, T, V, lengths):
    gen = torch.Generator().manual_seed(seed)
    tgt_mask = _mask(lengths, T)
    tgt_out = torch.randint(3, V, (N, T), generator=gen)
    tgt_out[torch.arange(N), torch.as_tensor(lengths) - 1] = END_ID
    tgt_out[~tgt_mask] = PAD_ID
    tgt_in = torch.full((N, T), PAD_ID)
    tgt_in[:, 0] = START_ID
    tgt_in[:, 1:] = tgt_out[:, :-1]
    tgt_in[tgt_in == END_ID] = PAD_ID
    S = 4
    batch = {"src": torch.randint(3, V, (N, S), generator=gen), "src_mask": torch.ones(N, S, dtype=torch.bool),
             "tgt_in": tgt_in, "tgt_out": tgt_out, "tgt_mask": tgt_mask}
    return batch, torch.randn(N, T, V, generator=gen, dtype=torch.float64)


class LogitsModel(torch.nn.Module):
    """A stand-in seq2seq model: fixed logits ``base`` plus 0.9 at the token it is fed, so its
    output depends on the decoder inputs (teacher forcing)."""

    def __init__(self, base):
        super().__init__()
        self.base = torch.nn.Parameter(base.clone())

    def forward(self, src, src_mask, tgt_in):
        shift = 0.9 * F.one_hot(tgt_in, self.base.shape[2]).to(self.base.dtype)
        return self.base[:, :tgt_in.shape[1]] + shift, None


def oracle_seq2seq_loss(model, batch):
    """F.cross_entropy of the teacher-forced logits against tgt_out, mean over tokens != PAD_ID."""
    with torch.no_grad():
        logits, _ = model(batch["src"], batch["src_mask"], batch["tgt_in"])
        return F.cross_entropy(logits.reshape(-1, logits.shape[2]), batch["tgt_out"].reshape(-1),
                               ignore_index=PAD_ID)


@core.check
def check_seq2seq_loss(seq2seq_loss, seed=0, N=3, T=5, V=7, lengths=(5, 3, 2)):
    """Check ``seq2seq_loss`` = mean cross-entropy over the real target tokens, with gradients.

    lengths: the N real target lengths in 1..T (<end> included). Raises CheckFailure; ValueError
    for bad arguments.
    """
    seed, N, T, V = integer(seed, "seed", 0), integer(N, "N"), integer(T, "T"), integer(V, "V", 4)
    lengths = _lengths(lengths, N, T)
    case = {"N": N, "T": T, "V": V, "target lengths": lengths, "dtype": "float64"}
    batch, base = _loss_case(seed, N, T, V, lengths)
    model = LogitsModel(base)
    expected = oracle_seq2seq_loss(model, batch)
    name = "seq2seq_loss"
    loss = core.call(seq2seq_loss, model, {k: v.clone() for k, v in batch.items()}, name=name, case=case,
                     hint="seq2seq_loss(model, batch) -> scalar tensor", numpy_only=NUMPY_ONLY)
    if not torch.is_tensor(loss) or loss.dim() != 0:
        core.fail(name, f"must return a scalar tensor, got {type(loss).__name__}"
                        + (f" of shape {tuple(loss.shape)}" if torch.is_tensor(loss) else "") + ".")
    results = {"loss": core.compare(
        name, loss, expected, TOL.forward,
        "run model(src, src_mask, tgt_in) (teacher forcing), compare the logits with tgt_out (the targets shifted "
        "by one), average over real tokens only (ignore_index=PAD_ID)")}
    if not loss.requires_grad:
        core.fail(name, "the loss carries no gradient.", "no .item(), .detach() or torch.no_grad() in the loss")
    loss.backward()
    modules.reaches(name, [("the model's parameters", model.base)])
    return results


# ============================================================================ trained models
def _held_out_seed(held_out_seed):
    if held_out_seed is not None:
        integer(held_out_seed, "held_out_seed", 0)
    return held_out_seed


def _fresh(draw, seed, stream, exclude, n=HELD_OUT_SIZE):
    """n pairs ``draw(rng)`` with distinct sources that are not in ``exclude``, from a stream of
    ``seed`` that no int-seeded generator of helpers.data shares."""
    rng = np.random.default_rng([seed, stream])
    seen, pairs = set(exclude), []
    while len(pairs) < n:
        source, target = draw(rng)
        if source not in seen:
            seen.add(source)
            pairs.append((source, target))
    return pairs


def _date(rng):
    """One (human date, ISO date) pair drawn as helpers.data.random_dates draws them."""
    first, last = DATE_RANGE
    date = first + datetime.timedelta(days=int(rng.integers(0, (last - first).days + 1)))
    formats = sorted(DATE_FORMATS)
    return render_date(date, formats[int(rng.integers(0, len(formats)))]), date.isoformat()


def _addition(rng, top=10 ** ADDITION_RECIPE["max_digits"]):
    """One (question, answer) pair drawn as helpers.data.random_additions draws them."""
    a, b = (int(v) for v in rng.integers(0, top, size=2))
    return f"{a}+{b}", str(a + b)


def _sources(splits):
    return {source for pairs in splits.values() for source, _ in pairs}


def _dates_held_out(held_out_seed=None):
    """2000 held-out (source, target) date pairs: the public test split of DATES_RECIPE
    (held_out_seed=None), or pairs drawn from held_out_seed whose sources are in none of the
    recipe's train / val / test splits."""
    splits = date_splits(**DATES_RECIPE)
    if held_out_seed is None:
        return splits["test"]
    return _fresh(_date, held_out_seed, 4, _sources(splits))


def _addition_held_out(held_out_seed=None):
    """2000 held-out addition problems, as ``_dates_held_out`` (recipe ADDITION_RECIPE)."""
    splits = addition_splits(**ADDITION_RECIPE)
    if held_out_seed is None:
        return splits["test"]
    return _fresh(_addition, held_out_seed, 8, _sources(splits))


def _minimum(minimum):
    if isinstance(minimum, bool) or not isinstance(minimum, Real) or not 0 < minimum <= 1:
        raise ValueError(f"minimum must be a number in (0, 1], got {minimum!r}")
    return float(minimum)


def _accuracy(label, model, pairs, vocabs, minimum, held_out_seed, reverse_source=False):
    if model is None or not callable(model):
        core.fail(f"{label} model", f"expected a trained model, got {type(model).__name__}.",
                  "run the training cell above first")
    which = "the public test split" if held_out_seed is None else "a fresh held-out split"
    data = to_tensors(encode_pairs(pairs, *vocabs, reverse_source=reverse_source))
    accuracy = core.call(exact_match, model, data, name=f"{label} model",
                         case={"data": which, "N": len(pairs), "reverse_source": reverse_source},
                         hint="model(src, src_mask, tgt_in) -> (logits (N, T, V), weights)", numpy_only=NUMPY_ONLY)
    if not accuracy >= minimum:
        core.fail(f"{label} model", f"exact-match accuracy {accuracy:.2%} on {which} ({len(pairs)} pairs never in "
                                    f"training) is below {minimum:.1%}.",
                  "check your unit tests first; a correct model gets there in the steps given")
    return {"exact match": f"{accuracy:.2%} on {which} of {len(pairs)} pairs (required >= {minimum:.1%})"}


@core.check
def check_dates_accuracy(model, minimum=0.995, held_out_seed=None):
    """Check that the date model's exact match on 2000 held-out dates is >= ``minimum``.

    held_out_seed: None = the public test split; an int = a split drawn from it, disjoint from
    every split of DATES_RECIPE. Raises CheckFailure; ValueError for bad arguments.
    """
    minimum, held_out_seed = _minimum(minimum), _held_out_seed(held_out_seed)
    return _accuracy("dates", model, _dates_held_out(held_out_seed), date_vocabs(), minimum, held_out_seed)


@core.check
def check_addition_accuracy(model, minimum=0.95, reverse_source=False, held_out_seed=None):
    """Check that an addition model's exact match on 2000 held-out problems is >= ``minimum``.

    reverse_source: the model reads the question reversed. held_out_seed as in check_dates_accuracy.
    """
    minimum, held_out_seed = _minimum(minimum), _held_out_seed(held_out_seed)
    reverse_source = _flag(reverse_source, "reverse_source")
    return _accuracy("addition", model, _addition_held_out(held_out_seed), addition_vocabs(), minimum, held_out_seed,
                     reverse_source)
