"""The instructor commands behind `make release / autograde / grades`, on the fixture course in
a temporary course root."""
import shutil
from pathlib import Path

import grading
import pytest

from instructor import cli as instructor
from instructor.course import ROOT_ENV

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tiny_course"
AID = "fx_tiny"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = grading.course_copy(FIXTURE, tmp_path_factory.mktemp("course"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ROOT_ENV, str(root))
        yield root


def submissions(tmp_path, **students):
    """A folder in nbgrader's layout: {student: notebook source folder}."""
    for student, source in students.items():
        shutil.copytree(source, tmp_path / "subs" / student / AID)
    return tmp_path / "subs"


def test_release_regenerates_the_committed_release(course):
    assert instructor.main(["release", AID]) == 0
    assert grading.release_drift(course / "assignments" / AID, FIXTURE / "assignments" / AID) == []


@pytest.mark.parametrize("args, message", [
    (["release", "a9_nope"], "unknown assignment 'a9_nope'"),
    (["autograde"], "SUBMISSIONS is not set"),
    (["autograde", "/no/such/folder"], "does not exist"),
])
def test_bad_requests_get_one_line_errors(course, args, message, capsys):
    assert instructor.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_autograde_rejects_files_that_are_not_submissions(course, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "bad.zip").write_text("not a zip")
    (tmp_path / "empty").mkdir()
    assert instructor.main(["autograde", str(tmp_path / "notes.txt")]) == 2
    assert instructor.main(["autograde", str(tmp_path / "bad.zip")]) == 2
    assert instructor.main(["autograde", str(tmp_path / "empty")]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert "must be a folder or a .zip" in errors[0]
    assert "not a valid zip file" in errors[1]
    assert "expected <student_id>/<assignment_id>/<notebook>.ipynb" in errors[2]
