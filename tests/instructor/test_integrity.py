"""The integrity scan (instructor.integrity): no false alarm on the reference solutions, the blank
releases, every alternative solution and honest extras; every attack found, with the right cells."""
import copy
from pathlib import Path

import attacks
import grading
import nbformat
import pytest

from instructor import integrity

COURSE = Path(__file__).resolve().parents[2]
MUTANTS = COURSE / "tests" / "mutants"
AIDS = grading.assignment_ids(COURSE)


def source_nb(aid):
    return nbformat.read(COURSE / "solutions" / aid / f"{aid}.ipynb", 4)


def editable(aid, gid):
    """(source notebook, a copy of it to edit, the copy's cell ``gid``): a student's notebook to attack."""
    src = source_nb(aid)
    nb = copy.deepcopy(src)
    return src, nb, next(c for c in nb["cells"] if grading.grade_id(c) == gid)


def release_nb(aid):
    return nbformat.read(COURSE / "assignments" / aid / f"{aid}.ipynb", 4)


@pytest.mark.parametrize("aid", AIDS)
def test_no_alarm_on_reference_blank_and_honest_work(aid):
    src = source_nb(aid)
    for label, nb in [("reference", src), ("blank release", release_nb(aid)), ("honest", attacks.honest_extras(src))]:
        assert integrity.scan(nb, src, integrity.numpy_only(aid)) == [], f"{aid}: false alarm on the {label}"


@pytest.mark.parametrize("aid", AIDS)
def test_no_alarm_on_any_alternative(aid):
    src = source_nb(aid)
    for alternative in grading.load_spec(MUTANTS, aid).alternatives:
        found = integrity.scan(grading.apply_variant(src, alternative), src, integrity.numpy_only(aid))
        assert found == [], f"{aid}: alternative {alternative.name!r} raised {[f.describe() for f in found]}"


@pytest.mark.parametrize("aid", AIDS)
def test_rebinding_every_check_is_found_and_costs_every_test(aid):
    src = source_nb(aid)
    found = integrity.scan(attacks.rebinding(release_nb(aid)), src, integrity.numpy_only(aid))
    rebinds = [f for f in found if f.kind == "rebinds"]
    assert rebinds and "grader" in rebinds[0].detail
    assert set(rebinds[0].affects) == set(grading.autograded_tests(src))


def test_torch_stand_ins_in_a_numpy_assignment_are_found():
    src = source_nb("a1_rnn_numpy")
    found = integrity.scan(attacks.stand_ins(src), src, numpy_only=True)
    by_cell = {f.cell: f for f in found}
    assert {"rnn_forward", "rnn_backward"} <= set(by_cell) and all(f.kind == "torch" for f in found)
    assert "helpers.gradient_flow" in by_cell["rnn_forward"].detail
    assert set(by_cell["rnn_forward"].affects) >= {"test_rnn_forward", "test_rnn_backward"}
    assert integrity.scan(attacks.stand_ins(src), src, numpy_only=False) == []  # torch is fine in a3/a4


@pytest.mark.parametrize("code, expected", [
    ("import numpy\nnumpy.allclose = lambda *a, **k: True\n", "assigns numpy.allclose"),
    ("import sys\nsys.modules['graders.a1_rnn_numpy'].check_rnn_forward = print\n", "uses .modules"),
    ("def f():\n    import inspect\n    return inspect.currentframe().f_back.f_locals\n", "uses .f_back"),
    ("setattr(np, 'tanh', np.sin)\n", "uses setattr"),
    ("exec('x = 1')\n", "uses exec"),
    ("globals()['val_ids'] = None\n", "uses globals"),
    # found by a red-team pass on a5: patching through vars() / __setattr__, names built at run time,
    # and the grader's own oracles or scripted stand-ins called instead of doing the work
    ("vars(grader).update(check_rnn_forward=print)\n", "uses vars"),
    ("type(grader).__setattr__(grader, 'check_rnn_forward', print)\n", "uses .__setattr__"),
    ("import sys\nframe = getattr(sys, '_get' + 'frame')\n", "uses getattr with a computed attribute name"),
    ("rnn_forward = grader.oracle_rnn_forward\n", "uses grader.oracle_rnn_forward (the grader's internals)"),
    ("import sys\ngetattr(sys, 'modules')['graders.a1_rnn_numpy'].check_rnn_forward = print\n",
     "uses getattr(..., 'modules')"),
    # a red-team pass on the scan itself: sys.modules reached without the attribute, modules held
    # under other names, and IPython syntax (magics, shell escapes, help) around the attack
    ("from sys import modules\nmodules['graders.a1_rnn_numpy'].check_rnn_forward = print\n",
     "imports modules from sys"),
    ("import sys, operator\noperator.attrgetter('modules')(sys)['graders.a1_rnn_numpy'].check_rnn_forward = print\n",
     "uses the name 'modules' as a string"),
    ("import sys\nga = getattr\nga(sys, 'modules')['graders.a1_rnn_numpy'].check_rnn_forward = print\n",
     "uses getattr as a value"),
    ("import sys, functools\nfunctools.reduce(getattr, ['modules'], sys)\n", "uses getattr as a value"),
    ("import sys\nmatch sys:\n    case object(modules=mm):\n"
     "        mm['graders.a1_rnn_numpy'].check_rnn_forward = print\n", "matches on .modules"),
    ("g = grader\ng.check_rnn_forward = print\n", "uses the module grader as a value"),
    ("[grader][0].check_rnn_forward = print\n", "uses the module grader as a value"),
    ("def p(g):\n    g.check_rnn_forward = print\np(grader)\n", "uses the module grader as a value"),
    ("import __main__\nmm = __main__\nmm.grader.check_rnn_forward = print\n", "uses the module __main__ as a value"),
    ("n2 = np\nn2.allclose = lambda *a, **k: True\n", "uses the module np as a value"),
    ("%time sys.modules['graders.a1_rnn_numpy'].check_rnn_forward = print\n", "uses .modules"),
    ("_ = !true\nimport sys\nsys.modules['graders.a1_rnn_numpy'].check_rnn_forward = print\n", "uses .modules"),
    ("len?\nimport sys\nsys.modules['graders.a1_rnn_numpy'].check_rnn_forward = print\n", "uses .modules"),
    ("from antigravity import *\n", "imports * from antigravity"),
    ("tt = np.testing\ntt.assert_allclose = lambda *a, **k: None\n", "assigns tt.assert_allclose"),
])
def test_tampering_is_found(code, expected):
    src, nb, cell = editable("a1_rnn_numpy", "rnn_forward")
    cell["source"] = cell["source"] + "\n" + code
    found = [f for f in integrity.scan(nb, src, numpy_only=True) if f.kind == "tampering"]
    assert found and expected in found[0].detail and "test_rnn_forward" in found[0].affects


def test_a_global_rebinding_from_inside_a_function_is_found():
    src, nb, cell = editable("a1_rnn_numpy", "rnn_forward")
    cell["source"] = cell["source"] + "\n\ndef sneaky():\n    global grader\n    grader = None\n"
    assert [f.kind for f in integrity.scan(nb, src, numpy_only=True)] == ["rebinds"]


def test_runtime_integrity_failures_are_reported():
    nb = {"cells": [{"cell_type": "code", "metadata": {"nbgrader": {"grade": True, "grade_id": "test_x", "points": 1}},
                     "source": "", "outputs": [{"output_type": "error", "ename": "IntegrityFailure",
                                                "evalue": "INTEGRITY: rnn_forward ran torch operations (addmm)"}]}]}
    (finding,) = integrity.runtime_findings(nb)
    assert finding.cell == "test_x" and finding.affects == ("test_x",) and "addmm" in finding.detail


def test_torch_module_methods_named_like_introspection_raise_no_alarm():
    """A simulated a5 student saved every submodule's mode with ``model.modules()``, an honest nn.Module
    method that the scan took for ``sys.modules``."""
    src, nb, cell = editable("a5_transfer_captioning", "extract_features")
    cell["source"] = cell["source"].replace(
        "### BEGIN SOLUTION\n", "### BEGIN SOLUTION\n    modes = {m: m.training for m in model.modules()}\n"
                                "    names = [name for name, _ in model.named_modules()]\n")
    assert "model.modules()" in cell["source"]
    assert integrity.scan(nb, src) == []
    cell["source"] += "\nimport sys\nlookup = sys.modules\n"
    assert [f.detail for f in integrity.scan(nb, src)] == ["uses .modules"]


def test_binding_the_graders_package_withholds_every_later_test():
    """``import graders`` then patching a submodule through it: no test cell loads the name ``graders``
    (they import from it), so the finding must still reach every test cell after the student's cell."""
    src, nb, cell = editable("a1_rnn_numpy", "rnn_forward")
    cell["source"] += "\nimport graders\nh = graders.a1_rnn_numpy\nh.check_rnn_forward = print\n"
    affected = set().union(*(f.affects for f in integrity.scan(nb, src, numpy_only=True)))
    assert {"test_rnn_forward", "test_rnn_backward"} <= affected


def test_honest_ipython_syntax_and_module_use_raise_no_alarm():
    src, nb, cell = editable("a5_transfer_captioning", "extract_features")
    cell["source"] += ("\n%matplotlib inline\nfiles = !ls\n%time x = np.zeros(3)\nimport copy\n"
                       "m2 = copy.deepcopy(nn.Linear(2, 2))\n"
                       "ok = isinstance(m2, nn.Module) and hasattr(m2, 'weight') and getattr(m2, 'bias') is not None\n"
                       "data = np.arange(3)\nprint(data, torch.__version__)\n")
    assert integrity.scan(nb, src) == []


def test_reading_held_out_grading_data_is_found():
    """a6 grades ``diagnose`` on held-out curves that sit in datasets/ for the grader: a student's cell that
    names them (the file, or the grader's private loader) is reading the answers. The public visible
    curves raise no alarm."""
    src, nb, cell = editable("a6_hyperparameters", "diagnose")
    cell["source"] += "\nvisible = grader.load_curves()\n"
    assert integrity.scan(nb, src) == []
    for attack, detail in [("answers = json.load(open('datasets/a6_curves_heldout.json'))", "names held-out"),
                           ("answers = grader._load_curves('held_out')", "the grader's internals")]:
        cell["source"] += f"\n{attack}\n"
        found = integrity.scan(nb, src)
        assert any(detail in f.detail for f in found), (attack, [f.describe() for f in found])
        assert "test_diagnose" in set().union(*(f.affects for f in found))
        cell["source"] = cell["source"].replace(f"\n{attack}\n", "")


def test_changing_a_graders_public_data_in_place_is_found():
    """A grader's public dicts (a6's DEFAULT_LOSSES, a5's TRANSFER_RECIPE) are read by later test cells; changing
    them in place is tampering even though no module attribute is rebound. The grader also makes them read-only."""
    src, nb, cell = editable("a6_hyperparameters", "tune")
    cell["source"] += "\ncurves = grader.load_curves()\ncurves.sort(key=len)\nrows = [dict(c) for c in curves]\n"
    assert integrity.scan(nb, src) == []
    for attack in ("grader.DEFAULT_LOSSES['validation'] = 9.0", "grader.WORKFLOW.update(final_steps=1)",
                   "del grader.SPACE['lr']", "grader.DEFAULT_LOSSES['test'] += 5"):
        cell["source"] += f"\n{attack}\n"
        found = integrity.scan(nb, src)
        assert any("in place" in f.detail for f in found), (attack, [f.describe() for f in found])
        assert "test_tune" in set().union(*(f.affects for f in found))
        cell["source"] = cell["source"].replace(f"\n{attack}\n", "")


@pytest.mark.parametrize("attack, detail", [
    # a red team's 86/86 on the blank release: an input transformer that empties every later test cell
    ("get_ipython().input_transformers_post.append(lambda lines: [])", "IPython's get_ipython"),
    ("from IPython import get_ipython as g", "imports IPython"),
    ("import IPython", "imports IPython"),
    ("%load_ext my_transformer", "IPython's get_ipython"),
    ("print(In[-1])", "IPython's In"),                         # the running test cell, hidden part included
    ("leak = _ih[-1] + _i3", "IPython's _ih"),
    ("from graders.a6_hyperparameters import oracle_pick_lr as pick_lr", "the grader's internals"),
    ("from graders.a6_hyperparameters import CURVE_FILES", "the grader's internals"),
    ("from torch.optim.swa_utils import AveragedModel", "the oracle of a graded part"),
    ("import torch.optim.swa_utils as su", "the oracle of a graded part"),
    ("try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    frame = e.__traceback__", "uses .__traceback__"),
    ("import traceback", "imports traceback"),
])
def test_ipython_grader_imports_and_oracles_are_found(attack, detail):
    """Attacks a red team found unflagged in a6 (most work in every assignment); each must be found."""
    src, nb, cell = editable("a6_hyperparameters", "ema")
    cell["source"] += f"\n{attack}\n"
    found = integrity.scan(nb, src)
    assert any(detail in f.detail for f in found), [f.describe() for f in found]
    assert "test_ema" in set().union(*(f.affects for f in found))


def test_computed_attribute_getters_and_curve_files_are_found():
    src, nb, cell = editable("a6_hyperparameters", "diagnose")
    for attack, detail in [("import operator\nget = operator.attrgetter('tb_' + 'frame')", "computed attribute"),
                           ("from operator import attrgetter\nget = attrgetter(''.join(['f_', 'back']))", "computed"),
                           ("text = load_corpus('a6_curves_' + 'held' + 'out.json')", "held-out grading data")]:
        cell["source"] += f"\n{attack}\n"
        found = integrity.scan(nb, src)
        assert any(detail in f.detail for f in found), (attack, [f.describe() for f in found])
        cell["source"] = cell["source"].replace(f"\n{attack}\n", "")
    assert integrity.scan(nb, src) == []


# found by a red-team pass on a1's clip_grad_norm / char_lm_loss and a3's sample: torch reached through a
# course module that imports it, torch's switch that hides torch calls from the runtime recorder, a grader
# module reached through torch.importlib, and a grader's checks patched through a variable
RED_TEAM_A1 = [
    ("import helpers.charlm as hc\nT = hc.torch\n", "torch", "helpers.charlm"),
    ("import helpers.charlm as hc\nwith hc.torch._C.DisableTorchFunction():\n    pass\n", "tampering", "uses ._C"),
    ('import helpers.charlm as hc\n_g = hc.torch.importlib.import_module("graders.a1_rnn_numpy")\n',
     "tampering", "uses .import_module"),
    ('_g = np.sys.modules["graders.core"]\n', "tampering", "uses .modules"),
    ('def grab(m):\n    return m\n_g = grab(grader)\n_g.check_char_lm_loss = print\n', "tampering",
     "assigns _g.check_char_lm_loss (a name of the grader's checks)"),
    ("holder = [None]\nholder[0] = object()\nholder[0].compare_exact = lambda *a: 0.0\n", "tampering",
     "assigns holder[0].compare_exact (a name of the grader's checks)"),
]


@pytest.mark.parametrize("code, kind, expected", RED_TEAM_A1, ids=[e for _, _, e in RED_TEAM_A1])
def test_modules_reached_through_attributes_and_patched_checks_are_found(code, kind, expected):
    src, nb, cell = editable("a1_rnn_numpy", "char_lm_loss")
    cell["source"] = cell["source"] + "\n" + code
    found = [f for f in integrity.scan(nb, src, numpy_only=True) if f.kind == kind]
    assert found and any(expected in f.detail for f in found), [f.detail for f in found]
    assert "test_char_lm_loss" in found[0].affects
