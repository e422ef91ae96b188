"""Unit tests of graders.a2_lstm_numpy: the checks pass the reference solution (loaded from the
solution notebook's cells, so there is one copy of it), fail realistic wrong code with the
expected message, report exceptions with the function and the case, reject bad arguments, follow
the written clipping spec at every scale, and give no credit to functions that run torch (NUMPY_ONLY)."""
import ast
import inspect
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from graders import a2_lstm_numpy as G
from graders.core import CheckFailure, IntegrityFailure

NOTEBOOK = Path(__file__).resolve().parents[2] / "solutions" / "a2_lstm_numpy" / "a2_lstm_numpy.ipynb"
CELLS = ["sigmoid", "lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward", "gru_step_forward",
         "gru_step_backward", "clip_grad_norm", "gradient_norms_through_time"]


def _notebook_cells():
    return {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nbformat.read(NOTEBOOK, 4).cells}


def _reference():
    cells = _notebook_cells()
    namespace = {"np": np}
    for gid in CELLS:
        exec(compile(cells[gid].source, gid, "exec"), namespace)
    return namespace


R = _reference()
step_fwd, step_bwd, lstm_fwd, lstm_bwd = (R[n] for n in CELLS[1:5])
gru_fwd, gru_bwd, clip, norms_through_time = (R[n] for n in CELLS[5:])


def blank(*args, **kwargs):
    raise NotImplementedError()


def spec_clip(grads, max_norm):
    """The written spec, independent of the reference cell: exact factor, inclusive threshold."""
    total = float(np.linalg.norm(np.concatenate([np.ravel(g) for g in grads])))
    if total >= max_norm:
        for g in grads:
            g *= max_norm / total
    return total


def torch_clip(grads, max_norm):
    """The old oracle's formula: torch's clip_grad_norm_ divides by total + 1e-6."""
    total = float(np.sqrt(sum(np.sum(g ** 2) for g in grads)))
    for g in grads:
        g *= min(1.0, max_norm / (total + 1e-6))
    return total


# ---------------------------------------------------------------- the reference passes
def test_reference_passes_every_check_at_default_visible_and_hidden_sizes():
    for sizes in ({}, {"N": 1, "D": 6, "H": 2, "seed": 4}, {"N": 1, "D": 2, "H": 7, "seed": 1},
                  {"N": 6, "D": 8, "H": 3, "seed": 2}):
        assert max(G.check_lstm_step_forward.__wrapped__(step_fwd, **sizes).values()) < 1e-12
        errors = G.check_lstm_step_backward.__wrapped__(step_fwd, step_bwd, **sizes)
        assert list(errors) == ["dx", "dprev_h", "dprev_c", "dWx", "dWh", "db"] and max(errors.values()) < 1e-12
        assert G.check_gru_step_forward.__wrapped__(gru_fwd, **sizes)["next_h"] < 1e-12
        errors = G.check_gru_step_backward.__wrapped__(gru_fwd, gru_bwd, **sizes)
        assert list(errors) == ["dx", "dprev_h", "dWx", "dWh", "dbx", "dbh"] and max(errors.values()) < 1e-12
    for sizes in ({}, {"N": 1, "T": 1, "D": 4, "H": 3, "seed": 5}, {"N": 1, "T": 1, "D": 3, "H": 2, "seed": 1},
                  {"N": 3, "T": 8, "D": 2, "H": 5, "seed": 2}):
        assert G.check_lstm_forward.__wrapped__(lstm_fwd, **sizes)["h"] < 1e-12
        assert max(G.check_lstm_backward.__wrapped__(lstm_fwd, lstm_bwd, **sizes).values()) < 1e-12


def test_reference_passes_the_experiments():
    for kwargs in ({}, {"T": 1, "seed": 4}, {"T": 1, "seed": 1}, {"T": 7, "seed": 2}):
        errors = G.check_gradient_norms_through_time.__wrapped__(norms_through_time, **kwargs)
        assert set(errors) == {"norms (lstm layer)", "norms (rnn layer)"} and max(errors.values()) < 1e-12
    for kwargs in ({}, {"T": 30, "seed": 3}):
        result = G.check_gradient_flow.__wrapped__(norms_through_time, lstm_fwd, lstm_bwd, **kwargs)
        assert result["||dL/dx_t|| of your LSTM"] < 1e-12
    assert G.check_long_range(0.95, 0.3) is None


def test_checks_print_ok_lines_and_return_none(capsys):
    assert G.check_lstm_step_forward(step_fwd) is None
    assert G.check_clip_grad_norm(clip) is None
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ok    lstm_step_forward: next_h relative error")
    assert "ok    clip_grad_norm: returned total_norm (4 thresholds) relative error 0.0e+00" in lines


def test_the_notebook_self_check_cells_run_and_print_ok(capsys):
    cells = _notebook_cells()
    namespace = dict(R, grader=G)
    from helpers import numerical_gradient

    namespace["numerical_gradient"] = numerical_gradient
    for gid in [g for g in cells if g and g.startswith("selfcheck_")]:
        exec(compile(cells[gid].source, gid, "exec"), namespace)
    out = capsys.readouterr().out
    assert "FAIL" not in out and out.count("all checks passed") == 7 and out.count("ok    ") > 40


# ---------------------------------------------------------------- the protocol: calls, integrity, arguments
def test_every_student_call_passes_numpy_only_a_case_and_a_hint():
    assert G.NUMPY_ONLY is True
    source = inspect.getsource(G)
    calls = [node for node in ast.walk(ast.parse(source))
             if isinstance(node, ast.Call) and ast.unparse(node.func) == "core.call"]
    assert len(calls) >= 14
    for node in calls:
        keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
        assert keywords.get("numpy_only") == "NUMPY_ONLY" and {"name", "case", "hint"} <= set(keywords), \
            ast.unparse(node)
    for private in ("_unpack", "_torch", "_compare", "FORWARD_TOL", "BACKWARD_TOL", "_load", "_split_bias"):
        assert not hasattr(G, private)


def _oracle_lstm_forward(x, h0, Wx, Wh, b):
    return G.oracle_lstm_forward(x, h0, Wx, Wh, b), None


def _torch_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    return (*G.oracle_lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b), None)


def _torch_clip(grads, max_norm):
    tensors = [torch.nn.Parameter(torch.zeros(np.shape(g), dtype=torch.float64)) for g in grads]
    for p, g in zip(tensors, grads):
        p.grad = torch.from_numpy(g)  # shares memory: clips the NumPy arrays in place
    return float(torch.nn.utils.clip_grad_norm_(tensors, max_norm))


def _torch_norms(forward, backward, x, h0, params):
    h, cache = forward(x, h0, *params)
    dh = np.zeros_like(h)
    dh[:, -1] = 1.0
    return torch.linalg.vector_norm(torch.as_tensor(backward(dh, cache)[0]), dim=(0, 2)).numpy()


@pytest.mark.parametrize("call", [
    lambda: G.check_lstm_step_forward(_torch_step_forward),
    lambda: G.check_lstm_forward(_oracle_lstm_forward),
    lambda: G.check_lstm_backward(_oracle_lstm_forward, blank),
    lambda: G.check_gru_step_forward(lambda *a: (G.oracle_gru_step_forward(*a), None)),
    lambda: G.check_clip_grad_norm(_torch_clip, scale=100.0),
    lambda: G.check_gradient_norms_through_time(_torch_norms),
    lambda: G.check_gradient_flow(norms_through_time, _oracle_lstm_forward, blank),
    lambda: G.train_lstm(lambda fwd, bwd, params: fwd(np.zeros((1, 2, 3)), np.zeros((1, 4)), *params),
                         _oracle_lstm_forward, blank, [np.zeros((3, 16)), np.zeros((4, 16)), np.zeros(16)]),
])
def test_torch_stand_ins_get_an_integrity_failure(call):
    with pytest.raises(IntegrityFailure, match="INTEGRITY: .* NumPy only"):
        call()


def test_the_numpy_reference_gets_no_integrity_failure():
    G.check_lstm_forward(lstm_fwd)
    G.check_clip_grad_norm(clip, scale=100.0)  # the torch stand-in above computes the right values
    G.check_gradient_norms_through_time(norms_through_time)
    accuracy, losses = G.train_lstm(lambda fwd, bwd, params: (0.5, [float(fwd(np.ones((2, 3, 3)), np.zeros((2, 4)),
                                                                                  *params)[0].sum())]),
                                    lstm_fwd, lstm_bwd, [np.zeros((3, 16)), np.zeros((4, 16)), np.zeros(16)])
    assert accuracy == 0.5 and losses == [0.0]


@pytest.mark.parametrize("check, args, function", [
    (G.check_lstm_step_forward, (blank,), "lstm_step_forward"),
    (G.check_lstm_step_backward, (step_fwd, blank), "lstm_step_backward"),
    (G.check_lstm_forward, (blank,), "lstm_forward"),
    (G.check_lstm_backward, (lstm_fwd, blank), "lstm_backward"),
    (G.check_gru_step_forward, (blank,), "gru_step_forward"),
    (G.check_gru_step_backward, (gru_fwd, blank), "gru_step_backward"),
    (G.check_clip_grad_norm, (blank,), "clip_grad_norm"),
    (G.check_gradient_norms_through_time, (blank,), "gradient_norms_through_time"),
    (G.check_gradient_flow, (norms_through_time, lstm_fwd, blank), "lstm_backward"),
])
def test_a_stub_fails_as_not_implemented(check, args, function):
    with pytest.raises(CheckFailure, match=f"^{function}: not implemented yet"):
        check(*args)


def test_an_exception_names_the_function_the_case_and_a_hint():
    def broken(x, h0, Wx, Wh, b):
        return x[:, :, :, 0], None

    with pytest.raises(CheckFailure) as failure:
        G.check_lstm_forward(broken, N=1, T=1, D=4, H=3, seed=5)
    message = str(failure.value)
    assert message.startswith("lstm_forward: raised IndexError")
    assert "case: N=1, T=1, D=4, H=3, dtype=float64" in message and "Hint: walk backwards in time" in message

    def crashing_backward(dh, cache):
        raise ValueError("shapes do not align")

    with pytest.raises(CheckFailure, match=r"lstm_backward: raised ValueError: shapes do not align \(case: "
                                           r"dh=\(8, 40, 16\)\)\.\nHint: your lstm_forward"):
        G.check_gradient_flow(norms_through_time, lstm_fwd, crashing_backward)
    with pytest.raises(CheckFailure, match=r"lstm_forward: raised ValueError: boom \(case: x=\(2, 3, 3\), h0=\(2, 4\)"):
        G.train_lstm(lambda fwd, bwd, params: fwd(np.ones((2, 3, 3)), np.zeros((2, 4)), *params),
                     lambda *a: (_ for _ in ()).throw(ValueError("boom")), lstm_bwd, [1, 2, 3])


def test_wrong_return_types_fail_readably():
    with pytest.raises(CheckFailure, match=r"lstm_step_forward: expected a tuple of 3 values \(next_h, next_c, "):
        G.check_lstm_step_forward(lambda *a: step_fwd(*a)[0])
    with pytest.raises(CheckFailure, match="expected the total norm as a number, got NoneType"):
        G.check_clip_grad_norm(lambda grads, m: None)
    with pytest.raises(CheckFailure, match="expected the total norm as a number, got ndarray"):
        G.check_clip_grad_norm(lambda grads, m: np.array([spec_clip(grads, m)]))
    with pytest.raises(CheckFailure, match="expected a function or class, got NoneType"):
        G.check_lstm_forward(None)


@pytest.mark.parametrize("call, match", [
    (lambda: G.check_lstm_step_forward(step_fwd, N=0), "N must"),
    (lambda: G.check_lstm_step_backward(step_fwd, step_bwd, D=2.5), "D must"),
    (lambda: G.check_lstm_forward(lstm_fwd, T=0), "T must"),
    (lambda: G.check_lstm_backward(lstm_fwd, lstm_bwd, seed=-1), "seed must"),
    (lambda: G.check_gru_step_backward(gru_fwd, gru_bwd, H=True), "H must"),
    (lambda: G.check_clip_grad_norm(clip, shapes=[]), "shapes must"),
    (lambda: G.check_clip_grad_norm(clip, shapes=[3, 4]), "shapes must"),
    (lambda: G.check_clip_grad_norm(clip, shapes=[(0, 2)]), "shapes must"),
    (lambda: G.check_clip_grad_norm(clip, scale=0.0), "scale must"),
    (lambda: G.check_clip_grad_norm(clip, seed="1"), "seed must"),
    (lambda: G.check_gradient_norms_through_time(norms_through_time, T=0), "T must"),
    (lambda: G.check_gradient_flow(norms_through_time, lstm_fwd, lstm_bwd, seed=-2), "seed must"),
    (lambda: G.oracle_clip_grad_norm([np.ones(3)], 0.0), "max_norm must"),
    (lambda: G.oracle_gradient_norms_through_time("gru", np.ones((1, 2, 3)), np.zeros((1, 4)), []), "kind must"),
])
def test_bad_arguments_raise_value_errors_naming_them(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_self_check_prints_fail_and_does_not_raise(capsys):
    assert G.self_check(G.check_clip_grad_norm, torch_clip, seed=6, shapes=[(6,)], scale=1e-5) is None
    assert G.self_check(G.check_lstm_forward, blank, N=1, T=1, D=4, H=3, seed=5) is None
    assert G.self_check(G.check_gru_step_forward, gru_fwd, N=1, D=6, H=2, seed=4) is None
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("FAIL  clip_grad_norm (norm above max_norm;") and "relative error" in out[0]
    assert any(line.startswith("FAIL  lstm_forward: not implemented yet (it raises NotImplementedError) (case: N=1")
               for line in out)
    assert out[-1] == "all checks passed"


# ---------------------------------------------------------------- wrong layers fail with the right message
def test_lstm_mistakes_fail_with_their_hint():
    def swapped(x, h, c, Wx, Wh, b):
        H = h.shape[1]
        perm = np.r_[np.arange(H, 2 * H), np.arange(H), np.arange(2 * H, 4 * H)]  # f and i swapped
        return step_fwd(x, h, c, Wx[:, perm], Wh[:, perm], b[perm])

    with pytest.raises(CheckFailure, match=r"(?s)lstm_step_forward: next_h \(case: N=3.*i, f, g, o"):
        G.check_lstm_step_forward(swapped)

    def no_forget_in_dprev_c(dh, dc, cache):
        dx, dph, dpc, *rest = step_bwd(dh, dc, cache)
        return (dx, dph, dpc / cache[6], *rest)

    with pytest.raises(CheckFailure, match=r"(?s)lstm_step_backward: dprev_c .*Hint: the cell path"):
        G.check_lstm_step_backward(step_fwd, no_forget_in_dprev_c)

    def off_by_one(x, h0, Wx, Wh, b):
        h, cache = lstm_fwd(x, h0, Wx, Wh, b)
        return np.concatenate([h0[:, None], h[:, :-1]], axis=1), cache

    with pytest.raises(CheckFailure, match="lstm_forward: h"):
        G.check_lstm_forward(off_by_one)

    def cell_path_dropped(dh, cache):  # the highway is gone
        N, T, H = dh.shape
        dnh, dxs, total = np.zeros((N, H)), [], None
        for t in reversed(range(T)):
            dx, dnh, _, *dw = step_bwd(dh[:, t] + dnh, np.zeros((N, H)), cache[t])
            dxs.insert(0, dx)
            total = dw if total is None else [a + b for a, b in zip(total, dw)]
        return (np.stack(dxs, 1), dnh, *total)

    with pytest.raises(CheckFailure, match="lstm_backward: dx"):
        G.check_lstm_backward(lstm_fwd, cell_path_dropped)

    def dWh_overwritten(dh, cache):  # the last step's dWh only (= instead of +=)
        N, T, H = dh.shape
        dnh, dnc, dxs, dWx, dWh, db = np.zeros((N, H)), np.zeros((N, H)), [], 0, None, 0
        for t in reversed(range(T)):
            dx, dnh, dnc, dWx_t, dWh_t, db_t = step_bwd(dh[:, t] + dnh, dnc, cache[t])
            dxs.insert(0, dx)
            dWx, dWh, db = dWx + dWx_t, dWh_t, db + db_t
        return np.stack(dxs, 1), dnh, dWx, dWh, db

    with pytest.raises(CheckFailure, match="lstm_backward: dWh"):
        G.check_lstm_backward(lstm_fwd, dWh_overwritten)
    with pytest.raises(CheckFailure, match=r"gradient flow: \|\|dL/dx_t\|\| through your LSTM"):
        G.check_gradient_flow(norms_through_time, lstm_fwd, cell_path_dropped)


def test_gru_reset_gate_placement_follows_torch():
    """The spec (torch.nn.GRUCell): r multiplies h @ Wh_n + bh_n, bias included. Both other placements fail."""
    def reset_before_matmul(x, prev_h, Wx, Wh, bx, bh):
        H = prev_h.shape[1]
        ax = x @ Wx + bx
        ah = prev_h @ Wh + bh
        r = 0.5 * (1 + np.tanh(0.5 * (ax[:, :H] + ah[:, :H])))
        z = 0.5 * (1 + np.tanh(0.5 * (ax[:, H:2 * H] + ah[:, H:2 * H])))
        n = np.tanh(ax[:, 2 * H:] + (r * prev_h) @ Wh[:, 2 * H:] + bh[2 * H:])
        return (1 - z) * n + z * prev_h, None

    with pytest.raises(CheckFailure, match=r"(?s)gru_step_forward: next_h.*r \* \(h Wh_n \+ bh_n\)"):
        G.check_gru_step_forward(reset_before_matmul)
    rng = np.random.default_rng(0)
    x, h = rng.normal(size=(2, 3)), rng.normal(size=(2, 4))
    Wx, Wh, bx, bh = rng.normal(size=(3, 12)), rng.normal(size=(4, 12)), rng.normal(size=12), rng.normal(size=12)
    np.testing.assert_allclose(gru_fwd(x, h, Wx, Wh, bx, bh)[0], G.oracle_gru_step_forward(x, h, Wx, Wh, bx, bh),
                               rtol=1e-12)

    def no_reset_on_hidden_grad(dnext_h, cache):
        dx, dprev_h, dWx, dWh, dbx, dbh = gru_bwd(dnext_h, cache)
        return dx, dprev_h, dWx, dWh, dbx, dbx  # dbh_n without the factor r

    with pytest.raises(CheckFailure, match=r"gru_step_backward: dbh"):
        G.check_gru_step_backward(gru_fwd, no_reset_on_hidden_grad)


# ---------------------------------------------------------------- clipping: the written spec at every scale
def test_clip_oracle_is_the_closed_form_of_the_spec():
    rng = np.random.default_rng(0)
    for scale in (1e-6, 1e-3, 1.0, 1e6):
        grads = [rng.normal(size=(3, 4)) * scale, rng.normal(size=5) * scale]
        total = float(np.linalg.norm(np.concatenate([g.ravel() for g in grads])))
        clipped, got_total = G.oracle_clip_grad_norm(grads, 0.5 * total)
        assert got_total == pytest.approx(total, rel=1e-15)
        for g, c in zip(grads, clipped):
            np.testing.assert_allclose(c, 0.5 * g, rtol=1e-15)  # exactly tau / ||g||, no epsilon
        unchanged, _ = G.oracle_clip_grad_norm(grads, total * (1 + 1e-9))  # just below the threshold
        assert all(np.array_equal(a, b) for a, b in zip(unchanged, grads))
        tie, _ = G.oracle_clip_grad_norm(grads, got_total)  # on the threshold: scaled by exactly 1
        assert all(np.array_equal(a, b) for a, b in zip(tie, grads))
    zero, total = G.oracle_clip_grad_norm([np.zeros(3)], 1.0)
    assert total == 0.0 and np.array_equal(zero[0], np.zeros(3))
    grads = [np.ones(4)]
    G.oracle_clip_grad_norm(grads, 1.0)
    assert np.array_equal(grads[0], np.ones(4))  # inputs untouched


def test_torch_clip_agrees_with_the_spec_only_for_large_norms():
    """Why the oracle is no longer torch.nn.utils.clip_grad_norm_: it divides by ||g|| + 1e-6."""
    rng = np.random.default_rng(1)
    base = [rng.normal(size=(3, 4)), rng.normal(size=5)]
    for scale, agrees in ((100.0, True), (10.0, True), (1.0, False), (0.1, False), (0.01, False), (0.001, False)):
        grads = [g * scale for g in base]
        total = float(np.linalg.norm(np.concatenate([g.ravel() for g in grads])))
        mine = [g.copy() for g in grads]
        _torch_clip(mine, 0.3 * total)
        expected = G.oracle_clip_grad_norm(grads, 0.3 * total)[0]
        error = max(np.max(np.abs(a - b)) / np.max(np.abs(a) + np.abs(b)) for a, b in zip(mine, expected))
        assert (error <= G.TOL.forward) == agrees, (scale, error)


@pytest.mark.parametrize("scale", [1e-6, 1e-3, 0.1, 0.01, 3.0, 1e6])
def test_spec_exact_clipping_passes_at_every_scale(scale):
    for implementation in (clip, spec_clip):
        errors = G.check_clip_grad_norm.__wrapped__(implementation, seed=2, shapes=[(2, 3), (4,)], scale=scale)
        assert max(errors.values()) < 1e-14
    G.check_clip_grad_norm(clip, seed=1, shapes=[(7,)], scale=scale)


def test_either_reading_of_the_tie_is_accepted():
    def strict(grads, max_norm):
        total = float(np.sqrt(sum(np.sum(g ** 2) for g in grads)))
        if total > max_norm:
            for g in grads:
                g *= max_norm / total
        return total

    G.check_clip_grad_norm(strict)
    G.check_clip_grad_norm(strict, seed=3, shapes=[(2, 3), (4,)], scale=1e-3)


@pytest.mark.parametrize("wrong, kwargs, match", [
    (torch_clip, {"seed": 3, "shapes": [(2, 3), (4,)], "scale": 1e-3}, "norm above max_norm.*no epsilon"),
    (_torch_clip, {"scale": 1e-3}, "INTEGRITY"),
    ("always", {}, "norm below max_norm.*must not change"),
    ("rebinds", {}, "norm above max_norm.*in place"),
    ("new_arrays", {}, r"grads\[0\] was replaced by a new array"),
    ("per_array", {}, "norm above max_norm"),
    ("after", {}, "returned total_norm.*BEFORE clipping"),
    ("strict_no_tie", {}, "norm equal to max_norm"),
])
def test_wrong_clipping_fails_with_its_hint(wrong, kwargs, match):
    def norm(grads):
        return float(np.sqrt(sum(np.sum(g ** 2) for g in grads)))

    def implementation(grads, max_norm):
        total = norm(grads)
        if wrong == "always":
            for g in grads:
                g *= max_norm / total
        elif wrong == "rebinds":
            grads = [g * min(1, max_norm / total) for g in grads]
        elif wrong == "new_arrays":
            grads[:] = [g * min(1, max_norm / total) for g in grads]
        elif wrong == "per_array":
            for g in grads:
                g *= min(1, max_norm / np.linalg.norm(g))
        elif wrong == "after":
            spec_clip(grads, max_norm)
            return norm(grads)
        elif wrong == "strict_no_tie":  # scales by 0.5 at the tie instead of 1
            for g in grads:
                g *= 0.5 if total == max_norm else min(1, max_norm / total)
        return total

    with pytest.raises(CheckFailure, match=f"(?s){match}"):
        G.check_clip_grad_norm(wrong if callable(wrong) else implementation, **kwargs)


# ---------------------------------------------------------------- the experiments
def test_norms_oracle_and_replayed_layers_agree_with_torch_layers():
    from helpers.gradient_flow import flow_inputs, init_recurrent_params, rnn_backward_torch, rnn_forward_torch

    x, h0 = flow_inputs(9, 1, D=3, H=4, N=2)
    params = init_recurrent_params("rnn", 3, 4, seed=1)
    np.testing.assert_allclose(G.oracle_gradient_norms_through_time("rnn", x, h0, params),
                               norms_through_time(rnn_forward_torch, rnn_backward_torch, x, h0, params), rtol=1e-12)
    params = init_recurrent_params("lstm", 3, 4, forget_bias=1.0, seed=1)
    forward, backward = G._replay_layer("lstm", x, h0, params)
    h, cache = forward(x.copy(), h0.copy(), *params)
    np.testing.assert_allclose(h, G.oracle_lstm_forward(x, h0, *params), rtol=1e-12)
    dh = np.random.default_rng(2).normal(size=h.shape)
    for got, expected in zip(backward(dh, cache), G.oracle_lstm_backward(x, h0, *params, dh)):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(G.oracle_gradient_norms_through_time("lstm", x, h0, params),
                               norms_through_time(lstm_fwd, lstm_bwd, x, h0, params), rtol=1e-12)
    with pytest.raises(ValueError, match="unchanged"):
        forward(x + 1, h0, *params)
    with pytest.raises(ValueError, match="unchanged"):
        forward(x, h0, params)
    with pytest.raises(ValueError, match="dh must"):
        backward(dh[:, :2], cache)


@pytest.mark.parametrize("find, replace, match", [
    ("dh[:, -1] = 1.0", "dh[:, 0] = 1.0", "relative error"),
    ("dh[:, -1] = 1.0", "dh[:] = 1.0", "relative error"),
    ("np.sqrt(np.sum(dx ** 2, axis=(0, 2)))", "np.sum(dx ** 2, axis=(0, 2))", "relative error"),
    ("np.sqrt(np.sum(dx ** 2, axis=(0, 2)))", "np.sqrt(np.sum(dx ** 2, axis=(0, 1)))", "expected shape"),
    ("cache = forward(x, h0, *params)", "cache = forward(x, h0, params)",
     r"raised ValueError.*Hint: call forward\(x, h0, \*params\)"),
])
def test_wrong_gradient_norms_fail(find, replace, match):
    source = _notebook_cells()["gradient_norms_through_time"].source
    assert source.count(find) == 1
    namespace = {"np": np}
    exec(source.replace(find, replace), namespace)
    with pytest.raises(CheckFailure, match=f"(?s)^gradient_norms_through_time.*{match}"):
        G.check_gradient_norms_through_time(namespace["gradient_norms_through_time"])


def test_gradient_flow_ratio_is_required(monkeypatch):
    monkeypatch.setattr(G, "FLOW_MIN_RATIO", 1e12)
    with pytest.raises(CheckFailure, match="gradient flow: the LSTM's gradient at t=0 .* >= 1e\\+12 times larger"):
        G.check_gradient_flow(norms_through_time, lstm_fwd, lstm_bwd)


@pytest.mark.parametrize("lstm, rnn, match", [
    (0.9, 0.6, None), (0.95, 0.65, None), (0.91, 0.61, None), (1.0, 0.7, None), (np.float64(0.95), 0.25, None),
    (0.5, 0.25, "below 0.9"), (0.8999, 0.2, "below 0.9"), (0.95, 0.9, "lead by at least 0.3"),
    (0.95, 0.6501, "lead by at least 0.3"), (True, 0.2, "between 0 and 1"), (0.95, 1.5, "between 0 and 1"),
    (float("nan"), 0.2, "between 0 and 1"), ("0.95", 0.2, "between 0 and 1"),
])
def test_long_range_thresholds_and_ties(lstm, rnn, match):
    if match is None:
        assert G.check_long_range.__wrapped__(lstm, rnn)
    else:
        with pytest.raises(CheckFailure, match=f"^long-range recall: .*{match}"):
            G.check_long_range(lstm, rnn)


def test_init_recurrent_params_forget_bias_is_the_forget_block_of_the_summed_bias():
    """The course's single bias b is torch's bias_ih + bias_hh and the forget block is b[H:2H]."""
    from graders.torch_layout import torch_recurrent
    from helpers.gradient_flow import init_recurrent_params

    Wx, Wh, b = init_recurrent_params("lstm", 3, 4, forget_bias=5.0, seed=0)
    assert np.all(b[4:8] == 5.0) and np.all(np.abs(np.delete(b, np.s_[4:8])) <= 0.5)
    cell = torch_recurrent("lstm", Wx, Wh, b, cell=True)
    total = (cell.bias_ih + cell.bias_hh).detach().numpy()
    np.testing.assert_allclose(total[4:8], 5.0, rtol=1e-12)
    _, c = cell(torch.zeros(1, 3, dtype=torch.float64), (torch.zeros(1, 4, dtype=torch.float64),
                                                           torch.ones(1, 4, dtype=torch.float64)))
    # x = h = 0: c = sigmoid(b_f) * c_prev + sigmoid(b_i) * tanh(b_g)
    i, g = 1 / (1 + np.exp(-b[:4])), np.tanh(b[8:12])
    np.testing.assert_allclose(c.detach().numpy()[0], 1 / (1 + np.exp(-5.0)) + i * g, rtol=1e-12)


# ---------------------------------------------------------------- nothing hidden-only
def _check_calls(source):
    """[(check name, {argument: value})] of the grader.check_* calls (and self_check calls) in a cell's source."""
    calls = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        if name == "grader.self_check":
            name = ast.unparse(node.args[0])
        if name.startswith("grader.check_"):
            check = getattr(G, name.removeprefix("grader."))
            defaults = {k: p.default for k, p in inspect.signature(check).parameters.items()
                        if p.default is not inspect.Parameter.empty}
            calls.append((name, defaults | {k.arg: ast.literal_eval(k.value) for k in node.keywords}))
    return calls


def _features(kwargs):
    """The kinds of case a call exercises (the branches a hidden test must not be the only one to reach)."""
    sizes = {f"{k}=1" for k in ("N", "T") if kwargs.get(k) == 1}
    if "D" in kwargs:
        sizes.add("D>H" if kwargs["D"] > kwargs["H"] else "D<H" if kwargs["D"] < kwargs["H"] else "D=H")
    if "scale" in kwargs:
        sizes |= {"one array"} if len(kwargs["shapes"]) == 1 else {"several arrays"}
        sizes |= {"tiny norms"} if kwargs["scale"] <= 1e-3 else {"huge norms"} if kwargs["scale"] >= 1e6 else set()
    return sizes


def test_every_kind_of_hidden_case_is_also_visible():
    cells = _notebook_cells()
    visible, hidden = {}, {}
    for gid, cell in cells.items():
        if not gid or not gid.startswith(("test_", "selfcheck_")):
            continue
        shown, _, rest = cell.source.partition("### BEGIN HIDDEN TESTS")
        for name, kwargs in _check_calls(shown):
            visible.setdefault(name, set()).update(_features(kwargs))
        for name, kwargs in _check_calls(rest.partition("### END HIDDEN TESTS")[0]):
            hidden.setdefault(name, set()).update(_features(kwargs))
    assert len(hidden) == 9
    for name, kinds in hidden.items():
        assert kinds <= visible[name], f"{name}: hidden-only cases {sorted(kinds - visible[name])}"
