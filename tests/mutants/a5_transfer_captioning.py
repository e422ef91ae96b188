"""Variants of a5_transfer_captioning: realistic wrong edits (each must lose exactly its `loses`)
and correct alternatives (must keep full marks).

Heavy groups (test cells tagged heavy:<group>; the grader trains inside them with the student's code):
- "probe": fits fit_linear_probe on features from extract_features (test_linear_probe);
- "finetune": fine-tunes with prepare_finetune against a scratch baseline (test_finetune);
- "plain": trains Captioner with caption_loss (test_captioner_trained);
- "attention": trains AttentionCaptioner (it holds a SpatialAttention) with the grader's own copy of the
  loss (test_attention_trained, test_localisation).
greedy_caption feeds no heavy cell: the grader decodes with its own loop.

Budget: every variant of a cell a group uses re-runs that group (probe ~3 s, fine-tuning ~10 s, each
captioner ~10-15 s on one core), so the pipeline keeps two or three mutants per graded part here, prefers
realistic mistakes that fail at the first training step where a part has them, and tests the other typical
mistakes at unit level (tests/graders/test_a5_transfer_captioning.py): among them three that train fine
and only lose a unit test, which here would each cost a full training run -- the loss counting padding,
and the attention captioner attending with the cell state c, or concatenating [context; embedding].
"""
from grading import Alternative, Mutant

HEAVY_USES = {"probe": {"extract_features", "fit_linear_probe"}, "finetune": {"prepare_finetune"},
              "plain": {"captioner", "caption_loss"}, "attention": {"spatial_attention", "attention_captioner"}}

MUTANTS = [
    # ---- extract_features
    Mutant("features: model left in train mode (batch statistics, dropout on)", cell="extract_features",
           find="    model.eval()\n", replace="",
           loses=["test_extract_features"]),
    Mutant("features: computed with autograd (no torch.no_grad)", cell="extract_features",
           find="    with torch.no_grad():\n        features", replace="    if True:\n        features",
           loses=["test_extract_features"]),
    Mutant("features: the class scores model(x) instead of the body's features", cell="extract_features",
           find="model.body(batch)", replace="model(batch)",
           loses=["test_extract_features", "test_linear_probe"]),
    # ---- fit_linear_probe
    Mutant("probe: regularised to a constant (C divided by 10,000)", cell="fit_linear_probe",
           find="LogisticRegression(C=C,", replace="LogisticRegression(C=C / 10_000,",
           loses=["test_linear_probe"]),
    Mutant("probe: class ids shifted by one", cell="fit_linear_probe",
           find="probe.fit(features, labels)", replace="probe.fit(features, labels + 1)",
           loses=["test_linear_probe"]),
    # ---- prepare_finetune
    Mutant("finetune: head not re-initialised (source weights kept)", cell="prepare_finetune",
           find="    model.head[-1] = nn.Linear(model.head[-1].in_features, n_classes)\n", replace="",
           loses=["test_prepare_finetune"]),
    Mutant("finetune: one learning rate for every group", cell="prepare_finetune",
           find='"lr": body_lr}', replace='"lr": head_lr}',
           loses=["test_prepare_finetune", "test_finetune"]),  # the grader's run checks the groups too
    # ---- Captioner
    Mutant("captioner: teacher forcing off (feeds its own argmax in forward)", cell="captioner",
           find="            s, state, _ = self.step(features, captions_in[:, t], state)\n",
           replace=("            y = captions_in[:, 0] if t == 0 else s.argmax(1)\n"
                    "            s, state, _ = self.step(features, y, state)\n"),
           loses=["test_captioner", "test_captioner_trained"]),
    Mutant("captioner: c_0 = 0 instead of tanh(init_c(mean))", cell="captioner",
           find="torch.tanh(self.init_c(mean))", replace="torch.zeros_like(self.init_c(mean))",
           loses=["test_captioner"]),
    # ---- caption_loss
    Mutant("loss: targets not shifted (predicts the word it reads)", cell="caption_loss",
           find="targets = captions[:, 1:]", replace="targets = captions[:, :-1]",
           loses=["test_caption_loss", "test_captioner_trained"]),
    Mutant("loss: scores and targets not flattened", cell="caption_loss",
           find="F.cross_entropy(scores.reshape(-1, scores.shape[-1]), targets.reshape(-1),",
           replace="F.cross_entropy(scores, targets,",
           loses=["test_caption_loss", "test_captioner_trained"]),
    # ---- greedy_caption
    Mutant("greedy: <END> does not stop a row", cell="greedy_caption",
           find=".masked_fill(done, NULL_ID)", replace="",
           loses=["test_greedy_caption"]),
    Mutant("greedy: the state is not carried (every step from init_state)", cell="greedy_caption",
           find="            scores, state, _ = model.step(features, y, state)\n",
           replace="            scores, _, _ = model.step(features, y, state)\n",
           loses=["test_greedy_caption"]),
    # ---- SpatialAttention
    Mutant("attention: softmax over the batch instead of the grid cells", cell="spatial_attention",
           find="alpha = torch.softmax(scores, dim=1)", replace="alpha = torch.softmax(scores, dim=0)",
           loses=["test_spatial_attention", "test_attention_captioner", "test_attention_trained",
                  "test_localisation"]),
    Mutant("attention: grid flattened column by column", cell="spatial_attention",
           find="cells = features.flatten(2).transpose(1, 2)", replace="cells = features.transpose(2, 3).flatten(2)"
                                                                        ".transpose(1, 2)",
           loses=["test_spatial_attention", "test_attention_captioner", "test_localisation"]),
    # ---- AttentionCaptioner
    Mutant("attention captioner: the LSTM cell is fed the embedding only (no context)", cell="attention_captioner",
           find="self.cell(torch.cat([self.embedding(y_prev), context], dim=1), state)",
           replace="self.cell(self.embedding(y_prev), state)",
           loses=["test_attention_captioner", "test_attention_trained", "test_localisation"]),
    Mutant("attention captioner: the output layer reads h only (no context)", cell="attention_captioner",
           find="self.out(torch.cat([h, context], dim=1))", replace="self.out(h)",
           loses=["test_attention_captioner", "test_attention_trained", "test_localisation"]),
]

ALTERNATIVES = [
    Alternative("features: eval via a deep copy, one forward pass per batch in a loop", cell="extract_features",
                solution=("    frozen = copy.deepcopy(model).eval()\n"
                          "    parts = []\n"
                          "    for start in range(0, len(images), batch_size):\n"
                          "        with torch.no_grad():\n"
                          "            parts.append(frozen.body(images[start:start + batch_size]))\n"
                          "    return torch.cat(parts)\n")),
    Alternative("probe: LinearSVC on standardised features", cell="fit_linear_probe",
                solution=("    from sklearn.svm import LinearSVC\n"
                          "    return make_pipeline(StandardScaler(), LinearSVC(C=0.01)).fit(features, labels)\n")),
    Alternative("finetune: groups by parameter name, head first", cell="prepare_finetune",
                solution=("    old = model.head[-1]\n"
                          "    model.head[-1] = nn.Linear(old.in_features, n_classes)\n"
                          "    named = list(model.named_parameters())\n"
                          "    head = [p for n, p in named if n.startswith('head.')]\n"
                          "    body = [p for n, p in named if not n.startswith('head.')]\n"
                          "    groups = [{'params': head, 'lr': head_lr}, {'params': body, 'lr': body_lr}]\n"
                          "    return torch.optim.AdamW(groups, weight_decay=weight_decay)\n")),
    Alternative("captioner: forward with nn.LSTM-free unrolled cell calls, embeddings looked up once",
                cell="captioner",
                find=("        state, scores = self.init_state(features), []\n"
                      "        for t in range(captions_in.shape[1]):\n"
                      "            s, state, _ = self.step(features, captions_in[:, t], state)\n"
                      "            scores.append(s)\n"
                      "        return torch.stack(scores, dim=1), None\n"),
                replace=("        h, c = self.init_state(features)\n"
                         "        embedded = self.embedding(captions_in)\n"
                         "        image = features.mean(dim=(2, 3))\n"
                         "        outputs = []\n"
                         "        for t in range(embedded.shape[1]):\n"
                         "            h, c = self.cell(torch.cat([embedded[:, t], image], 1), (h, c))\n"
                         "            outputs.append(h)\n"
                         "        return self.out(torch.stack(outputs, dim=1)), None\n")),
    Alternative("loss: log_softmax + gather, averaged over the mask", cell="caption_loss",
                solution=("    scores, _ = model(features, captions[:, :-1])\n"
                          "    targets = captions[:, 1:]\n"
                          "    logp = scores.log_softmax(-1).gather(2, targets.unsqueeze(2)).squeeze(2)\n"
                          "    real = targets != NULL_ID\n"
                          "    return -(logp * real).sum() / real.sum()\n")),
    Alternative("greedy: fixed-length loop, then cut after the last <END>", cell="greedy_caption",
                solution=("    state = model.init_state(features)\n"
                          "    y = torch.full((features.shape[0],), START_ID, dtype=torch.long)\n"
                          "    out = []\n"
                          "    with torch.no_grad():\n"
                          "        for _ in range(max_len):\n"
                          "            scores, state, _ = model.step(features, y, state)\n"
                          "            y = scores.argmax(1)\n"
                          "            out.append(y)\n"
                          "    tokens = torch.stack(out, 1)\n"
                          "    ended = (tokens == END_ID).long().cumsum(1)\n"
                          "    tokens[(ended - (tokens == END_ID).long()) > 0] = NULL_ID\n"
                          "    has_end = (tokens == END_ID).any(1)\n"
                          "    if has_end.all():\n"
                          "        tokens = tokens[:, :int((tokens == END_ID).float().argmax(1).max()) + 1]\n"
                          "    return tokens\n")),
    Alternative("attention: einsum and torch.where", cell="spatial_attention",
                find=("        cells = features.flatten(2).transpose(1, 2)"
                      "                              # (N, L, C)\n"
                      "        scores = self.v(torch.tanh(self.W_h(h)[:, None] + self.W_f(cells))).squeeze(2)"
                      "  # (N, L)\n"
                      "        if mask is not None:\n"
                      "            scores = scores.masked_fill(~mask.reshape(N, -1), float(\"-inf\"))\n"
                      "        alpha = torch.softmax(scores, dim=1)\n"
                      "        context = torch.bmm(alpha[:, None], cells).squeeze(1)\n"),
                replace=("        cells = features.reshape(N, C, Hg * Wg).permute(0, 2, 1)\n"
                         "        scores = self.v(torch.tanh(self.W_f(cells) + self.W_h(h).unsqueeze(1)))[..., 0]\n"
                         "        if mask is not None:\n"
                         "            keep = mask.reshape(N, -1)\n"
                         "            scores = torch.where(keep, scores, torch.full_like(scores, -1e30))\n"
                         "        alpha = scores.softmax(-1)\n"
                         "        context = torch.einsum('nl,nlc->nc', alpha, cells)\n")),
    Alternative("attention captioner: forward writes into preallocated tensors", cell="attention_captioner",
                find=("        state, scores, alphas = self.init_state(features), [], []\n"
                      "        for t in range(captions_in.shape[1]):\n"
                      "            s, state, alpha = self.step(features, captions_in[:, t], state)\n"
                      "            scores.append(s)\n"
                      "            alphas.append(alpha)\n"
                      "        return torch.stack(scores, dim=1), torch.stack(alphas, dim=1)\n"),
                replace=("        N, T = captions_in.shape\n"
                         "        state = self.init_state(features)\n"
                         "        scores = features.new_zeros(N, T, self.out.out_features)\n"
                         "        alphas = features.new_zeros(N, T, *features.shape[2:])\n"
                         "        for t in range(T):\n"
                         "            step = self.step(features, captions_in[:, t], state)\n"
                         "            scores[:, t], state, alphas[:, t] = step\n"
                         "        return scores, alphas\n")),
]
