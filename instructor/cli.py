"""Instructor commands behind `make release`, `make autograde` and `make grades`.

    python -m instructor release [assignment_id ...]
    python -m instructor autograde <folder or .zip>
    python -m instructor grades

Submissions use nbgrader's layout: ``<student_id>/<assignment_id>/<notebook>.ipynb`` (a zip may
wrap that in one top folder). A submission that replaces an earlier, different one is kept:
the earlier one is moved to ``backups/submitted/<timestamp>/`` first. Nothing is deleted.
After grading, every submission goes through the integrity scan (``instructor.integrity``): what
it finds is printed, written as a comment in the gradebook, and the test cells it affects are set
to 0 and marked for manual review, so a human decides.
"""
import filecmp
import importlib
import json
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from . import integrity
from .course import UsageError, assignment_ids, course_root, run_nbgrader


def release(ids=()):
    """Regenerate ``assignments/<id>/`` from ``solutions/<id>/`` for the given ids (default all)."""
    known = assignment_ids()
    for aid in ids:
        if aid not in known:
            raise UsageError(f"unknown assignment {aid!r}; known: {', '.join(known)}")
    for aid in ids or known:
        run_nbgrader("generate_assignment", aid, "--force")
        print(f"released assignments/{aid}/")


# ---------------------------------------------------------------- collecting submissions
def find_submissions(folder):
    """[(student_id, assignment_id, path)] under ``folder`` in nbgrader's submitted layout.

    A single wrapping folder (common in zips) is looked through.
    """
    folder = Path(folder)
    entries = [p for p in folder.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    if len(entries) == 1 and entries[0].is_dir() and not _is_submission_dir(entries[0]):
        folder = entries[0]
    found = []
    for student in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for assignment in sorted(p for p in student.iterdir() if p.is_dir() and any(p.glob("*.ipynb"))):
            found.append((student.name, assignment.name, assignment))
    return found


def _is_submission_dir(path):
    """True when ``path`` looks like ``<student>/`` (it holds assignment folders with notebooks)."""
    return any(sub.is_dir() and any(sub.glob("*.ipynb")) for sub in path.iterdir())


def _extract(zip_path, into):
    """Extract a zip safely (no absolute paths, no '..')."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            for name in archive.namelist():
                if name.startswith("/") or ".." in Path(name).parts:
                    raise UsageError(f"SUBMISSIONS zip has an unsafe path: {name!r}")
            archive.extractall(into)
    except zipfile.BadZipFile:
        raise UsageError(f"SUBMISSIONS={zip_path} is not a valid zip file") from None


def _store(student, aid, source):
    """Copy one submission into submitted/, backing up a different earlier one first."""
    target = course_root() / "submitted" / student / aid
    if target.exists():
        if _same_tree(source, target):
            return False
        backup = course_root() / "backups" / "submitted" / time.strftime("%Y%m%d-%H%M%S") / student / aid
        backup.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(target), str(backup))
        print(f"  kept the earlier submission of {student}/{aid} in {backup.relative_to(course_root())}")
    shutil.copytree(source, target)
    return True


def _same_tree(a, b):
    """True when folders ``a`` and ``b`` hold the same files with the same bytes."""
    files = [sorted(str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file()) for root in (a, b)]
    return files[0] == files[1] and all(filecmp.cmp(Path(a) / n, Path(b) / n, shallow=False) for n in files[0])


def autograde(submissions):
    """Collect submissions (folder or zip) into submitted/, autograde them, write feedback."""
    if not submissions:
        raise UsageError("SUBMISSIONS is not set: make autograde SUBMISSIONS=<folder or .zip>")
    path = Path(submissions).expanduser()
    if not path.exists():
        raise UsageError(f"SUBMISSIONS={submissions} does not exist")
    with tempfile.TemporaryDirectory() as tmp:
        if path.is_file():
            if path.suffix.lower() != ".zip":
                raise UsageError(f"SUBMISSIONS={submissions} must be a folder or a .zip file")
            _extract(path, tmp)
            path = Path(tmp)
        known = assignment_ids()
        found = find_submissions(path)
        unknown = sorted({aid for _, aid, _ in found if aid not in known})
        if unknown:
            print(f"  skipping folders that are not assignments of this course: {', '.join(unknown)}")
        found = [item for item in found if item[1] in known]
        if not found:
            raise UsageError(f"no submissions in {submissions}: expected <student_id>/<assignment_id>/<notebook>.ipynb "
                             f"with an assignment id among {', '.join(known)}")
        for student, aid, source in found:
            _store(student, aid, source)
    _grade(found)


# ---------------------------------------------------------------- grading
def _grade(found):
    """Autograde [(student, assignment, _)], apply the integrity scan, write feedback, print scores."""
    with tempfile.TemporaryDirectory() as release_dir:
        for aid in sorted({aid for _, aid, _ in found}):
            # Registers the assignment in the gradebook without touching assignments/.
            run_nbgrader("generate_assignment", aid, "--force", f"--CourseDirectory.release_directory={release_dir}")
    findings = {}
    for student, aid, _ in found:
        print(f"autograding {student}/{aid} ...", flush=True)
        run_nbgrader("autograde", aid, "--student", student, "--force")
        findings[student, aid] = apply_integrity(student, aid)
        run_nbgrader("generate_feedback", aid, "--student", student, "--force")
    _print_scores(found)
    _print_findings(findings)


def numpy_only(aid):
    """True when the assignment's grader declares NUMPY_ONLY (its parts must not use torch)."""
    try:
        return bool(getattr(importlib.import_module(f"graders.{aid}"), "NUMPY_ONLY", False))
    except ImportError:
        return False


def scan_submission(student, aid):
    """{notebook name: [Finding]} for one autograded submission: static scan + run-time failures."""
    root = course_root()
    result = {}
    for source in sorted((root / "solutions" / aid).glob("*.ipynb")):
        submitted = root / "submitted" / student / aid / source.name
        autograded = root / "autograded" / student / aid / source.name
        found = []
        if submitted.exists():
            found += integrity.scan(json.loads(submitted.read_text()), json.loads(source.read_text()),
                                    numpy_only(aid))
        if autograded.exists():
            found += integrity.runtime_findings(json.loads(autograded.read_text()))
        if found:
            result[source.stem] = found
    return result


def apply_integrity(student, aid):
    """Scan one submission; set the affected test cells to 0 for manual review and comment why."""
    from nbgrader.api import Gradebook, MissingEntry

    findings = scan_submission(student, aid)
    if not findings:
        return findings
    with Gradebook(f"sqlite:///{course_root() / 'gradebook.db'}") as gradebook:
        for notebook, found in findings.items():
            for finding in found:
                for test in finding.affects:
                    grade = gradebook.find_grade(test, notebook, aid, student)
                    grade.manual_score, grade.needs_manual_grade = 0.0, True
                try:
                    comment = gradebook.find_comment(finding.cell, notebook, aid, student)
                except MissingEntry:
                    continue  # a cell the student added: the summary and the grades carry the finding
                note = f"Integrity check: {finding.describe()}"
                comment.manual_comment = "\n".join(filter(None, [comment.manual_comment, note]))
        gradebook.db.commit()
    return findings


def _print_scores(found):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_root() / 'gradebook.db'}") as gradebook:
        print(f"{'student':<20} {'assignment':<24} {'score':>8} {'max (all)':>10}")
        for student, aid, _ in found:
            sub = gradebook.find_submission(aid, student)
            score = sum(g.score or 0 for nb in sub.notebooks for g in nb.grades)
            print(f"{student:<20} {aid:<24} {score:>8.1f} {sub.max_score:>10.1f}")
    print("feedback (HTML) is in feedback/<student>/<assignment>/; manual grading: formgrader in `make lab`")


def _print_findings(findings):
    flagged = {key: value for key, value in findings.items() if value}
    if not flagged:
        print("integrity scan: nothing found")
        return
    print("integrity scan: review these in the formgrader (the affected test cells were set to 0):")
    for (student, aid), by_notebook in flagged.items():
        for notebook, found in by_notebook.items():
            for finding in found:
                print(f"  {student}/{aid}/{notebook}: {finding.describe()}")


def grades():
    """Export every grade in the gradebook to grades.csv."""
    if not (course_root() / "gradebook.db").exists():
        raise UsageError("no gradebook.db yet: run make autograde SUBMISSIONS=... first")
    run_nbgrader("export", "--to", course_root() / "grades.csv")
    print(f"wrote {course_root() / 'grades.csv'}")


def main(argv):
    commands = {"release": lambda args: release(tuple(args)),
                "autograde": lambda args: autograde(args[0] if args else ""),
                "grades": lambda args: grades()}
    if not argv or argv[0] not in commands:
        print(__doc__)
        return 2
    try:
        commands[argv[0]](argv[1:])
    except UsageError as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return 0
