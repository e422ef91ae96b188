"""Variants of a1_rnn_numpy: realistic wrong solutions (mutants) and other correct ones.

Every graded solution cell has >= 2 mutants and >= 1 alternative. ``loses`` lists exactly the
test cells a mutant fails (checked by running). The character-level LM's training cell
(heavy group "default") uses every layer, ``char_lm_loss``, ``clip_grad_norm``, ``train_char_lm``
and, for the demo samples after training, ``sample``: all are listed in HEAVY_USES so that their
variants also run the training and its graded check. ``char_lm_loss`` calls the layers, so a
mutant of a layer that the char-LM's small test case exercises also loses ``test_char_lm_loss``.

Mistakes that lose only a unit test while the training still passes cost a full training run
here, so some are tested at unit level instead (tests/graders/test_a1_rnn_numpy.py): softmax
without the max subtraction, the summed char-LM loss, h0 returned as the last state, clipping
that also scales up, clipped copies never stored, sampling from the global np.random.
"""
from grading import Alternative, Mutant

HEAVY_USES = {"rnn_step_forward", "rnn_step_backward", "rnn_forward", "rnn_backward",
              "word_embedding_forward", "word_embedding_backward", "temporal_affine_forward",
              "temporal_affine_backward", "temporal_softmax_loss", "char_lm_loss", "clip_grad_norm",
              "train_char_lm", "sample"}

STEP = ["test_rnn_step_forward", "test_rnn_step_backward", "test_rnn_forward", "test_rnn_backward",
        "test_char_lm_loss"]
CLIP = ["test_clip_grad_norm"]

MUTANTS = [
    # ---- rnn_step_forward
    Mutant("step: Wh transposed", cell="rnn_step_forward",
           find="np.tanh(x @ Wx + prev_h @ Wh + b)", replace="np.tanh(x @ Wx + prev_h @ Wh.T + b)",
           loses=STEP + ["test_char_lm"]),
    Mutant("step: bias added outside the tanh", cell="rnn_step_forward",
           find="np.tanh(x @ Wx + prev_h @ Wh + b)", replace="np.tanh(x @ Wx + prev_h @ Wh) + b",
           loses=STEP + ["test_char_lm"]),
    # ---- rnn_step_backward
    Mutant("step backward: db not summed over the batch", cell="rnn_step_backward",
           find="db = da.sum(axis=0)", replace="db = da",
           loses=["test_rnn_step_backward", "test_rnn_backward", "test_char_lm", "test_char_lm_loss"]),
    Mutant("step backward: dprev_h uses Wh instead of Wh.T", cell="rnn_step_backward",
           find="dprev_h = da @ Wh.T", replace="dprev_h = da @ Wh",
           loses=["test_rnn_step_backward", "test_rnn_backward", "test_char_lm_loss"]),
    # ---- rnn_forward
    Mutant("forward: off by one, stores the state before the update", cell="rnn_forward",
           find="        prev_h, step_cache = rnn_step_forward(x[:, t], prev_h, Wx, Wh, b)\n"
                "        h[:, t] = prev_h\n",
           replace="        h[:, t] = prev_h\n"
                   "        prev_h, step_cache = rnn_step_forward(x[:, t], prev_h, Wx, Wh, b)\n",
           loses=["test_rnn_forward", "test_char_lm", "test_char_lm_loss"]),
    Mutant("forward: h0 fed to every step", cell="rnn_forward",
           find="rnn_step_forward(x[:, t], prev_h,", replace="rnn_step_forward(x[:, t], h0,",
           loses=["test_rnn_forward", "test_rnn_backward", "test_char_lm", "test_char_lm_loss"]),
    Mutant("forward: squeezed states (wrong shape when N = 1 or T = 1)", cell="rnn_forward",
           find="        cache.append(step_cache)\n",
           replace="        cache.append(step_cache)\n    h = np.squeeze(h)\n",
           loses=["test_rnn_forward", "test_char_lm_loss"]),
    # ---- rnn_backward
    Mutant("BPTT: gradient from the next step dropped (dh[:, t] only)", cell="rnn_backward",
           find="rnn_step_backward(dh[:, t] + dprev_h, cache[t])", replace="rnn_step_backward(dh[:, t], cache[t])",
           loses=["test_rnn_backward", "test_char_lm_loss"]),
    Mutant("BPTT: weight gradients overwritten instead of summed", cell="rnn_backward",
           find="dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t", replace="dWx, dWh, db = dWx_t, dWh_t, db_t",
           loses=["test_rnn_backward", "test_char_lm", "test_char_lm_loss"]),
    # ---- word_embedding_forward
    Mutant("embedding: 1-based ids", cell="word_embedding_forward",
           find="out = W[x]", replace="out = W[x - 1]",
           loses=["test_word_embedding_forward", "test_char_lm", "test_char_lm_loss"]),
    Mutant("embedding: flattened lookup not reshaped", cell="word_embedding_forward",
           find="out = W[x]", replace="out = W[x.reshape(-1)]",
           loses=["test_word_embedding_forward", "test_char_lm", "test_char_lm_loss"]),
    # ---- word_embedding_backward
    Mutant("embedding backward: dW[x] += dout loses repeated ids", cell="word_embedding_backward",
           find="np.add.at(dW, x, dout)", replace="dW[x] += dout",
           loses=["test_word_embedding_backward", "test_char_lm_loss"]),
    Mutant("embedding backward: dW[x] = dout", cell="word_embedding_backward",
           find="np.add.at(dW, x, dout)", replace="dW[x] = dout",
           loses=["test_word_embedding_backward", "test_char_lm_loss"]),
    # ---- temporal_affine_forward
    Mutant("affine: bias forgotten", cell="temporal_affine_forward",
           find="out = x @ w + b", replace="out = x @ w",
           loses=["test_temporal_affine_forward", "test_char_lm_loss"]),
    Mutant("affine: w transposed", cell="temporal_affine_forward",
           find="out = x @ w + b", replace="out = x @ w.T + b",
           loses=["test_temporal_affine_forward", "test_temporal_affine_backward", "test_char_lm",
                  "test_char_lm_loss"]),
    # ---- temporal_affine_backward
    Mutant("affine backward: db summed over the batch only", cell="temporal_affine_backward",
           find="db = dout.sum(axis=(0, 1))", replace="db = dout.sum(axis=0)",
           loses=["test_temporal_affine_backward", "test_char_lm", "test_char_lm_loss"]),
    Mutant("affine backward: dw averaged over the N*T positions", cell="temporal_affine_backward",
           find="dw = x.reshape(N * T, D).T @ dout.reshape(N * T, M)",
           replace="dw = x.reshape(N * T, D).T @ dout.reshape(N * T, M) / (N * T)",
           loses=["test_temporal_affine_backward", "test_char_lm_loss"]),
    # ---- temporal_softmax_loss
    Mutant("loss: mask ignored", cell="temporal_softmax_loss",
           find="m = mask.reshape(N * T).astype(float)", replace="m = np.ones(N * T)",
           loses=["test_temporal_softmax_loss"]),
    Mutant("loss: averaged over N*T instead of N", cell="temporal_softmax_loss",
           find="loss = -np.sum(m * log_probs[rows, y_flat]) / N",
           replace="loss = -np.sum(m * log_probs[rows, y_flat]) / (N * T)",
           loses=["test_temporal_softmax_loss", "test_char_lm_loss"]),
    # ---- char_lm_loss
    Mutant("char-LM: inputs used as targets", cell="char_lm_loss",
           find="temporal_softmax_loss(scores, y,", replace="temporal_softmax_loss(scores, x,",
           loses=["test_char_lm_loss", "test_char_lm"]),
    Mutant("char-LM: dWx and dWh unpacked in the wrong order", cell="char_lm_loss",
           find='demb, _, grads["Wx"], grads["Wh"], grads["b"]',
           replace='demb, _, grads["Wh"], grads["Wx"], grads["b"]',
           loses=["test_char_lm_loss", "test_char_lm"]),
    # ---- clip_grad_norm
    Mutant("clip: every entry clipped to [-max_norm, max_norm]", cell="clip_grad_norm",
           find="            grads[key] = grads[key] * scale\n",
           replace="            grads[key] = np.clip(grads[key], -max_norm, max_norm)\n",
           loses=CLIP),
    Mutant("clip: each array clipped by its own norm", cell="clip_grad_norm", solution=(
        "    total_norm = float(np.sqrt(sum(np.sum(g ** 2) for g in grads.values())))\n"
        "    for key, g in grads.items():\n"
        "        norm = np.sqrt(np.sum(g ** 2))\n"
        "        if norm > max_norm:\n"
        "            grads[key] = g * (max_norm / (norm + 1e-6))\n"),
           loses=CLIP),
    # ---- train_char_lm
    Mutant("training: gradient ascent", cell="train_char_lm",
           find="params[k] -= learning_rate", replace="params[k] += learning_rate",
           loses=["test_char_lm"]),
    Mutant("training: inputs and targets swapped", cell="train_char_lm",
           find="char_lm_loss(params, x, y, h)", replace="char_lm_loss(params, y, x, h)",
           loses=["test_char_lm"]),
    # ---- sample
    Mutant("sample: scores multiplied by the temperature", cell="sample",
           find="z = scores / temperature", replace="z = scores * temperature",
           loses=["test_sample"]),
    Mutant("sample: generated character not fed back", cell="sample",
           find="W_embed[next_id]", replace="W_embed[ids[-1]]",
           loses=["test_sample"]),
]

ALTERNATIVES = [
    Alternative("step: einsum", cell="rnn_step_forward", solution=(
        "    next_h = np.tanh(np.einsum('nd,dh->nh', x, Wx) + np.einsum('nk,kh->nh', prev_h, Wh) + b)\n"
        "    cache = (x, prev_h, Wx, Wh, next_h)\n")),
    Alternative("step backward: einsum", cell="rnn_step_backward", solution=(
        "    x, prev_h, Wx, Wh, next_h = cache\n"
        "    da = dnext_h * (1.0 - next_h * next_h)\n"
        "    dx = np.einsum('nh,dh->nd', da, Wx)\n"
        "    dprev_h = np.einsum('nh,kh->nk', da, Wh)\n"
        "    dWx = np.einsum('nd,nh->dh', x, da)\n"
        "    dWh = np.einsum('nk,nh->kh', prev_h, da)\n"
        "    db = np.einsum('nh->h', da)\n")),
    Alternative("forward: list of states stacked", cell="rnn_forward", solution=(
        "    states, cache = [], []\n"
        "    for t in range(x.shape[1]):\n"
        "        h_t, c = rnn_step_forward(x[:, t, :], states[-1] if states else h0, Wx, Wh, b)\n"
        "        states.append(h_t)\n"
        "        cache.append(c)\n"
        "    h = np.stack(states, axis=1)\n")),
    Alternative("BPTT: preallocated arrays, in-place accumulation", cell="rnn_backward", solution=(
        "    N, T, H = dh.shape\n"
        "    D = cache[0][0].shape[1]\n"
        "    dx = np.zeros((N, T, D))\n"
        "    dWx, dWh, db = np.zeros((D, H)), np.zeros((H, H)), np.zeros(H)\n"
        "    carry = np.zeros((N, H))\n"
        "    for t in range(T - 1, -1, -1):\n"
        "        dx[:, t], carry, gWx, gWh, gb = rnn_step_backward(dh[:, t] + carry, cache[t])\n"
        "        dWx += gWx\n"
        "        dWh += gWh\n"
        "        db += gb\n"
        "    dh0 = carry\n")),
    Alternative("embedding: one-hot matrix product", cell="word_embedding_forward", solution=(
        "    out = np.eye(W.shape[0])[x] @ W\n"
        "    cache = (x, W.shape)\n")),
    Alternative("embedding backward: explicit loop", cell="word_embedding_backward", solution=(
        "    x, shape = cache\n"
        "    dW = np.zeros(shape)\n"
        "    for n in range(x.shape[0]):\n"
        "        for t in range(x.shape[1]):\n"
        "            dW[x[n, t]] += dout[n, t]\n")),
    Alternative("affine: einsum", cell="temporal_affine_forward", solution=(
        "    out = np.einsum('ntd,dm->ntm', x, w) + b\n"
        "    cache = (x, w)\n")),
    Alternative("affine backward: einsum and tensordot", cell="temporal_affine_backward", solution=(
        "    x, w = cache\n"
        "    dx = np.einsum('ntm,dm->ntd', dout, w)\n"
        "    dw = np.tensordot(x, dout, axes=([0, 1], [0, 1]))\n"
        "    db = dout.reshape(-1, dout.shape[-1]).sum(axis=0)\n")),
    Alternative("loss: loop over time steps", cell="temporal_softmax_loss", solution=(
        "    N, T, V = x.shape\n"
        "    loss, dx = 0.0, np.zeros_like(x)\n"
        "    for t in range(T):\n"
        "        s = x[:, t] - x[:, t].max(axis=1, keepdims=True)\n"
        "        log_p = s - np.log(np.exp(s).sum(axis=1, keepdims=True))\n"
        "        p = np.exp(log_p)\n"
        "        keep = mask[:, t]\n"
        "        loss -= log_p[np.arange(N), y[:, t]][keep].sum() / N\n"
        "        p[np.arange(N), y[:, t]] -= 1\n"
        "        dx[:, t] = p * keep[:, None] / N\n")),
    Alternative("char-LM: divide every gradient by T at the end", cell="char_lm_loss", solution=(
        "    T = x.shape[1]\n"
        "    emb, c1 = word_embedding_forward(x, params['W_embed'])\n"
        "    h, c2 = rnn_forward(emb, h0, params['Wx'], params['Wh'], params['b'])\n"
        "    scores, c3 = temporal_affine_forward(h, params['W_out'], params['b_out'])\n"
        "    loss, dscores = temporal_softmax_loss(scores, y, np.ones_like(y, dtype=bool))\n"
        "    dh, dW_out, db_out = temporal_affine_backward(dscores, c3)\n"
        "    demb, _, dWx, dWh, db = rnn_backward(dh, c2)\n"
        "    dW_embed = word_embedding_backward(demb, c1)\n"
        "    grads = {k: g / T for k, g in dict(W_embed=dW_embed, Wx=dWx, Wh=dWh, b=db, W_out=dW_out,\n"
        "                                       b_out=db_out).items()}\n"
        "    return loss / T, grads, h[:, -1]\n")),
    Alternative("clip: exact factor max_norm / total_norm (assignment 2's spec), arrays scaled in place",
                cell="clip_grad_norm", solution=(
                    "    total_norm = np.sqrt(sum((g * g).sum() for g in grads.values()))\n"
                    "    if total_norm >= max_norm:\n"
                    "        for g in grads.values():\n"
                    "            g *= max_norm / total_norm\n")),
    Alternative("clip: one concatenated vector and np.linalg.norm, a new dict's entries", cell="clip_grad_norm",
                solution=(
                    "    keys = list(grads)\n"
                    "    flat = np.concatenate([np.ravel(grads[k]) for k in keys])\n"
                    "    total_norm = np.linalg.norm(flat)\n"
                    "    factor = min(1.0, max_norm / (total_norm + 1e-6))\n"
                    "    grads.update({k: grads[k] * factor for k in keys})\n")),
    Alternative("training: Adagrad (as in min-char-rnn)", cell="train_char_lm", solution=(
        "    rng = np.random.default_rng(seed)\n"
        "    params = {'W_embed': rng.standard_normal((V, D)), 'Wx': rng.standard_normal((D, H)) / np.sqrt(D),\n"
        "              'Wh': rng.standard_normal((H, H)) / np.sqrt(H), 'b': np.zeros(H),\n"
        "              'W_out': rng.standard_normal((H, V)) / np.sqrt(H), 'b_out': np.zeros(V)}\n"
        "    cache = {k: np.zeros_like(v) for k, v in params.items()}\n"
        "    history = []\n"
        "    h = np.zeros((batch_size, H))\n"
        "    batches = tbptt_batches(train_ids, batch_size, seq_len)\n"
        "    for step in range(num_steps):\n"
        "        x, y = next(batches)\n"
        "        loss, grads, h = char_lm_loss(params, x, y, h)\n"
        "        clip_grad_norm(grads, max_norm)\n"
        "        for k, g in grads.items():\n"
        "            cache[k] += g * g\n"
        "            params[k] -= 0.1 * g / np.sqrt(cache[k] + 1e-8)\n"
        "        history.append(loss)\n")),
    Alternative("sample: inverse-CDF draw, using the layer functions", cell="sample", solution=(
        "    rng = rng if rng is not None else np.random.default_rng()\n"
        "    h = np.zeros((1, params['Wh'].shape[0]))\n"
        "    def step(i, h):\n"
        "        e, _ = word_embedding_forward(np.array([[i]]), params['W_embed'])\n"
        "        return rnn_step_forward(e[:, 0], h, params['Wx'], params['Wh'], params['b'])[0]\n"
        "    for i in vocab.encode(prefix):\n"
        "        h = step(i, h)\n"
        "    out = []\n"
        "    for _ in range(length):\n"
        "        s = (h @ params['W_out'] + params['b_out'])[0]\n"
        "        if temperature == 0:\n"
        "            i = int(s.argmax())\n"
        "        else:\n"
        "            p = np.exp((s - s.max()) / temperature)\n"
        "            cdf = np.cumsum(p / p.sum())\n"
        "            i = min(int(np.searchsorted(cdf, rng.random())), len(cdf) - 1)\n"
        "        out.append(vocab.chars[i])\n"
        "        h = step(i, h)\n"
        "    return ''.join(out)\n")),
]
