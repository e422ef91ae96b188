"""The graders' checks of assignment a4 (seq2seq and attention).

Every ``check_*`` function raises AssertionError with a student-friendly message when the
student's code is wrong and returns None otherwise; every ``preview_*`` function prints the
visible self-check (relative errors, via ``helpers.report``) without raising.

Oracles are independent of any solution: ``torch.nn.functional.scaled_dot_product_attention``
for dot-product attention, float64 NumPy for the additive score written in the docstring,
``torch.nn.GRU`` / ``F.cross_entropy`` with the student's own weights for the encoder, decoder
and loss, and scripted stand-in models (whose correct output is known by construction) for
greedy decoding. Tolerances (float64): forward values < 1e-7.
"""
import numpy as np

from .checks import assert_close, report
from .data import END_ID, PAD_ID, START_ID

TOL = 1e-7
#: The held-out sets the trained models are graded on (they never change with the training size).
DATES_TEST = {"n_test": 2000, "n_val": 1000, "seed": 0}
ADDITION_TEST = {"n_test": 2000, "n_val": 1000, "seed": 0, "max_digits": 3}

__all__ = ["ADDITION_TEST", "DATES_TEST", "check_additive_attention", "check_addition_accuracy",
           "check_dates_accuracy", "check_decoder", "check_dot_product_attention", "check_encoder",
           "check_greedy_decode", "check_seq2seq_loss", "dates_test_data", "addition_test_data",
           "preview_additive_attention", "preview_decoder", "preview_dot_product_attention",
           "preview_encoder", "preview_greedy_decode", "preview_seq2seq_loss"]


def _torch():
    import torch
    return torch


def _fail(name, message, hint=None):
    raise AssertionError(f"{name}: {message}" + (f"\nHint: {hint}" if hint else ""))


def _int(value, arg, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{arg} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _pair(name, out, n=2):
    """Unpack a function's output that must be a tuple of ``n`` tensors."""
    torch = _torch()
    if not isinstance(out, (tuple, list)) or len(out) != n:
        _fail(name, f"expected a tuple of {n} tensors, got {type(out).__name__}"
              + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else "")
              + ". Did you forget a `return`?" * (out is None))
    for i, value in enumerate(out):
        if not torch.is_tensor(value):
            _fail(name, f"output {i} must be a torch tensor, got {type(value).__name__}")
    return out


def _lengths_mask(lengths, S):
    torch = _torch()
    lengths = torch.as_tensor(lengths)
    return torch.arange(S)[None, :] < lengths[:, None]


# ============================================================================ additive attention
def _additive_case(seed, N, S, Hq, Hk, A, lengths):
    rng = np.random.default_rng(seed)
    case = {"query": rng.normal(size=(N, Hq)), "keys": rng.normal(size=(N, S, Hk)),
            "W_q": rng.normal(scale=0.6, size=(A, Hq)), "W_k": rng.normal(scale=0.6, size=(A, Hk)),
            "b_k": rng.normal(scale=0.3, size=A), "v": rng.normal(size=(1, A))}
    case["mask"] = np.arange(S)[None, :] < np.asarray(lengths)[:, None]
    return case


def _additive_oracle(case):
    """Float64 NumPy value of the documented formula e_i = v . tanh(W_q q + W_k k_i + b)."""
    pre = (case["query"] @ case["W_q"].T)[:, None, :] + case["keys"] @ case["W_k"].T + case["b_k"]
    scores = (np.tanh(pre) @ case["v"].T)[..., 0]
    scores = np.where(case["mask"], scores, -np.inf)
    scores = scores - scores.max(axis=1, keepdims=True)
    weights = np.exp(scores)
    weights /= weights.sum(axis=1, keepdims=True)
    return np.einsum("ns,nsh->nh", weights, case["keys"]), weights


def _build_additive(AdditiveAttention, case):
    torch = _torch()
    name = "AdditiveAttention"
    A, Hq = case["W_q"].shape
    Hk = case["W_k"].shape[1]
    layer = AdditiveAttention(Hq, Hk, A)
    for attr in ("W_q", "W_k", "v"):
        if not isinstance(getattr(layer, attr, None), torch.nn.Linear):
            _fail(name, f"self.{attr} must be an nn.Linear (see the docstring), got "
                  f"{type(getattr(layer, attr, None)).__name__}", "create the layers in __init__")
    shapes = {"W_q.weight": (layer.W_q.weight, (A, Hq)), "W_k.weight": (layer.W_k.weight, (A, Hk)),
              "v.weight": (layer.v.weight, (1, A))}
    for label, (param, shape) in shapes.items():
        if tuple(param.shape) != shape:
            _fail(name, f"{label} has shape {tuple(param.shape)}, expected {shape} for "
                  f"AdditiveAttention({Hq}, {Hk}, {A})")
    if layer.W_q.bias is not None or layer.v.bias is not None or layer.W_k.bias is None:
        _fail(name, "W_q and v take bias=False and W_k has the bias b (see the docstring)")
    layer = layer.double()
    with torch.no_grad():
        layer.W_q.weight.copy_(torch.from_numpy(case["W_q"]))
        layer.W_k.weight.copy_(torch.from_numpy(case["W_k"]))
        layer.W_k.bias.copy_(torch.from_numpy(case["b_k"]))
        layer.v.weight.copy_(torch.from_numpy(case["v"]))
    return layer


def _run_additive(AdditiveAttention, seed, N, S, Hq, Hk, A, lengths):
    torch = _torch()
    case = _additive_case(seed, N, S, Hq, Hk, A, lengths)
    layer = _build_additive(AdditiveAttention, case)
    query = torch.from_numpy(case["query"])
    keys = torch.from_numpy(case["keys"])
    mask = torch.from_numpy(case["mask"])
    context, weights = _pair("AdditiveAttention.forward", layer(query, keys, mask))
    return case, layer, (query, keys, mask), context, weights


def preview_additive_attention(AdditiveAttention):
    """Visible self-check: one small masked case against the documented formula."""
    case, _, _, context, weights = _run_additive(AdditiveAttention, 0, 2, 4, 3, 5, 6, [4, 2])
    exp_context, exp_weights = _additive_oracle(case)
    report("AdditiveAttention: weights", weights, exp_weights, TOL)
    report("AdditiveAttention: context", context, exp_context, TOL)


def check_additive_attention(AdditiveAttention, seed=0, N=3, S=5, Hq=4, Hk=6, A=7, lengths=None):
    """Assert that ``AdditiveAttention`` follows its docstring.

    Compares weights and context with the float64 formula (masked positions exactly 0, rows
    summing to 1), checks that padded keys cannot change the result and that gradients reach
    every parameter.
    """
    torch = _torch()
    lengths = [S - (i % S) for i in range(N)] if lengths is None else list(lengths)
    case, layer, (query, keys, mask), context, weights = _run_additive(
        AdditiveAttention, seed, N, S, Hq, Hk, A, lengths)
    exp_context, exp_weights = _additive_oracle(case)
    hint_mask = ("set the scores of padded positions to -inf (masked_fill) BEFORE the softmax; "
                 "multiplying the weights by the mask afterwards leaves rows that do not sum to 1")
    assert_close("AdditiveAttention: weights", weights, exp_weights, TOL,
                 hint="e_i = v . tanh(W_q q + W_k k_i + b), then a softmax over the S positions (dim=1); " + hint_mask)
    if torch.any(weights.detach()[~mask] != 0):
        _fail("AdditiveAttention: weights", "padded positions must get exactly zero weight", hint_mask)
    assert_close("AdditiveAttention: context", context, exp_context, TOL,
                 hint="the context is the weighted sum of the keys: sum_i a_i k_i")
    # padded keys must not matter
    noisy = keys.detach().clone()
    noisy[~mask] = 1e3
    context2, weights2 = _pair("AdditiveAttention.forward", layer(query, noisy, mask))
    assert_close("AdditiveAttention: context with garbage at padded keys", context2, exp_context, TOL,
                 hint=hint_mask)
    # gradients reach every parameter and the inputs
    query = query.clone().requires_grad_(True)
    keys = keys.clone().requires_grad_(True)
    context3, weights3 = layer(query, keys, mask)
    (context3.sum() + (weights3 * torch.arange(S, dtype=weights3.dtype)).sum()).backward()
    needs_grad = [("keys", keys)]
    if max(lengths) > 1:  # with one real position the weight is 1 whatever the score: no gradient
        needs_grad += [("W_q.weight", layer.W_q.weight), ("W_k.weight", layer.W_k.weight),
                       ("W_k.bias", layer.W_k.bias), ("v.weight", layer.v.weight), ("query", query)]
    for label, tensor in needs_grad:
        if tensor.grad is None or not torch.any(tensor.grad != 0):
            _fail("AdditiveAttention", f"no gradient reaches {label}",
                  "use torch operations only (no .detach(), .numpy() or .item() inside forward)")


# ============================================================================ dot-product attention
def _dot_case(seed, N, L, S, E, Ev, mask_kind):
    torch = _torch()
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(N, L, E, generator=gen, dtype=torch.float64) * 1.5
    k = torch.randn(N, S, E, generator=gen, dtype=torch.float64)
    v = torch.randn(N, S, Ev, generator=gen, dtype=torch.float64)
    if mask_kind is None:
        mask = None
    elif mask_kind == "padding":
        mask = _lengths_mask([S - (i % S) for i in range(N)], S)
    elif mask_kind == "causal":
        if L != S:
            raise ValueError("a causal mask needs L == S")
        mask = torch.tril(torch.ones(L, S, dtype=torch.bool)).expand(N, L, S).clone()
    else:
        raise ValueError(f"mask_kind must be None, 'padding' or 'causal', got {mask_kind!r}")
    return q, k, v, mask


def _dot_oracle(q, k, v, mask, scale):
    """torch's scaled_dot_product_attention; the weights are its output for identity values."""
    torch = _torch()
    F = torch.nn.functional
    N, L, _ = q.shape
    S = k.shape[1]
    attn_mask = None if mask is None else (mask[:, None, :] if mask.dim() == 2 else mask).expand(N, L, S)
    kwargs = {} if scale else {"scale": 1.0}
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, **kwargs)
    eye = torch.eye(S, dtype=q.dtype).expand(N, S, S)
    weights = F.scaled_dot_product_attention(q, k, eye, attn_mask=attn_mask, **kwargs)
    return out, weights


def preview_dot_product_attention(dot_product_attention):
    """Visible self-check: a padded batch against torch's scaled_dot_product_attention."""
    q, k, v, mask = _dot_case(0, 2, 3, 4, 5, 6, "padding")
    out, weights = _pair("dot_product_attention", dot_product_attention(q, k, v, mask=mask))
    exp_out, exp_weights = _dot_oracle(q, k, v, mask, True)
    report("dot_product_attention: weights", weights, exp_weights, TOL)
    report("dot_product_attention: out", out, exp_out, TOL)


def check_dot_product_attention(dot_product_attention, seed=0, N=2, L=3, S=4, E=5, Ev=6, mask_kind="padding",
                                scale=True):
    """Assert ``dot_product_attention`` matches torch.nn.functional.scaled_dot_product_attention.

    mask_kind: None, "padding" (bool (N, S)) or "causal" (bool (N, L, S), needs L == S).
    """
    torch = _torch()
    q, k, v, mask = _dot_case(seed, N, L, S, E, Ev, mask_kind)
    args = {} if mask is None else {"mask": mask}
    if not scale:
        args["scale"] = False
    out, weights = _pair("dot_product_attention", dot_product_attention(q, k, v, **args))
    exp_out, exp_weights = _dot_oracle(q, k, v, mask, scale)
    what = f"(N={N}, L={L}, S={S}, E={E}, Ev={Ev}, mask={mask_kind}, scale={scale})"
    scale_hint = ("scores = Q K^T / sqrt(E), E = the size of the query/key vectors (not of the values)" if scale
                  else "with scale=False the scores are the plain dot products Q K^T")
    assert_close(f"dot_product_attention: weights {what}", weights, exp_weights, TOL,
                 hint=scale_hint + "; softmax over the last axis (the S keys); masked scores -> -inf before the softmax")
    if mask is not None:
        full = mask[:, None, :].expand(N, L, S) if mask.dim() == 2 else mask
        if torch.any(weights.detach()[~full] != 0):
            _fail(f"dot_product_attention {what}", "masked positions must get exactly zero weight")
    assert_close(f"dot_product_attention: out {what}", out, exp_out, TOL, hint="out = weights @ values")


# ============================================================================ encoder
def _encoder_case(seed, V, lengths, extra_pad):
    torch = _torch()
    gen = torch.Generator().manual_seed(seed)
    S = max(lengths) + extra_pad
    src = torch.randint(3, V, (len(lengths), S), generator=gen)
    mask = _lengths_mask(lengths, S)
    src[~mask] = PAD_ID
    return src, mask


def _build_encoder(Encoder, V, E, H, seed):
    torch = _torch()
    name = "Encoder"
    torch.manual_seed(seed)
    enc = Encoder(V, E, H)
    if not isinstance(getattr(enc, "embedding", None), torch.nn.Embedding):
        _fail(name, "self.embedding must be an nn.Embedding(vocab_size, emb_size, padding_idx=PAD_ID)")
    rnn = getattr(enc, "rnn", None)
    if not isinstance(rnn, (torch.nn.GRU, torch.nn.LSTM)):
        _fail(name, f"self.rnn must be an nn.GRU (or nn.LSTM), got {type(rnn).__name__}")
    if not (rnn.batch_first and rnn.bidirectional and rnn.num_layers == 1 and rnn.hidden_size == H
            and rnn.input_size == E):
        _fail(name, f"self.rnn must be nn.GRU({E}, {H}, batch_first=True, bidirectional=True) (one layer), got "
              f"input_size={rnn.input_size}, hidden_size={rnn.hidden_size}, num_layers={rnn.num_layers}, "
              f"batch_first={rnn.batch_first}, bidirectional={rnn.bidirectional}")
    return enc.double()


def _encoder_oracle(enc, src, mask):
    """Each sequence run alone (no padding) through the student's own embedding and torch.nn.GRU."""
    torch = _torch()
    N, S = src.shape
    H = enc.rnn.hidden_size
    outputs = torch.zeros(N, S, H, dtype=torch.float64)
    final = torch.zeros(N, H, dtype=torch.float64)
    with torch.no_grad():
        for n in range(N):
            L = int(mask[n].sum())
            out, h = enc.rnn(enc.embedding(src[n:n + 1, :L]))
            h = h[0] if isinstance(h, tuple) else h
            outputs[n, :L] = out[0, :, :H] + out[0, :, H:]
            final[n] = h[0, 0] + h[1, 0]
    return outputs, final


def preview_encoder(Encoder):
    """Visible self-check: a padded batch against each sequence encoded on its own."""
    enc = _build_encoder(Encoder, 9, 4, 5, 0)
    src, mask = _encoder_case(0, 9, [5, 3, 1], 0)
    outputs, final = _pair("Encoder.forward", enc(src, mask))
    exp_outputs, exp_final = _encoder_oracle(enc, src, mask)
    report("Encoder: outputs", outputs, exp_outputs, TOL)
    report("Encoder: final", final, exp_final, TOL)


def check_encoder(Encoder, seed=0, V=9, E=4, H=5, lengths=(5, 3, 1, 4), extra_pad=0):
    """Assert the encoder treats every sequence of a padded batch exactly as if it were alone.

    The oracle runs each unpadded sequence through the student's own embedding and bidirectional
    torch.nn.GRU: outputs = forward + backward states (zero at padding), final = last forward
    state + last backward state (the backward one is at position 0).
    """
    torch = _torch()
    enc = _build_encoder(Encoder, V, E, H, seed)
    src, mask = _encoder_case(seed, V, list(lengths), extra_pad)
    outputs, final = _pair("Encoder.forward", enc(src, mask))
    exp_outputs, exp_final = _encoder_oracle(enc, src, mask)
    pack_hint = ("pack the padded batch (nn.utils.rnn.pack_padded_sequence with the true lengths, "
                 "enforce_sorted=False) so that the backward direction starts at each sequence's last "
                 "real token, and unpack with total_length=S")
    assert_close("Encoder: outputs", outputs, exp_outputs, TOL,
                 hint="outputs = forward half + backward half of the GRU outputs; " + pack_hint)
    if torch.any(outputs.detach()[~mask] != 0):
        _fail("Encoder: outputs", "outputs at padded positions must be exactly 0")
    assert_close("Encoder: final", final, exp_final, TOL,
                 hint="final = h_n[0] + h_n[1] of the packed run (not the output at column S-1, which is "
                      "padding for short sequences)")
    if not outputs.requires_grad:
        _fail("Encoder", "outputs carry no gradient (no .detach() or torch.no_grad() in forward)")
    outputs.sum().backward()
    if enc.embedding.weight.grad is None:
        _fail("Encoder", "no gradient reaches the embedding")


# ============================================================================ decoder
class _ProbeAttention:
    """A stand-in attention module with a known, query-dependent output (not additive attention):
    score_i = mean(tanh(query)) * (i + 1) + mean(k_i), masked softmax, context = sum_i a_i k_i.
    It records the queries it is called with."""

    def __new__(cls):
        torch = _torch()

        class Probe(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.queries = []

            def forward(self, query, keys, mask):
                self.queries.append(query.detach().clone())
                S = keys.shape[1]
                pos = torch.arange(1, S + 1, dtype=keys.dtype)
                scores = torch.tanh(query).mean(dim=1, keepdim=True) * pos + keys.mean(dim=2)
                weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
                return (weights[:, :, None] * keys).sum(dim=1), weights

        return Probe()


def _build_decoder(AttnDecoder, V, E, H, seed):
    torch = _torch()
    name = "AttnDecoder"
    torch.manual_seed(seed)
    probe = _ProbeAttention()
    dec = AttnDecoder(V, E, H, probe)
    if getattr(dec, "attention", None) is not probe:
        _fail(name, "self.attention must be the attention module passed to __init__")
    parts = {"embedding": torch.nn.Embedding, "cell": torch.nn.GRUCell, "out": torch.nn.Linear}
    for attr, kind in parts.items():
        if not isinstance(getattr(dec, attr, None), kind):
            _fail(name, f"self.{attr} must be an nn.{kind.__name__} (see the docstring), got "
                  f"{type(getattr(dec, attr, None)).__name__}")
    if dec.cell.input_size != E + H or dec.cell.hidden_size != H:
        _fail(name, f"self.cell must be nn.GRUCell({E} + {H}, {H}): its input is [embedding; context]")
    if dec.out.in_features != 2 * H or dec.out.out_features != V:
        _fail(name, f"self.out must be nn.Linear(2 * {H}, {V}): its input is [new state; context]")
    with torch.no_grad():  # make the output layer's bias visible in the logits
        dec.out.bias.normal_()
    return dec.double(), probe


def _oracle_step(dec, probe, y_prev, s_prev, enc_outputs, src_mask):
    """One documented decoder step, with the GRU update computed by torch.nn.GRU (weights copied)."""
    torch = _torch()
    F = torch.nn.functional
    H = s_prev.shape[1]
    with torch.no_grad():
        context, weights = probe(s_prev, enc_outputs, src_mask)
        probe.queries.pop()
        x = torch.cat([dec.embedding.weight[y_prev], context], dim=1)
        gru = torch.nn.GRU(x.shape[1], H, batch_first=True).double()
        gru.weight_ih_l0.copy_(dec.cell.weight_ih)
        gru.weight_hh_l0.copy_(dec.cell.weight_hh)
        gru.bias_ih_l0.copy_(dec.cell.bias_ih)
        gru.bias_hh_l0.copy_(dec.cell.bias_hh)
        _, s = gru(x[:, None, :], s_prev[None])
        s = s[0]
        logits = F.linear(torch.cat([s, context], dim=1), dec.out.weight, dec.out.bias)
    return logits, s, weights


def _decoder_case(seed, N, S, T, V, H, lengths):
    torch = _torch()
    gen = torch.Generator().manual_seed(seed + 1)
    enc_outputs = torch.randn(N, S, H, generator=gen, dtype=torch.float64)
    src_mask = _lengths_mask(lengths, S)
    enc_outputs[~src_mask] = 0
    s0 = torch.randn(N, H, generator=gen, dtype=torch.float64)
    tgt_in = torch.randint(3, V, (N, T), generator=gen)
    tgt_in[:, 0] = START_ID
    return enc_outputs, src_mask, s0, tgt_in


def preview_decoder(AttnDecoder):
    """Visible self-check: one step and a teacher-forced forward pass against the documented step."""
    dec, probe = _build_decoder(AttnDecoder, 7, 3, 4, 0)
    enc_outputs, src_mask, s0, tgt_in = _decoder_case(0, 2, 5, 3, 7, 4, [5, 2])
    logits, s, weights = _triple("AttnDecoder.step", dec.step(tgt_in[:, 0], s0, enc_outputs, src_mask))
    exp = _oracle_step(dec, probe, tgt_in[:, 0], s0, enc_outputs, src_mask)
    report("AttnDecoder.step: logits", logits, exp[0], TOL)
    report("AttnDecoder.step: new state", s, exp[1], TOL)
    exp_logits, exp_weights = _oracle_forward(dec, probe, tgt_in, s0, enc_outputs, src_mask)
    out = dec(tgt_in, s0, enc_outputs, src_mask)
    logits, weights = _pair("AttnDecoder.forward", out)
    report("AttnDecoder.forward: logits (teacher forcing)", logits, exp_logits, TOL)
    report("AttnDecoder.forward: weights", weights, exp_weights, TOL)


def _triple(name, out):
    return _pair(name, out, 3)


def _oracle_forward(dec, probe, tgt_in, s0, enc_outputs, src_mask):
    torch = _torch()
    s, all_logits, all_weights = s0, [], []
    for t in range(tgt_in.shape[1]):
        logits, s, weights = _oracle_step(dec, probe, tgt_in[:, t], s, enc_outputs, src_mask)
        all_logits.append(logits)
        all_weights.append(weights)
    return torch.stack(all_logits, dim=1), torch.stack(all_weights, dim=1)


def check_decoder(AttnDecoder, seed=0, N=3, S=5, T=4, V=8, E=3, H=4, lengths=None):
    """Assert ``AttnDecoder.step`` and the teacher-forced ``AttnDecoder.forward`` follow the docstring.

    A stand-in attention module is passed in, so the decoder is checked on its own: the query
    must be the previous state s_{t-1}, the GRU cell input [embedding; context], the output
    layer input [s_t; context], and forward must feed the true token tgt_in[:, t] at step t.
    """
    lengths = [S - (i % S) for i in range(N)] if lengths is None else list(lengths)
    dec, probe = _build_decoder(AttnDecoder, V, E, H, seed)
    enc_outputs, src_mask, s0, tgt_in = _decoder_case(seed, N, S, T, V, H, lengths)
    # one step
    logits, s, weights = _triple("AttnDecoder.step", dec.step(tgt_in[:, 0], s0, enc_outputs, src_mask))
    if len(probe.queries) != 1:
        _fail("AttnDecoder.step", f"must call self.attention exactly once per step, called it {len(probe.queries)} times")
    assert_close("AttnDecoder.step: attention query", probe.queries[0], s0, TOL,
                 hint="Bahdanau attention: the query is the previous decoder state s_{t-1} (s_prev)")
    exp_logits, exp_s, exp_weights = _oracle_step(dec, probe, tgt_in[:, 0], s0, enc_outputs, src_mask)
    assert_close("AttnDecoder.step: weights", weights, exp_weights, TOL,
                 hint="return the weights of self.attention(s_prev, enc_outputs, src_mask)")
    assert_close("AttnDecoder.step: new state s", s, exp_s, TOL,
                 hint="s = self.cell(torch.cat([embedding(y_prev), context], dim=1), s_prev)")
    assert_close("AttnDecoder.step: logits", logits, exp_logits, TOL,
                 hint="logits = self.out(torch.cat([s, context], dim=1)) with the NEW state s")
    # teacher forcing over T steps
    probe.queries.clear()
    out = dec(tgt_in, s0, enc_outputs, src_mask)
    logits, weights = _pair("AttnDecoder.forward", out)
    exp_logits, exp_weights = _oracle_forward(dec, probe, tgt_in, s0, enc_outputs, src_mask)
    tf_hint = ("teacher forcing: at step t feed the TRUE token tgt_in[:, t] (never the model's own "
               "prediction) and carry the state s from one step to the next; stack along dim=1")
    assert_close("AttnDecoder.forward: logits", logits, exp_logits, TOL, hint=tf_hint)
    assert_close("AttnDecoder.forward: weights", weights, exp_weights, TOL, hint=tf_hint)
    logits.sum().backward()
    for label, p in [("embedding", dec.embedding.weight), ("cell", dec.cell.weight_ih), ("out", dec.out.weight)]:
        if p.grad is None:
            _fail("AttnDecoder.forward", f"no gradient reaches self.{label}")


# ============================================================================ greedy decoding
class _ScriptedModel:
    """A stand-in seq2seq model whose greedy output is known by construction.

    Row n's next token after y at step t is ``3 + (y * (n + 2) + t + offset_n) % (V - 3)``, except
    that row n says <end> at step ``end_at[n]``. The state counts the steps taken, so a decoder
    loop that does not pass the returned state back in, or does not feed back its own argmax,
    produces other tokens. Weights put all mass on position ``t % length_n``.
    """

    def __new__(cls, offsets, end_at, lengths, V, S, H=3):
        torch = _torch()

        class Encoder(torch.nn.Module):
            def forward(self, src, src_mask):
                N = src.shape[0]
                keys = torch.zeros(N, src.shape[1], H, dtype=torch.float64)
                final = torch.zeros(N, H, dtype=torch.float64)
                final[:, 1] = torch.as_tensor(offsets, dtype=torch.float64)
                return keys, final

        class Decoder(torch.nn.Module):
            def step(self, y_prev, s_prev, enc_outputs, src_mask):
                N = y_prev.shape[0]
                t = s_prev[:, 0].round().long()
                rows = torch.arange(N)
                nxt = 3 + (y_prev * (rows + 2) + t + s_prev[:, 1].round().long()) % (V - 3)
                nxt = torch.where(t == torch.as_tensor(end_at), torch.full_like(nxt, END_ID), nxt)
                logits = torch.randn(N, V, dtype=torch.float64) * 0.1
                logits[rows, nxt] = 5.0
                lengths_t = src_mask.sum(dim=1)
                weights = torch.zeros(N, src_mask.shape[1], dtype=torch.float64)
                weights[rows, t % lengths_t] = 1.0
                s = s_prev.clone()
                s[:, 0] += 1
                return logits, s, weights

        class Model(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.encoder = Encoder()
                self.decoder = Decoder()

        return Model()


def _scripted_expected(offsets, end_at, lengths, V, S, max_len):
    N = len(offsets)
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


def _run_greedy(greedy_decode, offsets, end_at, lengths, V, max_len):
    torch = _torch()
    S = max(lengths)
    model = _ScriptedModel(offsets, end_at, lengths, V, S)
    src = torch.randint(3, V, (len(offsets), S))
    src_mask = _lengths_mask(lengths, S)
    src[~src_mask] = PAD_ID
    torch.manual_seed(0)
    out = greedy_decode(model, src, src_mask, max_len)
    tokens, weights = _pair("greedy_decode", out)
    exp_tokens, exp_weights = _scripted_expected(offsets, end_at, lengths, V, S, max_len)
    return tokens, weights, exp_tokens, exp_weights


def preview_greedy_decode(greedy_decode):
    """Visible self-check with a scripted model: rows stop at different steps."""
    tokens, weights, exp_tokens, exp_weights = _run_greedy(greedy_decode, [0, 1, 2], [2, 4, 1], [4, 3, 4], 9, 8)
    print(f"tokens (yours):\n{tokens.tolist() if hasattr(tokens, 'tolist') else tokens}\ntokens (expected):\n"
          f"{exp_tokens.tolist()}")
    if tuple(tokens.shape) == exp_tokens.shape:
        report("greedy_decode: tokens", tokens.to(dtype=_torch().float64), exp_tokens.astype(float), 0.5)
        report("greedy_decode: weights", weights, exp_weights, TOL)


def check_greedy_decode(greedy_decode, offsets=(0, 1, 2), end_at=(2, 4, 1), lengths=(4, 3, 4), V=9, max_len=8):
    """Assert ``greedy_decode`` on a scripted model: argmax fed back, state carried, <end> stops a
    row (pad_id after it, zero weight rows), the loop stops when every row has ended (L <= max_len)."""
    torch = _torch()
    tokens, weights, exp_tokens, exp_weights = _run_greedy(greedy_decode, list(offsets), list(end_at),
                                                           list(lengths), V, max_len)
    name = "greedy_decode"
    if tokens.dtype not in (torch.int64, torch.int32):
        _fail(name, f"tokens must be an integer tensor (int64), got {tokens.dtype}")
    if tuple(tokens.shape) != exp_tokens.shape:
        _fail(name, f"tokens has shape {tuple(tokens.shape)}, expected {exp_tokens.shape}",
              "stop as soon as every sequence has produced <end> (and never run more than max_len steps)")
    wrong = np.argwhere(tokens.cpu().numpy() != exp_tokens)
    if len(wrong):
        n, t = wrong[0]
        _fail(name, f"token [{n}, {t}] is {int(tokens[n, t])}, expected {int(exp_tokens[n, t])}; "
              f"your tokens {tokens[n].tolist()}, expected {exp_tokens[n].tolist()}",
              "start from start_id and the encoder's final state; feed back the argmax of each step's logits "
              "and the state the step returned; after a row's <end> write pad_id")
    assert_close(f"{name}: weights", weights, exp_weights, TOL,
                 hint="weights[:, t] are the attention weights of step t; rows after a sequence's <end> are 0")


# ============================================================================ loss
def _loss_case(seed, N, T, V, lengths):
    torch = _torch()
    gen = torch.Generator().manual_seed(seed)
    tgt_mask = _lengths_mask(lengths, T)
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
    base = torch.randn(N, T, V, generator=gen, dtype=torch.float64)
    return batch, base


def _loss_model(base):
    """A stand-in model: its logits depend on the decoder inputs it is given (teacher forcing)."""
    torch = _torch()

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.base = torch.nn.Parameter(base.clone())

        def forward(self, src, src_mask, tgt_in):
            shift = 0.9 * torch.nn.functional.one_hot(tgt_in, self.base.shape[2]).to(self.base.dtype)
            return self.base[:, :tgt_in.shape[1]] + shift, None

    return Model()


def _loss_oracle(model, batch):
    torch = _torch()
    with torch.no_grad():
        logits, _ = model(batch["src"], batch["src_mask"], batch["tgt_in"])
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[2]), batch["tgt_out"].reshape(-1),
                                                 ignore_index=PAD_ID)


def preview_seq2seq_loss(seq2seq_loss):
    """Visible self-check against F.cross_entropy with ignore_index=PAD_ID."""
    batch, base = _loss_case(0, 3, 5, 7, [5, 3, 2])
    model = _loss_model(base)
    report("seq2seq_loss", seq2seq_loss(model, batch), _loss_oracle(model, batch), TOL)


def check_seq2seq_loss(seq2seq_loss, seed=0, N=3, T=5, V=7, lengths=(5, 3, 2)):
    """Assert ``seq2seq_loss`` = mean cross-entropy over the real target tokens, with gradients."""
    torch = _torch()
    batch, base = _loss_case(seed, N, T, V, list(lengths))
    model = _loss_model(base)
    loss = seq2seq_loss(model, batch)
    if not torch.is_tensor(loss) or loss.dim() != 0:
        _fail("seq2seq_loss", f"must return a scalar tensor, got {type(loss).__name__}"
              + (f" of shape {tuple(loss.shape)}" if torch.is_tensor(loss) else ""))
    assert_close("seq2seq_loss", loss, _loss_oracle(model, batch), TOL,
                 hint="run model(src, src_mask, tgt_in) (teacher forcing), compare the logits with tgt_out (the "
                      "targets shifted by one), average over real tokens only (ignore_index=PAD_ID)")
    if not loss.requires_grad:
        _fail("seq2seq_loss", "the loss carries no gradient (did you use .item() or torch.no_grad()?)")
    loss.backward()
    if model.base.grad is None or not torch.any(model.base.grad != 0):
        _fail("seq2seq_loss", "no gradient reaches the model's parameters")


# ============================================================================ trained models
def dates_test_data():
    """The held-out date test set (2000 pairs never in any training split), as tensors."""
    from .attention import to_tensors
    from .data import date_splits, date_vocabs, encode_pairs

    src_vocab, tgt_vocab = date_vocabs()
    pairs = date_splits(0, **DATES_TEST)["test"]
    return to_tensors(encode_pairs(pairs, src_vocab, tgt_vocab))


def addition_test_data(reverse_source=False):
    """The held-out addition test set (2000 problems never in any training split), as tensors."""
    from .attention import to_tensors
    from .data import addition_splits, addition_vocabs, encode_pairs

    src_vocab, tgt_vocab = addition_vocabs()
    pairs = addition_splits(0, **ADDITION_TEST)["test"]
    return to_tensors(encode_pairs(pairs, src_vocab, tgt_vocab, reverse_source=reverse_source))


def _check_accuracy(label, model, data, minimum):
    from .attention import exact_match

    if model is None or not callable(model):
        _fail(label, f"expected a trained model, got {type(model).__name__}")
    accuracy = exact_match(model, data)
    print(f"{label}: exact match on the held-out test set = {accuracy:.2%} (required >= {minimum:.1%})")
    if not accuracy >= minimum:
        _fail(label, f"exact-match accuracy {accuracy:.2%} is below {minimum:.1%}",
              "check your unit tests first; a correct model gets there in the steps given")


def check_dates_accuracy(model, minimum=0.995):
    """Assert the date model's exact-match accuracy on the held-out test set is >= ``minimum``."""
    _check_accuracy("dates", model, dates_test_data(), minimum)


def check_addition_accuracy(model, minimum=0.95, reverse_source=False):
    """Assert an addition model's exact-match accuracy on the held-out test set is >= ``minimum``."""
    _check_accuracy("addition", model, addition_test_data(reverse_source), minimum)
