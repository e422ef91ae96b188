"""What ``make`` and ``tests/`` share about the course: its root, its assignments, its gradebook,
nbgrader, and notebook cells by nbgrader ``grade_id``."""
import os
import subprocess
import sys
from pathlib import Path

ROOT_ENV = "RNN_COURSE_ROOT"
DB_URL_ENV = "NBGRADER_DB_URL"  # the course gradebook on a database server (nbgrader_config.py reads it too)


class UsageError(Exception):
    """A problem with what the instructor asked for: printed as one line, no traceback."""


def course_root():
    """The course root: $RNN_COURSE_ROOT if set, else the folder above this package."""
    return Path(os.environ.get(ROOT_ENV, Path(__file__).resolve().parent.parent))


def gradebook_url(root=None):
    """The SQLAlchemy URL of the course gradebook: $NBGRADER_DB_URL when set (a class on a database
    server, e.g. ``postgresql+psycopg://grader@db.example.org:5432/rnn``), else the SQLite file
    ``gradebook.db`` of the course root (default: this one). nbgrader_config.py applies the same rule.
    """
    return os.environ.get(DB_URL_ENV) or f"sqlite:///{Path(root or course_root()).resolve() / 'gradebook.db'}"


def sqlite_path(url):
    """The file of a ``sqlite:///<path>`` URL (a Path), or None for any other database."""
    return Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None


def utf8_name(name):
    """True when the file name ``name`` is valid UTF-8 (os decodes undecodable bytes to surrogates, which
    can be neither printed in a status table nor stored in the gradebook)."""
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True


def assignment_ids(root=None):
    """Assignment ids of a course (default: this one): folders of ``solutions/`` with a notebook, sorted."""
    solutions = Path(root or course_root()) / "solutions"
    if not solutions.is_dir():
        return []
    return sorted(p.name for p in solutions.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def nbgrader_env(own_gradebook=False):
    """The environment for nbgrader and its kernels: this interpreter's tools first on the PATH,
    deterministic hashing and one thread per process unless already set.

    ``own_gradebook``: without $NBGRADER_DB_URL, so nbgrader uses the SQLite ``gradebook.db`` of the
    root it runs in (grading jobs, template roots: only the trusted parent writes the course
    gradebook, and student code never sees the database's address or password).
    """
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if own_gradebook:
        env.pop(DB_URL_ENV, None)
    env.setdefault("PYTHONHASHSEED", "0")
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.setdefault(var, "1")
    return env


# jsonschema (under nbformat) eagerly imports its optional IRI checker ``rfc3987_syntax``, which builds
# about 35 Earley parsers at import: 1.4 s of CPU in every process that reads a notebook
# (python-jsonschema/jsonschema#1428). Notebook schemas use no IRI format, so the course's own processes
# block that one optional import (jsonschema then skips the checker, as when the package is absent).
SLOW_OPTIONAL_IMPORTS = ("rfc3987_syntax",)


def skip_slow_imports():
    """Block SLOW_OPTIONAL_IMPORTS in this process (importing them then raises ImportError)."""
    for name in SLOW_OPTIONAL_IMPORTS:
        sys.modules.setdefault(name, None)


def nbgrader_command(*args):
    """The command line of ``nbgrader <args>`` with this interpreter (minus the slow optional imports)."""
    launch = ("from instructor.course import skip_slow_imports; skip_slow_imports(); "
              "from nbgrader.apps.nbgraderapp import main; main()")
    return [sys.executable, "-c", launch, *map(str, args)]


def run_nbgrader(*args, root=None, check=True, own_gradebook=False):
    """Run ``nbgrader <args>`` in a course root; return the CompletedProcess (output captured).

    ``own_gradebook``: see ``nbgrader_env``. Raises UsageError with the end of nbgrader's log when it
    fails and ``check`` is True.
    """
    result = subprocess.run(nbgrader_command(*args), cwd=root or course_root(),
                            env=nbgrader_env(own_gradebook), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise UsageError(f"nbgrader {' '.join(map(str, args))} failed (exit {result.returncode}). "
                         f"{(result.stderr or '')[-4000:]}".strip())
    return result


def grade_id(cell):
    """The nbgrader grade_id of a notebook cell (None for plain cells)."""
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def cells_by_id(notebook):
    """{id: cell} of the code cells of a notebook path; an id is a cell's grade_id or one of its tags
    (lectures have no grade_ids: their reusable cells carry a tag)."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    found = {}
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        for key in [grade_id(cell), *cell.get("metadata", {}).get("tags", [])]:
            if key:
                found.setdefault(key, cell)
    return found


def exec_cells(notebook, grade_ids, namespace=None, edit=None):
    """Execute the code cells with the given ``grade_ids`` of ``notebook``, in the order given.

    Lets scripts time or reuse a notebook's own implementations without copying their code.
    Inputs: a notebook path, a list of grade_id strings, an optional dict to execute in (default:
    a fresh one), an optional ``edit(grade_id, source) -> source`` applied before running a cell.
    Returns the namespace. Raises ValueError naming grade_ids the notebook lacks.
    """
    grade_ids = [grade_ids] if isinstance(grade_ids, str) else list(grade_ids)
    if not grade_ids or not all(isinstance(g, str) for g in grade_ids):
        raise ValueError(f"grade_ids must be a non-empty list of strings, got {grade_ids!r}")
    cells = cells_by_id(notebook)
    missing = [g for g in grade_ids if g not in cells]
    if missing:
        raise ValueError(f"grade_ids {missing} are not code cells of {notebook}")
    namespace = {"__name__": "__notebook__"} if namespace is None else namespace
    for gid in grade_ids:
        source = edit(gid, cells[gid].source) if edit else cells[gid].source
        exec(compile(source, f"{Path(notebook).name}:{gid}", "exec"), namespace)
    return namespace
