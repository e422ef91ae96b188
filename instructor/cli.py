"""Instructor commands behind `make release`, `make autograde` and `make grades`.

    python -m instructor release [assignment_id ...]
    python -m instructor autograde [<folder or .zip>] [--workers N] [--scheduler ADDRESS] [--unsandboxed]
    python -m instructor grades
    python -m instructor student-release [--out DIR]     (what students receive: instructor.bundle)

Submissions use nbgrader's layout: ``<student_id>/<assignment_id>/<notebook>.ipynb`` (a zip may
wrap that in one top folder). A submission that replaces an earlier, different one is kept:
the earlier one is moved to ``backups/submitted/<timestamp>/`` first. Nothing is deleted. Without a
folder, what is in ``submitted/`` already is graded (e.g. what ``nbgrader collect`` put there).
Grading (``instructor.autograde``) runs every submission in a sandbox, in parallel, never stops
the batch for one bad notebook, and ends with a status table; the integrity scan
(``instructor.integrity``) reports what could fool a test cell, in the table and the gradebook.
"""
import argparse
import filecmp
import shutil
import stat
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from .course import UsageError, assignment_ids, course_root, gradebook_url, run_nbgrader, sqlite_path, utf8_name


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
    shutil.copytree(source, target, symlinks=True, ignore=_special_files)  # links stay links: grading refuses them
    return True


def _special_files(folder, names):
    """The names in ``folder`` that are neither files, folders nor links (named pipes, devices): not copied."""
    kinds = (stat.S_ISREG, stat.S_ISDIR, stat.S_ISLNK)
    odd = [n for n in names if not any(kind(Path(folder, n).lstat().st_mode) for kind in kinds)]
    for name in odd:
        print(f"  left out {ascii(str(Path(folder, name)))}: not a regular file")
    return odd


def _same_tree(a, b):
    """True when folders ``a`` and ``b`` hold the same files with the same bytes."""
    files = [sorted(str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file()) for root in (a, b)]
    return files[0] == files[1] and all(filecmp.cmp(Path(a) / n, Path(b) / n, shallow=False) for n in files[0])


def autograde(submissions, **options):
    """Collect submissions (folder or zip) into submitted/, autograde them, write feedback; without
    ``submissions``, grade what is in submitted/ already (``nbgrader collect`` puts it there).

    options: workers (int, default one per core), scheduler (a Dask scheduler address),
    unsandboxed (bool: grade without a sandbox, only when asked). Returns the exit status.
    """
    collected = course_root() / "submitted"
    if not submissions:
        if not collected.is_dir() or not find_submissions(collected):
            raise UsageError("SUBMISSIONS is not set and submitted/ holds no submission: make autograde "
                             "SUBMISSIONS=<folder or .zip>, or `nbgrader collect <assignment>` first")
        submissions = collected
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
        odd = [f"{student}/{aid}" for student, aid, _ in found if not utf8_name(student + aid)]
        if odd:  # they could be neither printed nor stored in the gradebook
            print(f"  skipping folders whose names are not UTF-8: {ascii(odd)}")
            found = [item for item in found if utf8_name(item[0] + item[1])]
        unknown = sorted({aid for _, aid, _ in found if aid not in known})
        if unknown:
            print(f"  skipping folders that are not assignments of this course: {', '.join(unknown)}")
        found = [item for item in found if item[1] in known]
        if not found:
            raise UsageError(f"no submissions in {submissions}: expected <student_id>/<assignment_id>/<notebook>.ipynb "
                             f"with an assignment id among {', '.join(known)}")
        if path.resolve() != collected.resolve():
            for student, aid, source in found:
                _store(student, aid, source)
    return _grade(found, options)


# ---------------------------------------------------------------- grading
def _grade(found, options):
    """Autograde [(student, assignment, _)] (see ``instructor.autograde``); print the status table.

    Returns the exit status: 1 when any submission failed, else 0.
    """
    from . import autograde

    statuses = autograde.autograde_all([(s, a) for s, a, _ in found], workers=options.get("workers"),
                                       scheduler=options.get("scheduler"),
                                       sandbox_settings=_sandbox_settings(options.get("unsandboxed")))
    print(autograde.status_table(statuses))
    print("feedback (HTML) is in feedback/<student>/<assignment>/; manual grading: formgrader in `make lab`")
    failed = [s for s in statuses if s.state == "failed"]
    if failed:
        print(f"{len(failed)} submission(s) could not be graded (see the status column); the others were graded")
    return 1 if failed else 0


def _sandbox_settings(unsandboxed=False):
    """Settings of the sandbox every kernel runs in, or None (only with an explicit request)."""
    from . import sandbox

    ok, reason = sandbox.available()
    if not ok:
        if not unsandboxed:
            raise UsageError(f"no sandbox for student code ({reason}). Install bubblewrap (`make setup` does it when "
                             "run as root), or grade WITHOUT a sandbox: make autograde UNSANDBOXED=1 ...")
        print("WARNING: grading WITHOUT a sandbox: student code runs with your rights (UNSANDBOXED=1)",
              file=sys.stderr)
        return None
    if unsandboxed:
        print("WARNING: UNSANDBOXED=1: student code runs with your rights although a sandbox is available",
              file=sys.stderr)
        return None
    return sandbox.course_settings(course_root())


def grades():
    """Export every grade in the course gradebook (``gradebook_url()``: gradebook.db, or the
    database that $NBGRADER_DB_URL names, which nbgrader_config.py passes on) to grades.csv."""
    database = sqlite_path(gradebook_url())
    if database is not None and not database.exists():
        raise UsageError("no gradebook.db yet: run make autograde SUBMISSIONS=... first")
    run_nbgrader("export", "--to", course_root() / "grades.csv")
    print(f"wrote {course_root() / 'grades.csv'}")


def _autograde_command(args):
    """``autograde [<folder or zip>] [--workers N] [--scheduler ADDRESS] [--unsandboxed]``."""
    parser = argparse.ArgumentParser(prog="python -m instructor autograde", exit_on_error=False, add_help=False)
    parser.add_argument("submissions", nargs="?", default="")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--scheduler", default=None)
    parser.add_argument("--unsandboxed", action="store_true")
    options = _parse(parser, args, "use --workers N, --scheduler ADDRESS, --unsandboxed")
    if options.workers is not None and options.workers < 1:
        raise UsageError(f"WORKERS must be a positive integer, got {options.workers}")
    return autograde(options.submissions, workers=options.workers, scheduler=options.scheduler or None,
                     unsandboxed=options.unsandboxed)


def _student_release_command(args):
    """``student-release [--out DIR]``: the student bundle in DIR (default dist/), see ``instructor.bundle``."""
    from . import bundle

    parser = argparse.ArgumentParser(prog="python -m instructor student-release", exit_on_error=False, add_help=False)
    parser.add_argument("--out", default="dist")
    bundle.student_release(_parse(parser, args, "use --out DIR").out)


def _parse(parser, args, hint):
    """``parser``'s options from ``args``; a UsageError (with ``hint``) for bad or unknown arguments."""
    try:
        options, unknown = parser.parse_known_args(args)
    except argparse.ArgumentError as problem:
        raise UsageError(str(problem)) from None
    if unknown:
        raise UsageError(f"unknown arguments {unknown}: {hint}")
    return options


def main(argv):
    commands = {"release": lambda args: release(tuple(args)),
                "autograde": _autograde_command,
                "grades": lambda args: grades(),
                "student-release": _student_release_command}
    if not argv or argv[0] not in commands:
        print(__doc__)
        return 2
    try:
        return commands[argv[0]](argv[1:]) or 0
    except UsageError as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
