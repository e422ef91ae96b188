"""The harness proves itself on a tiny fixture assignment (tests/fixtures/tiny_course, not part
of the course): the pipeline passes on it, and each check fails when it should."""
import json
import shutil
import subprocess
import sys
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

    def test_fast_path_agrees_with_a_fresh_kernel(self, tmp_path):
        """The forked fast path grades every fixture variant exactly as a fresh nbclient kernel does."""
        spec, source = self.spec(), nbformat.read(SOURCE, 4)
        variants = spec.mutants + spec.alternatives
        fast = grading.run_variants(FIXTURE, AID, variants, spec, tmp_path / "fast")
        for number, variant in enumerate(variants):
            workdir = shutil.copytree(SOURCE.parent, tmp_path / f"plain{number}")
            plain = grading.execute_scores(grading.apply_variant(source, variant), workdir,
                                           run_groups=grading.groups_to_run(source, variant, spec))
            forked = {gid: (score, max_score) for gid, (score, max_score, _) in fast[variant.name]["grades"].items()}
            assert forked == plain, variant.name

    def test_a_wrong_alternative_scored_in_a_round_is_named_alone(self, tmp_path):
        """Alternatives of different cells run together; a round that loses points is re-run one
        alternative at a time, so the right one passes and the wrong one fails by name."""
        spec = self.spec()
        good = spec.alternatives[0]
        wrong = grading.Alternative("y dropped (not an alternative)", cell="axpy", find="a * x + y", replace="a * x")
        assert grading.rounds([good, wrong]) == [[good, wrong]]
        outcomes = grading.run_variants(FIXTURE, AID, [good, wrong], spec, tmp_path)
        grading.assert_outcome(AID, good, outcomes[good.name])
        with pytest.raises(AssertionError, match="lost .*test_axpy"):
            grading.assert_outcome(AID, wrong, outcomes[wrong.name])

    def test_no_definition_survives_from_the_reference_run(self, tmp_path):
        """A cell that does not compile defines nothing: its function's test fails as in a fresh kernel."""
        broken = grading.Mutant("syntax error", cell="axpy", solution="    return (a * x\n", loses=["test_axpy"])
        scores = grading.check_variant(FIXTURE, AID, broken, self.spec(), tmp_path)
        assert scores["test_axpy"] == (0.0, 1.0)

    def test_a_dying_variant_is_reported(self, tmp_path):
        dies = grading.Mutant("os._exit", cell="axpy", solution="    import os\n    os._exit(3)\n", loses=["test_axpy"])
        with pytest.raises(AssertionError, match="died"):
            grading.check_variant(FIXTURE, AID, dies, self.spec(), tmp_path)

    def test_cell_time_limit_is_an_error_output(self):
        """A cell over its time limit gets a TimeoutError output (scored 0), in bounded time."""
        code = ("import json, signal, forkrun\n"
                "from IPython.core.interactiveshell import InteractiveShell\n"
                "signal.signal(signal.SIGALRM, forkrun._on_alarm)\n"
                "print(json.dumps(forkrun.execute(InteractiveShell.instance(), 'while True: pass', 0.2)))")
        done = subprocess.run([sys.executable, "-c", code], cwd=Path(grading.__file__).parent,
                              capture_output=True, text=True, timeout=60)
        outputs = json.loads(done.stdout.splitlines()[-1])
        assert [o["ename"] for o in outputs if o["output_type"] == "error"] == ["TimeoutError"]

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
