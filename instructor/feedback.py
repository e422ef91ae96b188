"""Feedback that never shows hidden tests or the grading machine's paths, and stays small.

Two nbconvert/nbgrader preprocessors for the course's ``nbgrader_config.py``:

- ``SanitizeFeedback`` (``GenerateFeedback.preprocessors``, *before* ``ClearHiddenTests``: it
  reads the hidden regions from the autograded test cells, which still hold them). It replaces
  every error traceback by the visible notebook lines of its frames and ``ename: evalue``
  (IPython prints the source lines around the failing line, hidden ones included, and the
  paths of the grader modules), shortens absolute paths in all outputs (``<course>/...``,
  ``<python>/...``, ``<tmp>/...``, ``~/...``) and limits the bytes of every output.
- ``LimitOutputBytes`` (``Autograde.autograde_preprocessors``, after ``LimitOutput``): the byte
  limit alone. nbgrader's ``LimitOutput`` counts lines, not bytes: 50 lines of 4 MB each once
  made a 191 MiB feedback file.
"""
import json
import os
import re
import site
import sys
import sysconfig
import tempfile
from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Dict, Integer, Unicode

REPO_ROOT = Path(__file__).resolve().parent.parent  # where graders/ and helpers/ are imported from
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# IPython >= 8: "Cell In[4], line 2" / "Cell In[2], line 16, in rnn_step_forward(x, ...)";
# IPython 7.3x: "Input In [4], in <cell line: 2>()".
CELL_FRAME = re.compile(r"^(?:Cell In ?|Input In ?)\[(\d+)\],\s*(?:line (\d+)|in <cell line: (\d+)>)(?:, in (.+))?")
SITE_PACKAGES = re.compile(r"(?:/[^/\s'\"<>:,()\[\]]+)+/(?:site|dist)-packages(?=/|\b)")
TEXT_MIME = re.compile(r"^(text/|application/(json|javascript|x-latex)|image/svg)")
TRUNCATED = re.compile(r"\n\.\.\. \[output truncated by the grader: [\d,]+ bytes, the first [\d,]+ shown\]\n\Z")
MIN_SCRUB = 12  # hidden lines shorter than this are not scrubbed from outputs ("pass", "x = 1")


# ---------------------------------------------------------------- byte limits
def truncate(text, max_bytes):
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes plus a note saying so.

    Unchanged if it fits, not counting a note of an earlier truncation (autograde, then feedback).
    """
    earlier = TRUNCATED.search(text)
    data = (text[:earlier.start()] if earlier else text).encode("utf-8")
    if max_bytes < 0 or len(data) <= max_bytes:
        return text
    return (data[:max_bytes].decode("utf-8", errors="ignore")
            + f"\n... [output truncated by the grader: {len(data):,} bytes, the first {max_bytes:,} shown]\n")


def _as_text(value):
    return "".join(value) if isinstance(value, list) else value


def limit_output(output, max_bytes, max_binary_bytes):
    """Limit one nbformat output in place: text fields to ``max_bytes`` each; binary data (PNG,
    PDF, ...) over ``max_binary_bytes`` is replaced by a note. Returns the output."""
    kind = output.get("output_type")
    if kind == "stream":
        output["text"] = truncate(_as_text(output.get("text", "")), max_bytes)
    elif kind == "error":
        output["evalue"] = truncate(output.get("evalue", ""), max_bytes)
        output["traceback"] = [truncate(line, max_bytes) for line in output.get("traceback", [])]
    elif kind in ("display_data", "execute_result"):
        data = output.get("data", {})
        for mime in list(data):
            value = _as_text(data[mime])
            if not isinstance(value, str):
                continue
            if TEXT_MIME.match(mime):
                data[mime] = truncate(value, max_bytes)
            elif max_binary_bytes >= 0 and len(value) > max_binary_bytes:
                del data[mime]
                note = f"[{mime} output of {len(value):,} bytes left out by the grader]"
                data["text/plain"] = "\n".join(filter(None, [_as_text(data.get("text/plain", "")), note]))
    return output


class LimitOutputBytes(NbGraderPreprocessor):
    """Cap the bytes of every output of every code cell (after nbgrader's line-based LimitOutput).

    Text (stream text, tracebacks, text/* data) is cut to ``max_bytes`` per output with a note;
    binary data over ``max_binary_bytes`` is replaced by a note; outputs past ``max_cell_bytes``
    per cell are dropped with a note. Output types are kept, so SaveAutoGrades still sees errors.
    """

    max_bytes = Integer(100_000, help="bytes per text output (-1: no limit)").tag(config=True)
    max_binary_bytes = Integer(1_000_000, help="bytes per image or other binary output (-1: no limit)").tag(
        config=True)
    max_cell_bytes = Integer(2_000_000, help="bytes of all outputs of one cell (-1: no limit)").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code":
            cell.outputs = self.limit_outputs(cell.outputs)
        return cell, resources

    def limit_outputs(self, outputs):
        """The outputs of one cell, each limited, the cell's total capped; a list."""
        kept, total = [], 0
        for n, output in enumerate(outputs):
            output = limit_output(output, self.max_bytes, self.max_binary_bytes)
            total += len(json.dumps(output))
            if 0 <= self.max_cell_bytes < total and output.get("output_type") != "error":
                rest = outputs[n:]
                errors = [limit_output(o, self.max_bytes, self.max_binary_bytes) for o in rest
                          if o.get("output_type") == "error"]  # SaveAutoGrades scores by them: keep
                kept.append(_note(f"... [{len(rest) - len(errors)} more outputs left out by the grader: "
                                  f"over {self.max_cell_bytes:,} bytes in this cell]\n"))
                return kept + errors
            kept.append(output)
        return kept


def _note(text):
    from nbformat.v4 import new_output

    return new_output("stream", name="stdout", text=text)


# ---------------------------------------------------------------- hidden regions and paths
def hidden_lines(source, begin="BEGIN HIDDEN TESTS", end="END HIDDEN TESTS"):
    """1-based numbers of the lines of ``source`` inside hidden-test regions, markers included.

    Mimics nbgrader's ClearHiddenTests._remove_hidden_test_region (``delimiter in line``); an
    unterminated region runs to the end of the cell.
    """
    hidden, inside = set(), False
    for number, line in enumerate(source.split("\n"), start=1):
        if begin in line:
            inside = True
        if inside:
            hidden.add(number)
        if end in line:
            inside = False
    return hidden


def path_prefixes(course_root=None, extra=None):
    """[(absolute path prefix, short form)], longest first: the course root and this repository
    (``<course>``), the Python installation (``<python>``), the temp dir (``<tmp>``), home (``~``).

    ``extra``: {prefix: short form} added to (and overriding) those.
    """
    pairs = {}
    for prefix in [*site.getsitepackages(), site.getusersitepackages(), sys.prefix, sys.exec_prefix,
                   *(sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib"))]:
        pairs[prefix] = "<python>"
    for prefix in (course_root, REPO_ROOT, os.getcwd() if course_root is None else None):
        pairs[prefix] = "<course>"
    pairs[tempfile.gettempdir()] = "<tmp>"
    pairs[os.path.expanduser("~")] = "~"
    pairs.update(extra or {})
    found = {}
    for prefix, short in pairs.items():
        for variant in {str(prefix), os.path.realpath(str(prefix))} if prefix else ():
            if variant not in ("/", "") and os.path.isabs(variant):
                found[variant.rstrip("/")] = short
    return sorted(found.items(), key=lambda pair: -len(pair[0]))


def shorten_paths(text, prefixes):
    """``text`` with every absolute path under a known prefix shortened (see ``path_prefixes``);
    any ``.../site-packages`` or ``.../dist-packages`` folder becomes ``<python>``."""
    text = SITE_PACKAGES.sub("<python>", text)
    for prefix, short in prefixes:
        if prefix in text:
            text = re.sub(r"(?<![\w.-])" + re.escape(prefix) + r"(?![\w.-])", lambda _, s=short: s, text)
    return text


# ---------------------------------------------------------------- tracebacks
def visible_traceback(output, cells_by_count, hidden_by_count, own_count):
    """The traceback of an error output reduced to what a student may see; a list of strings.

    ``cells_by_count``: {execution_count: cell source}; ``hidden_by_count``: {execution_count:
    set of hidden line numbers}; ``own_count``: the execution count of the failing cell. Keeps
    the notebook frames ("Cell In[k], line n") whose line is visible, as their source line
    (renumbered as the student's notebook shows it, hidden lines removed), the failing cell's
    frame first; drops frames of modules (grader internals, library paths) and every hidden
    line; ends with ``ename: evalue``.
    """
    frames, hidden_failure = [], False
    for line in ANSI.sub("", "\n".join(output.get("traceback", []))).split("\n"):
        found = CELL_FRAME.match(line.strip())
        if not found:
            continue
        count, number = int(found.group(1)), int(found.group(2) or found.group(3))
        function = (found.group(4) or "").split("(")[0].strip()
        hidden = hidden_by_count.get(count, set())
        if count not in cells_by_count or number in hidden:
            hidden_failure |= count == own_count
            continue
        text = cells_by_count[count].split("\n")[number - 1].strip()
        shown = number - sum(1 for h in hidden if h < number)
        frame = f"  Cell In[{count}], line {shown}{f', in {function}' if function else ''}: {text}"
        if frame not in (f for _, f in frames):
            frames.append((count != own_count, frame))
    lines = ["Traceback (notebook lines only; grader internals and hidden tests are not shown):"]
    lines += [frame for _, frame in sorted(frames, key=lambda pair: pair[0])]
    if hidden_failure and not any(not other for other, _ in frames):
        lines.append(f"  Cell In[{own_count}]: a hidden test of this cell failed")
    lines.append(f"{output.get('ename', 'Error')}: {output.get('evalue', '')}")
    return lines


def _scrub(text, secrets):
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "<hidden test>")
    return text


def _map_strings(output, function):
    """Apply ``function`` to every string an output shows (text, evalue, traceback, str data)."""
    for key in ("text", "evalue"):
        if key in output:
            output[key] = function(_as_text(output[key]))
    if "traceback" in output:
        output["traceback"] = [function(line) for line in output["traceback"]]
    data = output.get("data", {})
    for mime in list(data):
        if TEXT_MIME.match(mime) and isinstance(_as_text(data[mime]), str):
            data[mime] = function(_as_text(data[mime]))


class SanitizeFeedback(LimitOutputBytes):
    """Feedback preprocessor: no hidden-test line and no grading-machine path in any output.

    Must run before ClearHiddenTests (it needs the hidden regions). Per code cell: error
    tracebacks become ``visible_traceback``; every output string has absolute paths shortened
    (``path_prefixes``: course root = ``course_root`` or CourseDirectory.root or the working
    directory nbgrader runs in, plus this repository, Python, temp, home) and any hidden line of
    any cell (``MIN_SCRUB`` characters or longer) replaced by ``<hidden test>``; then the byte
    limits of LimitOutputBytes apply.
    """

    course_root = Unicode("", help="the grading course root (default: CourseDirectory.root, else cwd)").tag(
        config=True)
    path_replacements = Dict(help="extra {absolute prefix: short form} to shorten").tag(config=True)
    begin_test_delimeter = Unicode("BEGIN HIDDEN TESTS", help="as ClearHiddenTests.begin_test_delimeter").tag(
        config=True)
    end_test_delimeter = Unicode("END HIDDEN TESTS", help="as ClearHiddenTests.end_test_delimeter").tag(config=True)

    def preprocess(self, nb, resources):
        code = [c for c in nb.cells if c.cell_type == "code" and c.get("execution_count")]
        self._sources = {c.execution_count: c.source for c in code}
        self._hidden = {c.execution_count: self._hidden_lines(c) for c in code}
        secrets = {line.strip() for c in nb.cells for n, line in enumerate(c.source.split("\n"), 1)
                   if n in self._hidden_lines(c)}
        self._secrets = sorted((s for s in secrets if len(s) >= MIN_SCRUB), key=len, reverse=True)
        self._prefixes = path_prefixes(self._course_root(), dict(self.path_replacements))
        return super().preprocess(nb, resources)

    def _hidden_lines(self, cell):
        return hidden_lines(cell.source, self.begin_test_delimeter, self.end_test_delimeter)

    def _course_root(self):
        configured = self.config.get("CourseDirectory", {}).get("root")
        return self.course_root or configured or os.getcwd()

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        for output in cell.outputs:
            if output.get("output_type") == "error":
                output["traceback"] = visible_traceback(output, self._sources, self._hidden, cell.execution_count)
            _map_strings(output, lambda text: _scrub(shorten_paths(text, self._prefixes), self._secrets))
        return super().preprocess_cell(cell, resources, index)


# ---------------------------------------------------------------- configuration
NBGRADER_CONFIG = """
# Feedback without hidden tests or grading-machine paths; outputs capped in bytes (instructor/feedback.py).
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, Execute, IgnorePattern, LimitOutput,
                                    SaveAutoGrades)

from instructor.feedback import LimitOutputBytes, SanitizeFeedback

c.GenerateFeedback.preprocessors = [GetGrades, SanitizeFeedback, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
c.Autograde.autograde_preprocessors = [Execute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
                                       LimitOutputBytes, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
"""
"""Lines for the course's nbgrader_config.py (which already imports GetGrades, ClearHiddenTests
and CSSHTMLHeaderPreprocessor); the autograde list is nbgrader 0.9's default plus LimitOutputBytes."""
