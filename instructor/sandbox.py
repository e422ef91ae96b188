"""A sandbox for student code during autograding: the Jupyter kernel runs under bubblewrap (bwrap).

Inside the sandbox the kernel has no network, sees the system and the course read-only, sees the
course's private state (solutions, gradebook, other students' folders, git history, tests) as empty,
may write only in its working folder (the notebook's folder) and a private ``/tmp``, and runs under
resource limits (``prlimit``). Nothing outside this module changes for students: ``make lab`` and the
plain ``python3`` kernel do not use it.

How it plugs into nbgrader: a kernelspec ``rnn-course-sandbox`` whose kernel provisioner
(``SandboxProvisioner``, a jupyter_client entry point declared in pyproject.toml) wraps the normal
``python -m ipykernel_launcher`` command with bwrap. The kernel talks to nbgrader over unix sockets
(ZMQ ``ipc``) in a private run folder, since it has no network. The settings reach the provisioner,
which runs inside the nbgrader process, through ``$RNN_SANDBOX`` (the path of a JSON file).

API for the autograde orchestrator::

    from instructor import sandbox
    ok, why = sandbox.available()                        # (bool, reason): bwrap present and working
    settings = sandbox.course_settings(course_root)      # defaults; override any setting as keywords
    env = {**os.environ, **sandbox.sandbox_env(settings, folder)}   # JUPYTER_PATH, RNN_SANDBOX
    subprocess.run([python, "-m", "nbgrader", "autograde", aid, *sandbox.nbgrader_args()], env=env)

``sandbox_env`` writes the settings file and, unless ``write_kernelspec(folder)`` did already, the
kernelspec into ``folder`` (any folder that outlives the nbgrader run, e.g. a temporary one).

Settings (a dict; ``check_settings`` fills in defaults and raises ``SandboxError`` naming a bad one):

- ``work_dir``: the only writable folder besides /tmp; None (default): the kernel's working folder,
  i.e. the notebook's folder (``autograded/<student>/<assignment>/`` under nbgrader autograde).
  A kernel started outside ``work_dir`` is refused.
- ``read_only``: paths shown read-only even inside /tmp (the whole system is read-only already; list
  here a course root or a virtual environment that lives in a temporary folder).
- ``hidden``: paths made unreadable: a folder shows as an empty read-only folder, a file as one that
  can be neither read nor written; paths that do not exist are skipped. ``hidden`` wins over
  ``read_only``; ``work_dir`` over both. The machine's temporary folder (/tmp, and $TMPDIR) is always
  replaced by a private, empty one: other kernels' sockets and other grading jobs stay out of sight.
- ``memory_mb``: address space of each process, MiB (RLIMIT_AS); a larger allocation raises
  MemoryError in the student's code instead of exhausting the grader's memory.
- ``cpu_seconds``: CPU time of each kernel process over all its cells, s (RLIMIT_CPU); beyond it the
  kernel is killed (the per-cell wall-clock limits are ``instructor.timeouts``).
- ``processes``: processes and threads the kernel may have (RLIMIT_NPROC): a fork bomb stops there.
  With ``user`` set, all processes of that user on the machine count (concurrent sandboxes share it).
- ``file_size_mb``: largest file the kernel may write, MiB (RLIMIT_FSIZE).
- ``tmp_mb``: size of the private /tmp and of /dev/shm, MiB each.
- ``user``: None (default): the kernel keeps the grader's user id, with every capability dropped.
  A user name or id (e.g. "nobody"; the grader must be root): the kernel runs as that user. Use it
  when grading as root: Linux does not apply ``processes`` to root, so a fork bomb is only stopped
  this way. That user must be able to read the course and the Python environment (o+rx); its work
  folder is handed to it for the run and handed back afterwards.

Errors: ``SandboxError`` (a ValueError) for bad settings, a missing ``$RNN_SANDBOX`` or settings file.
"""
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from jupyter_client.provisioning import LocalProvisioner

KERNEL_NAME = "rnn-course-sandbox"
SETTINGS_ENV = "RNN_SANDBOX"
DEFAULTS = {"work_dir": None, "read_only": [], "hidden": [], "memory_mb": 4096, "cpu_seconds": 3600,
            "processes": 128, "file_size_mb": 512, "tmp_mb": 1024, "user": None}
LIMITS = ("memory_mb", "cpu_seconds", "processes", "file_size_mb", "tmp_mb")
# Course-relative paths no student may read: the source (solutions, hidden tests), other students'
# work, grades, the git history (it holds the solutions), the tests (mutants are solutions) and the
# autograde cache (template gradebooks hold the hidden tests).
COURSE_PRIVATE = ("solutions", "source", "submitted", "autograded", "feedback", "downloaded", "backups",
                  "exchange", "tests", ".git", ".autograde", "gradebook.db", "gradebook.db-journal", "grades.csv",
                  ".nbgrader.log")
# System folders of Unix sockets (databases, docker, dbus...): the kernel has no network, and these would
# be a way around it (a read-only view does not stop connect()), e.g. to a PostgreSQL gradebook.
SOCKET_DIRS = ("/run", "/var/run")
# The code root: where helpers/ and graders/ are imported from (may differ from a grading course root).
CODE_ROOT = Path(__file__).resolve().parent.parent
# Environment variables the kernel keeps (by name or prefix); the others (tokens, keys...) are dropped.
KEEP_ENV = {"PATH", "LANG", "LANGUAGE", "TZ", "TERM", "LD_LIBRARY_PATH", "VIRTUAL_ENV", "MPLBACKEND",
            "JPY_SESSION_NAME"}
KEEP_ENV_PREFIXES = ("LC_", "PYTHON", "OMP_", "MKL_", "OPENBLAS_", "NUMEXPR_", "CUDA_", "NVIDIA_", "TORCH_",
                     "PYTORCH_", "NBGRADER_", "RNN_")
SANDBOX_ENV = {"HOME": "/tmp", "TMPDIR": "/tmp", "IPYTHONDIR": "/tmp/ipython", "MPLCONFIGDIR": "/tmp/mpl",
               "XDG_CACHE_HOME": "/tmp/cache"}
MIB = 1024 * 1024


class SandboxError(ValueError):
    """Bad sandbox settings, or no settings where the sandbox kernel needs them."""


# ---------------------------------------------------------------- settings
def course_settings(root, **overrides):
    """Default settings for grading in course ``root``: its private paths and those of the code root
    (``COURSE_PRIVATE``) and the Jupyter runtime folder hidden, ``root`` readable even under /tmp.

    ``overrides``: any setting (see the module doc), e.g. ``memory_mb=8192``; ``hidden`` and
    ``read_only`` given here are added to the defaults. Returns a checked settings dict.
    """
    from jupyter_core.paths import jupyter_runtime_dir

    roots = dict.fromkeys([Path(root).resolve(), CODE_ROOT])
    hidden = [str(r / name) for r in roots for name in COURSE_PRIVATE] + [jupyter_runtime_dir()]
    settings = dict(overrides, hidden=hidden + list(overrides.get("hidden", [])),
                    read_only=[str(r) for r in roots] + list(overrides.get("read_only", [])))
    return check_settings(settings)


def check_settings(settings):
    """A complete copy of ``settings`` (defaults filled in, paths absolute and resolved).

    Raises SandboxError naming the setting: unknown keys, a limit that is not an integer > 0,
    relative paths, a ``work_dir`` or ``read_only`` path that does not exist, an unknown ``user``
    or one that only root may use.
    """
    if not isinstance(settings, dict):
        raise SandboxError(f"sandbox settings must be a dict (JSON object), got {type(settings).__name__}")
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise SandboxError(f"unknown sandbox settings {unknown}; known: {sorted(DEFAULTS)}")
    checked = {**DEFAULTS, **settings}
    for name in LIMITS:
        value = checked[name]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise SandboxError(f"sandbox setting {name} must be an integer > 0, got {value!r}")
    checked["read_only"] = [_path("read_only", p, must_exist=True) for p in _paths("read_only", checked)]
    checked["hidden"] = [_path("hidden", p) for p in _paths("hidden", checked)]
    if checked["work_dir"] is not None:
        checked["work_dir"] = _path("work_dir", checked["work_dir"], must_exist=True)
        if not os.path.isdir(checked["work_dir"]):
            raise SandboxError(f"sandbox setting work_dir is not a folder: {checked['work_dir']}")
    user_ids(checked["user"])
    return checked


def _paths(name, settings):
    value = settings[name]
    if isinstance(value, (str, Path)) or not all(isinstance(p, (str, Path)) for p in value):
        raise SandboxError(f"sandbox setting {name} must be a list of paths, got {value!r}")
    return value


def _path(name, value, must_exist=False):
    """``value`` as an absolute, resolved path string; SandboxError naming the setting otherwise."""
    if not isinstance(value, (str, Path)) or not os.path.isabs(value):
        raise SandboxError(f"sandbox setting {name} needs absolute paths, got {value!r}")
    if must_exist and not os.path.exists(value):
        raise SandboxError(f"sandbox setting {name}: {value} does not exist")
    return os.path.realpath(value)


def user_ids(user):
    """(uid, gid) the kernel runs as for the ``user`` setting, or None to keep the grader's ids.

    Raises SandboxError for an unknown user, or another user than oneself when not root.
    """
    if user is None:
        return None
    try:
        entry = pwd.getpwuid(user) if isinstance(user, int) and not isinstance(user, bool) else pwd.getpwnam(user)
    except (KeyError, TypeError):
        raise SandboxError(f"sandbox setting user: no such user {user!r}") from None
    if entry.pw_uid == os.geteuid():
        return None
    if os.geteuid() != 0:
        raise SandboxError(f"sandbox setting user={user!r} needs the grader to run as root")
    return entry.pw_uid, entry.pw_gid


def load_settings(path=None):
    """Checked settings from the JSON file ``path`` (default: ``$RNN_SANDBOX``); SandboxError if unusable."""
    path = path or os.environ.get(SETTINGS_ENV)
    if not path:
        raise SandboxError(f"${SETTINGS_ENV} is not set: the {KERNEL_NAME} kernel needs the path of its "
                           f"settings file (see instructor.sandbox.sandbox_env)")
    try:
        return check_settings(json.loads(Path(path).read_text()))
    except (OSError, json.JSONDecodeError) as error:
        raise SandboxError(f"cannot read the sandbox settings ${SETTINGS_ENV}={path}: {error}") from None


# ---------------------------------------------------------------- the command line
def bwrap_command(cmd, settings, cwd, run_dir):
    """The command that runs ``cmd`` (a list) in the sandbox, with ``cwd`` as its working folder.

    ``settings``: checked settings whose ``work_dir`` may be None (then ``cwd``); ``run_dir``: a
    folder bound writable for the kernel's sockets. Raises SandboxError when ``cwd`` is outside
    ``work_dir`` or a tool is missing.
    """
    cwd = os.path.realpath(cwd)
    work_dir = settings["work_dir"] or cwd
    if not _inside(cwd, work_dir):
        raise SandboxError(f"the kernel's folder {cwd} is outside the sandbox setting work_dir={work_dir}")
    ids = user_ids(settings["user"])
    if ids is not None:
        _check_reachable(shutil.which(cmd[0]) or cmd[0], ids, settings["user"])
    tmp_size = str(settings["tmp_mb"] * MIB)
    args = [_tool("bwrap"), *_isolation(ids), "--die-with-parent", "--new-session",
            "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            "--perms", "1777", "--size", tmp_size, "--tmpfs", "/tmp",
            "--perms", "1777", "--size", tmp_size, "--tmpfs", "/dev/shm"]
    hidden = list(settings["hidden"]) + sorted({os.path.realpath(d) for d in SOCKET_DIRS if os.path.isdir(d)})
    system_tmp = os.path.realpath(tempfile.gettempdir())
    if system_tmp != "/tmp":  # $TMPDIR elsewhere: it holds other kernels' run folders and grading jobs
        args += ["--tmpfs", system_tmp]
        hidden += [system_tmp] if any(_inside(system_tmp, path) for path in settings["read_only"]) else []
    for path in sorted(settings["read_only"], key=_depth):
        args += ["--ro-bind", path, path]
    hidden_dirs = []
    for path in sorted(hidden, key=_depth):
        if os.path.isdir(path):
            args += ["--tmpfs", path]
            hidden_dirs.append(path)
        elif os.path.lexists(path):
            args += ["--ro-bind", "/dev/null", path]
    args += ["--bind", work_dir, work_dir, "--bind", str(run_dir), str(run_dir)]
    for path in hidden_dirs:  # read-only only now: the binds above may have needed mount points in them
        args += ["--remount-ro", path]
    args += ["--chdir", cwd, "--unsetenv", "JPY_PARENT_PID"]
    for name, value in SANDBOX_ENV.items():
        args += ["--setenv", name, value]
    return args + _drop_user(ids) + _limits(settings) + list(cmd)


def _isolation(ids):
    """bwrap's namespace and capability flags: every namespace, no capabilities left to the kernel.

    Keeping the grader's id, a user namespace of its own (nested ones disabled). Switching to another
    user (``ids``), no user namespace, so that the host enforces the process limit on that user; the
    two capabilities needed to switch are dropped by the switch itself.
    """
    if ids is None:
        return ["--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
    return ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
            "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]


def _check_reachable(program, ids, user):
    """SandboxError unless user ``ids`` (uid, gid) may run ``program``: every folder above it searchable."""
    uid, gid = ids
    real = Path(os.path.realpath(program))
    for folder in real.parents:
        info = os.stat(folder)
        shift = 6 if info.st_uid == uid else 3 if info.st_gid == gid else 0
        if not (info.st_mode >> shift) & 1:
            raise SandboxError(f"sandbox setting user={user!r}: that user cannot run {real} ({folder} is "
                               f"{stat.filemode(info.st_mode)}, owner uid {info.st_uid}); install Python where "
                               "it can (o+rx), or leave user unset")


def _drop_user(ids):
    if ids is None:
        return []
    uid, gid = ids
    return [_tool("setpriv"), f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--inh-caps=-all", "--"]


def _limits(settings):
    return [_tool("prlimit"), f"--as={settings['memory_mb'] * MIB}", f"--cpu={settings['cpu_seconds']}",
            f"--nproc={settings['processes']}", f"--fsize={settings['file_size_mb'] * MIB}", "--core=0", "--"]


def _inside(path, folder):
    """True when ``path`` is ``folder`` or below it (both absolute)."""
    return os.path.commonpath([path, folder]) == folder


def _depth(path):
    return len(Path(path).parts)


def _tool(name):
    path = shutil.which(name)
    if path is None:
        raise SandboxError(f"{name} is not installed: sandboxed autograding needs bubblewrap (bwrap), "
                           "prlimit and setpriv (util-linux); run `make setup` as root or apt-get install bubblewrap")
    return path


def kernel_env(env):
    """The environment given to the kernel: ``env`` without the variables that neither ``KEEP_ENV`` nor
    ``KEEP_ENV_PREFIXES`` name (credentials of the grading machine stay out of students' reach)."""
    return {k: v for k, v in env.items() if k in KEEP_ENV or k.startswith(KEEP_ENV_PREFIXES)}


# ---------------------------------------------------------------- availability and wiring
def available(settings=None):
    """(True, "bubblewrap <version> works[ caveat]") when a sandbox with ``settings`` (default: the
    defaults) can be made here, else (False, the reason). Runs ``true`` in the sandbox, about 0.1 s."""
    try:
        with tempfile.TemporaryDirectory(prefix="rnn-sandbox-probe-") as tmp:
            checked = check_settings({**(settings or {}), "work_dir": tmp})
            probe = subprocess.run(bwrap_command(["true"], checked, tmp, tmp), capture_output=True, text=True,
                                   timeout=30)
    except (SandboxError, OSError, subprocess.TimeoutExpired) as error:
        return False, str(error)
    if probe.returncode != 0:
        return False, f"bwrap cannot make a sandbox here: {probe.stderr.strip() or f'exit {probe.returncode}'}"
    version = subprocess.run([_tool("bwrap"), "--version"], capture_output=True, text=True).stdout.strip()
    caveat = " (grading as root: the process limit needs the user setting)" if os.geteuid() == 0 and not (
        settings or {}).get("user") else ""
    return True, f"{version or 'bwrap'} works{caveat}"


def write_kernelspec(folder, python=None):
    """Write the ``rnn-course-sandbox`` kernelspec into ``folder``/kernels/; return its folder (a Path).

    ``python``: the interpreter of the kernel (default: this one, i.e. the course's virtual environment).
    Interrupts go as messages (the kernel is in a session and pid namespace of its own, out of reach
    of signals sent by nbgrader).
    """
    kernel_dir = Path(folder) / "kernels" / KERNEL_NAME
    kernel_dir.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [python or sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (sandboxed autograding)", "language": "python",
            "interrupt_mode": "message", "metadata": {"kernel_provisioner": {"provisioner_name": KERNEL_NAME}}}
    (kernel_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return kernel_dir


def sandbox_env(settings, folder):
    """Environment variables for nbgrader (a dict): ``folder`` first on JUPYTER_PATH, and
    RNN_SANDBOX = ``folder``/sandbox.json, written here from ``settings`` (checked first: SandboxError
    for bad ones). ``folder`` is created if needed, with the kernelspec unless ``write_kernelspec``
    already put one there."""
    checked = check_settings(settings)
    if not (Path(folder) / "kernels" / KERNEL_NAME / "kernel.json").exists():
        write_kernelspec(folder)
    path = Path(folder) / "sandbox.json"
    path.write_text(json.dumps(checked, indent=1))
    jupyter_path = os.pathsep.join(filter(None, [str(folder), os.environ.get("JUPYTER_PATH")]))
    return {"JUPYTER_PATH": jupyter_path, SETTINGS_ENV: str(path)}


def nbgrader_args():
    """Extra nbgrader command-line flags that make autograde execute notebooks in the sandbox kernel."""
    return [f"--Execute.kernel_name={KERNEL_NAME}"]


# ---------------------------------------------------------------- the kernel provisioner
class SandboxProvisioner(LocalProvisioner):
    """LocalProvisioner that starts the kernel inside bwrap, connected through unix sockets.

    Settings come from ``$RNN_SANDBOX`` (``load_settings``). Each kernel gets a fresh run folder
    (connection file and sockets), removed at clean-up, as is the hand-over of its work folder.
    """

    run_dir = None
    handed_over = None  # (work_dir, uid, gid) to give back at clean-up

    async def pre_launch(self, **kwargs):
        """Point the kernel manager at ipc sockets in the run folder, then wrap the command in bwrap."""
        settings = load_settings()
        if self.run_dir is None:
            self.run_dir = Path(tempfile.mkdtemp(prefix="rnn-sandbox-"))
        km = self.parent
        km.transport = "ipc"
        km.ip = str(self.run_dir / "kernel")
        km.connection_file = str(self.run_dir / "connection.json")
        km.cache_ports = False
        kwargs = await super().pre_launch(**kwargs)
        cwd = os.path.realpath(kwargs.get("cwd") or os.getcwd())
        kwargs["cmd"] = bwrap_command(kwargs["cmd"], settings, cwd, self.run_dir)
        kwargs["env"] = kernel_env(kwargs["env"])
        ids = user_ids(settings["user"])
        if ids is not None:
            self._hand_over(settings["work_dir"] or cwd, *ids)
        return kwargs

    def _hand_over(self, work_dir, uid, gid):
        """Let the sandbox user use the run folder, the connection file and the work folder."""
        if self.handed_over is None:
            info = os.stat(work_dir)
            self.handed_over = (work_dir, info.st_uid, info.st_gid)
        for path in (self.run_dir, self.run_dir / "connection.json"):
            os.chown(path, uid, gid)
        _chown_tree(work_dir, uid, gid)

    async def cleanup(self, restart=False):
        """Also give the work folder back (to its owner before the run) and remove the run folder."""
        await super().cleanup(restart=restart)
        if restart:
            return
        if self.handed_over is not None:
            _chown_tree(*self.handed_over)
            self.handed_over = None
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None


def _chown_tree(root, uid, gid):
    """chown ``root`` and everything below it, never following symbolic links."""
    os.chown(root, uid, gid, follow_symlinks=False)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)
