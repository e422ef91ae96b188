"""A class on JupyterHub with nbgrader's exchange, end to end on this machine (README "Running a
class", deploy/): real Unix accounts (an instructor and three students), the hub with its proxy
started from deploy/jupyterhub_config.py, each student's own JupyterLab server behind it.

The course's a1_rnn_numpy: release (instructor) -> fetch (each student, through their server's
Assignment List API) -> alice pastes the reference solution, bob submits the release untouched,
carol a notebook cut off mid-save -> submit (through their servers) -> collect -> `make autograde`
with no SUBMISSIONS (the course's parallel sandboxed grading of what collect put in submitted/) ->
generate and release feedback -> fetch feedback (through the servers). Everything is started by the
test and stopped after it; the accounts are deleted even when a step fails. The tests are the steps
of one class, in file order.
"""
import html
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grading
import nbformat
import pytest
from deploy_tools import free_port, require, require_command, require_root

from instructor import sandbox
from instructor.course import nbgrader_command

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)
HUB_CONFIG = REPO / "deploy" / "jupyterhub_config.py"
AID, COURSE_ID = "a1_rnn_numpy", "rnn-course"  # the course's first assignment: about 10 s to grade
NB = f"{AID}.ipynb"
SOLUTION = REPO / "solutions" / AID / NB


def _points(solution):
    """(autograded points, all points) of a solution notebook, from its nbgrader metadata."""
    cells = nbformat.read(solution, 4).cells
    graded = [grading.nbgrader_meta(c) for c in cells if grading.nbgrader_meta(c).get("grade")]
    return float(sum(grading.autograded_tests(nbformat.read(solution, 4)).values())), float(
        sum(m["points"] for m in graded))


def _hidden_lines(solution):
    """The lines of the solution notebook's hidden tests (none may reach a student's feedback)."""
    lines, inside = [], False
    for cell in nbformat.read(solution, 4).cells:
        for line in cell.source.splitlines():
            inside = (inside or "### BEGIN HIDDEN TESTS" in line) and "### END HIDDEN TESTS" not in line
            if inside and "### BEGIN HIDDEN TESTS" not in line and len(line.strip()) > 20:
                lines.append(line.strip())
    return lines


AUTOGRADED_POINTS, TOTAL_POINTS = _points(SOLUTION)
HIDDEN_LINES = _hidden_lines(SOLUTION)
ROLES = ("teacher", "alice", "bob", "carol")
STUDENTS = ROLES[1:]


@dataclass
class Account:
    name: str
    uid: int
    gid: int
    home: Path


@dataclass
class Class:
    """Everything the steps share: accounts, folders, the hub's address and tokens."""

    folder: Path
    accounts: dict
    reach: list      # command prefix that lets the accounts run the course's Python (reach_python)
    course: Path     # the instructor's course root
    exchange: Path
    url: str = ""
    service_token: str = ""
    tokens: dict = None
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))  # alice's Unix password

    def hub_log(self):
        path = self.folder / "hub" / "hub.log"
        return path.read_text()[-5000:] if path.exists() else ""

    def user(self, role):
        return self.accounts[role]


# ---------------------------------------------------------------- accounts, environment

def create_accounts(folder, accounts):
    """Add Unix users <prefix>-teacher, -alice, -bob, -carol with homes under ``folder`` to
    ``accounts`` ({role: Account}; filled as they are made, for the clean-up). A random prefix: two
    runs on one machine never share accounts."""
    prefix = f"rnnc{secrets.token_hex(2)}"
    for role in ROLES:
        name, home = f"{prefix}-{role}", folder / "home" / f"{prefix}-{role}"
        subprocess.run(["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/bash", "--user-group",
                        name], check=True, capture_output=True, timeout=30)
        entry = pwd.getpwnam(name)
        accounts[role] = Account(name, entry.pw_uid, entry.pw_gid, home)
        home.chmod(0o700)


def delete_accounts(accounts):
    """Kill every process of the test accounts (by pid), then delete the accounts."""
    uids = {a.uid for a in accounts.values()}
    for _ in range(20):
        pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _uid(p) in uids]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
    failed = [a.name for a in accounts.values()
              if subprocess.run(["userdel", a.name], capture_output=True, timeout=30).returncode != 0]
    assert not failed, f"could not delete the test accounts {failed}: userdel them by hand"


def _uid(proc):
    try:
        return next(int(line.split()[1]) for line in (proc / "status").read_text().splitlines()
                    if line.startswith("Uid:"))
    except (OSError, StopIteration):
        return None


REACH_PYTHON = """#!/bin/sh
# Run "$@" in a private mount namespace where the course's Python ($1: its install folder, under $2,
# a folder other users cannot enter, e.g. /root for pyenv) is reachable by every user: $2 becomes an
# empty tmpfs holding only $1. Nothing changes outside the namespace, and it ends with its processes.
set -e
base=$1 blocked=$2 stage=$3; shift 3
mount --make-rprivate /
mount --bind "$base" "$stage"
mount -t tmpfs -o mode=0755,size=1m tmpfs "$blocked"
mkdir -p "$base"
mount --bind "$stage" "$base"
exec "$@"
"""


def reach_python(folder):
    """The command prefix that lets other users run the course's .venv: nothing when they can
    already (a system Python); else (a Python under a private folder, like pyenv's in /root) run
    the command in a mount namespace where it is reachable (REACH_PYTHON)."""
    base = Path(sys.base_prefix).resolve()
    blocked = [p for p in [*reversed(base.parents), base] if not p.stat().st_mode & 0o001]
    if not blocked:
        return []
    require(shutil.which("unshare") and shutil.which("setpriv"), "unshare and setpriv (Debian: util-linux)")
    (folder / "python").mkdir()
    (folder / "reach-python").write_text(REACH_PYTHON)
    return ["unshare", "--mount", "--", "sh", str(folder / "reach-python"), str(base), str(blocked[0]),
            str(folder / "python")]


def as_user(account, klass, *command, check=True, timeout=300):
    """Run ``command`` as ``account`` in the instructor's course root, with a login-like environment."""
    env = {"HOME": str(account.home), "USER": account.name, "LOGNAME": account.name, "LANG": "C.UTF-8",
           "PATH": f"{VENV / 'bin'}:/usr/bin:/bin", "NBGRADER_EXCHANGE": str(klass.exchange),
           "RNN_COURSE_ROOT": str(klass.course), "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    switch = ["setpriv", f"--reuid={account.uid}", f"--regid={account.gid}", "--clear-groups", "--"]
    done = subprocess.run([*klass.reach, *switch, *map(str, command)], cwd=klass.course, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{command[:4]} as {account.name} failed ({done.returncode}):\n"
                             f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    return done


def nbgrader(klass, *args):
    """``nbgrader <args>`` as the instructor, in the course root."""
    return as_user(klass.user("teacher"), klass, *nbgrader_command(*args))


# ---------------------------------------------------------------- the hub
def start_hub(klass):
    """Start JupyterHub (and its proxy) from deploy/jupyterhub_config.py; return the process."""
    state = klass.folder / "hub"
    state.mkdir(mode=0o700)
    port = free_port()
    klass.url, klass.service_token = f"http://127.0.0.1:{port}", secrets.token_hex(24)
    env = {"PATH": f"{VENV / 'bin'}:/usr/bin:/bin", "HOME": str(state), "LANG": "C.UTF-8",
           "RNN_HUB_URL": f"http://127.0.0.1:{port}", "RNN_HUB_API_URL": f"http://127.0.0.1:{free_port()}",
           "RNN_HUB_PROXY_API_URL": f"http://127.0.0.1:{free_port()}", "RNN_HUB_STATE": str(state),
           "RNN_HUB_VENV": str(VENV), "RNN_HUB_SERVICE_TOKEN": klass.service_token,
           "RNN_HUB_INSTRUCTORS": klass.user("teacher").name,
           "RNN_HUB_STUDENTS": ",".join(klass.user(s).name for s in STUDENTS), "NBGRADER_EXCHANGE": str(klass.exchange)}
    with open(state / "hub.log", "w") as log:  # the hub's, its proxy's and the servers' output
        process = subprocess.Popen([*klass.reach, str(VENV / "bin" / "jupyterhub"), "-f", str(HUB_CONFIG)],
                                   cwd=state, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    _wait(lambda: process.poll() is None and _get(f"{klass.url}/hub/api/").status_code == 200, 60,
          lambda: f"the hub did not start:\n{klass.hub_log()}")
    return process


def stop_hub(process):
    """SIGTERM the hub (it stops the servers and the proxy), then kill its process group."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _get(url, **kwargs):
    import requests

    try:
        return requests.get(url, timeout=10, **kwargs)
    except requests.ConnectionError:
        return requests.Response()


def _wait(ready, seconds, message):
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(message())
        time.sleep(0.25)


def hub_api(klass, method, path, **kwargs):
    """A call to the hub's REST API as the course-admin service."""
    import requests

    response = requests.request(method, f"{klass.url}/hub/api{path}", timeout=60,
                                headers={"Authorization": f"token {klass.service_token}"}, **kwargs)
    assert response.status_code < 400, f"{method} {path}: {response.status_code} {response.text[:500]}"
    return response


def server(klass, role, method, path, **kwargs):
    """A call to ``role``'s own single-user server through the proxy, with that user's token."""
    import requests

    name = klass.user(role).name
    return requests.request(method, f"{klass.url}/user/{name}{path}", timeout=120,
                            headers={"Authorization": f"token {klass.tokens[role]}"}, **kwargs)


def assignment_action(klass, role, action):
    """POST nbgrader's Assignment List action (fetch, submit, fetch_feedback); return the listing."""
    response = server(klass, role, "POST", f"/assignments/{action}",
                      data={"assignment_id": AID, "course_id": COURSE_ID})
    assert response.status_code == 200, f"{response.text[:2000]}\n{klass.hub_log()}"
    listing = response.json()
    assert listing["success"], f"{listing.get('value')}\n{klass.hub_log()}"
    return listing["value"]


def start_servers(klass):
    """Start every account's server through the hub (all at once); make each account an API token."""
    with ThreadPoolExecutor(len(klass.accounts)) as pool:  # a POST waits up to 10 s for its server
        list(pool.map(lambda a: hub_api(klass, "POST", f"/users/{a.name}/server"), klass.accounts.values()))

    def all_ready():
        return all(hub_api(klass, "GET", f"/users/{a.name}").json()["servers"].get("", {}).get("ready")
                   for a in klass.accounts.values())

    _wait(all_ready, 90, lambda: f"servers not ready: {hub_api(klass, 'GET', '/users').text[:2000]}\n"
                                 f"{klass.hub_log()}")
    klass.tokens = {role: hub_api(klass, "POST", f"/users/{a.name}/tokens",
                                  json={"note": "e2e test", "expires_in": 900}).json()["token"]
                    for role, a in klass.accounts.items()}


# ---------------------------------------------------------------- the class
@pytest.fixture(scope="module")
def klass():
    require_root("the test creates Unix accounts and the hub spawns servers as them")
    require_command("configurable-http-proxy", path=str(VENV / "bin"))
    require_command("useradd")
    require((VENV / "bin" / "jupyterhub").exists(), "JupyterHub in .venv (requirements-class.txt)")
    require(sandbox.available()[0], f"the autograde sandbox (bubblewrap): {sandbox.available()[1]}")
    folder = Path(tempfile.mkdtemp(prefix="rnn-hub-", dir="/var/tmp"))  # not /tmp: the sandbox hides /tmp
    folder.chmod(0o755)
    accounts, hub = {}, None
    try:
        create_accounts(folder, accounts)
        teacher = accounts["teacher"]
        course = grading.course_copy(REPO, teacher.home / "rnn-course", AID)
        exchange = folder / "exchange"
        exchange.mkdir()
        exchange.chmod(0o1777)  # nbgrader's exchange: everyone writes, the sticky bit guards
        klass = Class(folder, accounts, reach_python(folder), course, exchange)
        subprocess.run(["chpasswd"], input=f"{accounts['alice'].name}:{klass.password}", text=True, check=True)
        # The instructor's formgrader finds the course (nbgrader docs: ~/.jupyter/nbgrader_config.py).
        (teacher.home / ".jupyter").mkdir()
        (teacher.home / ".jupyter" / "nbgrader_config.py").write_text(
            f"load_subconfig({str(course / 'nbgrader_config.py')!r})\n")
        subprocess.run(["chown", "-R", f"{teacher.uid}:{teacher.gid}", str(teacher.home)], check=True)
        hub = start_hub(klass)
        start_servers(klass)
        yield klass
    finally:
        if hub is not None:
            stop_hub(hub)
        delete_accounts(accounts)
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- notebooks of the students
def strip_markers(source):
    return "\n".join(line for line in source.splitlines()
                     if line.strip() not in (grading.BEGIN_SOLUTION, grading.END_SOLUTION))


def completed(release):
    """The fetched release with every solution cell replaced by the reference solution's."""
    solutions = {grading.grade_id(c): c for c in nbformat.read(SOLUTION, 4).cells}
    nb = nbformat.from_dict(release)
    for cell in nb.cells:
        if grading.nbgrader_meta(cell).get("solution"):
            cell.source = strip_markers(solutions[grading.grade_id(cell)].source)
    return nb


def feedback_files(account):
    return sorted((account.home / AID / "feedback").glob(f"*/{AID}.html"))


# ---------------------------------------------------------------- the steps, in order
def test_a_student_logs_in_with_her_unix_password(klass):
    """The production authenticator (PAM): the login form takes alice's Unix password."""
    import requests

    with requests.Session() as browser:
        browser.get(f"{klass.url}/hub/login", timeout=30)
        response = browser.post(f"{klass.url}/hub/login", allow_redirects=False, timeout=30,
                                data={"username": klass.user("alice").name, "password": klass.password,
                                      "_xsrf": browser.cookies.get("_xsrf")})
    assert response.status_code == 302, f"{response.status_code} {response.text[:500]}\n{klass.hub_log()}"
    assert "jupyterhub-session-id" in response.cookies or "jupyterhub-hub-login" in response.cookies


def test_formgrader_only_for_the_instructor(klass):
    assert server(klass, "teacher", "GET", "/formgrader").status_code == 200
    assert server(klass, "alice", "GET", "/formgrader").status_code == 404
    page = {role: server(klass, role, "GET", "/lab").text for role in ("teacher", "alice")}
    assert '"@jupyter/nbgrader:formgrader"' in page["alice"] and '"@jupyter/nbgrader:formgrader"' not in page["teacher"]
    assert server(klass, "alice", "GET", "/assignments", params={"course_id": COURSE_ID}).json()["success"]


def test_students_fetch_the_release_through_their_own_servers(klass):
    nbgrader(klass, "release_assignment", AID)
    for role in STUDENTS:
        listing = assignment_action(klass, role, "fetch")
        assert [a["status"] for a in listing if a["assignment_id"] == AID] == ["fetched"], listing
        fetched = klass.user(role).home / AID / NB
        assert fetched.is_file() and fetched.stat().st_uid == klass.user(role).uid, "fetched as the student"


def test_students_complete_and_submit_through_their_servers(klass):
    path = f"/api/contents/{AID}/{NB}"
    release = server(klass, "alice", "GET", path).json()["content"]
    assert "raise NotImplementedError" in json.dumps(release)
    saved = {"alice": server(klass, "alice", "PUT", path, json={"type": "notebook", "format": "json",
                                                                 "content": completed(release)}),
             "carol": server(klass, "carol", "PUT", path, json={"type": "file", "format": "text",
                                                                 "content": json.dumps(release)[:400]})}
    assert all(r.status_code in (200, 201) for r in saved.values()), {k: r.text[:300] for k, r in saved.items()}
    for role in STUDENTS:
        listing = assignment_action(klass, role, "submit")
        assert any(a["status"] == "submitted" for a in listing if a["assignment_id"] == AID), listing
    inbound = sorted(p.name.split("+")[0] for p in (klass.exchange / COURSE_ID / "inbound").iterdir())
    assert inbound == sorted(klass.user(s).name for s in STUDENTS)


def test_collect_and_autograde_the_class(klass):
    nbgrader(klass, "collect", AID)
    for role in STUDENTS:
        assert (klass.course / "submitted" / klass.user(role).name / AID / NB).is_file()
    done = as_user(klass.user("teacher"), klass, sys.executable, "-m", "instructor", "autograde", "--workers", "2",
                   check=False)
    out = done.stdout
    print(out)
    assert done.returncode == 1, f"carol's submission fails, the batch goes on:\n{out}\n{done.stderr[-3000:]}"
    rows = {role: next(line.split() for line in out.splitlines() if line.startswith(klass.user(role).name + " "))
            for role in STUDENTS}
    assert AUTOGRADED_POINTS > 0 and rows["alice"][2:4] == ["graded", f"{AUTOGRADED_POINTS}/{TOTAL_POINTS}"], out
    assert rows["bob"][2:4] == ["graded", f"0.0/{TOTAL_POINTS}"], out
    assert rows["carol"][2] == "failed" and "not a Jupyter notebook" in out, out
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{klass.course / 'gradebook.db'}") as gradebook:
        autograded = {role: sum(g.score for nb in gradebook.find_submission(AID, klass.user(role).name).notebooks
                                for g in nb.grades if g.auto_score is not None) for role in ("alice", "bob")}
    assert autograded == {"alice": AUTOGRADED_POINTS, "bob": 0.0}
    # The instructor's formgrader (their own server) reads the same gradebook.
    listed = server(klass, "teacher", "GET", "/formgrader/api/assignments").json()
    assert [(a["name"], a["num_submissions"]) for a in listed] == [(AID, 3)], listed


def test_feedback_reaches_each_graded_student(klass):
    nbgrader(klass, "generate_feedback", AID, "--force")
    nbgrader(klass, "release_feedback", AID)
    for role in STUDENTS:
        assignment_action(klass, role, "fetch_feedback")
    for role, score in (("alice", AUTOGRADED_POINTS), ("bob", 0.0)):
        files = feedback_files(klass.user(role))
        assert len(files) == 1, f"{role}: {files}"
        assert files[0].stat().st_uid == klass.user(role).uid
        text = html.unescape(re.sub(r"<[^>]+>", "", files[0].read_text()))
        assert f"Score: {score:.1f} / {TOTAL_POINTS:.1f}" in text, text[:1500]
        assert HIDDEN_LINES and not [line for line in HIDDEN_LINES if line in text] and "BEGIN HIDDEN" not in text
    assert feedback_files(klass.user("carol")) == [], "a failed submission gets no feedback until it is regraded"
