"""The one-time, per-assignment set-up of `make autograde` (fixture course, temporary course root):
the template gradebook is made once and reused while nothing that decides a grade changes, and
registering an assignment copies it into the course gradebook without touching other data."""
from pathlib import Path

import grading
import nbformat
import pytest
from nbgrader.api import Gradebook

from instructor import autograde, sandbox
from instructor.course import ROOT_ENV

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tiny_course"
AID = "fx_tiny"


@pytest.fixture
def course(tmp_path, monkeypatch):
    root = grading.course_copy(FIXTURE, tmp_path / "course")
    monkeypatch.setenv(ROOT_ENV, str(root))
    return root


def test_template_is_cached_until_the_grader_changes(course, monkeypatch):
    from instructor import course as course_module

    calls, original = [], course_module.run_nbgrader
    monkeypatch.setattr(course_module, "run_nbgrader", lambda *a, **k: calls.append(a) or original(*a, **k))
    first = autograde.template_gradebook(AID)
    assert autograde.template_gradebook(AID) == first and len(calls) == 1, "the second batch reuses the template"
    source = course / "solutions" / AID / f"{AID}.ipynb"
    source.write_text(source.read_text().replace("Row-wise softmax", "Row-wise softmax (edited)"))
    autograde.template_gradebook(AID)
    assert len(calls) == 2, "an edited source notebook makes a new template"
    assert len(list((course / autograde.TEMPLATE_CACHE).glob(f"{AID}-*.json"))) == 1, "old templates are removed"


def test_the_template_cache_is_private(course):
    settings = sandbox.course_settings(course)
    assert str(course / autograde.TEMPLATE_CACHE) in settings["hidden"]


def test_register_creates_or_extends_the_course_gradebook(course):
    template, _ = autograde.template_gradebook(AID)
    autograde.register({AID: template})  # no gradebook yet: it starts from the template
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        gradebook.update_or_create_student("kept")
        gradebook.update_or_create_assignment("other")
        gradebook.db.commit()
    autograde.register({AID: template})  # again, into an existing gradebook: nothing else changes
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        assert {a.name for a in gradebook.assignments} == {AID, "other"}
        assert [s.id for s in gradebook.students] == ["kept"]
        assignment = gradebook.find_assignment(AID)
        cells = {c.name: c.max_score for nb in assignment.notebooks for c in nb.grade_cells}
    source = nbformat.read(course / "solutions" / AID / f"{AID}.ipynb", 4)
    graded = {grading.grade_id(c): float(grading.nbgrader_meta(c)["points"]) for c in source.cells
              if grading.nbgrader_meta(c).get("grade")}
    assert cells == graded and graded
