"""Variants of a3_rnn_pytorch: realistic wrong solutions (each must lose exactly its test
cells) and correct alternatives (must keep full marks)."""
from grading import Alternative, Mutant

# The graded training run (group "lm") uses tbptt_step and train_char_lm. The benchmark cells
# (group "bench") are ungraded and use no graded check, so no variant needs to run them.
# Clipping before backward and rescaling that also scales up lose only test_tbptt_step while the
# training passes: tested at unit level (tests/graders/test_a3_rnn_pytorch.py), not at a training run each.
HEAVY_USES = {"lm": {"tbptt_step", "train_char_lm"}}

CELL = ["test_lstm_cell_function"]
LSTM_FWD, LSTM_LOAD = ["test_lstm_module"], ["test_lstm_from_torch"]
RNN_FWD, RNN_LOAD = ["test_rnn_module"], ["test_rnn_from_torch"]

MUTANTS = [
    # ---- Part 1: LSTMCellFunction
    Mutant("backward: forget-gate term missing in dprev_c", cell="lstm_cell_function",
           find="dprev_c = dc * f", replace="dprev_c = dc", loses=CELL),
    Mutant("backward: dnext_c ignored (cell gradient overwritten, not accumulated)", cell="lstm_cell_function",
           find="dc = dnext_c + dnext_h * o", replace="dc = dnext_h * o", loses=CELL),
    Mutant("forward: CS231n gate order i, f, o, g", cell="lstm_cell_function",
           find="g = torch.tanh(a[:, 2 * H:3 * H])\n        o = torch.sigmoid(a[:, 3 * H:])",
           replace="o = torch.sigmoid(a[:, 2 * H:3 * H])\n        g = torch.tanh(a[:, 3 * H:])", loses=CELL),
    Mutant("backward: db not summed over the batch (autograd would sum the (N, 4H) db silently)",
           cell="lstm_cell_function", find="db = da.sum(dim=0)", replace="db = da", loses=CELL),
    # ---- Part 2: LSTM module
    Mutant("LSTM forward: CS231n gate order i, f, o, g", cell="lstm_module",
           find="g = torch.tanh(a[:, 2 * H:3 * H])\n            o = torch.sigmoid(a[:, 3 * H:])",
           replace="o = torch.sigmoid(a[:, 2 * H:3 * H])\n            g = torch.tanh(a[:, 3 * H:])", loses=LSTM_FWD),
    Mutant("LSTM forward: initial state ignored", cell="lstm_module",
           find="            h, c = state\n", replace="            h, c = x.new_zeros(N, H), x.new_zeros(N, H)\n",
           loses=LSTM_FWD),
    Mutant("LSTM forward: state=None zeros made with torch.zeros (float32, CPU): fails for float64 x",
           cell="lstm_module",
           find="            h, c = x.new_zeros(N, H), x.new_zeros(N, H)\n",
           replace="            h, c = torch.zeros(N, H), torch.zeros(N, H)\n", loses=LSTM_FWD),
    Mutant("LSTM.from_torch: weight_ih reshaped instead of transposed", cell="lstm_module",
           find="model.Wx.copy_(lstm.weight_ih_l0.T)",
           replace="model.Wx.copy_(lstm.weight_ih_l0.reshape(model.Wx.shape))", loses=LSTM_LOAD),
    Mutant("LSTM.from_torch: bias_hh forgotten", cell="lstm_module",
           find="model.b.copy_(lstm.bias_ih_l0 + lstm.bias_hh_l0)", replace="model.b.copy_(lstm.bias_ih_l0)",
           loses=LSTM_LOAD),
    # ---- Part 3: RNN module
    Mutant("RNN forward: h0 ignored", cell="rnn_module",
           find="h = x.new_zeros(N, self.H) if h0 is None else h0", replace="h = x.new_zeros(N, self.H)",
           loses=RNN_FWD),
    Mutant("RNN forward: h0=None zeros made with torch.zeros (float32, CPU): fails for float64 x", cell="rnn_module",
           find="h = x.new_zeros(N, self.H) if h0 is None else h0",
           replace="h = torch.zeros(N, self.H) if h0 is None else h0", loses=RNN_FWD),
    Mutant("RNN forward: off by one (out holds the previous state)", cell="rnn_module",
           find="            h = torch.tanh(x[:, t] @ self.Wx + h @ self.Wh + self.b)\n            outs.append(h)\n",
           replace="            outs.append(h)\n            h = torch.tanh(x[:, t] @ self.Wx + h @ self.Wh + self.b)\n",
           loses=RNN_FWD),
    Mutant("RNN.from_torch: square Wh not transposed", cell="rnn_module",
           find="model.Wh.copy_(rnn.weight_hh_l0.T)", replace="model.Wh.copy_(rnn.weight_hh_l0)", loses=RNN_LOAD),
    Mutant("RNN.from_torch: bias_hh forgotten", cell="rnn_module",
           find="model.b.copy_(rnn.bias_ih_l0 + rnn.bias_hh_l0)", replace="model.b.copy_(rnn.bias_ih_l0)",
           loses=RNN_LOAD),
    # ---- Part 4: truncated BPTT
    Mutant("tbptt_step: state not detached, graph kept with retain_graph (graph grows)", cell="tbptt_step",
           solution=(
               "    logits, new_state = model(x, state)\n"
               "    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))\n"
               "    optimizer.zero_grad()\n"
               "    loss.backward(retain_graph=True)\n"
               "    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)\n"
               "    optimizer.step()\n"
               "    return loss.item(), new_state\n"),
           loses=["test_tbptt_step", "test_train_char_lm"]),
    Mutant("tbptt_step: no gradient clipping", cell="tbptt_step",
           find="    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)\n", replace="",
           loses=["test_tbptt_step"]),
    Mutant("sample: state not carried (model sees one character)", cell="sample",
           find="logits, state = model(x, state)", replace="logits, _ = model(x, None)", loses=["test_sample"]),
    Mutant("sample: scores multiplied by the temperature", cell="sample",
           find="scores / temperature", replace="scores * temperature", loses=["test_sample"]),
    Mutant("sample: prefix not fed (starts from its last id)", cell="sample",
           find="x = torch.tensor([list(prefix)], dtype=torch.long, device=device)",
           replace="x = torch.tensor([list(prefix)[-1:]], dtype=torch.long, device=device)", loses=["test_sample"]),
    Mutant("sample: temperature=0 not special-cased (softmax of logits / 0)", cell="sample",
           find=("            if temperature == 0:\n"
                 "                next_id = int(scores.argmax())\n"
                 "            else:\n"
                 "                probs = torch.softmax(scores / temperature, dim=-1)\n"
                 "                next_id = int(torch.multinomial(probs, 1, generator=generator))\n"),
           replace=("            probs = torch.softmax(scores / temperature, dim=-1)\n"
                    "            next_id = int(torch.multinomial(probs, 1, generator=generator))\n"),
           loses=["test_sample"]),
    Mutant("evaluate_loss: state not carried from chunk to chunk", cell="train_char_lm",
           find="logits, state = model(x, state)", replace="logits, _ = model(x, None)",
           loses=["test_train_char_lm"]),
    Mutant("evaluate_loss: chunk means summed, then divided by the number of positions", cell="train_char_lm",
           find=', reduction="sum").item()', replace=").item()", loses=["test_train_char_lm"]),
    Mutant("train_char_lm: targets not shifted (y = x)", cell="train_char_lm",
           find="x, y = (torch.from_numpy(a).to(device) for a in batch)",
           replace="x = y = torch.from_numpy(batch[0]).to(device)", loses=["test_train_char_lm"]),
    Mutant("train_char_lm: iterator rebuilt every step (always the first chunk)", cell="train_char_lm",
           find="batch = next(chunks, None)", replace="batch = None", loses=["test_train_char_lm"]),
    # ---- Part 5: FastLSTM
    Mutant("FastLSTM: time and batch axes mixed up in the input projection", cell="fast_lstm",
           find="x.reshape(N * T, D)", replace="x.transpose(0, 1).reshape(N * T, D)", loses=["test_fast_lstm"]),
    Mutant("FastLSTM: pointwise in CS231n gate order", cell="fast_lstm",
           find="i, f, o = s[:, :H], s[:, H:2 * H], s[:, 3 * H:]\n    g = torch.tanh(a[:, 2 * H:3 * H])",
           replace="i, f, o = s[:, :H], s[:, H:2 * H], s[:, 2 * H:3 * H]\n    g = torch.tanh(a[:, 3 * H:])",
           loses=["test_fast_lstm"]),
    Mutant("FastLSTM: state=None zeros made with torch.zeros (float32, CPU): fails for float64 x", cell="fast_lstm",
           find="h, c = x.new_zeros(N, H), x.new_zeros(N, H)", replace="h, c = torch.zeros(N, H), torch.zeros(N, H)",
           loses=["test_fast_lstm"]),
]

ALTERNATIVES = [
    Alternative("LSTMCellFunction: local derivatives stacked, einsum for the products", cell="lstm_cell_function",
                find=("        da = torch.cat([di * i * (1 - i), df * f * (1 - f), dg * (1 - g ** 2), "
                      "do * o * (1 - o)], dim=1)\n"
                      """        dx = da @ Wx.T
        dprev_h = da @ Wh.T
        dWx = x.T @ da
        dWh = prev_h.T @ da
        db = da.sum(dim=0)
"""), replace="""        local = torch.cat([i * (1 - i), f * (1 - f), 1 - g ** 2, o * (1 - o)], dim=1)
        da = torch.cat([di, df, dg, do], dim=1) * local
        dx = torch.einsum("nk,dk->nd", da, Wx)
        dprev_h = torch.mm(da, Wh.t())
        dWx = torch.einsum("nd,nk->dk", x, da)
        dWh = torch.mm(prev_h.t(), da)
        db = da.sum(0)
"""),
    Alternative("LSTM forward: einsum projection + chunk",
                cell="lstm_module",
                find="""            a = x_t @ self.Wx + h @ self.Wh + self.b
            i = torch.sigmoid(a[:, :H])
            f = torch.sigmoid(a[:, H:2 * H])
            g = torch.tanh(a[:, 2 * H:3 * H])
            o = torch.sigmoid(a[:, 3 * H:])
""", replace="""            a = torch.einsum("nd,dk->nk", x_t, self.Wx) + h @ self.Wh + self.b
            ai, af, ag, ao = a.chunk(4, dim=1)
            i, f, g, o = torch.sigmoid(ai), torch.sigmoid(af), torch.tanh(ag), torch.sigmoid(ao)
"""),
    Alternative("LSTM.from_torch: new nn.Parameter copies", cell="lstm_module",
                find="""        with torch.no_grad():
            model.Wx.copy_(lstm.weight_ih_l0.T)
            model.Wh.copy_(lstm.weight_hh_l0.T)
            model.b.copy_(lstm.bias_ih_l0 + lstm.bias_hh_l0)
""", replace="""        model.Wx = nn.Parameter(lstm.weight_ih_l0.detach().T.clone())
        model.Wh = nn.Parameter(lstm.weight_hh_l0.detach().t().contiguous().clone())
        model.b = nn.Parameter((lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().clone())
"""),
    Alternative("RNN.from_torch via state_dict", cell="rnn_module",
                find="""        with torch.no_grad():
            model.Wx.copy_(rnn.weight_ih_l0.T)
            model.Wh.copy_(rnn.weight_hh_l0.T)
            model.b.copy_(rnn.bias_ih_l0 + rnn.bias_hh_l0)
""", replace="""        sd = rnn.state_dict()
        model.load_state_dict({"Wx": sd["weight_ih_l0"].T, "Wh": sd["weight_hh_l0"].T,
                               "b": sd["bias_ih_l0"] + sd["bias_hh_l0"]})
"""),
    Alternative("tbptt_step: hand-written global-norm clipping, (N, V, T) cross-entropy", cell="tbptt_step",
                solution=(
                    "    logits, (h, c) = model(x, state)\n"
                    "    loss = F.cross_entropy(logits.transpose(1, 2), y)\n"
                    "    optimizer.zero_grad(set_to_none=True)\n"
                    "    loss.backward()\n"
                    "    grads = [p.grad for p in model.parameters() if p.grad is not None]\n"
                    "    norm = torch.sqrt(sum((g ** 2).sum() for g in grads))\n"
                    "    scale = torch.clamp(max_norm / (norm + 1e-6), max=1.0)\n"
                    "    for g in grads:\n"
                    "        g.mul_(scale)\n"
                    "    optimizer.step()\n"
                    "    return float(loss), (h.detach(), c.detach())\n")),
    Alternative("sample: Categorical distribution, prefix fed one id at a time", cell="sample",
                solution=(
                    "    device = next(model.parameters()).device\n"
                    "    model.eval()\n"
                    "    state, out = None, []\n"
                    "    with torch.no_grad():\n"
                    "        for i in prefix:\n"
                    "            logits, state = model(torch.tensor([[int(i)]], device=device), state)\n"
                    "        for _ in range(length):\n"
                    "            scores = logits[0, -1]\n"
                    "            if temperature == 0:\n"
                    "                nxt = scores.argmax()\n"
                    "            else:\n"
                    "                nxt = torch.distributions.Categorical(logits=scores / temperature).sample()\n"
                    "            out.append(int(nxt))\n"
                    "            logits, state = model(nxt.view(1, 1), state)\n"
                    "    model.train()\n"
                    "    return out\n")),
    Alternative("train_char_lm: own streams and chunk indexing", cell="train_char_lm",
                find="""    chunks, state = iter(()), None
    progress = tqdm(range(1, steps + 1), desc="training")
    for step in progress:
        batch = next(chunks, None)
        if batch is None:  # (re)start from the beginning of the text with a fresh state
            chunks = tbptt_batches(train_ids, batch_size, seq_len)
            batch, state = next(chunks), None
        x, y = (torch.from_numpy(a).to(device) for a in batch)
""", replace="""    ids = torch.as_tensor(train_ids, dtype=torch.long)
    per_row = len(ids) // batch_size
    streams = ids[:per_row * batch_size].view(batch_size, per_row).to(device)
    n_chunks = (per_row - 1) // seq_len
    state = None
    progress = tqdm(range(1, steps + 1), desc="training")
    for step in progress:
        k = (step - 1) % n_chunks
        if k == 0:
            state = None
        x = streams[:, k * seq_len:(k + 1) * seq_len]
        y = streams[:, k * seq_len + 1:(k + 1) * seq_len + 1]
"""),
    Alternative("FastLSTM: broadcast matmul for the projection, chunk in the pointwise", cell="fast_lstm",
                find="""    s = torch.sigmoid(a)
    i, f, o = s[:, :H], s[:, H:2 * H], s[:, 3 * H:]
    g = torch.tanh(a[:, 2 * H:3 * H])
    c_next = torch.addcmul(f * c, i, g)
""", replace="""    ai, af, ag, ao = a.chunk(4, dim=1)
    i, f, o, g = torch.sigmoid(ai), torch.sigmoid(af), torch.sigmoid(ao), torch.tanh(ag)
    c_next = f * c + i * g
"""),
]
