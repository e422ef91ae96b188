"""Variants of a4_seq2seq_attention: realistic wrong edits (each must lose exactly its `loses`)
and correct alternatives (must keep full marks).

Heavy groups (cells tagged heavy:<group>):
- "dates": trains the date model and grades it (test_dates_accuracy); the ungraded heatmap
  cell also calls greedy_decode, but no graded cell of the group depends on it.
- "addition": trains the attention model on addition and grades it (test_addition_attention).
- "addition_baselines": the two ungraded baselines of the results table; no graded cell reads
  them, so no variant needs to run them (they only run in the full autograde).
Both graded groups train a model built from AdditiveAttention, Encoder and AttnDecoder with
the loss seq2seq_loss, so a variant of any of those cells runs both groups.

Budget: the heavy mutants are chosen among realistic mistakes that fail fast in training (a
shape error, a NaN loss, which fit reports at once, or a model that `give_up` stops after 80
date steps / 300 addition steps); the alternatives train fully, about 10 s dates + 25 s addition
on one core. Two realistic mistakes that train fine, so that only a unit test sees them, are
tested at unit level instead of here, where each would cost a full training run: the decoder
fed its own outputs while teacher forcing was asked ("free running") and the encoder unpacked
without total_length ("no total_length"), both in tests/graders/test_a4_seq2seq_attention.py.
Both accuracy cells score the visible split and, hidden, a split the grader draws from a seed
(graders.a4_seq2seq_attention).
"""
from grading import Alternative, Mutant

TRAINED = {"additive_attention", "encoder", "decoder", "seq2seq_loss"}
HEAVY_USES = {"dates": TRAINED, "addition": TRAINED, "addition_baselines": set()}

MUTANTS = [
    # ---- AdditiveAttention
    Mutant("additive: weighted keys not summed over the positions", cell="additive_attention",
           find="context = torch.bmm(weights[:, None, :], keys).squeeze(1)",
           replace="context = weights[:, :, None] * keys",
           loses=["test_additive_attention", "test_dates_accuracy", "test_addition_attention"]),
    Mutant("additive: mask inverted (attends to padding only)", cell="additive_attention",
           find="scores.masked_fill(~mask,", replace="scores.masked_fill(mask,",
           loses=["test_additive_attention", "test_dates_accuracy", "test_addition_attention"]),
    # ---- dot_product_attention
    Mutant("dot: missing 1/sqrt(d) scale", cell="dot_product_attention",
           find="    if scale:\n        scores = scores / math.sqrt(query.shape[-1])\n", replace="",
           loses=["test_dot_product_attention"]),
    Mutant("dot: scaled by sqrt of the value size", cell="dot_product_attention",
           find="math.sqrt(query.shape[-1])", replace="math.sqrt(values.shape[-1])",
           loses=["test_dot_product_attention"]),
    Mutant("dot: softmax over the wrong axis", cell="dot_product_attention",
           find="weights = torch.softmax(scores, dim=-1)", replace="weights = torch.softmax(scores, dim=1)",
           loses=["test_dot_product_attention"]),
    Mutant("dot: mask applied after the softmax", cell="dot_product_attention",
           find=("        scores = scores.masked_fill(~mask, float(\"-inf\"))\n"
                 "    weights = torch.softmax(scores, dim=-1)\n"),
           replace=("    weights = torch.softmax(scores, dim=-1)\n"
                    "    if mask is not None:\n        weights = weights * mask\n"),
           loses=["test_dot_product_attention"]),
    Mutant("dot: mask=None not handled (the mask is always applied)", cell="dot_product_attention",
           find="    if mask is not None:\n", replace="    if True:\n",
           loses=["test_dot_product_attention"]),  # caught by the visible mask_kind=None case
    Mutant("dot: scale=False ignored", cell="dot_product_attention",
           find="    if scale:\n", replace="    if True:\n",
           loses=["test_dot_product_attention"]),  # caught by the visible scale=False case
    Mutant("dot: a (N, L, S) mask broadcast as if it were (N, S)", cell="dot_product_attention",
           find="        if mask.dim() == 2:\n            mask = mask[:, None, :]\n",
           replace="        mask = mask[:, None, :]\n",
           loses=["test_dot_product_attention"]),  # caught by the visible causal case
    # ---- Encoder
    Mutant("encoder: enforce_sorted left at True", cell="encoder",
           find="enforce_sorted=False", replace="enforce_sorted=True",
           loses=["test_encoder", "test_dates_accuracy", "test_addition_attention"]),
    Mutant("encoder: directions concatenated instead of summed", cell="encoder",
           find="outputs = out[:, :, :H] + out[:, :, H:]", replace="outputs = out",
           loses=["test_encoder", "test_dates_accuracy", "test_addition_attention"]),
    # ---- AttnDecoder
    Mutant("decoder: the GRU cell is fed the embedding only (no context)", cell="decoder",
           find="s = self.cell(torch.cat([self.embedding(y_prev), context], dim=1), s_prev)",
           replace="s = self.cell(self.embedding(y_prev), s_prev)",
           loses=["test_decoder", "test_dates_accuracy", "test_addition_attention"]),
    Mutant("decoder: context left out of the output layer", cell="decoder",
           find="logits = self.out(torch.cat([s, context], dim=1))", replace="logits = self.out(s)",
           loses=["test_decoder", "test_dates_accuracy", "test_addition_attention"]),
    # ---- greedy_decode
    Mutant("greedy: <end> does not stop a sequence", cell="greedy_decode",
           find="tokens.append(torch.where(finished, torch.full_like(y, pad_id), y))", replace="tokens.append(y)",
           loses=["test_greedy_decode"]),
    Mutant("greedy: feeds <start> at every step", cell="greedy_decode",
           find="model.decoder.step(y, s, enc_outputs, src_mask)",
           replace="model.decoder.step(torch.full_like(y, start_id), s, enc_outputs, src_mask)",
           loses=["test_greedy_decode"]),
    Mutant("greedy: attention rows not zeroed after <end>", cell="greedy_decode",
           find="weights.append(w * (~finished)[:, None])", replace="weights.append(w)",
           loses=["test_greedy_decode"]),
    Mutant("greedy: never stops before max_len", cell="greedy_decode",
           find="            if finished.all():\n                break\n", replace="",
           loses=["test_greedy_decode"]),
    # ---- seq2seq_loss
    Mutant("loss: targets not shifted (compares with tgt_in)", cell="seq2seq_loss",
           find='batch["tgt_out"].reshape(-1)', replace='batch["tgt_in"].reshape(-1)',
           loses=["test_seq2seq_loss", "test_dates_accuracy", "test_addition_attention"]),
    Mutant("loss: logits and targets not flattened", cell="seq2seq_loss",
           find='F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["tgt_out"].reshape(-1),',
           replace='F.cross_entropy(logits, batch["tgt_out"],',
           loses=["test_seq2seq_loss", "test_dates_accuracy", "test_addition_attention"]),
]

ALTERNATIVES = [
    Alternative("additive: einsum and torch.where", cell="additive_attention", find=(
        "        scores = self.v(torch.tanh(self.W_q(query)[:, None, :] + self.W_k(keys))).squeeze(2)  # (N, S)\n"
        "        scores = scores.masked_fill(~mask, float(\"-inf\"))\n"
        "        weights = torch.softmax(scores, dim=1)\n"
        "        context = torch.bmm(weights[:, None, :], keys).squeeze(1)  # (N, Hk)\n"), replace=(
        "        projected = self.W_q(query).unsqueeze(1) + self.W_k(keys)\n"
        "        scores = self.v(torch.tanh(projected))[..., 0]\n"
        "        scores = torch.where(mask, scores, torch.full_like(scores, -1e9))\n"
        "        weights = scores.softmax(dim=-1)\n"
        "        context = torch.einsum('ns,nsh->nh', weights, keys)\n")),
    Alternative("dot: einsum and a where-mask", cell="dot_product_attention", solution=(
        "    scores = torch.einsum('nle,nse->nls', query, keys)\n"
        "    if scale:\n"
        "        scores = scores * query.shape[-1] ** -0.5\n"
        "    if mask is not None:\n"
        "        full = mask.unsqueeze(1).expand_as(scores) if mask.dim() == 2 else mask\n"
        "        scores = torch.where(full, scores, torch.tensor(float('-inf'), dtype=scores.dtype))\n"
        "    weights = F.softmax(scores, dim=2)\n"
        "    out = torch.einsum('nls,nsv->nlv', weights, values)\n"
        "    return out, weights\n")),
    Alternative("encoder: sort by length, pack sorted, unsort", cell="encoder", find=(
        "        lengths = src_mask.sum(dim=1).cpu()\n"
        "        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(src), lengths, batch_first=True,\n"
        "                                                   enforce_sorted=False)\n"
        "        out, h_n = self.rnn(packed)\n"
        "        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])\n"),
        replace=(
        "        lengths = src_mask.sum(dim=1)\n"
        "        order = torch.argsort(lengths, descending=True)\n"
        "        unsort = torch.argsort(order)\n"
        "        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(src[order]), lengths[order].cpu(),\n"
        "                                                   batch_first=True)\n"
        "        out, h_n = self.rnn(packed)\n"
        "        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])\n"
        "        out, h_n = out[unsort], h_n[:, unsort]\n")),
    Alternative("decoder: preallocated outputs", cell="decoder", find=(
        "        s, all_logits, all_weights = s0, [], []\n"
        "        for t in range(tgt_in.shape[1]):\n"
        "            logits, s, weights = self.step(tgt_in[:, t], s, enc_outputs, src_mask)\n"
        "            all_logits.append(logits)\n"
        "            all_weights.append(weights)\n"
        "        return torch.stack(all_logits, dim=1), torch.stack(all_weights, dim=1)\n"), replace=(
        "        N, T = tgt_in.shape\n"
        "        logits = enc_outputs.new_zeros(N, T, self.out.out_features)\n"
        "        weights = enc_outputs.new_zeros(N, T, enc_outputs.shape[1])\n"
        "        s = s0\n"
        "        for t in range(T):\n"
        "            logits[:, t], s, weights[:, t] = self.step(tgt_in[:, t], s, enc_outputs, src_mask)\n"
        "        return logits, weights\n")),
    Alternative("greedy: run max_len steps, then cut after the last <end>", cell="greedy_decode", solution=(
        "    enc_outputs, s = model.encoder(src, src_mask)\n"
        "    N, S = src.shape\n"
        "    tokens = torch.full((N, max_len), pad_id, dtype=torch.long)\n"
        "    weights = torch.zeros(N, max_len, S, dtype=enc_outputs.dtype)\n"
        "    y = torch.full((N,), start_id, dtype=torch.long)\n"
        "    alive = [True] * N\n"
        "    for t in range(max_len):\n"
        "        logits, s, w = model.decoder.step(y, s, enc_outputs, src_mask)\n"
        "        y = logits.argmax(dim=-1)\n"
        "        for n in range(N):\n"
        "            if alive[n]:\n"
        "                tokens[n, t] = y[n]\n"
        "                weights[n, t] = w[n].detach()\n"
        "                alive[n] = int(y[n]) != end_id\n"
        "        if not any(alive):\n"
        "            return tokens[:, :t + 1], weights[:, :t + 1]\n"
        "    return tokens, weights\n")),
    Alternative("loss: log_softmax, gather and a mask", cell="seq2seq_loss", solution=(
        "    logits, _ = model(batch['src'], batch['src_mask'], batch['tgt_in'])\n"
        "    log_probs = torch.log_softmax(logits, dim=-1)\n"
        "    picked = log_probs.gather(2, batch['tgt_out'].unsqueeze(2)).squeeze(2)\n"
        "    real = (batch['tgt_out'] != PAD_ID).to(picked.dtype)\n"
        "    return -(picked * real).sum() / real.sum()\n")),
]
