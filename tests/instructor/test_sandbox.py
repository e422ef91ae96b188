"""The autograding sandbox (instructor/sandbox.py) and the per-cell timeouts (instructor/timeouts.py).

The kernel tests run student-like cells in the sandboxed kernel, in a fake course root whose
solutions, gradebook and other students' folders must stay out of reach. They are skipped, loudly,
only where bubblewrap cannot make a sandbox (``sandbox.available()``).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from instructor import sandbox
from instructor.course import nbgrader_env
from instructor.timeouts import DEFAULT_TIMEOUT, HEAVY_TIMEOUT, MAX_TIMEOUT, cell_timeout

OK, WHY = sandbox.available()
needs_sandbox = pytest.mark.skipif(not OK, reason=f"SANDBOX NOT TESTED: no sandbox can be made here: {WHY}")
COURSE = Path(__file__).resolve().parents[2]
MEMORY_MB = 2048
LOOP_TIMEOUT = 3


# ---------------------------------------------------------------- per-cell timeouts
@pytest.mark.parametrize("metadata, expected", [
    ({}, DEFAULT_TIMEOUT),
    ({"tags": ["heavy"]}, HEAVY_TIMEOUT),
    ({"tags": ["x", "heavy:lm"]}, HEAVY_TIMEOUT),
    ({"tags": ["heavyweight"]}, DEFAULT_TIMEOUT),
    ({"timeout": 3, "tags": ["heavy"]}, 3),
    ({"timeout": 10 ** 6}, MAX_TIMEOUT),
    ({"timeout": -5}, DEFAULT_TIMEOUT),
    ({"timeout": "600"}, DEFAULT_TIMEOUT),
    ({"timeout": True, "tags": ["heavy"]}, HEAVY_TIMEOUT),
])
def test_cell_timeout(metadata, expected):
    assert cell_timeout(new_code_cell("pass", metadata=metadata)) == expected


# ---------------------------------------------------------------- settings and command line
@pytest.mark.parametrize("bad, named", [
    ({"memory_mb": -1}, "memory_mb"), ({"cpu_seconds": 1.5}, "cpu_seconds"), ({"processes": True}, "processes"),
    ({"memory_MB": 10}, "memory_MB"), ({"work_dir": "relative"}, "work_dir"),
    ({"read_only": ["/no/such/path"]}, "read_only"), ({"hidden": "/tmp"}, "hidden"),
    ({"user": "no-such-user-xyz"}, "user"),
])
def test_bad_settings_are_named(bad, named):
    with pytest.raises(sandbox.SandboxError, match=named):
        sandbox.check_settings(bad)


def test_missing_settings_file_is_explained(monkeypatch):
    monkeypatch.delenv(sandbox.SETTINGS_ENV, raising=False)
    with pytest.raises(sandbox.SandboxError, match=sandbox.SETTINGS_ENV):
        sandbox.load_settings()


def test_command_line_order(tmp_path, monkeypatch):
    """/tmp first, then read-only views, hidden paths, the work dir (writable, inside a hidden
    folder), the limits, and finally the kernel's own command."""
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: f"/usr/bin/{name}")  # bwrap need not be installed
    root = tmp_path / "course"
    work = root / "autograded" / "s" / "a"
    work.mkdir(parents=True)
    (root / "gradebook.db").write_text("")
    settings = sandbox.course_settings(root, memory_mb=100, cpu_seconds=7)
    cmd = sandbox.bwrap_command(["python", "-m", "ipykernel_launcher"], settings, work, tmp_path / "run")
    text = " ".join(cmd)
    real = root.resolve()
    order = ["--tmpfs /tmp", f"--ro-bind {real} {real}", f"--tmpfs {real}/autograded",
             f"--ro-bind /dev/null {real}/gradebook.db", f"--bind {work.resolve()} {work.resolve()}",
             f"--remount-ro {real}/autograded", f"--chdir {work.resolve()}", "--cap-drop ALL"]
    assert all(part in text for part in order), text
    positions = [text.index(part) for part in order[:-1]]
    assert positions == sorted(positions), text
    assert f"--as={100 * 1024 * 1024}" in cmd and "--cpu=7" in cmd
    assert cmd[-3:] == ["python", "-m", "ipykernel_launcher"]
    with pytest.raises(sandbox.SandboxError, match="outside"):
        sandbox.bwrap_command(["python"], dict(settings, work_dir=str(work)), root, tmp_path)


def test_kernelspec_env_and_flags(tmp_path):
    env = sandbox.sandbox_env({"memory_mb": 512}, tmp_path / "jupyter")
    spec = json.loads((tmp_path / "jupyter" / "kernels" / sandbox.KERNEL_NAME / "kernel.json").read_text())
    assert spec["metadata"]["kernel_provisioner"]["provisioner_name"] == sandbox.KERNEL_NAME
    assert spec["interrupt_mode"] == "message" and "{connection_file}" in spec["argv"]
    assert env["JUPYTER_PATH"].split(os.pathsep)[0] == str(tmp_path / "jupyter")
    assert sandbox.load_settings(env[sandbox.SETTINGS_ENV])["memory_mb"] == 512
    assert sandbox.nbgrader_args() == [f"--Execute.kernel_name={sandbox.KERNEL_NAME}"]


def test_kernel_env_drops_credentials():
    env = sandbox.kernel_env({"PATH": "/bin", "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "GITHUB_TOKEN": "x",
                              "AWS_SECRET_ACCESS_KEY": "y", "SSH_AUTH_SOCK": "/run/agent"})
    assert env == {"PATH": "/bin", "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}


# ---------------------------------------------------------------- the kernel, sandboxed
PROBE = '''
import json, os, socket
def attempt(action):
    try:
        result = action()
    except MemoryError:
        return "MemoryError"
    except Exception as error:
        return type(error).__name__
    return "ok" if result is None or isinstance(result, int) else result
probe = dict(
    read_solution=attempt(lambda: open({solution!r}).read()),
    list_solutions=attempt(lambda: os.listdir({solutions!r})),
    list_course_solutions=attempt(lambda: os.listdir({course_solutions!r})),
    list_git=attempt(lambda: os.listdir({git!r})),
    read_gradebook=attempt(lambda: open({gradebook!r}).read()),
    write_gradebook=attempt(lambda: open({gradebook!r}, "a").write("x")),
    write_other_student=attempt(lambda: open({other!r} + "/hack.txt", "w").write("x")),
    write_submitted=attempt(lambda: open({submitted!r} + "/hack.txt", "w").write("x")),
    write_course_root=attempt(lambda: open({root!r} + "/hack.txt", "w").write("x")),
    network=attempt(lambda: socket.create_connection(("127.0.0.1", {port}), timeout=3).close()),
    unix_socket=attempt(lambda: socket.socket(socket.AF_UNIX).connect({unix_socket!r})),
    write_work_dir=attempt(lambda: open("result.txt", "w").write("written in the sandbox")),
    write_tmp=attempt(lambda: open("/tmp/{tmp_name}", "w").write("x")),
    memory=attempt(lambda: bytearray(16 * 1024 ** 3)),
    secret_env=os.environ.get("GITHUB_TOKEN", "absent"),
    capabilities=open("/proc/self/status").read().split("CapEff:")[1].split()[0],
)
print(json.dumps(probe))
'''


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A fake course root: a solution, a gradebook, another student's submission, a work dir."""
    root = tmp_path_factory.mktemp("sandbox_course")
    (root / "solutions" / "a1").mkdir(parents=True)
    (root / "solutions" / "a1" / "answer.txt").write_text("the solution")
    (root / "submitted" / "other" / "a1").mkdir(parents=True)
    (root / "gradebook.db").write_text("grades")
    (root / "autograded" / "me" / "a1").mkdir(parents=True)
    return root


def _run(nb, work, settings, folder):
    """Execute ``nb`` in the sandbox kernel (nbclient, as nbgrader does); return the seconds taken."""
    from nbclient import NotebookClient

    with pytest.MonkeyPatch.context() as patch:
        for name, value in sandbox.sandbox_env(settings, folder).items():
            patch.setenv(name, value)
        patch.setenv("GITHUB_TOKEN", "secret-of-the-grader")
        client = NotebookClient(nb, kernel_name=sandbox.KERNEL_NAME, timeout_func=cell_timeout,
                                interrupt_on_timeout=True, allow_errors=True, startup_timeout=60,
                                resources={"metadata": {"path": str(work)}})
        started = time.perf_counter()
        client.execute()
        return time.perf_counter() - started


@pytest.fixture(scope="module")
def run(course, tmp_path_factory):
    """One kernel, three cells: the probe, an endless loop (3 s limit), a cell after it."""
    listener = socket.create_server(("127.0.0.1", 0))
    # a Unix socket where system services keep theirs (/run: databases, docker...), else in the course
    socket_dir = Path("/run") if os.access("/run", os.W_OK) else course
    unix_path = str(socket_dir / f"rnn-sandbox-probe-{os.getpid()}.sock")
    unix_listener = socket.socket(socket.AF_UNIX)
    unix_listener.bind(unix_path)
    unix_listener.listen()
    tmp_name = f"sandbox-probe-{os.getpid()}"
    fields = dict(solution=str(course / "solutions" / "a1" / "answer.txt"), solutions=str(course / "solutions"),
                  course_solutions=str(COURSE / "solutions"), git=str(COURSE / ".git"),
                  gradebook=str(course / "gradebook.db"), other=str(course / "submitted" / "other" / "a1"),
                  submitted=str(course / "submitted"), root=str(course), port=listener.getsockname()[1],
                  tmp_name=tmp_name, unix_socket=unix_path)
    nb = new_notebook(cells=[new_code_cell(PROBE.format(**fields)),
                             new_code_cell("while True:\n    pass", metadata={"timeout": LOOP_TIMEOUT}),
                             new_code_cell("print('next cell ran')")])
    work = course / "autograded" / "me" / "a1"
    settings = sandbox.course_settings(course, memory_mb=MEMORY_MB)
    seconds = _run(nb, work, settings, tmp_path_factory.mktemp("jupyter"))
    with socket.create_connection(listener.getsockname(), timeout=3):
        pass  # the listener was reachable all along, from outside the sandbox
    listener.close()
    unix_listener.close()
    os.unlink(unix_path)
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert text.strip(), f"the probe cell printed nothing: {nb.cells[0].outputs}"
    return {"probe": json.loads(text), "nb": nb, "seconds": seconds, "work": work, "tmp_name": tmp_name}


@needs_sandbox
def test_hidden_paths_cannot_be_read(run):
    probe = run["probe"]
    assert probe["read_solution"] == "FileNotFoundError"
    assert probe["list_solutions"] == [] and probe["list_course_solutions"] == [] and probe["list_git"] == []
    assert probe["read_gradebook"] != "grades"


@needs_sandbox
def test_gradebook_and_other_students_cannot_be_written(run, course):
    probe = run["probe"]
    for key in ("write_gradebook", "write_other_student", "write_submitted", "write_course_root"):
        assert probe[key] != "ok", f"{key} succeeded in the sandbox"
    assert (course / "gradebook.db").read_text() == "grades"
    assert not list(course.rglob("hack.txt"))


@needs_sandbox
def test_no_network(run):
    assert run["probe"]["network"] in {"ConnectionRefusedError", "OSError", "TimeoutError"}, run["probe"]["network"]


@needs_sandbox
def test_no_unix_sockets_of_system_services(run):
    """A read-only view does not stop connect(): /run (PostgreSQL's, docker's sockets) is hidden."""
    assert run["probe"]["unix_socket"] in {"FileNotFoundError", "ConnectionRefusedError", "PermissionError"}, \
        run["probe"]["unix_socket"]


@needs_sandbox
def test_work_dir_and_private_tmp_are_writable(run):
    probe = run["probe"]
    assert probe["write_work_dir"] == "ok" and probe["write_tmp"] == "ok"
    assert (run["work"] / "result.txt").read_text() == "written in the sandbox"
    assert not Path("/tmp", run["tmp_name"]).exists()


@needs_sandbox
def test_memory_limit_raises_memory_error(run):
    assert run["probe"]["memory"] == "MemoryError"


@needs_sandbox
def test_no_capabilities_and_no_credentials(run):
    assert int(run["probe"]["capabilities"], 16) == 0
    assert run["probe"]["secret_env"] == "absent"


@needs_sandbox
def test_endless_loop_is_cut_by_the_cell_timeout_and_the_next_cell_runs(run):
    loop, after = run["nb"].cells[1], run["nb"].cells[2]
    assert any(o.output_type == "error" for o in loop.outputs), loop.outputs
    assert "next cell ran" in "".join(o.get("text", "") for o in after.outputs)
    assert run["seconds"] < LOOP_TIMEOUT + 30, f"the notebook took {run['seconds']:.0f} s"


@needs_sandbox
def test_restart_keeps_the_sandbox_and_cleans_up(course, tmp_path):
    """A restarted kernel (as after a kernel death) is sandboxed again; shutdown removes the run folder."""
    from jupyter_client.manager import KernelManager

    with pytest.MonkeyPatch.context() as patch:
        for name, value in sandbox.sandbox_env(sandbox.course_settings(course), tmp_path).items():
            patch.setenv(name, value)
        km = KernelManager(kernel_name=sandbox.KERNEL_NAME)
        km.start_kernel(cwd=str(course / "autograded" / "me" / "a1"))
        try:
            run_dir = Path(km.connection_file).parent
            first = _listdir(km, course / "solutions")
            km.restart_kernel(now=True)
            second = _listdir(km, course / "solutions")
        finally:
            km.shutdown_kernel(now=True)
    assert first == second == "[]"
    assert not run_dir.exists()


def _listdir(km, folder):
    """What ``os.listdir(folder)`` prints in the kernel of ``km``."""
    client = km.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        out = []
        client.execute_interactive(f"import os; print(os.listdir({str(folder)!r}))", timeout=30,
                                   output_hook=lambda msg: out.append(msg["content"].get("text", "")))
        return "".join(out).strip()
    finally:
        client.stop_channels()


def _python_for(uid):
    """A Python interpreter that user ``uid`` may run, or None."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        try:
            sandbox._check_reachable(candidate, (uid, uid), uid)
            return candidate
        except (sandbox.SandboxError, OSError):
            continue
    return None


@needs_sandbox
def test_process_limit_applies_with_a_sandbox_user(tmp_path):
    """As root, Linux ignores RLIMIT_NPROC: the ``user`` setting makes a fork bomb stop at ``processes``."""
    if os.geteuid() != 0:
        pytest.skip("SANDBOX user setting not tested: it needs a grader running as root")
    nobody = sandbox.user_ids("nobody")
    python = _python_for(nobody[0])
    if python is None:
        pytest.skip("SANDBOX user setting not tested: no Python interpreter that 'nobody' may run")
    os.chmod(tmp_path, 0o755)
    os.chown(tmp_path, *nobody)
    settings = sandbox.check_settings({"work_dir": str(tmp_path), "processes": 20, "user": "nobody"})
    code = ("import os, time\nfor n in range(100):\n    try:\n        pid = os.fork()\n    except OSError:\n"
            "        print('stopped after', n); break\n    if pid == 0:\n        time.sleep(3); os._exit(0)\n"
            "else:\n    print('not stopped')\nprint('uid', os.getuid())")
    done = subprocess.run(sandbox.bwrap_command([python, "-c", code], settings, tmp_path, tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert "stopped after" in done.stdout and f"uid {nobody[0]}" in done.stdout, done.stdout + done.stderr


# ---------------------------------------------------------------- through nbgrader
def _cell(source, grade_id, points=None, **metadata):
    meta = {"grade": points is not None, "grade_id": grade_id, "locked": points is not None,
            "schema_version": 3, "solution": points is None, "task": False}
    if points is not None:
        meta["points"] = points
    return new_code_cell(source, metadata={"nbgrader": meta, **metadata})


@pytest.mark.slow
@needs_sandbox
def test_nbgrader_autograde_in_the_sandbox_with_cell_timeouts(tmp_path):
    """nbgrader autograde with the sandbox flags and the timeout_func config line: the endless test
    is cut after its 3 s and scores 0; the tests after it run and score, in the sandbox."""
    root = tmp_path / "course"
    config = (COURSE / "nbgrader_config.py").read_text()
    if "c.Execute.timeout_func = cell_timeout" not in config:  # the line the course config must have
        config += "\nfrom instructor.timeouts import cell_timeout\nc.Execute.timeout_func = cell_timeout\n"
    (root / "solutions" / "tiny").mkdir(parents=True)
    (root / "nbgrader_config.py").write_text(config)
    secret = root / "solutions" / "tiny" / "tiny.ipynb"
    nb = new_notebook(cells=[
        _cell("### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION", "answer"),
        _cell("while True:\n    pass", "test_endless", points=1, timeout=LOOP_TIMEOUT),
        _cell("assert answer == 42", "test_answer", points=1),
        _cell(f"import os\nassert not os.path.exists({str(secret)!r})", "test_sandboxed", points=1)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, secret)
    _register(root, "tiny")
    (root / "submitted" / "me" / "tiny").mkdir(parents=True)
    shutil.copy(secret, root / "submitted" / "me" / "tiny" / "tiny.ipynb")
    env = dict(nbgrader_env(), **sandbox.sandbox_env(sandbox.course_settings(root), tmp_path / "jupyter"))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", "tiny", "--student", "me", "--force",
                           *sandbox.nbgrader_args()], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-3000:]
    assert _scores(root) == {"test_endless": 0, "test_answer": 1, "test_sandboxed": 1}, done.stderr[-3000:]
    graded = nbformat.read(root / "autograded" / "me" / "tiny" / "tiny.ipynb", 4)
    assert any(o.get("ename") == "CellTimeoutError" for o in graded.cells[1].outputs)
    assert seconds < 120, f"autograde took {seconds:.0f} s"


def _register(root, aid):
    """``nbgrader generate_assignment`` in this process (an nbgrader start-up less: seconds on a busy machine)."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    config.CourseDirectory.release_directory = str(root / "release")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", nbgrader_env()["PATH"])  # nbgrader runs `alembic` to create the gradebook
        result = NbGraderAPI(config=config).generate_assignment(aid, force=True)
    assert result["success"], result.get("error") or result.get("log")


def _scores(root):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        return {g.name: g.score for nb in gradebook.find_submission("tiny", "me").notebooks for g in nb.grades}
