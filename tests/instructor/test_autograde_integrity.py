"""Through the real `make autograde` path (instructor API, nbgrader, a temporary course root): a
student who rebinds the checks or hands a1's functions to torch-backed course code gets no credit
for them and is named in the summary and the gradebook comments. (No false alarm on honest work:
test_integrity.py scans the references, every alternative and honest extras; the pipeline grades
the references and alternatives, NumPy-only guard included, at full marks.)"""
from pathlib import Path

import attacks
import grading
import nbformat
import pytest

from instructor import cli
from instructor.course import ROOT_ENV

COURSE = Path(__file__).resolve().parents[2]
AID = "a1_rnn_numpy"
NB = f"{AID}.ipynb"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Autograde three a1 submissions once; return (course root, printed output, scores)."""
    root = grading.course_copy(COURSE, tmp_path_factory.mktemp("a1_course"), AID)
    reference = nbformat.read(COURSE / "solutions" / AID / NB, 4)
    release = nbformat.read(COURSE / "assignments" / AID / NB, 4)
    subs = root.parent / f"{root.name}_subs"
    for student, nb in {"rebinder": attacks.rebinding(release), "standin": attacks.stand_ins(reference)}.items():
        (subs / student / AID).mkdir(parents=True)
        nbformat.write(nbformat.from_dict(nb), subs / student / AID / NB)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ROOT_ENV, str(root))
        import io
        from contextlib import redirect_stdout

        out = io.StringIO()
        with redirect_stdout(out):
            assert cli.main(["autograde", str(subs)]) == 0
        yield root, out.getvalue(), {s: _scores(root, s) for s in ("rebinder", "standin")}


def block(out, student):
    """The status-table row of a student and the note lines under it."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{student} "))
    end = next((i for i in range(start + 1, len(lines)) if lines[i][:1].strip()), len(lines))
    return "\n".join(lines[start:end])


def _scores(root, student):
    from nbgrader.api import Gradebook

    tests = grading.autograded_tests(nbformat.read(root / "solutions" / AID / NB, 4))
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        grades = {g.name: g for nb in gradebook.find_submission(AID, student).notebooks for g in nb.grades}
        return {gid: (grades[gid].score, grades[gid].max_score) for gid in tests}


def test_rebinding_the_checks_earns_nothing_and_is_reported(graded):
    root, out, scores = graded
    earned = {gid: s for gid, (s, _) in scores["rebinder"].items() if s}
    assert earned == {}, f"rebinding the checks still earns {earned}"
    assert "note: [rebinds]" in block(out, "rebinder") and "grader" in block(out, "rebinder")


def test_torch_stand_ins_earn_nothing_for_those_functions_and_are_reported(graded):
    root, out, scores = graded
    for gid in ("test_rnn_forward", "test_rnn_backward"):
        assert scores["standin"][gid][0] == 0, f"{gid} kept points for torch-backed code"
    assert scores["standin"]["test_rnn_step_forward"][0] == scores["standin"]["test_rnn_step_forward"][1]
    assert "note: [torch] rnn_forward" in block(out, "standin")
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        comment = gradebook.find_comment("rnn_forward", AID, AID, "standin").manual_comment
        grade = gradebook.find_grade("test_rnn_forward", AID, AID, "standin")
    assert "helpers.gradient_flow" in comment and grade.needs_manual_grade
