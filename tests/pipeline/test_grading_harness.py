"""The harness proves itself on a tiny fixture assignment (tests/fixtures/tiny_course, not part
of the course): the pipeline passes on it, and each check fails when it should."""
import shutil
from pathlib import Path

import grading
import nbformat
import pipeline
import pytest

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tiny_course"
MUTANTS = FIXTURE / "mutants"
AID = "fx_tiny"
SOURCE = FIXTURE / "solutions" / AID / f"{AID}.ipynb"
RELEASE = FIXTURE / "assignments" / AID / f"{AID}.ipynb"

# The same generic classes the course uses: reference 100 %, blank 0, one mutant per
# function caught, the alternative accepted.
pipeline.register(globals(), FIXTURE, MUTANTS)


class TestHarnessCatchesBrokenGraders:
    """Deliberately wrong specs, releases and graders must make the checks fail."""

    def spec(self):
        return grading.load_spec(MUTANTS, AID)

    def test_uncaught_mutant_fails(self, tmp_path):
        harmless = grading.Mutant("reordered sum", cell="axpy", find="a * x + y", replace="y + a * x",
                                  loses=["test_axpy"])
        with pytest.raises(AssertionError, match="expected to lose .*test_axpy.*lost nothing"):
            grading.check_variant(FIXTURE, AID, harmless, self.spec(), tmp_path)

    def test_mutant_losing_more_than_declared_fails(self, tmp_path):
        too_narrow = grading.Mutant("forgot the exp", cell="softmax", find="e = np.exp(shifted)",
                                    replace="e = shifted", loses=["test_softmax"])
        with pytest.raises(AssertionError, match="test_fit"):
            grading.check_variant(FIXTURE, AID, too_narrow, self.spec(), tmp_path)

    def test_wrong_alternative_fails(self, tmp_path):
        wrong = grading.Alternative("no shift, wrong axis", cell="softmax",
                                    solution="    return np.exp(x) / np.exp(x).sum(axis=0)\n")
        with pytest.raises(AssertionError, match="lost .*test_softmax"):
            grading.check_variant(FIXTURE, AID, wrong, self.spec(), tmp_path)

    def test_heavy_cells_run_only_for_cells_they_use(self):
        source = nbformat.read(SOURCE, 4)
        softmax = grading.Mutant("m", cell="softmax", find="x", replace="x", loses=["test_softmax"])
        axpy = grading.Mutant("m", cell="axpy", find="x", replace="x", loses=["test_axpy"])
        assert grading.groups_to_run(source, softmax, self.spec()) == {"default"}
        assert grading.groups_to_run(source, axpy, self.spec()) == set()

    @pytest.mark.parametrize("find, problem", [("not in the cell", "occurs 0 times"),
                                               ("Row-wise softmax", "outside the solution region")])
    def test_bad_edit_is_a_spec_error(self, find, problem):
        bad = grading.Mutant("bad", cell="softmax", find=find, replace="?", loses=["test_softmax"])
        with pytest.raises(grading.SpecError, match=problem):
            grading.apply_variant(nbformat.read(SOURCE, 4), bad)

    def test_mutant_without_target_is_a_spec_error(self):
        with pytest.raises(grading.SpecError, match="loses"):
            grading.Mutant("no target", cell="axpy", find="y", replace="x", loses=[])

    def test_drift_names_notebook_and_cell(self, tmp_path):
        committed = tmp_path / AID
        shutil.copytree(RELEASE.parent, committed)
        nb = nbformat.read(committed / RELEASE.name, 4)
        cell = next(c for c in nb.cells if grading.grade_id(c) == "test_axpy")
        cell.source += "\nprint('edited by hand')"
        nbformat.write(nb, committed / RELEASE.name)
        drift = grading.release_drift(RELEASE.parent, committed)
        assert drift == [f"{committed / RELEASE.name}: cell 5 (test_axpy) differs in its source"]

    def test_leaked_solution_line_is_reported(self):
        release = nbformat.read(RELEASE, 4)
        cell = next(c for c in release.cells if grading.grade_id(c) == "axpy")
        cell.source = cell.source.replace("raise NotImplementedError()", "return a * x + y")
        leaks = grading.release_leaks(nbformat.read(SOURCE, 4), release)
        assert len(leaks) == 1 and leaks[0].startswith("axpy:") and "return a * x + y" in leaks[0]

    def test_committed_fixture_release_is_clean(self):
        assert grading.release_leaks(nbformat.read(SOURCE, 4), nbformat.read(RELEASE, 4)) == []

    def test_free_points_are_detected(self, tmp_path):
        """A test cell that passes without a solution shows up as points for the blank release."""
        course = tmp_path / "course"
        shutil.copytree(FIXTURE / "solutions", course / "solutions")
        nb = nbformat.read(course / "solutions" / AID / SOURCE.name, 4)
        cell = next(c for c in nb.cells if grading.grade_id(c) == "test_axpy")
        cell.source = "assert True  # checks nothing"
        nbformat.write(nb, course / "solutions" / AID / SOURCE.name)
        root = grading.CourseRoot(course, AID, tmp_path / "root")
        scores = root.autograde("blank", root.generate_release())
        assert grading.total(scores)[0] == 1.0 and scores["test_axpy"] == (1.0, 1.0)
