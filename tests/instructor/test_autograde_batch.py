"""`make autograde` on a class with every kind of bad submission (the fixture course, the real
instructor API, a temporary course root, two parallel workers): no batch aborts, no grade is
lost or stale, student code runs in the sandbox, and the status table says what happened."""
import copy
import html
import json
import os
import re
import shutil
import signal
import zipfile
from pathlib import Path

import grading
import nbformat
import pytest

from instructor import cli, sandbox
from instructor.course import ROOT_ENV

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tiny_course"
AID, NB = "fx_tiny", "fx_tiny.ipynb"
FULL = {"test_softmax": 2.0, "test_axpy": 1.0, "test_fit": 2.0}
HIDDEN_LINE = "big = np.array([[1000.0, 1000.0], [0.0, 0.0]])"

pytestmark = pytest.mark.skipif(not sandbox.available()[0], reason=f"no sandbox: {sandbox.available()[1]}")


def _edit(nb, gid, prepend="", replace=None):
    nb = copy.deepcopy(nb)
    cell = next(c for c in nb.cells if grading.grade_id(c) == gid)
    cell.source = prepend + (cell.source if replace is None else replace)
    return nb


def _drop(nb, gid):
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if grading.grade_id(c) != gid]
    return nb


def _strip(nb):
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        cell.metadata = {}
    return nb


def _duplicate(nb, gid):
    nb = copy.deepcopy(nb)
    at = next(i for i, c in enumerate(nb.cells) if grading.grade_id(c) == gid)
    nb.cells.insert(at + 1, copy.deepcopy(nb.cells[at]))
    return nb


def submissions(course):
    """{student: (file name, notebook or raw text)}: one honest, the others odd or hostile."""
    ref = nbformat.read(FIXTURE / "solutions" / AID / NB, 4)
    snoop = (f"import os, socket\nprint('solutions:', os.listdir({str(course / 'solutions')!r}))\n"
             f"try:\n    open({str(course / 'gradebook.db')!r}, 'r+b').write(b'x')\n    print('gradebook: WRITTEN')\n"
             "except OSError as e:\n    print('gradebook:', type(e).__name__)\n"
             f"try:\n    open({str(course / 'submitted' / 'ok' / 'stolen.txt')!r}, 'w')\n    print('others: WRITTEN')\n"
             "except OSError as e:\n    print('others:', type(e).__name__)\n"
             "try:\n    socket.create_connection(('pypi.org', 443), timeout=3)\n    print('network: OPEN')\n"
             "except OSError as e:\n    print('network:', type(e).__name__)\n")
    return {
        "ok": (NB, ref),
        "renamed": ("fx_tiny (1).ipynb", ref),
        "corrupt": (NB, "{not a notebook"),
        "dies": (NB, _edit(ref, "axpy", prepend="import os\nos._exit(1)\n")),
        "deleted": (NB, _drop(ref, "test_softmax")),
        "stripped": (NB, _strip(ref)),
        "duplicated": (NB, _duplicate(ref, "softmax")),
        "marker": (NB, _edit(ref, "axpy", prepend="# my notes: ### BEGIN HIDDEN TESTS is what the grader uses\n")),
        "loop": (NB, _edit(ref, "axpy", replace="def axpy(a, x, y):\n    while True:\n        pass\n")),
        "flood": (NB, _edit(ref, "axpy", prepend="for _ in range(10):\n    print('x' * 4_000_000)\n")),
        "snoop": (NB, _edit(ref, "axpy", prepend=snoop)),
        "unstable": (NB, _edit(ref, "softmax", replace="def softmax(x):\n    e = np.exp(x)\n"
                                                        "    return e / e.sum(axis=1, keepdims=True)\n")),
    }


def write_batch(folder, batch):
    for student, (name, nb) in batch.items():
        (folder / student / AID).mkdir(parents=True)
        path = folder / student / AID / name
        path.write_text(nb if isinstance(nb, str) else json.dumps(nb))  # as saved: a copied cell keeps its id
    return folder


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = grading.course_copy(FIXTURE, tmp_path_factory.mktemp("course"))
    subs = write_batch(tmp_path_factory.mktemp("subs"), submissions(root))
    archive = subs.parent / "batch.zip"
    with zipfile.ZipFile(archive, "w") as zf:  # wrapped in one top folder, as LMS downloads are
        for path in subs.rglob("*.ipynb"):
            zf.write(path, Path("batch") / path.relative_to(subs))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ROOT_ENV, str(root))
        code, out = grading.run_cli(["autograde", str(archive), "--workers", "2"])
        yield root, subs, code, out


def scores(root, student):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        grades = {g.name: g for nb in gradebook.find_submission(AID, student).notebooks for g in nb.grades}
    return {gid: grades[gid].score for gid in FULL}


def row(out, student):
    """The status-table row of a student (its notes follow on indented lines)."""
    return next(line for line in out.splitlines() if line.startswith(f"{student} "))


def feedback_text(root, student):
    page = (root / "feedback" / student / AID / f"{AID}.html").read_text()
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def test_one_bad_notebook_never_stops_the_batch(course):
    root, _, code, out = course
    assert code == 1, "a failed submission makes the command fail, but only at the end"
    assert "failed" in row(out, "corrupt") and "not a Jupyter notebook" in out
    for student in ("ok", "renamed", "stripped", "duplicated", "marker"):
        assert "graded" in row(out, student), out
        assert scores(root, student) == FULL, student
        assert (root / "feedback" / student / AID / f"{AID}.html").exists()
    assert "graded 'fx_tiny (1).ipynb' as 'fx_tiny.ipynb'" in out
    feedback = feedback_text(root, "ok")
    assert "assert_close('axpy', axpy(2.0" in feedback and "Score: 2.0 / 2.0" in feedback


def test_a_dead_kernel_costs_only_the_cells_it_broke(course):
    root, _, _, out = course
    assert scores(root, "dies") == {"test_softmax": 2.0, "test_axpy": 0.0, "test_fit": 2.0}
    assert "graded" in row(out, "dies")


def test_a_deleted_test_cell_is_restored_run_and_held_for_review(course):
    root, _, _, out = course
    assert scores(root, "deleted") == {**FULL, "test_softmax": 0.0}
    assert "restored the deleted cell 'test_softmax'" in out
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        assert gradebook.find_grade("test_softmax", AID, AID, "deleted").needs_manual_grade


def test_an_infinite_loop_costs_its_function_in_bounded_time(course):
    root, _, _, out = course
    assert scores(root, "loop") == {**FULL, "test_axpy": 0.0}
    seconds = float(row(out, "loop").split()[-1].rstrip("s"))
    assert seconds < 120, f"the loop cost {seconds} s (cell limit 10 s)"


def test_student_code_is_sandboxed(course):
    root, _, _, _ = course
    assert scores(root, "snoop") == FULL and scores(root, "ok") == FULL
    nb = nbformat.read(root / "autograded" / "snoop" / AID / NB, 4)
    printed = "".join(o.get("text", "") for c in nb.cells if grading.grade_id(c) == "axpy" for o in c.outputs)
    assert "solutions: []" in printed, printed
    assert re.search(r"gradebook: (OSError|PermissionError)", printed), printed
    assert re.search(r"others: (OSError|PermissionError|FileNotFoundError)", printed), printed
    assert re.search(r"network: \w+", printed) and "network: OPEN" not in printed, printed
    assert not (root / "submitted" / "ok" / "stolen.txt").exists()


def test_output_floods_are_capped_in_bytes(course):
    root, _, _, _ = course
    size = (root / "feedback" / "flood" / AID / f"{AID}.html").stat().st_size
    assert size < 2_000_000, f"feedback of the output flood is {size / 1e6:.1f} MB"
    assert scores(root, "flood") == FULL


def test_feedback_shows_no_hidden_test_and_no_machine_path(course):
    root, _, _, _ = course
    text = feedback_text(root, "unstable")
    assert HIDDEN_LINE not in text and "axpy (a=0)" not in text
    assert str(root) not in text and "rnn-autograde-" not in text and "site-packages" not in text
    assert "assert_close('softmax', softmax(x)" in text  # the visible check is still shown
    assert scores(root, "unstable")["test_softmax"] == 0.0


def test_rerun_skips_unchanged_and_a_failed_regrade_leaves_no_stale_grade(course, tmp_path):
    root, subs, _, _ = course
    code, out = grading.run_cli(["autograde", str(subs), "--workers", "2"])
    assert "skipped" in row(out, "ok") and "skipped" in row(out, "loop")
    (tmp_path / "ok" / AID).mkdir(parents=True)
    (tmp_path / "ok" / AID / NB).write_text("{broken")
    code, out = grading.run_cli(["autograde", str(tmp_path)])
    assert code == 1 and "failed" in row(out, "ok")
    assert all(score in (None, 0) for score in scores(root, "ok").values())
    assert not (root / "feedback" / "ok" / AID).exists(), "the old feedback must not stay as if current"
    assert list((root / "backups" / "feedback").glob(f"*/ok/{AID}/{AID}.html"))
    assert list((root / "backups" / "submitted").glob(f"*/ok/{AID}/{NB}"))
    assert cli.main(["grades"]) == 0
    csv = (root / "grades.csv").read_text().splitlines()
    ok_rows = [line for line in csv if ",ok," in line or line.startswith("ok,")]
    assert ok_rows and not any(",5.0," in line for line in ok_rows)


def test_links_pipes_and_odd_names_in_submissions_are_refused(course, tmp_path):
    """A notebook that is a symbolic link (to solutions/: full marks if followed), a named pipe (reading
    it blocks the batch for ever) or has a name that is not UTF-8 (it stopped the batch), in submitted/ or
    in a SUBMISSIONS folder: that submission fails with the reason, nothing is read through the link, and
    the others are unaffected."""
    root, _, _, _ = course
    solution = root / "solutions" / AID / NB
    for student in ("linked", "piped", "odd_name"):
        (root / "submitted" / student / AID).mkdir(parents=True)
    shutil.copy(solution, os.fsencode(root / "submitted" / "odd_name" / AID) + b"/fx_tiny\xff.ipynb")
    os.makedirs(os.fsencode(root / "submitted") + b"/\xfeodd/" + AID.encode())
    shutil.copy(solution, os.fsencode(root / "submitted") + b"/\xfeodd/" + os.fsencode(AID + "/" + NB))
    (root / "submitted" / "linked" / AID / NB).symlink_to(solution)
    (root / "submitted" / "linked" / AID / "timestamp.txt").symlink_to(solution)  # copied to the feedback if followed
    os.mkfifo(root / "submitted" / "piped" / AID / NB)
    (tmp_path / "linked_in" / AID).mkdir(parents=True)
    (tmp_path / "linked_in" / AID / NB).symlink_to(solution)
    previous = signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("blocked on a pipe")))
    signal.alarm(120)
    try:
        code, out = grading.run_cli(["autograde", "--workers", "1"])
        code_in, out_in = grading.run_cli(["autograde", str(tmp_path), "--workers", "1"])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert code == 1 and code_in == 1, out + out_in
    assert "failed" in row(out, "linked") and f"{NB} is a symbolic link" in out, out
    assert "failed" in row(out, "piped") and f"{NB} is not a regular file" in out, out
    assert "failed" in row(out, "odd_name") and "'fx_tiny\\udcff.ipynb' is not UTF-8" in out, out
    assert "skipping folders whose names are not UTF-8: ['\\udcfeodd/fx_tiny']" in out, out
    assert "failed" in row(out_in, "linked_in") and (root / "submitted" / "linked_in" / AID / NB).is_symlink(), out_in
    assert "skipped" in row(out, "stripped") and scores(root, "stripped") == FULL, "the others are unaffected"
    for student in ("linked", "piped", "odd_name", "linked_in"):
        assert all(score in (None, 0) for score in scores(root, student).values()), student
        assert not (root / "feedback" / student).exists(), student
