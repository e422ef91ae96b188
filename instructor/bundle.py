"""What students receive: the student bundle behind ``make student-release``.

    python -m instructor student-release [--out DIR]      (default: dist/)

writes ``DIR/rnn-course-student/`` and ``DIR/rnn-course-student.zip`` (the same files under one top
folder): the lectures, the committed nbgrader release (``assignments/``), the ``helpers`` and ``graders``
packages (visible test cells call the graders), ``datasets/`` without the held-out grading data
(``HELD_OUT``), a students' README and the set-up (``student.mk`` as the Makefile, requirements,
``pyproject.toml`` trimmed to what is shipped, ``environment.yml``, and ``nbgrader_config.py`` from
``instructor/student_nbgrader_config.py`` with the one instructor module it needs, ``instructor/timeouts.py``).
Everything is picked from an allow-list of folders and file kinds, so the instructor's local files
(submitted/, autograded/, feedback/, backups/, gradebook.db, .venv, ...) are never read.

Before anything is written the bundle checks itself (``Secrets``, ``problems``) and refuses with an error
naming the file when a shipped file holds a line of a solution region or hidden-test block of
``solutions/``, an nbgrader marker, the content of a held-out file, or a path that is never shipped.
"""
import hashlib
import json
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from types import MappingProxyType

from .course import UsageError, assignment_ids, course_root

NAME = "rnn-course-student"

#: datasets/ files that only grading may read, with the reason. Chosen from datasets/README.md and from what
#: reads each file (graders/, helpers/, lectures/, assignments/): every other file is read by a lecture, a
#: helper or a visible check (a6's visible curves, a6_curves.json, are grader.load_curves()).
HELD_OUT = MappingProxyType({
    "a6_curves_heldout.json": "grading data: a6's hidden test grades `diagnose` on these 42 runs "
                              "(graders/a6_hyperparameters.py CURVE_FILES['held_out']); with them a rule could be "
                              "fitted to the answers",
})

#: Set-up files: path in the bundle -> path in the course.
SETUP = MappingProxyType({
    "Makefile": "student.mk",
    "requirements.txt": "requirements.txt",
    "environment.yml": "environment.yml",
    "README.md": "instructor/student_README.md",
    "nbgrader_config.py": "instructor/student_nbgrader_config.py",
    "instructor/timeouts.py": "instructor/timeouts.py",
})
STUDENT_INIT = ('"""The part of the course\'s instructor tools that students need: ``instructor.timeouts``, the '
                'per-cell\ntime limits that ``nbgrader validate`` applies (nbgrader_config.py), the same as the '
                'autograder\'s."""\n')
STUDENT_GITIGNORE = ".venv/\n*.egg-info/\n__pycache__/\n.ipynb_checkpoints/\n.exchange/\n"
PACKAGES = ("helpers", "graders", "instructor")  # the bundle's pyproject.toml installs these

#: Path parts that a bundle never holds (instructor-only folders, local state, build output).
FORBIDDEN_PARTS = frozenset({"solutions", "tests", "scripts", "mutants", ".git", ".autograde", "gradebook.db",
                             "submitted", "autograded", "feedback", "backups", "downloaded", ".venv", "__pycache__",
                             ".ipynb_checkpoints", ".exchange", "dist", NAME})
STUDENT_INSTRUCTOR_FILES = frozenset({"instructor/__init__.py", "instructor/timeouts.py"})

SOLUTION = ("### BEGIN SOLUTION", "### END SOLUTION")
HIDDEN = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
MIN_LINE = 25  # shorter lines (``out = W[x]``, ``return h, cache``) are not distinctive
NUMBER = re.compile(r"-?\d+\.\d+(?:[eE][-+]?\d+)?")


class LeakError(UsageError):
    """The bundle would give students something they must not have; nothing was written."""


# ---------------------------------------------------------------- what is shipped
def _files(folder, pattern):
    """Files of ``folder`` matching ``pattern`` (glob), sorted, minus hidden and never-shipped parts."""
    folder = Path(folder)
    return sorted(p for p in folder.glob(pattern) if p.is_file() and not any(
        part.startswith(".") or part in FORBIDDEN_PARTS for part in p.relative_to(folder).parts))


def collect(root):
    """{path in the bundle: bytes} of everything a student receives from the course at ``root``.

    Raises UsageError when the release in assignments/ lacks a notebook of solutions/ (run make release).
    """
    root = Path(root)
    plan = {f"lectures/{p.name}": p.read_bytes() for p in _files(root / "lectures", "*.ipynb")}
    for aid in assignment_ids(root):
        for source in _files(root / "solutions" / aid, "*.ipynb"):
            if not (root / "assignments" / aid / source.name).is_file():
                raise UsageError(f"assignments/{aid}/{source.name} is missing: run make release")
        plan.update({f"assignments/{aid}/{p.relative_to(root / 'assignments' / aid).as_posix()}": p.read_bytes()
                     for p in _files(root / "assignments" / aid, "**/*")})
    for package in ("helpers", "graders"):
        plan.update({p.relative_to(root).as_posix(): p.read_bytes() for p in _files(root / package, "**/*.py")})
    for path in _files(root / "datasets", "*"):
        if path.name not in HELD_OUT:
            plan[f"datasets/{path.name}"] = path.read_bytes()
    if "datasets/README.md" in plan:  # its rows on the held-out files describe what is not there
        plan["datasets/README.md"] = "".join(line for line in plan["datasets/README.md"].decode().splitlines(True)
                                             if not any(name in line for name in HELD_OUT)).encode()
    plan.update({target: (root / source).read_bytes() for target, source in SETUP.items()})
    plan["instructor/__init__.py"] = STUDENT_INIT.encode()
    plan[".gitignore"] = STUDENT_GITIGNORE.encode()
    plan["pyproject.toml"] = student_pyproject((root / "pyproject.toml").read_text(), set(plan)).encode()
    return plan


def _ships(module, files):
    path = module.replace(".", "/")
    return f"{path}.py" in files or f"{path}/__init__.py" in files


def student_pyproject(text, files):
    """The course's pyproject.toml for a bundle holding ``files``: ``packages = PACKAGES``, and without the
    entry points into modules the bundle does not ship (the autograde sandbox's kernel provisioner)."""
    lines, table, replaced = [], "", False
    for line in text.splitlines(keepends=True):
        header = re.match(r"\s*\[([^\[\]]+)\]\s*$", line)
        table = header.group(1).strip() if header else table
        entry = re.match(r'\s*"?[\w.-]+"?\s*=\s*"([\w.]+)\s*:', line)
        if table == "tool.setuptools" and re.match(r"\s*packages\s*=", line):
            line, replaced = f"packages = {json.dumps(list(PACKAGES))}\n", True
        elif table.startswith("project.entry-points") and entry and not _ships(entry.group(1), files):
            continue
        lines.append(line)
    if not replaced:
        raise UsageError("pyproject.toml: [tool.setuptools] has no one-line `packages = [...]` to rewrite for students")
    # entry-point tables left empty go, with the comment lines just above them
    return re.sub(r"(?m)^(?:#.*\n)*\[project\.entry-points\.[^\n]*\]\n(?:[ \t]*\n)*(?=\[|\Z)", "", "".join(lines))


# ---------------------------------------------------------------- what must never be shipped
def _strings(value):
    """Every string inside parsed JSON, minus base64 images (a notebook's image/png outputs)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not str(key).startswith("image/"):
                yield from _strings(item)


def searchable(name, data):
    """The text of a file to scan (a notebook's strings decoded from JSON), or None for binary data."""
    if b"\0" in data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if name.endswith(".ipynb"):
        try:
            return "\n".join(_strings(json.loads(text)))
        except ValueError:
            return text
    return text


def _split(cell):
    """(public lines, [(kind, [stripped lines])]) of a source cell: the lines nbgrader keeps, and its solution
    regions and hidden-test blocks; a solution cell without markers is one region (nbgrader replaces it all)."""
    source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    if cell.get("metadata", {}).get("nbgrader", {}).get("solution", False) and SOLUTION[0] not in source:
        return [], [("solution", [line.strip() for line in source.splitlines()])]
    public, found, current = [], [], None
    for line in source.splitlines():
        marker = line.strip()
        if marker in (SOLUTION[0], HIDDEN[0]):
            current = ("solution" if marker == SOLUTION[0] else "hidden tests", [])
        elif marker in (SOLUTION[1], HIDDEN[1]) and current:
            found.append(current)
            current = None
        elif current:
            current[1].append(marker)
        else:
            public.append(line)
    return public, found


def regions(cell):
    """[(kind, [stripped lines])] of a source cell's solution regions and hidden-test blocks (see ``_split``)."""
    return _split(cell)[1]


class Secrets:
    """What must not reach a student, read from a course root.

    - ``lines``: {line: where it is from} -- every distinctive line (stripped, at least MIN_LINE characters)
      of the solution regions and hidden-test blocks of ``solutions/*/*.ipynb``. A line is not distinctive when
      the public part of a source notebook has it (the release keeps it, e.g. in a hint); a solution line also
      not when the course's public code has it (helpers/, graders/, lectures/: the graders' oracles and common
      idioms such as ``for t in reversed(range(T)):``, public by design). Hidden-test lines have no such exception.
    - ``digests``, ``numbers``: the held-out files' sha256, and every run of three consecutive decimal numbers of
      their JSON lists (a copy of the data however it is formatted); text held-out files add their lines.
    """

    def __init__(self, root):
        root = Path(root)
        sources = [nb for aid in assignment_ids(root) for nb in _files(root / "solutions" / aid, "*.ipynb")]
        notebooks = {p: json.loads(p.read_text()) for p in sources}
        public = "\n".join(line for nb in notebooks.values() for cell in nb["cells"] for line in _split(cell)[0])
        library = "\n".join(searchable(p.name, p.read_bytes()) or "" for folder, pattern in
                            (("helpers", "**/*.py"), ("graders", "**/*.py"), ("lectures", "*.ipynb"))
                            for p in _files(root / folder, pattern))
        self.lines = {}
        for path, nb in notebooks.items():
            for cell in nb["cells"]:
                gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "?")
                for kind, lines in regions(cell):
                    for line in lines:
                        if len(line) >= MIN_LINE and line not in public and (kind != "solution" or line not in library):
                            self.lines.setdefault(line, f"{kind} of {path.relative_to(root).as_posix()} ({gid})")
        self.digests, self.numbers = {}, {}
        for name in HELD_OUT:
            path = root / "datasets" / name
            if path.is_file():
                self._held_out(name, path.read_bytes())

    def _held_out(self, name, data):
        self.digests[hashlib.sha256(data).hexdigest()] = name
        text = searchable(name, data)
        if text is None:
            return
        try:
            lists = _lists(json.loads(text))
        except ValueError:
            self.lines.update({line.strip(): f"held-out {name}" for line in text.splitlines()
                               if len(line.strip()) >= MIN_LINE})
            return
        for values in lists:
            decimals = [json.dumps(v) for v in values if isinstance(v, float) and not v.is_integer()]
            self.numbers.update({tuple(decimals[i:i + 3]): name for i in range(len(decimals) - 2)})

    def leaks(self, name, data):
        """What file ``name`` with bytes ``data`` gives away: a list of messages (empty = nothing)."""
        found = [f"{name}: is the held-out file {self.digests[d]}"
                 for d in [hashlib.sha256(data).hexdigest()] if d in self.digests]
        text = searchable(name, data)
        if text is None:
            return found
        found += [f"{name}: has the nbgrader marker {m!r}" for m in (SOLUTION[0], HIDDEN[0]) if m in text]
        found += [f"{name}: has a line of the {where}: {line!r}" for line, where in self.lines.items() if line in text]
        numbers = NUMBER.findall(text)
        runs = {tuple(numbers[i:i + 3]) for i in range(len(numbers) - 2)} & self.numbers.keys()
        for held_out in sorted({self.numbers[run] for run in runs}):
            first = min(run for run in runs if self.numbers[run] == held_out)
            count = sum(self.numbers[run] == held_out for run in runs)
            found.append(f"{name}: has {count} runs of numbers of the held-out {held_out} (e.g. {', '.join(first)})")
        return found


def _lists(value):
    """Every list inside parsed JSON."""
    if isinstance(value, list):
        yield value
        for item in value:
            yield from _lists(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _lists(item)


def forbidden(path):
    """Why a bundle may not hold ``path`` (posix, relative), or None."""
    parts = path.split("/")
    bad = [part for part in parts if part in FORBIDDEN_PARTS or part.endswith(".pyc")]
    if bad:
        return f"{path}: {bad[0]} is never shipped"
    if parts[0] == "instructor" and path not in STUDENT_INSTRUCTOR_FILES:
        return f"{path}: of the instructor's tools only {', '.join(sorted(STUDENT_INSTRUCTOR_FILES))} are shipped"
    if parts[-1] in HELD_OUT:
        return f"{path}: held-out grading data ({HELD_OUT[parts[-1]]})"
    return None


def problems(files, secrets):
    """Every reason the bundle's ``files`` ({path: bytes}) may not go to students (empty = none)."""
    found = [reason for reason in map(forbidden, files) if reason]
    for path, data in files.items():
        found += secrets.leaks(path, data)
    return found


# ---------------------------------------------------------------- the nbgrader configuration students get
def _settings(config_file):
    """{setting: value} of what students need from an nbgrader config file: CourseDirectory.course_id, every
    Execute and Exchange setting; absolute paths inside the file's folder made relative to it."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(config_file.name, path=str(config_file.parent)).load_config()
    found = {"CourseDirectory.course_id": dict.get(config, "CourseDirectory", {}).get("course_id")}
    for section in ("Execute", "Exchange"):
        for key, value in (dict.get(config, section) or {}).items():
            if isinstance(value, str) and Path(value).is_absolute() and Path(value).is_relative_to(config_file.parent):
                value = Path(value).relative_to(config_file.parent).as_posix()
            found[f"{section}.{key}"] = value
    extra = sorted(set(config) - {"CourseDirectory", "Execute", "Exchange"})
    return found, extra


def config_problems(root):
    """How instructor/student_nbgrader_config.py differs from nbgrader_config.py in what students need."""
    root = Path(root)
    course, _ = _settings(root / "nbgrader_config.py")
    with tempfile.TemporaryDirectory() as tmp:  # loaded where it will live (it creates its .exchange/)
        shutil.copy(root / SETUP["nbgrader_config.py"], Path(tmp) / "nbgrader_config.py")
        student, extra = _settings(Path(tmp) / "nbgrader_config.py")
    differ = [key for key in sorted(set(course) | set(student)) if course.get(key) != student.get(key)]
    found = [f"{SETUP['nbgrader_config.py']}: {key} is {student.get(key)!r}, the course's nbgrader_config.py has "
             f"{course.get(key)!r}" for key in differ]
    return found + [f"{SETUP['nbgrader_config.py']}: sets {section}, which students do not need" for section in extra]


# ---------------------------------------------------------------- writing
def _zip_info(name):
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # same files, same bytes
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def _write(files, out_dir):
    """Write the folder and the zip through a staging folder in ``out_dir``; replace an earlier bundle."""
    out_dir.mkdir(parents=True, exist_ok=True)
    folder, archive = out_dir / NAME, out_dir / f"{NAME}.zip"
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".staging-") as tmp:
        staged = Path(tmp) / NAME
        for path, data in files.items():
            (staged / path).parent.mkdir(parents=True, exist_ok=True)
            (staged / path).write_bytes(data)
        with zipfile.ZipFile(Path(tmp) / "bundle.zip", "w") as bundle:
            for path in sorted(files):
                bundle.writestr(_zip_info(f"{NAME}/{path}"), files[path])
        if folder.exists():
            shutil.rmtree(folder)
        staged.rename(folder)
        (Path(tmp) / "bundle.zip").replace(archive)
    return folder, archive


def student_release(out_dir="dist", root=None):
    """Check, then write ``out_dir/rnn-course-student/`` and ``out_dir/rnn-course-student.zip`` from the
    course at ``root`` (default: this one). Returns (folder, zip). Raises LeakError naming each offending
    file (nothing written), UsageError for an incomplete release or a student configuration out of date."""
    root = Path(root or course_root()).resolve()
    files = collect(root)
    secrets = Secrets(root)
    found = problems(files, secrets) + config_problems(root)
    if found:
        shown = "\n  ".join(found[:20]) + (f"\n  ... and {len(found) - 20} more" if len(found) > 20 else "")
        raise LeakError(f"the student bundle was not written: {len(found)} problem(s)\n  {shown}")
    folder, archive = _write(files, Path(out_dir))
    size = sum(map(len, files.values()))
    print(f"wrote {folder}/ and {archive.name}: {len(files)} files, {size / 1e6:.1f} MB; checked against "
          f"{len(secrets.lines)} solution and hidden-test lines; left out: {', '.join(HELD_OUT)}")
    return folder, archive
