"""Test-class factories for the grading pipeline, shared by the course and the fixture course.

Each assignment gets one class for the nbgrader pipeline and a few classes of variants, so that
pytest-xdist (``--dist loadscope``) spreads them over the workers.
"""
import grading
import nbformat
import pytest

RUNS_PER_CLASS = 8


def pipeline_class(course_root, aid):
    """Release drift, leaks, reference = 100 %, blank release = 0, in a temporary course root."""

    class Pipeline:
        @pytest.fixture(scope="class")
        def course(self, tmp_path_factory):
            root = grading.CourseRoot(course_root, aid, tmp_path_factory.mktemp(f"course_{aid}"))
            root.release = root.generate_release()
            return root

        def test_release_matches_committed(self, course):
            drift = grading.release_drift(course.release, course_root / "assignments" / aid)
            assert not drift, "assignments/ drifted from solutions/ (run `make release`):\n" + "\n".join(drift)

        def test_release_has_no_solutions_or_hidden_tests(self, course):
            for source in grading.notebooks(course.path / "solutions" / aid):
                leaks = grading.release_leaks(nbformat.read(source, 4),
                                              nbformat.read(course.release / source.name, 4))
                assert not leaks, f"{aid}/{source.name} leaks:\n" + "\n".join(leaks)

        @pytest.fixture(scope="class")
        def reference(self, course):
            return course.autograde("reference", course.path / "solutions" / aid)

        def test_reference_gets_full_marks(self, reference):
            lost = {gid: s for gid, s in reference.items() if s[0] < s[1]}
            assert reference and not lost, f"{aid}: the reference solution loses points in {lost}"

        def test_reference_runs_every_cell_without_error(self, course, reference):
            """Ungraded cells too (self-checks, plots): "Restart and Run All" must not stop on a student
            whose code is right, and nbgrader's validate does not look at ungraded cells."""
            errors = grading.error_cells(course.path / "autograded" / "reference" / aid)
            assert not errors, f"{aid}: the reference solution raises in cells " + "; ".join(errors)

        def test_blank_release_gets_zero(self, course):
            scores = course.autograde("blank", course.release)
            earned, possible = grading.total(scores)
            free = {gid: s for gid, s in scores.items() if s[0] > 0}
            assert possible > 0 and earned == 0, f"{aid}: the untouched release earns points in {free}"

    Pipeline.__name__ = Pipeline.__qualname__ = f"TestPipeline_{aid}"
    return Pipeline


def chunks(units, costs, size):
    """Split ``units`` (lists of variants scored in one run) into ceil(n / size) classes of similar
    total cost (longest first, each to the lightest class), so that pytest-xdist balances them."""
    bins = [[] for _ in range(-(-len(units) // size))]
    load = [0.0] * len(bins)
    for unit, cost in sorted(zip(units, costs), key=lambda pair: -pair[1]):
        lightest = load.index(min(load))
        bins[lightest] += unit
        load[lightest] += cost
    return bins


def variant_classes(course_root, mutants_dir, aid):
    """Classes that score the mutants / alternatives of ``aid`` through the forked fast path: one
    ``forkrun`` process per class (its fixture), one test per variant."""
    spec = grading.load_spec(mutants_dir, aid)
    units = [[m] for m in spec.mutants] + grading.rounds(spec.alternatives)

    def cost(unit):  # heavy groups dominate: a run that trains costs far more than one that does not
        source = nbformat.read(grading.variant_notebook(course_root, aid, unit[0]), 4)
        return 1 + len(set().union(*(grading.groups_to_run(source, v, spec) for v in unit)))

    classes = []
    for number, chunk in enumerate(chunks(units, [cost(u) for u in units], RUNS_PER_CLASS)):

        class Variants:
            variants = chunk

            @pytest.fixture(scope="class")
            def outcomes(self, tmp_path_factory):
                return grading.run_variants(course_root, aid, self.variants, spec, tmp_path_factory.mktemp("variants"))

            @pytest.mark.parametrize("variant", chunk, ids=[v.name for v in chunk])
            def test_variant(self, variant, outcomes):
                grading.assert_outcome(aid, variant, outcomes[variant.name])

        Variants.__name__ = Variants.__qualname__ = f"TestVariants_{aid}_{number}"
        classes.append(Variants)
    return classes


def register(namespace, course_root, mutants_dir):
    """Add the pipeline and variant classes of every assignment of a course to ``namespace``."""
    for aid in grading.assignment_ids(course_root):
        for cls in [pipeline_class(course_root, aid), *variant_classes(course_root, mutants_dir, aid)]:
            namespace[cls.__name__] = cls
