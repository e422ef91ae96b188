"""instructor.feedback: feedback shows no hidden-test line and no grading-machine path, and
outputs are capped in bytes.

Unit tests work on small synthetic notebooks with tracebacks in IPython's format; one
module-scoped run of the real nbgrader (generate_assignment, autograde, generate_feedback with
the config lines of ``feedback.NBGRADER_CONFIG``) on an a1 submission with only
``rnn_step_forward`` filled in checks the HTML a student gets."""
import copy
import html
import re
import shutil
import site
import sys
import tempfile
from pathlib import Path

import grading
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output
from nbgrader.preprocessors import ClearHiddenTests
from traitlets.config import Config

from instructor import feedback
from instructor.course import run_nbgrader
from instructor.feedback import (
    LimitOutputBytes,
    SanitizeFeedback,
    hidden_lines,
    path_prefixes,
    shorten_paths,
    truncate,
    visible_traceback,
)

COURSE = Path(__file__).resolve().parents[2]
A1 = "a1_rnn_numpy"
SECRET = "grader.check_f(f, secret_size=7)"
TEST_SOURCE = ("from graders import tiny as grader\ngrader.check_f(f)\n### BEGIN HIDDEN TESTS\n"
               f"{SECRET}\n### END HIDDEN TESTS\ngrader.check_f(f, size=2)")


def _frame(header, lines, arrow):
    """One traceback entry the way IPython 9 colours it."""
    body = "".join(f"\x1b[32m{'----> ' if n == arrow else '      '}\x1b[39m\x1b[32m{n}\x1b[39m {text}\n"
                   for n, text in lines)
    return f"{header}\n{body}"


def _error(count, arrow, ename="CheckFailure", evalue="f: wrong result (case: N=3)"):
    """An error output of test cell In[count] failing at line ``arrow``, through a grader module."""
    lines = list(enumerate(TEST_SOURCE.split("\n"), start=1))
    header = f"\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[{count}]\x1b[39m\x1b[32m, line {arrow}\x1b[39m"
    cell_frame = _frame(header, lines[max(0, arrow - 3):arrow + 2], arrow)
    grader_frame = _frame(f"\x1b[36mFile \x1b[39m\x1b[32m{COURSE}/graders/core.py:52\x1b[39m, in \x1b[36mfail\x1b[39m",
                          [(51, "def fail(name):"), (52, "    raise CheckFailure(name)")], 52)
    student_frame = _frame("\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[1]\x1b[39m\x1b[32m, line 2\x1b[39m, in "
                           "\x1b[36mf\x1b[39m\x1b[34m(x)\x1b[39m", [(1, "def f(x):"), (2, "    return x / 0")], 2)
    return new_output("error", ename=ename, evalue=evalue, traceback=[
        "\x1b[31m" + "-" * 75 + "\x1b[39m", f"\x1b[31m{ename}\x1b[39m    Traceback (most recent call last)",
        cell_frame, grader_frame, student_frame, f"\x1b[31m{ename}\x1b[39m: {evalue}"])


def _notebook(*outputs_of_test):
    """In[1] a student's solution cell, In[2] a graded test cell with a hidden region."""
    student = new_code_cell("def f(x):\n    return x / 0", execution_count=1,
                            metadata={"nbgrader": {"grade_id": "f", "solution": True, "grade": False,
                                                   "locked": False, "schema_version": 3}})
    test = new_code_cell(TEST_SOURCE, execution_count=2, outputs=list(outputs_of_test),
                         metadata={"nbgrader": {"grade_id": "test_f", "grade": True, "solution": False,
                                                "locked": True, "points": 2, "schema_version": 3}})
    return new_notebook(cells=[student, test])


def _texts(nb):
    """Everything the outputs of a notebook show, as one string."""
    return "\n".join(str(o) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def _sanitized(nb, **traits):
    nb, _ = SanitizeFeedback(course_root=str(COURSE), **traits).preprocess(copy.deepcopy(nb), {})
    return ClearHiddenTests().preprocess(nb, {})[0]  # what GenerateFeedback runs next


# ---------------------------------------------------------------- tracebacks
def test_hidden_lines_are_numbered_as_nbgrader_clears_them():
    assert hidden_lines(TEST_SOURCE) == {3, 4, 5}
    assert hidden_lines("a\n### BEGIN HIDDEN TESTS\nb") == {2, 3}  # unterminated: to the end
    assert hidden_lines("a = 1") == set()


def test_a_failing_visible_check_keeps_its_line_and_message_only():
    out = visible_traceback(_error(2, 2), {1: "def f(x):\n    return x / 0", 2: TEST_SOURCE},
                            {1: set(), 2: {3, 4, 5}}, own_count=2)
    assert out[1:] == ["  Cell In[2], line 2: grader.check_f(f)", "  Cell In[1], line 2, in f: return x / 0",
                       "CheckFailure: f: wrong result (case: N=3)"]
    assert SECRET not in "\n".join(out) and "BEGIN HIDDEN" not in "\n".join(out) and "core.py" not in "\n".join(out)


def test_lines_after_the_hidden_region_are_renumbered_as_the_student_sees_them():
    out = visible_traceback(_error(2, 6), {2: TEST_SOURCE}, {2: {3, 4, 5}}, own_count=2)
    assert "  Cell In[2], line 3: grader.check_f(f, size=2)" in out


def test_a_failing_hidden_check_shows_that_a_hidden_test_failed_and_its_message():
    out = visible_traceback(_error(2, 4), {2: TEST_SOURCE}, {2: {3, 4, 5}}, own_count=2)
    assert out[1:] == ["  Cell In[2]: a hidden test of this cell failed", "CheckFailure: f: wrong result (case: N=3)"]


def test_sanitize_feedback_leaves_no_hidden_line_and_no_path():
    stream = new_output("stream", name="stderr", text=f"{COURSE}/graders/core.py:9: RuntimeWarning: overflow\n"
                                                      f"echo {SECRET}\n")
    nb = _notebook(stream, _error(2, 2, evalue=f"f: wrong, see {COURSE}/graders/core.py"))
    assert SECRET in _texts(nb) and str(COURSE) in _texts(nb)
    text = _texts(_sanitized(nb))
    assert SECRET not in text and "BEGIN HIDDEN" not in text and str(COURSE) not in text
    assert "<course>/graders/core.py:9: RuntimeWarning" in text and "echo <hidden test>" in text
    assert "CheckFailure: f: wrong, see <course>/graders/core.py" in text
    assert "Cell In[2], line 2: grader.check_f(f)" in text


# ---------------------------------------------------------------- paths
def test_paths_of_the_grading_machine_are_shortened(tmp_path):
    root = tmp_path / "course"
    prefixes = path_prefixes(str(root))
    home, packages = Path.home(), Path(site.getsitepackages()[0])
    text = shorten_paths(f"{root}/graders/a1.py:3 {packages}/numpy/core.py {sys.prefix}/bin/python "
                         f"{tempfile.gettempdir()}/ipykernel_1/2.py {home}/notes.txt /opt/x/site-packages/torch/a.py "
                         "https://example.org/tmp/x 3/4", prefixes)
    assert text == ("<course>/graders/a1.py:3 <python>/numpy/core.py <python>/bin/python <tmp>/ipykernel_1/2.py "
                    "~/notes.txt <python>/torch/a.py https://example.org/tmp/x 3/4")
    assert shorten_paths(f"{COURSE}/helpers/x.py", prefixes) == "<course>/helpers/x.py"  # this repository
    assert shorten_paths("/srv/grading/x.py", path_prefixes(str(root), {"/srv/grading": "<srv>"})) == "<srv>/x.py"
    assert shorten_paths(f"{root}/a.py", path_prefixes(str(root), {str(root): "<root>"})) == "<root>/a.py"


# ---------------------------------------------------------------- byte limits
def test_truncate_cuts_bytes_and_says_so():
    assert truncate("short", 10) == "short"
    cut = truncate("é" * 100, 51)  # 200 bytes; never half a character
    assert cut.startswith("é" * 25) and "output truncated by the grader: 200 bytes, the first 51 shown" in cut
    assert truncate("x" * 100, -1) == "x" * 100
    assert truncate(cut, 51) == cut  # truncating again (autograde, then feedback) changes nothing


def test_limit_output_bytes_caps_text_binary_and_cells_but_keeps_errors():
    lines = "\n".join("x" * 4_000_000 for _ in range(3))  # few lines, many bytes: LimitOutput lets it pass
    outputs = [new_output("stream", name="stdout", text=lines),
               new_output("display_data", data={"image/png": "A" * 3_000_000, "text/plain": "<Figure>"}),
               *[new_output("stream", name="stdout", text="y" * 90_000) for _ in range(30)],
               new_output("error", ename="ValueError", evalue="v" * 500_000, traceback=["t" * 500_000])]
    nb = new_notebook(cells=[new_code_cell("print()", outputs=outputs)])
    limited = LimitOutputBytes().preprocess(nb, {})[0].cells[0].outputs
    size = len(nbformat.writes(new_notebook(cells=[new_code_cell("", outputs=limited)])))
    assert size < 2_500_000
    assert len(limited[0].text.encode()) < 100_200 and "output truncated by the grader" in limited[0].text
    assert "image/png" not in limited[1].data
    assert limited[1].data["text/plain"] == "<Figure>\n[image/png output of 3,000,000 bytes left out by the grader]"
    assert "more outputs left out by the grader" in limited[-2].text
    assert limited[-1].output_type == "error" and len(limited[-1].evalue) < 100_200  # still scores as an error


def test_config_lines_extend_nbgrader_defaults():
    from nbgrader.converters import Autograde

    c = Config()
    namespace = {"c": c, "GetGrades": object, "ClearHiddenTests": ClearHiddenTests, "CSSHTMLHeaderPreprocessor": object}
    exec(feedback.NBGRADER_CONFIG, namespace)
    assert c.GenerateFeedback.preprocessors[1:3] == [SanitizeFeedback, ClearHiddenTests]
    defaults = Autograde.class_traits()["autograde_preprocessors"].default()
    assert [p for p in c.Autograde.autograde_preprocessors if p is not LimitOutputBytes] == defaults


# ---------------------------------------------------------------- the real nbgrader, once
def _submission(source, release):
    """The release with only rnn_step_forward filled in, and a cell with big output and paths."""
    nb = copy.deepcopy(release)
    gids = [grading.grade_id(c) for c in nb.cells]
    solved = next(c for c in source.cells if grading.grade_id(c) == "rnn_step_forward").source
    nb.cells[gids.index("rnn_step_forward")].source = "\n".join(
        line for line in solved.split("\n") if "SOLUTION" not in line)
    nb.cells.insert(gids.index("rnn_step_forward") + 1, new_code_cell(
        "import os, warnings\nprint(np.__file__, os.getcwd())\nwarnings.warn('look here')\n"
        "for _ in range(3):\n    print('z' * 300_000)"))
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """(course root, feedback HTML, autograded notebook, source notebook) of one a1 submission."""
    root = tmp_path_factory.mktemp("feedback_course")
    (root / "nbgrader_config.py").write_text((COURSE / "nbgrader_config.py").read_text() + feedback.NBGRADER_CONFIG)
    shutil.copytree(COURSE / "solutions" / A1, root / "solutions" / A1)
    run_nbgrader("generate_assignment", A1, "--force", root=root)
    source = nbformat.read(root / "solutions" / A1 / f"{A1}.ipynb", 4)
    release = nbformat.read(root / "assignments" / A1 / f"{A1}.ipynb", 4)
    (root / "submitted" / "stepper" / A1).mkdir(parents=True)
    nbformat.write(_submission(source, release), root / "submitted" / "stepper" / A1 / f"{A1}.ipynb")
    run_nbgrader("autograde", A1, "--force", root=root)
    run_nbgrader("generate_feedback", A1, "--force", root=root)
    page = (root / "feedback" / "stepper" / A1 / f"{A1}.html").read_text()
    autograded = root / "autograded" / "stepper" / A1 / f"{A1}.ipynb"
    return root, page, autograded, source


def _hidden_source_lines(source):
    return [line.strip() for c in source.cells for n, line in enumerate(c.source.split("\n"), 1)
            if n in hidden_lines(c.source) and line.strip()]


@pytest.mark.slow
def test_without_sanitizing_the_tracebacks_would_show_hidden_tests(graded):
    root, page, autograded, source = graded  # the problem this module guards against is real
    cleared = ClearHiddenTests().preprocess(nbformat.read(autograded, 4), {})[0]
    shown = re.sub(r"\x1b\[[0-9;]*m", "", _texts(cleared))
    assert any(line in shown for line in _hidden_source_lines(source))
    assert str(COURSE) in shown or "/site-packages/" in shown  # where the graders module lives


@pytest.mark.slow
def test_feedback_shows_no_hidden_test_line(graded):
    root, page, autograded, source = graded
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    hidden = _hidden_source_lines(source)
    assert len(hidden) >= 20
    assert [line for line in hidden if line in text] == []


@pytest.mark.slow
def test_feedback_shows_no_path_of_the_grading_machine(graded):
    root, page, autograded, source = graded
    for path in {str(root), str(root.resolve()), str(COURSE), sys.prefix, *site.getsitepackages()}:
        assert path not in page, f"{path} appears in the feedback"
    assert re.search(rf"{re.escape(str(Path.home()))}/|/(site|dist)-packages/", page) is None
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert "<python>/numpy/__init__.py <course>/autograded/stepper/a1_rnn_numpy" in text
    assert re.search(r"<tmp>/ipykernel_\d+/\d+\.py:\d+: UserWarning: look here", text)


@pytest.mark.slow
def test_feedback_names_the_failing_visible_check_and_its_message(graded):
    root, page, autograded, source = graded
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert re.search(r"Cell In\[\d+\], line 2: grader\.check_rnn_step_backward\(rnn_step_forward, "
                     r"rnn_step_backward\)", text)
    assert re.search(r"Cell In\[\d+\], line \d+, in rnn_step_backward: raise NotImplementedError\(\)", text)
    assert "CheckFailure: rnn_step_backward: not implemented yet" in text
    points = grading.autograded_tests(source)["test_rnn_step_forward"]
    assert f"Score: {points} / {points}" in text  # rnn_step_forward's test passed, hidden cases included


@pytest.mark.slow
def test_big_outputs_are_capped_in_the_autograded_notebook_and_the_feedback(graded):
    root, page, autograded, source = graded
    assert autograded.stat().st_size < 500_000  # 900 kB printed
    assert "output truncated by the grader" in autograded.read_text()
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    assert text.count("output truncated by the grader") == 1 and len(page) < 1_000_000
