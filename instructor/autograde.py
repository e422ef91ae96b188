"""Autograding a class: every submission graded (or reported as failed) in its own temporary
course root and sandbox, in parallel, with results merged into the course gradebook by this
(trusted) process.

    autograde_all(found, workers=None, scheduler=None, unsandboxed=False) -> [Status]

One job per (student, assignment), run by ``grade_job`` in a worker process (a local Dask
cluster by default, an existing one when ``scheduler`` is an address). A job gets everything by
value (notebooks, config, the assignment's template gradebook), so workers on other machines
need only the course environment: it normalises the submission against the release
(``instructor.normalize``), runs ``nbgrader autograde`` with the sandboxed kernel
(``instructor.sandbox``) and the kernel-death-proof executor (``instructor.execute``), runs the
integrity scan, writes sanitised feedback (``instructor.feedback``) and returns the grades and
files. The parent stores them in the course gradebook (``instructor.course.gradebook_url``: the
SQLite ``gradebook.db`` of the course root, or the database server that $NBGRADER_DB_URL names):
only this trusted process writes it, jobs work on a private SQLite copy and never see its address
or password. A job that fails leaves no stale grade: its submission's grades
are cleared and marked for review, and the old autograded notebook and feedback are moved to
``backups/``. Unchanged submissions already graded with the same grader are skipped.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import integrity, normalize, sandbox
from .course import course_root, gradebook_url, nbgrader_command, nbgrader_env, sqlite_path, utf8_name

STATUS_FILE = ".grading.json"
TEMPLATE_CACHE = ".autograde"  # folder of the course root with the assignments' template gradebooks
DEFAULT_BUDGET_S = 1800  # per submission, all cells together (per-cell limits come from the cells)
# What `nbgrader collect` puts beside a submission; kept with the autograded notebook and the feedback,
# where `nbgrader generate_feedback` and `release_feedback` look for them (the feedback's file name).
EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")


@dataclass
class Status:
    """What happened to one submission; one row of the status table."""

    student: str
    assignment: str
    state: str                 # "graded" | "failed" | "skipped"
    reason: str = ""
    score: float = None
    max_score: float = None
    notes: list = field(default_factory=list)   # repairs, warnings, integrity findings
    seconds: float = 0.0


# ---------------------------------------------------------------- the job (runs in a worker)
def grade_job(spec):
    """Grade one submission in a fresh temporary course root; return a result dict (never raises).

    ``spec``: dict with student, assignment, config (text of nbgrader_config.py), template_db
    (bytes of a gradebook where the assignment is registered), notebooks ({name: submitted bytes}),
    sources / releases ({name: notebook JSON text}), numpy_only, budget_s, sandbox (settings or None).
    """
    started = time.perf_counter()
    result = {"student": spec["student"], "assignment": spec["assignment"], "notes": [], "files": {}}
    try:
        with tempfile.TemporaryDirectory(prefix="rnn-autograde-") as tmp:
            _run_job(spec, Path(tmp), result)
    except Exception as error:  # noqa: BLE001 -- one submission must never stop the batch
        result.update(state="failed", reason=f"{type(error).__name__}: {error}",
                      log=traceback.format_exc()[-3000:])
    result["seconds"] = time.perf_counter() - started
    return result


def _run_job(spec, root, result):
    student, aid = spec["student"], spec["assignment"]
    if spec.get("refused"):
        raise RuntimeError(spec["refused"])
    (root / "nbgrader_config.py").write_text(spec["config"])
    (root / "gradebook.db").write_bytes(spec["template_db"])
    submitted = root / "submitted" / student / aid
    submitted.mkdir(parents=True)
    for name in spec["sources"]:
        nb, notes = _prepared(spec, root, name)
        result["notes"] += notes
        if nb is not None:
            (submitted / f"{name}.ipynb").write_text(nbformat.writes(nb))
    log = _nbgrader(root, spec, "autograde", aid, "--student", student, "--force")
    autograded = root / "autograded" / student / aid
    if not any(autograded.glob("*.ipynb")):
        raise RuntimeError(f"nbgrader autograde produced no notebook: {_last_error(log)}")
    result["findings"] = _integrity(spec, submitted, autograded, root, result["notes"])
    _feedback(root, aid, student)
    result.update(state="graded", grades=_read_grades(root, aid, student))
    for folder, kind in ((autograded, "autograded"), (root / "feedback" / student / aid, "feedback")):
        for path in folder.glob("*"):
            if path.is_file() and path.name != "timestamp.txt":
                result["files"][f"{kind}/{path.name}"] = path.read_bytes()


def _prepared(spec, root, name):
    """(normalised notebook or None when missing, notes) for notebook ``name`` of a submission.

    Raises RuntimeError (the submission fails, with the reason) for a file that is not a notebook.
    """
    incoming = root / "incoming"
    incoming.mkdir(exist_ok=True)
    for filename, data in spec["notebooks"].items():
        (incoming / Path(filename).name).write_bytes(data)
    try:
        path, warning = normalize.find_notebook(sorted(incoming.iterdir()), f"{name}.ipynb")
        submitted = normalize.load_submission(path)
    except ValueError as error:
        raise RuntimeError(str(error).replace(str(incoming) + "/", "")) from None
    notes = [warning] if warning else []
    nb, repairs = normalize.normalize(submitted, nbformat.reads(spec["sources"][name], 4),
                                      nbformat.reads(spec["releases"][name], 4))
    return nb, notes + [f"{name}: {repair}" for repair in repairs]


def _nbgrader(root, spec, *args):
    """Run nbgrader in the job's root (sandboxed kernel when configured); return its log."""
    env, extra = nbgrader_env(own_gradebook=True), []
    if spec.get("sandbox") is not None:
        settings = dict(spec["sandbox"])
        settings["hidden"] = [*settings["hidden"], *(str(root / n) for n in ("gradebook.db", "submitted", "incoming"))]
        env.update(sandbox.sandbox_env(settings, root / "jupyter"))
        extra = sandbox.nbgrader_args()
    command = nbgrader_command(*args, *(extra if args[0] == "autograde" else []))
    try:
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=spec["budget_s"])
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"over the time budget of {spec['budget_s']} s for the whole notebook") from None
    log = (done.stdout or "") + (done.stderr or "")
    if done.returncode != 0:
        raise RuntimeError(f"nbgrader {args[0]} failed: {_last_error(log)}")
    return log


def _feedback(root, aid, student):
    """``nbgrader generate_feedback`` for one student, in this process (no student code runs: it
    renders the autograded notebook to HTML), with the job root's configuration."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"  # the job's copy, whatever $NBGRADER_DB_URL
    api = NbGraderAPI(CourseDirectory(config=config), config=config)
    done = api.generate_feedback(aid, student, force=True)
    if not done["success"]:
        raise RuntimeError(f"nbgrader generate_feedback failed: {_last_error(done.get('error') or done['log'])}")


def _last_error(log):
    lines = [line.strip() for line in log.splitlines() if "[ERROR]" in line or "Error" in line]
    return (lines[-1] if lines else log.strip().splitlines()[-1] if log.strip() else "no output")[:300]


RESTORED = re.compile(r"^(\w+): .*restored the deleted cell '([^']+)'")


def _integrity(spec, submitted, autograded, root, notes):
    """Scan, zero the affected cells in the job's gradebook; return the findings as dicts.

    A test cell the student deleted was restored and run (its result is in the autograded
    notebook), but its points wait for a human, like any other finding.
    """
    found = []
    for name, gid in (m.groups() for m in map(RESTORED.match, notes) if m):
        tests = integrity.autograded_ids(nbformat.reads(spec["sources"][name], 4))
        if gid in tests:
            finding = integrity.Finding(gid, "deleted", "the student deleted this test cell; it was restored and "
                                        "run (see the autograded notebook), its points wait for review", (gid,))
            found.append({"notebook": name, **finding.__dict__, "text": finding.describe()})
    for name, source_text in spec["sources"].items():
        sub, done = submitted / f"{name}.ipynb", autograded / f"{name}.ipynb"
        source = nbformat.reads(source_text, 4)
        for finding in ((integrity.scan(nbformat.read(sub, 4), source, spec["numpy_only"]) if sub.exists() else [])
                        + (integrity.runtime_findings(nbformat.read(done, 4)) if done.exists() else [])):
            found.append({"notebook": name, **finding.__dict__, "text": finding.describe()})
    if found:
        apply_findings(f"sqlite:///{root / 'gradebook.db'}", spec["assignment"], spec["student"], found)
    return found


def apply_findings(db_url, aid, student, findings):
    """Set the test cells each finding affects to 0 (needs manual grade) and comment the finding."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gradebook:
        for f in findings:
            for test in f["affects"]:
                grade = gradebook.find_grade(test, f["notebook"], aid, student)
                grade.manual_score, grade.needs_manual_grade = 0.0, True
            try:
                comment = gradebook.find_comment(f["cell"], f["notebook"], aid, student)
            except MissingEntry:
                continue  # a cell the student added: the summary and the grades carry the finding
            note = f"Integrity check: {f['text']}"
            if note not in (comment.manual_comment or ""):
                comment.manual_comment = "\n".join(filter(None, [comment.manual_comment, note]))
        gradebook.db.commit()


def _read_grades(root, aid, student):
    """{notebook: {"grades": {cell: {auto, manual, needs}}, "comments": {cell: auto_comment}}}."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        for nb in gradebook.find_submission(aid, student).notebooks:
            out[nb.name] = {
                "grades": {g.name: {"auto": g.auto_score, "manual": g.manual_score, "needs": g.needs_manual_grade}
                           for g in nb.grades},
                "comments": {c.name: {"auto": c.auto_comment, "manual": c.manual_comment} for c in nb.comments}}
    return out


# ---------------------------------------------------------------- the parent
def fingerprint(aid):
    """Hash of what decides a grade besides the submission: the source notebooks and the grader."""
    root, digest = course_root(), hashlib.sha256()
    for path in sorted((root / "solutions" / aid).glob("*.ipynb")) + sorted((root / "graders").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def submission_hash(folder):
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*")):
        if path.is_symlink():
            digest.update(os.fsencode(path.name) + b"\0link\0" + os.fsencode(os.readlink(path)))
        elif plain_file(path):
            digest.update(os.fsencode(path.name) + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def plain_file(path):
    """True for a regular file that is not a link: the only kind of file of a submission that grading
    reads (a link could bring in solutions/ or /dev/zero, a named pipe would block the batch)."""
    return path.is_file() and not path.is_symlink()


def _refused(folder):
    """The reason why the notebooks of submission ``folder`` are not read ('' when they are read): a link,
    a special file, or a name that is not UTF-8 (it could not be printed in the status table)."""
    odd = []
    for path in sorted(folder.glob("*.ipynb")):
        if not utf8_name(path.name):
            odd.append(f"the file name {path.name!a} is not UTF-8")
        elif not plain_file(path):
            odd.append(f"{path.name} is {'a symbolic link' if path.is_symlink() else 'not a regular file'}")
    return f"not graded: {'; '.join(odd)} (not read, for the instructor to check)" if odd else ""


def _status_path(student, aid):
    return course_root() / "autograded" / student / aid / STATUS_FILE


def already_graded(student, aid, sub_hash, grader):
    """True when this exact submission was graded by this exact grader and its grades are stored."""
    path = _status_path(student, aid)
    if not path.exists():
        return False
    status = json.loads(path.read_text())
    return status.get("state") == "graded" and status.get("submission") == sub_hash and status.get("grader") == grader


def template_gradebook(aid):
    """(bytes of a gradebook in which ``aid`` is registered and nothing else, {notebook: release JSON}).

    Made by ``nbgrader generate_assignment`` in a temporary root (about 9 s: a new gradebook, the
    release) and kept in ``.autograde/`` of the course root (private: hidden from the sandbox like
    solutions/), keyed by the sources, the graders, the nbgrader config and nbgrader's version, so
    a later batch of the same assignment reuses it and a changed grader never does.
    """
    import nbgrader

    root = course_root()
    key = hashlib.sha256(f"{fingerprint(aid)} {nbgrader.__version__} ".encode()
                         + (root / "nbgrader_config.py").read_bytes()).hexdigest()[:16]
    cached = root / TEMPLATE_CACHE / f"{aid}-{key}.json"
    if cached.exists():
        entry = json.loads(cached.read_text())
        return bytes.fromhex(entry["gradebook"]), entry["releases"]
    from .course import run_nbgrader

    with tempfile.TemporaryDirectory(prefix="rnn-template-") as tmp:
        tmp = Path(tmp)
        shutil.copy(root / "nbgrader_config.py", tmp / "nbgrader_config.py")
        shutil.copytree(root / "solutions" / aid, tmp / "solutions" / aid)
        run_nbgrader("generate_assignment", aid, "--force", root=tmp, own_gradebook=True)
        releases = {p.stem: p.read_text() for p in (tmp / "assignments" / aid).glob("*.ipynb")}
        template = (tmp / "gradebook.db").read_bytes()
    cached.parent.mkdir(exist_ok=True)
    for old in cached.parent.glob(f"{aid}-*.json"):
        old.unlink()
    partial = cached.with_suffix(".tmp")
    partial.write_text(json.dumps({"gradebook": template.hex(), "releases": releases}))
    partial.replace(cached)
    return template, releases


def register(templates):
    """Register assignments in the course gradebook from their template gradebooks
    ({aid: gradebook bytes}), without touching assignments/ and without a second
    ``generate_assignment``: the notebooks and cells are copied with nbgrader's gradebook API (a
    course whose SQLite gradebook does not exist yet starts from a copy of the first template; a
    database server gets every template through the API)."""
    from nbgrader.api import Gradebook

    templates = dict(templates)
    course_db = sqlite_path(gradebook_url())
    if templates and course_db is not None and not course_db.exists():  # the first template is one already
        course_db.write_bytes(templates.pop(next(iter(templates))))
    with tempfile.TemporaryDirectory(prefix="rnn-register-") as tmp, _gradebook() as course:
        for aid, data in templates.items():
            (Path(tmp) / f"{aid}.db").write_bytes(data)
            with Gradebook(f"sqlite:///{Path(tmp) / aid}.db") as template:
                _copy_assignment(template.find_assignment(aid), course)
        course.db.commit()


def _copy_assignment(assignment, course):
    aid = assignment.name
    course.update_or_create_assignment(aid, duedate=assignment.duedate)
    for nb in assignment.notebooks:
        course.update_or_create_notebook(nb.name, aid)
        for cell in nb.grade_cells:
            course.update_or_create_grade_cell(cell.name, nb.name, aid, max_score=cell.max_score,
                                               cell_type=cell.cell_type)
        for cell in nb.task_cells:
            course.update_or_create_task_cell(cell.name, nb.name, aid, max_score=cell.max_score,
                                              cell_type=cell.cell_type)
        for cell in nb.solution_cells:
            course.update_or_create_solution_cell(cell.name, nb.name, aid)
        for cell in nb.source_cells:
            course.update_or_create_source_cell(cell.name, nb.name, aid, cell_type=cell.cell_type,
                                                locked=cell.locked, source=cell.source, checksum=cell.checksum)


def build_jobs(found, sandbox_settings, budget_s):
    """Job specs for [(student, aid)], and Status rows for those skipped as unchanged."""
    root, jobs, skipped, cache = course_root(), [], [], {}
    config = (root / "nbgrader_config.py").read_text()
    for student, aid in found:
        folder = root / "submitted" / student / aid
        sub_hash, grader = submission_hash(folder), fingerprint(aid)
        if already_graded(student, aid, sub_hash, grader):
            skipped.append(Status(student, aid, "skipped", "unchanged since it was graded"))
            continue
        if aid not in cache:
            cache[aid] = template_gradebook(aid)
        template_db, releases = cache[aid]
        refused = _refused(folder)
        jobs.append({"student": student, "assignment": aid, "config": config, "template_db": template_db,
                     "refused": refused,
                     "notebooks": {} if refused else {p.name: p.read_bytes() for p in folder.glob("*.ipynb")},
                     "sources": {p.stem: p.read_text() for p in (root / "solutions" / aid).glob("*.ipynb")},
                     "releases": releases, "numpy_only": integrity.numpy_only(aid), "budget_s": budget_s,
                     "sandbox": sandbox_settings, "hashes": (sub_hash, grader)})
    return jobs, skipped


def run_jobs(jobs, workers=None, scheduler=None):
    """Yield grade_job results as they finish: in this process (workers=1), on a local Dask
    cluster (default: one worker per core), or on an existing cluster at ``scheduler``."""
    if not jobs:
        return
    if scheduler is None and (workers == 1 or len(jobs) == 1):
        yield from map(grade_job, jobs)
        return
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None if scheduler else LocalCluster(
        n_workers=min(workers or os.cpu_count() or 1, len(jobs)), threads_per_worker=1, processes=True,
        dashboard_address=":0", silence_logs=50)
    with Client(scheduler or cluster) as client:
        futures = client.map(grade_job, jobs, pure=False)
        for future in as_completed(futures):
            yield future.result()
    if cluster is not None:
        cluster.close()


def store(result, job):
    """Merge one job's result into the course: gradebook, files, status file. Returns a Status."""
    student, aid = result["student"], result["assignment"]
    status = Status(student, aid, result["state"], result.get("reason", ""), notes=list(result["notes"]),
                    seconds=result["seconds"])
    _retire_outputs(student, aid)
    if result["state"] == "graded":
        _store_grades(student, aid, result["grades"])
        for relative, data in result["files"].items():
            kind, name = relative.split("/", 1)
            target = course_root() / kind / student / aid / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        _keep_exchange_files(student, aid)
        status.notes += [f["text"] for f in result.get("findings", [])]
    else:
        _mark_failed(student, aid, status.reason)
    status.score, status.max_score = _score(student, aid)
    path = _status_path(student, aid)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"state": status.state, "reason": status.reason, "submission": job["hashes"][0],
                                "grader": job["hashes"][1], "notes": status.notes,
                                "when": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=1))
    return status


def _keep_exchange_files(student, aid):
    """Copy EXCHANGE_FILES of the submission to its autograded/ and feedback/ folders."""
    root = course_root()
    for name in EXCHANGE_FILES:
        source = root / "submitted" / student / aid / name
        for kind in ("autograded", "feedback"):
            if plain_file(source) and (root / kind / student / aid).is_dir():
                shutil.copy(source, root / kind / student / aid / name)


def _retire_outputs(student, aid):
    """Move the autograded notebook and feedback of an earlier grading to backups/ (never stale)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for kind in ("autograded", "feedback"):
        folder = course_root() / kind / student / aid
        if folder.exists() and any(folder.iterdir()):
            target = course_root() / "backups" / kind / stamp / student / aid
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(folder), str(target))


@contextmanager
def _gradebook():
    """The course gradebook (``gradebook_url()``), closed and its connections released on exit (a
    database server counts open connections)."""
    from nbgrader.api import Gradebook

    tools = str(Path(sys.executable).parent)  # nbgrader runs this environment's `alembic` to create a new database
    if tools not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([tools, os.environ.get("PATH", "")])
    gradebook = Gradebook(gradebook_url())
    try:
        yield gradebook
    finally:
        gradebook.close()
        gradebook.engine.dispose()


def _submission(gradebook, aid, student):
    """The gradebook's submission of ``student`` for ``aid``, created when missing (quietly:
    nbgrader's own creation path triggers SQLAlchemy autoflush warnings)."""
    with gradebook.db.no_autoflush:
        gradebook.update_or_create_student(student)
        return gradebook.update_or_create_submission(aid, student)


def _store_grades(student, aid, grades):
    with _gradebook() as gradebook:
        _submission(gradebook, aid, student)
        for notebook, data in grades.items():
            for cell, g in data["grades"].items():
                grade = gradebook.find_grade(cell, notebook, aid, student)
                grade.auto_score, grade.manual_score, grade.needs_manual_grade = g["auto"], g["manual"], g["needs"]
            for cell, c in data["comments"].items():
                comment = gradebook.find_comment(cell, notebook, aid, student)
                comment.auto_comment, comment.manual_comment = c["auto"], c["manual"]
        gradebook.db.commit()


def _mark_failed(student, aid, reason):
    """No grade for a submission that could not be graded: scores cleared, flagged for review."""
    with _gradebook() as gradebook:
        submission = _submission(gradebook, aid, student)
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                grade.auto_score, grade.manual_score, grade.needs_manual_grade = None, None, True
            for comment in notebook.comments:
                comment.auto_comment = f"Autograding failed: {reason}"
                comment.manual_comment = None
        gradebook.db.commit()


def _score(student, aid):
    with _gradebook() as gradebook:
        submission = gradebook.find_submission(aid, student)
        return sum(g.score or 0 for nb in submission.notebooks for g in nb.grades), submission.max_score


def autograde_all(found, workers=None, scheduler=None, sandbox_settings=None, budget_s=DEFAULT_BUDGET_S,
                  progress=True):
    """Grade [(student, aid)] already stored in submitted/; return one Status per submission."""
    from tqdm.auto import tqdm

    jobs, statuses = build_jobs(found, sandbox_settings, budget_s)
    register({job["assignment"]: job["template_db"] for job in jobs})
    by_key = {(j["student"], j["assignment"]): j for j in jobs}
    bar = tqdm(total=len(jobs), unit="submission", desc="autograding", disable=not progress or not jobs,
               file=sys.stdout)
    for result in run_jobs(jobs, workers, scheduler):
        statuses.append(store(result, by_key[result["student"], result["assignment"]]))
        bar.update()
    bar.close()
    return sorted(statuses, key=lambda s: (s.assignment, s.student))


def status_table(statuses):
    """The status table printed at the end of `make autograde` (a str)."""
    rows = [f"{'student':<20} {'assignment':<24} {'status':<8} {'score':>12} {'time':>7}"]
    for s in statuses:
        score = f"{s.score:.1f}/{s.max_score:.1f}" if s.score is not None else "-"
        rows.append(f"{s.student:<20} {s.assignment:<24} {s.state:<8} {score:>12} {s.seconds:>6.0f}s")
        rows += [f"{'':<20} {label}: {text}" for label, text in [("reason", s.reason)] + [("note", n) for n in s.notes]
                 if text]
    return "\n".join(rows)
