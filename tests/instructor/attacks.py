"""Submissions a dishonest or careless student could hand in, built from the course's own
notebooks (so they follow the notebooks as they change). Each returns a new notebook dict."""
import ast
import copy

import grading

STAND_INS = {  # a1 functions replaced by the course's torch-backed code with the same arguments
    "rnn_forward": "from helpers.gradient_flow import rnn_forward_torch\n\n\n"
                   "def rnn_forward(x, h0, Wx, Wh, b):\n    return rnn_forward_torch(x, h0, Wx, Wh, b)\n",
    "rnn_backward": "from helpers.gradient_flow import rnn_backward_torch as rnn_backward\n",
}


def _cell(nb, gid):
    return next(c for c in nb["cells"] if grading.grade_id(c) == gid)


def _first_solution(nb):
    return next(c for c in nb["cells"] if grading.nbgrader_meta(c).get("solution") and c["cell_type"] == "code")


def called_names(nb):
    """Names the autograded test cells call directly (``check_x(...)``) or through (``grader.x``)."""
    names = set()
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and grading.grade_id(cell) in grading.autograded_tests(nb):
            for node in ast.walk(ast.parse(cell["source"])):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    names.add(node.func.id)
                elif isinstance(node, ast.Call) and isinstance(getattr(node.func, "value", None), ast.Name):
                    names.add(node.func.value.id)  # grader.check_x(...): rebind the grader itself
    return names


def rebinding(release_nb):
    """The untouched release whose first solution cell rebinds every checker name to a no-op."""
    nb = copy.deepcopy(release_nb)
    names = sorted(called_names(nb) | {"grader"})
    names = [n for n in names if n not in {"np", "torch"}]
    _first_solution(nb)["source"] += (
        "\n\nclass _Pass:  # any attribute, any call: does nothing\n"
        "    def __getattr__(self, name):\n        return self\n\n"
        "    def __call__(self, *args, **kwargs):\n        return None\n\n\n"
        + "\n".join(f"{name} = _Pass()" for name in names)
        + "\n")
    return nb


def stand_ins(reference_nb, cells=STAND_INS):
    """The reference solution with some functions handed to torch-backed course code."""
    nb = copy.deepcopy(reference_nb)
    for gid, source in cells.items():
        _cell(nb, gid)["source"] = source
    return nb


def honest_extras(reference_nb):
    """The reference solution plus what honest students write: imports, helper functions, scratch cells."""
    nb = copy.deepcopy(reference_nb)
    first = _first_solution(nb)
    first["source"] = ("import math\nfrom functools import reduce\n\n\n"
                       "def _shape_of(a):\n    return tuple(a.shape)\n\n\n") + first["source"]
    scratch = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
               "source": "# my own experiments\nx_try = np.arange(6.0).reshape(2, 3)\n"
                         "print(_shape_of(x_try), math.pi)\n"}
    nb["cells"].insert(nb["cells"].index(first) + 1, scratch)
    return nb
