"""Unit tests of graders.a1_rnn_numpy: the checks pass the reference solution (loaded from the
solution notebook's cells, so there is one copy of it), fail realistic wrong code with the
expected message, report exceptions with the function and the case, reject bad arguments, and
give no credit to functions that run torch (NUMPY_ONLY)."""
import ast
import re
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from graders import a1_rnn_numpy as G
from graders.core import CheckFailure, IntegrityFailure
from helpers.gradient_flow import rnn_backward_torch, rnn_forward_torch
from helpers.text import CharVocab, load_corpus, tbptt_batches, train_val_split

NOTEBOOK = Path(__file__).resolve().parents[2] / "solutions" / "a1_rnn_numpy" / "a1_rnn_numpy.ipynb"
CELLS = ["rnn_step_forward", "rnn_step_backward", "rnn_forward", "rnn_backward", "word_embedding_forward",
         "word_embedding_backward", "temporal_affine_forward", "temporal_affine_backward", "temporal_softmax_loss",
         "char_lm_loss", "clip_grad_norm", "train_char_lm", "sample"]


def _notebook_cells():
    return {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nbformat.read(NOTEBOOK, 4).cells}


def _reference():
    cells = _notebook_cells()
    namespace = {"np": np, "tbptt_batches": tbptt_batches}
    for gid in CELLS:
        exec(compile(cells[gid].source, gid, "exec"), namespace)
    return namespace


R = _reference()
step_fwd, step_bwd = R["rnn_step_forward"], R["rnn_step_backward"]
rnn_fwd, rnn_bwd = R["rnn_forward"], R["rnn_backward"]
emb_fwd, emb_bwd = R["word_embedding_forward"], R["word_embedding_backward"]
aff_fwd, aff_bwd, softmax_loss, sample = (R["temporal_affine_forward"], R["temporal_affine_backward"],
                                          R["temporal_softmax_loss"], R["sample"])
lm_loss, clip = R["char_lm_loss"], R["clip_grad_norm"]


def blank(*args, **kwargs):
    raise NotImplementedError()


# ---------------------------------------------------------------- the reference passes
def test_reference_passes_every_layer_check_at_default_and_edge_sizes():
    assert G.check_rnn_step_forward.__wrapped__(step_fwd)["next_h"] < 1e-12
    for sizes in ({}, {"N": 1, "D": 2, "H": 7, "seed": 1}):
        errors = G.check_rnn_step_backward.__wrapped__(step_fwd, step_bwd, **sizes)
        assert list(errors) == ["dx", "dprev_h", "dWx", "dWh", "db"] and max(errors.values()) < 1e-12
    assert G.check_rnn_forward.__wrapped__(rnn_fwd, N=1, T=1)["h"] < 1e-12
    for sizes in ({}, {"N": 1, "T": 1, "D": 3, "H": 2, "seed": 1}, {"T": 9, "D": 2, "H": 6}):
        assert max(G.check_rnn_backward.__wrapped__(rnn_fwd, rnn_bwd, **sizes).values()) < 1e-12
    assert G.check_word_embedding_forward.__wrapped__(emb_fwd)["out"] == 0
    for sizes in ({}, {"N": 1, "T": 1}, {"N": 5, "T": 8, "V": 4, "D": 6}):
        assert G.check_word_embedding_backward.__wrapped__(emb_fwd, emb_bwd, **sizes)["dW"] < 1e-12
    assert G.check_temporal_affine_forward.__wrapped__(aff_fwd, N=1, T=1)["out"] < 1e-12
    assert max(G.check_temporal_affine_backward.__wrapped__(aff_fwd, aff_bwd).values()) < 1e-12


@pytest.mark.parametrize("kwargs", [{}, {"mask_p": 0.0, "N": 1, "T": 1}, {"mask_p": 1.0}, {"scale": 1e-6},
                                    {"scale": 1000.0}, {"scale": 1e5, "seed": 3}])
def test_reference_softmax_loss_passes_at_every_mask_and_magnitude(kwargs):
    errors = G.check_temporal_softmax_loss.__wrapped__(softmax_loss, **kwargs)
    assert set(errors) == {"loss", "dx"} and max(errors.values()) < 1e-12


def test_checks_print_ok_lines_and_return_none(capsys):
    assert G.check_rnn_step_forward(step_fwd) is None
    assert "ok    rnn_step_forward: next_h relative error" in capsys.readouterr().out
    assert G.check_sample(sample, n_draws=300, tv_tol=0.15) is None
    out = capsys.readouterr().out
    assert "ok    sample: first character at temperature 0.5: total variation" in out
    assert "greedy text (temperature 0)" in out


def test_checks_do_not_let_a_student_change_the_oracle_inputs():
    def vandal(x, prev_h, Wx, Wh, b):  # correct result, then it scribbles over its inputs
        result = step_fwd(x, prev_h, Wx, Wh, b)
        for array in (x, prev_h, Wx, Wh, b):
            array[...] = 0
        return np.array(result[0]), result[1]

    G.check_rnn_step_forward(vandal)


# ---------------------------------------------------------------- NumPy only
def test_torch_stand_ins_get_an_integrity_failure_and_numpy_does_not():
    with pytest.raises(IntegrityFailure, match=r"^INTEGRITY: rnn_forward ran torch"):
        G.check_rnn_forward(rnn_forward_torch)

    def numpy_forward(x, h0, Wx, Wh, b):  # NumPy forward; the backward re-runs torch (a cheat)
        return rnn_fwd(x, h0, Wx, Wh, b)[0], (x, h0, Wx, Wh, b)

    def torch_backward(dh, cache):
        return rnn_backward_torch(dh, rnn_forward_torch(*cache)[1])

    with pytest.raises(IntegrityFailure, match=r"^INTEGRITY: rnn_backward ran torch"):
        G.check_rnn_backward(numpy_forward, torch_backward)
    oracle_step = lambda *a: (G.oracle_rnn_step_forward(*a), None)  # noqa: E731
    with pytest.raises(IntegrityFailure, match=r"^INTEGRITY: rnn_step_forward ran torch"):
        G.check_rnn_step_forward(oracle_step)

    def oracle_sample(params, vocab, prefix, length, temperature=1.0, rng=None):
        probs = G.oracle_next_char_probs(params, vocab.encode(prefix))
        return vocab.chars[int(np.argmax(probs))] * length

    with pytest.raises(IntegrityFailure, match="sample"):
        G.check_sample(oracle_sample, n_draws=10)
    with pytest.raises(IntegrityFailure, match=r"^INTEGRITY: char_lm_loss ran torch"):
        G.check_char_lm_loss(G.oracle_char_lm_loss)

    def torch_clip(grads, max_norm):
        clipped, total = G.oracle_clip_grad_norm(grads, max_norm)
        grads.update(clipped)
        return total

    with pytest.raises(IntegrityFailure, match=r"^INTEGRITY: clip_grad_norm ran torch"):
        G.check_clip_grad_norm(torch_clip)
    G.check_char_lm_loss(lm_loss)
    G.check_clip_grad_norm(clip)
    # the NumPy reference raises no alarm
    G.check_rnn_forward(rnn_fwd)
    G.check_rnn_backward(rnn_fwd, rnn_bwd)
    G.check_rnn_step_forward(step_fwd)
    assert G.NUMPY_ONLY is True


def test_every_student_call_passes_numpy_only_a_case_and_a_hint():
    source = Path(G.__file__).read_text()
    calls = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)
             and ast.unparse(node.func) == "core.call"]
    assert len(calls) == 16  # 2 per forward (its check and its backward's), 1 per backward, losses, clip, sample
    for node in calls:
        keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
        assert keywords.get("numpy_only") == "NUMPY_ONLY" and "case" in keywords and "hint" in keywords


# ---------------------------------------------------------------- failures are readable
@pytest.mark.parametrize("check, args, function", [
    (G.check_rnn_step_forward, (blank,), "rnn_step_forward"),
    (G.check_rnn_step_backward, (step_fwd, blank), "rnn_step_backward"),
    (G.check_rnn_forward, (blank,), "rnn_forward"),
    (G.check_rnn_backward, (rnn_fwd, blank), "rnn_backward"),
    (G.check_word_embedding_forward, (blank,), "word_embedding_forward"),
    (G.check_word_embedding_backward, (emb_fwd, blank), "word_embedding_backward"),
    (G.check_temporal_affine_forward, (blank,), "temporal_affine_forward"),
    (G.check_temporal_affine_backward, (aff_fwd, blank), "temporal_affine_backward"),
    (G.check_temporal_softmax_loss, (blank,), "temporal_softmax_loss"),
    (G.check_char_lm_loss, (blank,), "char_lm_loss"),
    (G.check_clip_grad_norm, (blank,), "clip_grad_norm"),
    (G.check_sample, (blank,), "sample")])
def test_a_stub_fails_as_not_implemented(check, args, function):
    with pytest.raises(CheckFailure, match=f"^{function}: not implemented yet"):
        check(*args)


def test_an_exception_names_the_function_the_case_and_a_hint():
    def crashes(dh, cache):
        return np.zeros((2, 2)) @ np.zeros((3, 3))

    with pytest.raises(CheckFailure) as failure:
        G.check_rnn_backward(rnn_fwd, crashes, N=1, T=1, D=2, H=3, seed=4)
    message = str(failure.value)
    assert message.startswith("rnn_backward: raised ValueError")
    assert "(case: N=1, T=1, D=2, H=3, dtype=float64)" in message and "\nHint: dh is (N, T, H)" in message
    with pytest.raises(CheckFailure, match=r"sample: raised KeyError.*case: prefix='abca', length=12, temperature"):
        G.check_sample(lambda params, *a, **k: params["missing"])
    with pytest.raises(CheckFailure, match=r"mask=\d+ of 12 True, score scale=1.0"):
        G.check_temporal_softmax_loss(lambda x, y, mask: 1 / 0)


def test_step_forward_wrong_versions_fail():
    transposed = lambda x, h, Wx, Wh, b: step_fwd(x, h, Wx, Wh.T, b)  # noqa: E731
    with pytest.raises(CheckFailure, match=r"next_h: relative error .*\nHint: next_h = tanh"):
        G.check_rnn_step_forward(transposed)
    bias_outside = lambda x, h, Wx, Wh, b: (np.tanh(x @ Wx + h @ Wh) + b, None)  # noqa: E731
    with pytest.raises(CheckFailure, match="b is inside the tanh"):
        G.check_rnn_step_forward(bias_outside)
    with pytest.raises(CheckFailure, match=r"tuple of 2 values \(next_h, cache\), got ndarray"):
        G.check_rnn_step_forward(lambda *a: step_fwd(*a)[0])
    with pytest.raises(CheckFailure, match="got None"):
        G.check_rnn_step_forward(lambda *a: (None, None))
    with pytest.raises(CheckFailure, match="expected a function or class, got int"):
        G.check_rnn_step_forward(3)


def test_step_backward_wrong_versions_fail():
    def no_batch_sum(dout, cache):
        dx, dh, dWx, dWh, db = step_bwd(dout, cache)
        return dx, dh, dWx, dWh, np.tile(db / 3, (3, 1))

    with pytest.raises(CheckFailure, match=r"rnn_step_backward: db: expected shape \(4,\)"):
        G.check_rnn_step_backward(step_fwd, no_batch_sum)

    def transposed_dWh(dout, cache):
        dx, dh, dWx, dWh, db = step_bwd(dout, cache)
        return dx, dh, dWx, dWh.T, db

    with pytest.raises(CheckFailure, match="rnn_step_backward: dWh"):
        G.check_rnn_step_backward(step_fwd, transposed_dWh)


def test_rnn_checks_catch_off_by_one_and_dropped_gradient():
    def shifted(x, h0, Wx, Wh, b):
        h, cache = rnn_fwd(x, h0, Wx, Wh, b)
        return np.concatenate([h0[:, None], h[:, :-1]], axis=1), cache

    with pytest.raises(CheckFailure, match="rnn_forward: h: relative error"):
        G.check_rnn_forward(shifted)

    def last_step_only(dh, cache):  # the gradient of the final step's loss only
        masked = np.zeros_like(dh)
        masked[:, -1] = dh[:, -1]
        return rnn_bwd(masked, cache)

    with pytest.raises(CheckFailure, match="rnn_backward: dx.*\nHint: at step t the upstream gradient"):
        G.check_rnn_backward(rnn_fwd, last_step_only)


def test_embedding_and_affine_mistakes_fail():
    def overwrite(dout, cache):
        x, shape = cache
        dW = np.zeros(shape)
        dW[x] = dout
        return dW

    with pytest.raises(CheckFailure, match="SUM of its gradients"):
        G.check_word_embedding_backward(emb_fwd, overwrite)
    with pytest.raises(CheckFailure, match="word_embedding_forward: out: expected shape"):
        G.check_word_embedding_forward(lambda x, W: (W[x.reshape(-1)], None))

    def db_over_batch_only(dout, cache):
        dx, dw, _ = aff_bwd(dout, cache)
        return dx, dw, dout.sum(axis=0)

    with pytest.raises(CheckFailure, match=r"temporal_affine_backward: db: expected shape \(5,\)"):
        G.check_temporal_affine_backward(aff_fwd, db_over_batch_only)


def test_softmax_loss_checks_mask_normalisation_and_stability():
    with pytest.raises(CheckFailure, match="loss"):
        G.check_temporal_softmax_loss(lambda x, y, m: softmax_loss(x, y, np.ones_like(m)))
    with pytest.raises(CheckFailure, match="loss"):
        G.check_temporal_softmax_loss(lambda x, y, m: (softmax_loss(x, y, m)[0] / x.shape[1], softmax_loss(x, y, m)[1]))

    def per_kept_step(x, y, mask):  # averages over the kept steps: 0/0 when nothing is kept
        loss, dx = softmax_loss(x, y, mask)
        with np.errstate(invalid="ignore", divide="ignore"):
            return loss * x.shape[0] / mask.sum(), dx
    with pytest.raises(CheckFailure, match="loss"):
        G.check_temporal_softmax_loss(per_kept_step, mask_p=1.0)

    def naive(x, y, mask):  # no max subtraction: overflows for large scores
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            p = np.exp(x) / np.exp(x).sum(-1, keepdims=True)
            loss = -np.sum(np.log(np.take_along_axis(p, y[..., None], -1))[..., 0] * mask) / x.shape[0]
        return loss, softmax_loss(x, y, mask)[1]

    G.check_temporal_softmax_loss(naive)  # fine on ordinary scores
    with pytest.raises(CheckFailure, match="NaN|relative error"):
        G.check_temporal_softmax_loss(naive, scale=1000.0)


# ---------------------------------------------------------------- arguments
@pytest.mark.parametrize("kwargs, match", [({"N": 0}, "N"), ({"seed": -1}, "seed"), ({"D": 1.5}, "D"),
                                           ({"H": True}, "H")])
def test_bad_sizes_raise_value_errors_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=f"^{match} must be"):
        G.check_rnn_step_forward(step_fwd, **kwargs)


@pytest.mark.parametrize("call, match", [
    (lambda: G.check_temporal_softmax_loss(softmax_loss, mask_p=2), "mask_p"),
    (lambda: G.check_temporal_softmax_loss(softmax_loss, scale=0), "scale"),
    (lambda: G.check_temporal_softmax_loss(softmax_loss, scale=float("nan")), "scale"),
    (lambda: G.check_sample(sample, prefix="xyz"), "prefix"),
    (lambda: G.check_sample(sample, prefix=""), "prefix"),
    (lambda: G.check_sample(sample, n_draws=1), "n_draws"),
    (lambda: G.check_sample(sample, tv_tol=0), "tv_tol"),
    (lambda: G.check_sample(sample, length=0), "length"),
    (lambda: G.check_char_lm({}, margin=-1), "margin"),
    (lambda: G.check_char_lm_loss(lm_loss, V=0), "V"),
    (lambda: G.check_clip_grad_norm(clip, max_norm=0), "max_norm"),
    (lambda: G.check_clip_grad_norm(clip, ratio=-1), "ratio"),
    (lambda: G.oracle_clip_grad_norm({}, 1.0), "grads"),
    (lambda: G.oracle_clip_grad_norm({"a": np.array(["x"])}, 1.0), "grads"),
    (lambda: G.oracle_char_lm_loss({"Wx": np.zeros((2, 2))}, np.zeros((1, 1), int), np.zeros((1, 1), int),
                                   np.zeros((1, 2))), "missing"),
    (lambda: G.oracle_char_lm_loss(G._tiny_char_lm(0), np.zeros((1, 2), int), np.zeros((1, 3), int),
                                   np.zeros((1, 6))), "same shape"),
    (lambda: G.oracle_temporal_softmax_loss(np.zeros((1, 2, 3)), np.zeros((1, 2), int), np.ones((2, 1), bool)), "mask"),
    (lambda: G.oracle_word_embedding_forward(np.array([[5]]), np.zeros((3, 2))), "x"),
    (lambda: G.oracle_rnn_step_forward(np.zeros((1, 2)), np.zeros((1, 3)), np.zeros(2), np.zeros((3, 3)),
                                       np.zeros(3)), "Wx"),
    (lambda: G.oracle_next_char_probs(G._tiny_char_lm(0), [0], 0), "temperature"),
    (lambda: G.bigram_loss(np.arange(5), np.arange(5), 5, alpha=0), "alpha"),
    (lambda: G.bigram_loss(np.arange(6), np.arange(5), 5), "train_ids"),
    (lambda: G.bigram_loss(np.arange(5), np.arange(3), 5, n_streams=5), "too short")])
def test_bad_arguments_raise_value_errors_naming_them(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------- self-checks and oracles
def test_self_check_prints_fail_and_does_not_raise(capsys):
    transposed = lambda x, h, Wx, Wh, b: step_fwd(x, h, Wx, Wh.T, b)  # noqa: E731
    assert G.self_check(G.check_rnn_step_forward, transposed, N=2, D=3, H=4) is None
    assert capsys.readouterr().out.startswith("FAIL  rnn_step_forward: next_h: relative error")
    G.self_check(G.check_rnn_backward, rnn_fwd, blank)
    assert capsys.readouterr().out.startswith("FAIL  rnn_backward: not implemented yet")
    G.self_check(G.check_rnn_backward, rnn_fwd, rnn_bwd, T=2)
    assert capsys.readouterr().out.endswith("all checks passed\n")
    G.report("next_h", np.ones(3), np.zeros(3), G.TOL.forward)
    assert capsys.readouterr().out.startswith("FAIL  next_h: relative error 1.00e+00")


def test_the_notebook_self_check_cells_run_and_print_ok(capsys):
    cells = _notebook_cells()
    namespace = dict(R, numerical_gradient=__import__("helpers").numerical_gradient)
    exec(cells["imports"].source, namespace)
    selfchecks = [gid for gid in cells if (gid or "").startswith("selfcheck_")]
    assert len(selfchecks) == 11
    for gid in selfchecks:
        exec(compile(cells[gid].source, gid, "exec"), namespace)
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("keep ")]
    assert len(lines) == 36 and all(line.startswith("ok    ") for line in lines), lines


def test_oracles_closed_form():
    x = np.array([[0.5, -1.0]])
    h = np.array([[0.2, 0.1, -0.3]])
    Wx, Wh, b = np.ones((2, 3)) * 0.1, np.eye(3) * 0.5, np.arange(3) * 0.1
    np.testing.assert_allclose(G.oracle_rnn_step_forward(x, h, Wx, Wh, b), np.tanh(x @ Wx + h @ Wh + b), rtol=1e-14)
    hs = G.oracle_rnn_forward(np.stack([x, 2 * x], axis=1), h, Wx, Wh, b)
    first = np.tanh(x @ Wx + h @ Wh + b)
    np.testing.assert_allclose(hs[:, 1], np.tanh(2 * x @ Wx + first @ Wh + b), rtol=1e-14)
    loss, dx = G.oracle_temporal_softmax_loss(np.zeros((2, 3, 4)), np.zeros((2, 3), int), np.ones((2, 3), bool))
    assert np.isclose(loss, 3 * np.log(4)) and np.isclose(dx.sum(), 0)
    loss, dx = G.oracle_temporal_softmax_loss(np.zeros((1, 2, 4)), np.zeros((1, 2), int), np.array([[True, False]]))
    assert np.isclose(loss, np.log(4)) and np.all(dx[0, 1] == 0)  # masked positions contribute nothing
    probs = G.oracle_next_char_probs(G._tiny_char_lm(0), [0, 1], temperature=1e-3)
    assert np.isclose(probs.sum(), 1) and probs.max() > 0.99  # a low temperature approaches greedy


# ---------------------------------------------------------------- char_lm_loss and clip_grad_norm
def test_reference_char_lm_loss_passes_at_every_size():
    for sizes in ({}, {"N": 1, "T": 1, "V": 4, "D": 2, "H": 3, "seed": 4}, {"N": 4, "T": 7, "V": 9, "D": 5, "H": 6}):
        errors = G.check_char_lm_loss.__wrapped__(lm_loss, **sizes)
        assert list(errors) == ["loss", "h_last"] + [f"grads[{k!r}]" for k in G.PARAM_SHAPES]
        assert max(errors.values()) < 1e-12


def _lm_loss_edited(kind):
    def wrong(params, x, y, h0):
        loss, grads, h_last = lm_loss(params, x, y, h0)
        if kind == "summed loss":
            return loss * x.shape[1], {k: g * x.shape[1] for k, g in grads.items()}, h_last
        if kind == "h0 returned":
            return loss, grads, h0
        if kind == "Wx and Wh swapped":
            return loss, dict(grads, Wx=grads["Wh"], Wh=grads["Wx"]), h_last
        if kind == "missing key":
            return loss, {k: g for k, g in grads.items() if k != "b_out"}, h_last
        return loss, list(grads.values()), h_last

    return wrong


@pytest.mark.parametrize("kind, match", [
    ("summed loss", r"loss \(a scalar\): relative error[\s\S]*PER CHARACTER"),
    ("h0 returned", r"h_last: relative error[\s\S]*h\[:, -1\]"),
    ("Wx and Wh swapped", r"grads\['Wx'\]: expected shape \(3, 5\), got \(5, 5\)[\s\S]*rnn_backward's dWx"),
    ("missing key", r"grads: expected a dict with the keys \['W_embed', 'W_out', 'Wh', 'Wx', 'b', 'b_out'\], got"),
    ("a list", "got list")])
def test_check_char_lm_loss_catches_wrong_losses(kind, match):
    with pytest.raises(CheckFailure, match=match):
        G.check_char_lm_loss(_lm_loss_edited(kind))


def test_oracle_char_lm_loss_closed_form():
    V, D, H = 4, 2, 3
    params = {k: np.zeros(tuple({"V": V, "D": D, "H": H}[d] for d in dims)) for k, dims in G.PARAM_SHAPES.items()}
    x, y, h0 = np.array([[0, 1, 2]]), np.array([[1, 2, 3]]), np.full((1, H), 0.5)
    loss, grads, h_last = G.oracle_char_lm_loss(params, x, y, h0)
    assert np.isclose(loss, np.log(V))  # all-zero scores: uniform predictions
    expected_b_out = np.full(V, 1 / V)  # mean over the 3 positions of softmax - onehot(y)
    expected_b_out[1:] -= 1 / 3
    np.testing.assert_allclose(grads["b_out"], expected_b_out, atol=1e-15)
    np.testing.assert_allclose(h_last, np.zeros((1, H)), atol=1e-15)  # tanh(0) with zero weights
    assert set(grads) == set(G.PARAM_SHAPES) and all(grads[k].shape == params[k].shape for k in grads)


@pytest.mark.parametrize("kwargs", [{}, {"ratio": 0.5, "seed": 4}, {"ratio": 0.0}, {"max_norm": 1.0, "ratio": 40.0},
                                    {"max_norm": 2.0, "ratio": 0.9, "V": 3, "D": 2, "H": 6}, {"max_norm": 1e-3}])
def test_reference_clip_passes_above_below_and_at_zero(kwargs):
    errors = G.check_clip_grad_norm.__wrapped__(clip, **kwargs)
    assert list(errors) == ["total_norm"] + [f"grads[{k!r}]" for k in G.PARAM_SHAPES]
    assert max(errors.values()) < 1e-12


def _clip_edited(kind):
    def wrong(grads, max_norm):
        total = float(np.sqrt(sum(np.sum(g ** 2) for g in grads.values())))
        for key, g in grads.items():
            if kind == "elementwise":
                grads[key] = np.clip(g, -max_norm, max_norm)
            elif kind == "per array":
                norm = np.sqrt(np.sum(g ** 2))
                grads[key] = g * min(1.0, max_norm / (norm + 1e-6))
            elif kind == "always":
                with np.errstate(invalid="ignore", divide="ignore"):
                    grads[key] = g * max_norm / total
            elif kind == "never stored" and total > max_norm:
                g = g * (max_norm / (total + 1e-6))  # noqa: F841 (the mistake: the clipped copy is dropped)
        return total if kind != "no return" else None

    return wrong


@pytest.mark.parametrize("kind, kwargs, match", [
    ("elementwise", {}, r"grads\['W_embed'\] after the call: relative error[\s\S]*not np.clip"),
    ("per array", {}, "relative error"), ("always", {"ratio": 0.5}, "relative error"),
    ("always", {"ratio": 0.0}, "NaN"), ("no return", {}, "total_norm.*got None"),
    ("never stored", {}, "after the call: relative error")])
def test_check_clip_grad_norm_catches_wrong_clipping(kind, kwargs, match):
    with pytest.raises(CheckFailure, match=match):
        G.check_clip_grad_norm(_clip_edited(kind), **kwargs)


def test_check_clip_grad_norm_accepts_the_exact_factor_and_new_arrays():
    def exact_factor(grads, max_norm):  # assignment 2's spec: max_norm / total_norm, no 1e-6
        total = np.sqrt(sum((g * g).sum() for g in grads.values()))
        if total >= max_norm:
            for g in grads.values():
                g *= max_norm / total
        return total

    for kwargs in ({}, {"ratio": 0.5}, {"ratio": 0.0}, {"max_norm": 1.0, "ratio": 40.0}):
        G.check_clip_grad_norm(exact_factor, **kwargs)


def test_oracle_clip_grad_norm_is_torch_and_leaves_its_input_alone():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    clipped, total = G.oracle_clip_grad_norm(grads, 1.0)
    assert total == 5.0 and np.allclose(clipped["a"], [3 / (5 + 1e-6), 0]) and np.allclose(clipped["b"], 4 / 5)
    assert grads["a"][0] == 3.0  # not changed
    unchanged, _ = G.oracle_clip_grad_norm(grads, 10.0)
    assert np.array_equal(unchanged["a"], grads["a"]) and np.array_equal(unchanged["b"], grads["b"])


# ---------------------------------------------------------------- sampling
def _wrong_sampler(kind):
    def wrong(params, vocab, prefix, length, temperature=1.0, rng=None):
        if kind == "with prefix":
            return prefix + sample(params, vocab, prefix, length, temperature, rng)
        if kind == "global rng":
            return sample(params, vocab, prefix, length, temperature, np.random.default_rng())
        if kind == "times temperature":
            return sample(params, vocab, prefix, length, 1 / temperature if temperature else 0, rng)
        params = dict(params, W_embed=params["W_embed"].copy())
        ids = vocab.encode(prefix)
        out = ""
        for _ in range(length):  # "not fed back": every step re-reads the prefix only
            out += sample(params, vocab, vocab.decode(ids), 1, temperature, rng)
        return out

    return wrong


@pytest.mark.parametrize("kind, match", [("with prefix", "str of 12 characters"), ("global rng", "rng"),
                                         ("not fed back", "greedy"), ("times temperature", "at temperature 0.5")])
def test_check_sample_catches_wrong_samplers(kind, match):
    with pytest.raises(CheckFailure, match=match):
        G.check_sample(_wrong_sampler(kind), n_draws=400)


def test_check_sample_accepts_either_character_of_a_tie_and_tv_at_the_tolerance(monkeypatch):
    vocab, params = CharVocab("abcde"), G._tiny_char_lm(0)
    params["W_out"][:, 1] = params["W_out"][:, 0]
    params["b_out"][:2] = 50.0  # 'a' and 'b' always tie for the most likely character

    def prefers_b(params, vocab, prefix, length, temperature=1.0, rng=None):
        return "b" * length

    G._check_greedy(sample, params, vocab, "abca", 6, 0)  # argmax: 'a'
    G._check_greedy(prefers_b, params, vocab, "abca", 6, 0)
    with pytest.raises(CheckFailure, match="greedy"):
        G._check_greedy(lambda *a, **k: "c" * 6, params, vocab, "abca", 6, 0)
    monkeypatch.setattr(G, "_total_variation", lambda *a: (0.1, np.zeros(5), np.zeros(5)))
    G.check_sample(sample, tv_tol=0.1)
    monkeypatch.setattr(G, "_total_variation", lambda *a: (np.nextafter(0.1, 1), np.zeros(5), np.zeros(5)))
    with pytest.raises(CheckFailure, match="total variation"):
        G.check_sample(sample, tv_tol=0.1)


# ---------------------------------------------------------------- the char-LM
def _bigram_as_rnn_params(log_p, scale=1e-3):
    """A char-LM whose prediction depends only on the current character: exactly a bigram model."""
    V = log_p.shape[0]
    return {"W_embed": np.eye(V), "Wx": np.eye(V) * scale, "Wh": np.zeros((V, V)), "b": np.zeros(V),
            "W_out": log_p / np.tanh(scale), "b_out": np.zeros(V)}


def _corpus():
    text = load_corpus()
    vocab = CharVocab.from_text(text)
    train, val = train_val_split(vocab.encode(text), 0.1)
    return vocab, train, val


def test_char_lm_val_loss_matches_bigram_for_a_bigram_network():
    rng = np.random.default_rng(0)
    V = 6
    train, val = rng.integers(0, V, 5000), rng.integers(0, V, 2001)
    counts = np.ones((V, V))
    np.add.at(counts, (train[:-1], train[1:]), 1)
    params = _bigram_as_rnn_params(np.log(counts / counts.sum(1, keepdims=True)))
    assert np.isclose(G.char_lm_val_loss(params, val, n_streams=10), G.bigram_loss(train, val, V, n_streams=10),
                      atol=1e-6)
    ids = rng.integers(0, 4, 20000)  # uniform data: an add-alpha bigram over V symbols costs about log V
    assert abs(G.bigram_loss(ids, ids[:2001], 4) - np.log(4)) < 0.02


def test_check_char_lm_rejects_bad_params_and_weak_models():
    vocab, train, _ = _corpus()
    V, D, H = vocab.size, 4, 5
    rng = np.random.default_rng(0)
    params = {"W_embed": rng.normal(size=(V, D)), "Wx": rng.normal(size=(D, H)), "Wh": rng.normal(size=(H, H)),
              "b": np.zeros(H), "W_out": rng.normal(size=(H, V)), "b_out": np.zeros(V)}
    with pytest.raises(CheckFailure, match="does not beat the bigram"):
        G.check_char_lm(params)
    for bad, match in [({k: v for k, v in params.items() if k != "Wh"}, "missing"),
                       ({**params, "b": np.zeros(H + 1)}, "shape"), ({**params, "b": np.full(H, np.nan)}, "NaN"),
                       ({**params, "W_embed": np.zeros((V - 1, D))}, "rows"), ([1, 2], "dict")]:
        with pytest.raises(CheckFailure, match=match):
            G.check_char_lm(bad)
    import torch

    with pytest.raises(IntegrityFailure, match=r"^INTEGRITY: params\['Wh'\] is a torch Tensor"):
        G.check_char_lm({**params, "Wh": torch.zeros(H, H)})
    counts = np.ones((V, V))  # the bigram model written as an RNN scores the bigram loss: no margin
    np.add.at(counts, (train[:-1], train[1:]), 1)
    with pytest.raises(CheckFailure, match="does not beat"):
        G.check_char_lm(_bigram_as_rnn_params(np.log(counts / counts.sum(1, keepdims=True))), margin=0.05)


def test_check_char_lm_margin_is_inclusive(monkeypatch, capsys):
    vocab, _, _ = _corpus()
    params = _bigram_as_rnn_params(np.zeros((vocab.size, vocab.size)))
    monkeypatch.setattr(G, "bigram_loss", lambda *a, **k: 2.5)
    monkeypatch.setattr(G, "char_lm_val_loss", lambda *a, **k: 2.5 - 0.3)
    G.check_char_lm(params, margin=0.3)
    assert "ok    char_lm: validation loss 2.200 nats/char, bigram model 2.500" in capsys.readouterr().out
    monkeypatch.setattr(G, "char_lm_val_loss", lambda *a, **k: np.nextafter(2.5 - 0.3, 3))
    with pytest.raises(CheckFailure, match="does not beat"):
        G.check_char_lm(params, margin=0.3)


def test_the_reference_char_lm_passes_with_the_numbers_the_notebook_states(monkeypatch):
    """train_md quotes the reference run: its margin and losses, that clipping never acts, the time limit."""
    prose = _notebook_cells()["train_md"].source
    margin, rnn, bigram = (float(v) for v in re.search(
        r"ends ([\d.]+) below the bigram model \(([\d.]+) against ([\d.]+) nats/char\)", prose).groups())
    largest, stated_max, max_norm = (float(v) for v in re.search(
        r"stays below (\d+) at every\s+one\s+of its 300 steps \(the largest is ([\d.]+)\), so `max_norm = (\d+)`",
        prose).groups())
    limit = int(re.search(r"time limit is (\d+) s", prose).group(1))
    assert limit == _notebook_cells()["train_run"].metadata["timeout"]
    norms = []

    def recording_clip(grads, max_norm):
        norms.append(clip(grads, max_norm))
        return norms[-1]

    monkeypatch.setitem(R, "clip_grad_norm", recording_clip)
    vocab, train, val = _corpus()
    start = time.process_time()
    params, history = R["train_char_lm"](train, vocab.size, print_every=0)
    cpu_seconds = time.process_time() - start
    assert len(history) == len(norms) == 300
    assert max(norms) < largest < max_norm and abs(max(norms) - stated_max) < 0.005  # the clipping never acts
    assert cpu_seconds < 10  # "a few seconds of CPU time"
    G.check_char_lm(params, margin=0.3)
    measured_rnn, measured_bigram = G.char_lm_val_loss(params, val), G.bigram_loss(train, val, vocab.size)
    assert abs(measured_rnn - rnn) <= 0.005 and abs(measured_bigram - bigram) <= 0.005
    assert abs((measured_bigram - measured_rnn) - margin) <= 0.005


# ---------------------------------------------------------------- the notebook's test cells
def _calls(source):
    """The keyword arguments of every grader.check_* call in a cell's source (the check's name under "check")."""
    return [{"check": ast.unparse(node.func), **{k.arg: ast.literal_eval(k.value) for k in node.keywords}}
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and ast.unparse(node.func).startswith("grader.check_")]


def _edges(call):
    """The branches a call exercises beyond the default case."""
    edges = {name for name in "NT" if call.get(name) == 1}
    edges |= {f"mask_p={call['mask_p']}" for _ in [0] if call.get("mask_p") in (0.0, 1.0)}
    edges |= {"large scores" for _ in [0] if call.get("scale", 1.0) >= 100}
    edges |= {"one-character prefix" for _ in [0] if len(call.get("prefix", "abca")) == 1}
    if call["check"] == "grader.check_clip_grad_norm":
        ratio = call.get("ratio", 3.0)
        edges.add("zero gradients" if ratio == 0 else "clipped" if ratio > 1 else "unchanged")
    return edges


def test_test_cells_reimport_the_grader_and_hide_no_branch():
    cells = _notebook_cells()
    assert "from graders import a1_rnn_numpy as grader" in cells["imports"].source
    tests = [gid for gid, c in cells.items() if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
    assert len(tests) == 13
    for gid in tests:
        source = cells[gid].source
        assert source.startswith("from graders import a1_rnn_numpy as grader\n"), gid
        assert not re.search(r"(?<![\w.])check_", source), gid
        visible, _, hidden = source.partition("### BEGIN HIDDEN TESTS")
        visible_edges = [_edges(call) for call in _calls(visible)]
        for call in _calls(hidden):
            assert any(_edges(call) <= seen for seen in visible_edges), (gid, call)
