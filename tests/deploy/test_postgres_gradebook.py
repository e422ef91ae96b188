"""The course gradebook on a real PostgreSQL server, graded on a Dask cluster (README "Running a
class"): with ``NBGRADER_DB_URL`` set, `make autograde SCHEDULER=...` (a scheduler and two sandboxed
worker processes started by the test, as `dask scheduler` / `dask worker` would run on a cluster)
stores every grade in PostgreSQL, a re-run on local workers skips the unchanged submissions, `make
grades` exports from PostgreSQL, and no SQLite gradebook appears. The server is started by the test
(Debian's PostgreSQL 15 binaries, run as the ``postgres`` user on a free port of 127.0.0.1) and
stopped after it."""
import copy
import json
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple

import grading
import nbformat
import pytest
from deploy_tools import free_port, require, require_root

from instructor import sandbox
from instructor.course import DB_URL_ENV, ROOT_ENV

PG_BIN = Path("/usr/lib/postgresql/15/bin")
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tiny_course"
AID, NB = "fx_tiny", "fx_tiny.ipynb"
FULL = {"test_softmax": 2.0, "test_axpy": 1.0, "test_fit": 2.0}
EXPECTED = {"ada": FULL, "bo": dict.fromkeys(FULL), "cy": {**FULL, "test_axpy": 0.0}}  # bo: failed, no grade
SCORES_SQL = """
    SELECT sa.student_id, bc.name, g.auto_score, g.manual_score
    FROM grade g JOIN submitted_notebook sn ON g.notebook_id = sn.id
    JOIN submitted_assignment sa ON sn.assignment_id = sa.id JOIN base_cell bc ON g.cell_id = bc.id
    WHERE bc.name IN ('test_softmax', 'test_axpy', 'test_fit')"""


class Server(NamedTuple):
    url: str   # SQLAlchemy URL of the database (NBGRADER_DB_URL)
    dsn: str   # the same for psycopg
    port: int



def as_postgres(*command):
    """Run a PostgreSQL server command as the ``postgres`` Unix user (the server refuses root)."""
    return subprocess.run(["runuser", "-u", "postgres", "--", *map(str, command)], check=True,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def server():
    """A PostgreSQL server on 127.0.0.1:<free port> (trust authentication) with an empty database
    ``rnn``; yields a Server."""
    require_root("PostgreSQL's server runs as the postgres user, which only root can switch to")
    require((PG_BIN / "postgres").exists(), f"PostgreSQL 15 server binaries in {PG_BIN} (Debian: postgresql)")
    require(_user_exists("postgres"), "the postgres Unix user (Debian: postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="rnn-pg-"))
    shutil.chown(folder, "postgres", "postgres")
    port, data = free_port(), folder / "data"
    try:
        as_postgres(PG_BIN / "initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8",
                    "--no-locale")
        as_postgres(PG_BIN / "pg_ctl", "-D", data, "-l", folder / "server.log", "-w", "-t", "30", "start",
                    "-o", f"-h 127.0.0.1 -p {port} -k {folder} -F -c max_connections=40")
        import psycopg

        dsn = f"host=127.0.0.1 port={port} user=postgres"
        with psycopg.connect(f"{dsn} dbname=postgres", autocommit=True) as connection:
            connection.execute("CREATE DATABASE rnn")
        yield Server(f"postgresql+psycopg://postgres@127.0.0.1:{port}/rnn", f"{dsn} dbname=rnn", port)
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", str(data), "-m",
                            "immediate", "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def _user_exists(name):
    try:
        return pwd.getpwnam(name) is not None
    except KeyError:
        return False


def batch(folder, port):
    """Submissions of fx_tiny: ada the reference, bo a file that is not a notebook (fails, in no
    time), cy a wrong axpy whose cell also looks for the database: its URL in the environment, its
    port on 127.0.0.1 (the kernel must find neither)."""
    ref = nbformat.read(FIXTURE / "solutions" / AID / NB, 4)
    wrong = copy.deepcopy(ref)
    cell = next(c for c in wrong.cells if grading.grade_id(c) == "axpy")
    cell.source = ("import os, socket\nprint('database:', os.environ.get('NBGRADER_DB_URL'))\n"
                   f"try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=3)\n    print('port: OPEN')\n"
                   "except OSError as e:\n    print('port:', type(e).__name__)\n"
                   "def axpy(a, x, y):\n    return a * x - y\n")
    for student, nb in {"ada": json.dumps(ref), "bo": "{not a notebook", "cy": json.dumps(wrong)}.items():
        (folder / student / AID).mkdir(parents=True)
        (folder / student / AID / NB).write_text(nb)
    return folder


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """The address of a Dask cluster on this machine: `dask scheduler` and `dask worker` (two processes,
    one thread each), started as on a cluster's nodes and stopped after the module."""
    import sys

    dask = Path(sys.executable).with_name("dask")
    require(dask.exists(), "the dask command in .venv (requirements.txt: distributed)")
    address, logs = f"tcp://127.0.0.1:{free_port()}", tmp_path_factory.mktemp("dask")
    commands = [[str(dask), "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                 "--dashboard-address", ":0"],
                [str(dask), "worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard"]]
    processes = [subprocess.Popen(command, stdout=(logs / f"{n}.log").open("w"), stderr=subprocess.STDOUT,
                                  start_new_session=True) for n, command in enumerate(commands)]
    try:
        from dask.distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def course(server, scheduler, tmp_path_factory):
    """A temporary course root graded once into PostgreSQL: (root, submissions, exit code, output)."""
    require(sandbox.available()[0], f"the autograde sandbox (bubblewrap): {sandbox.available()[1]}")
    root = grading.course_copy(FIXTURE, tmp_path_factory.mktemp("course"))
    subs = batch(tmp_path_factory.mktemp("subs"), server.port)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ROOT_ENV, str(root))
        patch.setenv(DB_URL_ENV, server.url)
        code, out = grading.run_cli(["autograde", str(subs), "--scheduler", scheduler])
    from dask.distributed import Client

    with Client(scheduler, timeout=30) as client:  # what the cluster ran: the grading jobs
        ran = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
    assert "grade_job" in ran, f"the cluster ran {ran}, not the grading jobs"
    yield root, subs, code, out


def api_scores(url):
    """{student: {test cell: score}} read with nbgrader's Gradebook API."""
    from nbgrader.api import Gradebook

    gradebook = Gradebook(url)
    try:
        return {s.student.id: {g.name: g.manual_score if g.manual_score is not None else g.auto_score
                               for nb in s.notebooks for g in nb.grades if g.name in FULL}
                for s in gradebook.find_assignment(AID).submissions}
    finally:
        gradebook.close()
        gradebook.engine.dispose()


def row(out, student):
    """The status-table row of ``student``, split into words."""
    return next(line.split() for line in out.splitlines() if line.startswith(f"{student} "))


def sql(dsn, query, *params):
    import psycopg

    with psycopg.connect(dsn) as connection:
        cursor = connection.execute(query, params)
        return cursor.fetchall() if cursor.description else cursor.rowcount


def test_cluster_workers_store_every_grade_in_postgres(server, course):
    url, dsn, _ = server
    root, _, code, out = course
    assert code == 1, "one submission failed"
    assert row(out, "ada")[2] == row(out, "cy")[2] == "graded" and row(out, "bo")[2] == "failed", out
    assert "not a Jupyter notebook" in out
    assert api_scores(url) == EXPECTED
    rows = sql(dsn, SCORES_SQL)
    plain = {}
    for student, cell, auto, manual in rows:
        plain.setdefault(student, {})[cell] = manual if manual is not None else auto
    assert plain == EXPECTED, rows
    assert not (root / "gradebook.db").exists(), "a SQLite gradebook was written beside PostgreSQL"
    for student in ("ada", "cy"):
        assert (root / "feedback" / student / AID / f"{AID}.html").exists()


def test_student_code_never_sees_the_database_and_no_connection_is_left_open(server, course):
    url, dsn, _ = server
    root = course[0]
    nb = nbformat.read(root / "autograded" / "cy" / AID / NB, 4)
    printed = "".join(o.get("text", "") for c in nb.cells if grading.grade_id(c) == "axpy" for o in c.outputs)
    assert "database: None" in printed and "port: " in printed and "port: OPEN" not in printed, printed
    idle = sql(dsn, "SELECT count(*) FROM pg_stat_activity WHERE datname = 'rnn' AND pid <> pg_backend_pid()")
    assert idle == [(0,)], "the grading run left connections open"


def test_a_rerun_on_local_workers_skips_unchanged_submissions(server, course):
    url, dsn, _ = server
    root, subs, _, _ = course
    before = sql(dsn, "SELECT count(*) FROM submitted_assignment")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ROOT_ENV, str(root))
        patch.setenv(DB_URL_ENV, url)
        code, out = grading.run_cli(["autograde", str(subs), "--workers", "2"])
    assert row(out, "ada")[2] == row(out, "cy")[2] == "skipped" and row(out, "bo")[2] == "failed", out
    assert sql(dsn, "SELECT count(*) FROM submitted_assignment") == before == [(3,)]
    assert api_scores(url) == EXPECTED


def test_make_grades_exports_from_postgres(server, course):
    url, dsn, _ = server
    root = course[0]
    # A manual grade entered in PostgreSQL only (as formgrader would): the export must show it.
    assert sql(dsn, "UPDATE grade SET manual_score = 1.0 "
                    "FROM submitted_notebook sn, submitted_assignment sa, base_cell bc "
                    "WHERE grade.notebook_id = sn.id AND sn.assignment_id = sa.id AND grade.cell_id = bc.id "
                    "AND sa.student_id = 'bo' AND bc.name = 'q_why'") == 1
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ROOT_ENV, str(root))
        patch.setenv(DB_URL_ENV, url)
        code, out = grading.run_cli(["grades"])
    assert code == 0, out
    header, *lines = [line.split(",") for line in (root / "grades.csv").read_text().splitlines()]
    score = {cells[header.index("student_id")]: float(cells[header.index("raw_score")]) for cells in lines}
    assert score == {"ada": 5.0, "bo": 1.0, "cy": 4.0}, (root / "grades.csv").read_text()
    assert not (root / "gradebook.db").exists()
