"""Variants of a2_lstm_numpy: realistic wrong edits (each must lose exactly the listed test cells)
and correct alternatives (must keep full marks). Checked by tests/pipeline/test_grading.py."""
from grading import Alternative, Mutant

# The long-range training cells call lstm_forward / lstm_backward, which call the step functions.
# "benchmark" is Part 8's ungraded timing cell: no graded cell reads it, so no variant runs it (it
# times the Part 2 and Part 8 functions for the student, and skips itself while autograding).
# dWh overwritten instead of accumulated loses only test_lstm_backward while the training passes: tested at
# unit level (tests/graders/test_a2_lstm_numpy.py) rather than at the cost of a training run.
HEAVY_USES = {"recall": {"lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward"},
              "benchmark": set()}

# Part 8 is optional and has no test cell.
UNGRADED = {"lstm_forward_fast": "optional part 8, ungraded", "lstm_backward_fast": "optional part 8, ungraded"}

LSTM_ALL = ["test_lstm_step_forward", "test_lstm_step_backward", "test_lstm_forward", "test_lstm_backward",
            "test_gradient_flow", "test_long_range"]
LSTM_BACKWARD = ["test_lstm_step_backward", "test_lstm_backward", "test_gradient_flow", "test_long_range"]

MUTANTS = [
    # ---- lstm_step_forward
    Mutant("lstm step: gate order i, f, o, g", cell="lstm_step_forward",
           find="    g = np.tanh(a[:, 2 * H:3 * H])\n    o = sigmoid(a[:, 3 * H:])",
           replace="    g = np.tanh(a[:, 3 * H:])\n    o = sigmoid(a[:, 2 * H:3 * H])",
           loses=LSTM_ALL),
    Mutant("lstm step: next_h = o * c (tanh of the cell missing)", cell="lstm_step_forward",
           find="tanh_c = np.tanh(next_c)", replace="tanh_c = next_c",
           loses=LSTM_ALL),
    # ---- lstm_step_backward
    Mutant("lstm step backward: tanh(c) derivative missing", cell="lstm_step_backward",
           find="dnext_h * o * (1 - tanh_c ** 2)", replace="dnext_h * o",
           loses=LSTM_BACKWARD),
    Mutant("lstm step backward: dprev_c missing the forget gate", cell="lstm_step_backward",
           find="dprev_c = dc * f", replace="dprev_c = dc",
           loses=["test_lstm_step_backward", "test_lstm_backward", "test_gradient_flow"]),
    # ---- lstm_forward
    Mutant("lstm forward: h[:, t] stores the state before step t (off by one)", cell="lstm_forward",
           find="        prev_h, prev_c, step_cache = lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)\n"
                "        h[:, t] = prev_h\n",
           replace="        h[:, t] = prev_h\n"
                   "        prev_h, prev_c, step_cache = lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)\n",
           loses=["test_lstm_forward"]),
    Mutant("lstm forward: cell state reset at every step", cell="lstm_forward",
           find="x[:, t], prev_h, prev_c, Wx", replace="x[:, t], prev_h, np.zeros_like(prev_c), Wx",
           loses=["test_lstm_forward", "test_lstm_backward", "test_gradient_flow", "test_long_range"]),
    # ---- lstm_backward
    Mutant("lstm backward: upstream dh[:, t] overwrites the gradient from step t+1", cell="lstm_backward",
           find="lstm_step_backward(dh[:, t] + dprev_h, dprev_c, cache[t])",
           replace="lstm_step_backward(dh[:, t], dprev_c, cache[t])",
           loses=["test_lstm_backward", "test_gradient_flow"]),
    Mutant("lstm backward: cell gradient not carried to the previous step", cell="lstm_backward",
           find="lstm_step_backward(dh[:, t] + dprev_h, dprev_c, cache[t])",
           replace="lstm_step_backward(dh[:, t] + dprev_h, np.zeros_like(dprev_c), cache[t])",
           loses=["test_lstm_backward", "test_gradient_flow", "test_long_range"]),
    # ---- gru_step_forward
    Mutant("gru forward: reset gate applied to the input term", cell="gru_step_forward",
           find="n = np.tanh(ax[:, 2 * H:] + r * ah[:, 2 * H:])",
           replace="n = np.tanh(r * ax[:, 2 * H:] + ah[:, 2 * H:])",
           loses=["test_gru_step_forward", "test_gru_step_backward"]),
    Mutant("gru forward: reset gate applied to h before the matmul (bias outside)", cell="gru_step_forward",
           find="n = np.tanh(ax[:, 2 * H:] + r * ah[:, 2 * H:])",
           replace="n = np.tanh(ax[:, 2 * H:] + (r * prev_h) @ Wh[:, 2 * H:] + bh[2 * H:])",
           loses=["test_gru_step_forward", "test_gru_step_backward"]),
    Mutant("gru forward: update gate interpolates the wrong way round", cell="gru_step_forward",
           find="next_h = (1 - z) * n + z * prev_h", replace="next_h = z * n + (1 - z) * prev_h",
           loses=["test_gru_step_forward"]),
    # ---- gru_step_backward
    Mutant("gru backward: reset gate not applied on the hidden-side n gradient", cell="gru_step_backward",
           find="dah = np.concatenate([dar, daz, dan * r], axis=1)",
           replace="dah = np.concatenate([dar, daz, dan], axis=1)",
           loses=["test_gru_step_backward"]),
    Mutant("gru backward: direct path dnext_h * z to dprev_h missing", cell="gru_step_backward",
           find="dprev_h = dnext_h * z + dah @ Wh.T", replace="dprev_h = dah @ Wh.T",
           loses=["test_gru_step_backward"]),
    Mutant("gru backward: update-gate gradient with the wrong sign", cell="gru_step_backward",
           find="dz = dnext_h * (prev_h - n)", replace="dz = dnext_h * (n - prev_h)",
           loses=["test_gru_step_backward"]),
    # ---- clip_grad_norm
    Mutant("clip: largest per-array norm instead of the global norm", cell="clip_grad_norm",
           find="float(np.sqrt(sum(np.sum(g ** 2) for g in grads)))",
           replace="float(max(np.sqrt(np.sum(g ** 2)) for g in grads))",
           loses=["test_clip_grad_norm"]),
    Mutant("clip: rescales even below the threshold", cell="clip_grad_norm",
           find="if total_norm >= max_norm:", replace="if True:",
           loses=["test_clip_grad_norm"]),
    Mutant("clip: not in place (rebinds the loop variable)", cell="clip_grad_norm",
           find="g *= scale", replace="g = g * scale",
           loses=["test_clip_grad_norm"]),
    Mutant("clip: torch's epsilon, divides by total_norm + 1e-6 (wrong for small norms)", cell="clip_grad_norm",
           find="scale = max_norm / total_norm", replace="scale = max_norm / (total_norm + 1e-6)",
           loses=["test_clip_grad_norm"]),
    Mutant("clip: new arrays put into the list instead of scaling the arrays in place", cell="clip_grad_norm",
           find="        for g in grads:\n            g *= scale",
           replace="        for k, g in enumerate(grads):\n            grads[k] = g * scale",
           loses=["test_clip_grad_norm"]),
    Mutant("clip: each array clipped by its own norm", cell="clip_grad_norm", solution=(
        "    total_norm = float(np.sqrt(sum(np.sum(g ** 2) for g in grads)))\n"
        "    for g in grads:\n"
        "        norm = np.sqrt(np.sum(g ** 2))\n"
        "        if norm >= max_norm:\n"
        "            g *= max_norm / norm\n"),
        loses=["test_clip_grad_norm"]),
    # ---- gradient_norms_through_time
    Mutant("flow: loss put on the first step instead of the last", cell="gradient_norms_through_time",
           find="dh[:, -1] = 1.0", replace="dh[:, 0] = 1.0",
           loses=["test_gradient_flow"]),
    Mutant("flow: squared norms", cell="gradient_norms_through_time",
           find="np.sqrt(np.sum(dx ** 2, axis=(0, 2)))", replace="np.sum(dx ** 2, axis=(0, 2))",
           loses=["test_gradient_flow"]),
    Mutant("flow: loss on every step", cell="gradient_norms_through_time",
           find="dh[:, -1] = 1.0", replace="dh[:] = 1.0",
           loses=["test_gradient_flow"]),
    Mutant("flow: params passed as one list (forward(x, h0, params))", cell="gradient_norms_through_time",
           find="cache = forward(x, h0, *params)", replace="cache = forward(x, h0, params)",
           loses=["test_gradient_flow"]),
    Mutant("flow: right values, but the norms computed with torch (NumPy only: integrity)",
           cell="gradient_norms_through_time",
           find="norms = np.sqrt(np.sum(dx ** 2, axis=(0, 2)))",
           replace="import torch\n    norms = torch.linalg.vector_norm(torch.as_tensor(dx), dim=(0, 2)).numpy()",
           loses=["test_gradient_flow"]),
]

ALTERNATIVES = [
    Alternative("lstm step: one matmul on [x, h], exp-based sigmoid", cell="lstm_step_forward", solution=(
        "    H = prev_h.shape[1]\n"
        "    xh = np.hstack([x, prev_h])\n"
        "    a = xh @ np.vstack([Wx, Wh]) + b\n"
        "    i, f, g, o = np.split(a, 4, axis=1)\n"
        "    i, f, o = (1 / (1 + np.exp(-v)) for v in (i, f, o))\n"
        "    g = np.tanh(g)\n"
        "    next_c = f * prev_c + i * g\n"
        "    next_h = o * np.tanh(next_c)\n"
        "    tanh_c = np.tanh(next_c)\n"
        "    cache = (x, prev_h, prev_c, Wx, Wh, i, f, g, o, tanh_c)\n")),
    Alternative("lstm step backward: gate by gate, derivatives recomputed", cell="lstm_step_backward", solution=(
        "    x, prev_h, prev_c, Wx, Wh, i, f, g, o, tanh_c = cache\n"
        "    next_c = f * prev_c + i * g\n"
        "    dc = dnext_c + dnext_h * o * (1 - np.tanh(next_c) ** 2)\n"
        "    da_i = dc * g * i * (1 - i)\n"
        "    da_f = dc * prev_c * f * (1 - f)\n"
        "    da_g = dc * i * (1 - g * g)\n"
        "    da_o = dnext_h * np.tanh(next_c) * o * (1 - o)\n"
        "    da = np.hstack([da_i, da_f, da_g, da_o])\n"
        "    dprev_c = f * dc\n"
        "    dx, dprev_h = da.dot(Wx.T), da.dot(Wh.T)\n"
        "    dWx, dWh = np.einsum('nd,nk->dk', x, da), np.einsum('nh,nk->hk', prev_h, da)\n"
        "    db = np.einsum('nk->k', da)\n")),
    Alternative("lstm forward: list of states, np.stack", cell="lstm_forward", solution=(
        "    h_t, c_t = h0, np.zeros(h0.shape)\n"
        "    hs, cache = [], []\n"
        "    for t in range(x.shape[1]):\n"
        "        h_t, c_t, step = lstm_step_forward(x[:, t, :], h_t, c_t, Wx, Wh, b)\n"
        "        hs.append(h_t)\n"
        "        cache.append(step)\n"
        "    h = np.stack(hs, axis=1)\n")),
    Alternative("lstm backward: per-step gradients collected, summed at the end", cell="lstm_backward", solution=(
        "    steps = cache\n"
        "    N, T, H = dh.shape\n"
        "    carry_h, carry_c = np.zeros((N, H)), np.zeros((N, H))\n"
        "    dxs, per_step = [None] * T, []\n"
        "    for t in range(T - 1, -1, -1):\n"
        "        dx_t, carry_h, carry_c, *dw = lstm_step_backward(carry_h + dh[:, t], carry_c, steps[t])\n"
        "        dxs[t] = dx_t\n"
        "        per_step.append(dw)\n"
        "    dx = np.stack(dxs, axis=1)\n"
        "    dWx, dWh, db = (sum(parts) for parts in zip(*per_step))\n"
        "    dh0 = carry_h\n")),
    Alternative("gru forward: weight blocks sliced per gate", cell="gru_step_forward", solution=(
        "    H = prev_h.shape[1]\n"
        "    r_, z_, n_ = slice(0, H), slice(H, 2 * H), slice(2 * H, 3 * H)\n"
        "    r = 1 / (1 + np.exp(-(x @ Wx[:, r_] + bx[r_] + prev_h @ Wh[:, r_] + bh[r_])))\n"
        "    z = 1 / (1 + np.exp(-(x @ Wx[:, z_] + bx[z_] + prev_h @ Wh[:, z_] + bh[z_])))\n"
        "    hn = prev_h @ Wh[:, n_] + bh[n_]\n"
        "    n = np.tanh(x @ Wx[:, n_] + bx[n_] + r * hn)\n"
        "    next_h = n + z * (prev_h - n)\n"
        "    cache = (x, prev_h, Wx, Wh, r, z, n, hn)\n")),
    Alternative("gru backward: hidden-side gradient assembled by slices", cell="gru_step_backward", solution=(
        "    x, prev_h, Wx, Wh, r, z, n, ah_n = cache\n"
        "    H = prev_h.shape[1]\n"
        "    dan = dnext_h * (1 - z) * (1 - n * n)\n"
        "    dax = np.empty((x.shape[0], 3 * H))\n"
        "    dax[:, :H] = dan * ah_n * r * (1 - r)\n"
        "    dax[:, H:2 * H] = dnext_h * (prev_h - n) * z * (1 - z)\n"
        "    dax[:, 2 * H:] = dan\n"
        "    dah = dax.copy()\n"
        "    dah[:, 2 * H:] *= r\n"
        "    dx, dWx, dbx = dax @ Wx.T, x.T @ dax, dax.sum(0)\n"
        "    dprev_h = dah @ Wh.T + z * dnext_h\n"
        "    dWh, dbh = prev_h.T @ dah, dah.sum(0)\n")),
    Alternative("clip: one concatenated norm, factor capped at 1, np.multiply in place", cell="clip_grad_norm",
                solution=(
        "    total_norm = float(np.linalg.norm(np.concatenate([g.ravel() for g in grads])))\n"
        "    factor = min(1.0, max_norm / total_norm)\n"
        "    for g in grads:\n"
        "        np.multiply(g, factor, out=g)\n")),
    Alternative("clip: strict inequality at the tie (factor 1 there either way)", cell="clip_grad_norm",
                find="if total_norm >= max_norm:", replace="if total_norm > max_norm:"),
    Alternative("flow: np.linalg.norm per step", cell="gradient_norms_through_time", solution=(
        "    h, cache = forward(x, h0, *params)\n"
        "    upstream = np.zeros(h.shape)\n"
        "    upstream[:, h.shape[1] - 1, :] = 1\n"
        "    dx, *_ = backward(upstream, cache)\n"
        "    norms = np.array([np.linalg.norm(dx[:, t, :]) for t in range(dx.shape[1])])\n")),
]
