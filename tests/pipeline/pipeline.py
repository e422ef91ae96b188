"""Test-class factories for the grading pipeline, shared by the course and the fixture course.

Each assignment gets one class for the nbgrader pipeline and a few classes of variants, so that
pytest-xdist (``--dist loadscope``) spreads them over the workers.
"""
import grading
import nbformat
import pytest

VARIANTS_PER_CLASS = 3


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

        def test_reference_gets_full_marks(self, course):
            scores = course.autograde("reference", course.path / "solutions" / aid)
            lost = {gid: s for gid, s in scores.items() if s[0] < s[1]}
            assert scores and not lost, f"{aid}: the reference solution loses points in {lost}"

        def test_blank_release_gets_zero(self, course):
            scores = course.autograde("blank", course.release)
            earned, possible = grading.total(scores)
            free = {gid: s for gid, s in scores.items() if s[0] > 0}
            assert possible > 0 and earned == 0, f"{aid}: the untouched release earns points in {free}"

    Pipeline.__name__ = Pipeline.__qualname__ = f"TestPipeline_{aid}"
    return Pipeline


def variant_classes(course_root, mutants_dir, aid):
    """Classes that run each mutant / alternative of ``aid`` through the fast path."""
    spec = grading.load_spec(mutants_dir, aid)
    variants = spec.mutants + spec.alternatives
    classes = []
    for start in range(0, len(variants), VARIANTS_PER_CLASS):
        chunk = variants[start:start + VARIANTS_PER_CLASS]

        class Variants:
            @pytest.mark.parametrize("variant", chunk, ids=[v.name for v in chunk])
            def test_variant(self, variant, tmp_path):
                grading.check_variant(course_root, aid, variant, spec, tmp_path)

        Variants.__name__ = Variants.__qualname__ = f"TestVariants_{aid}_{start // VARIANTS_PER_CLASS}"
        classes.append(Variants)
    return classes


def register(namespace, course_root, mutants_dir):
    """Add the pipeline and variant classes of every assignment of a course to ``namespace``."""
    for aid in grading.assignment_ids(course_root):
        for cls in [pipeline_class(course_root, aid), *variant_classes(course_root, mutants_dir, aid)]:
            namespace[cls.__name__] = cls
