"""Per-cell time limits for autograding, carried by the notebook.

nbclient (and so nbgrader's ``Execute``) asks ``timeout_func(cell)`` for the seconds it waits for a
cell's reply; on time-out nbgrader interrupts the kernel, records a ``CellTimeoutError`` in that
cell and goes on with the next one. ``nbgrader_config.py`` uses it with::

    from instructor.timeouts import cell_timeout
    c.Execute.timeout_func = cell_timeout

The limit of a code cell, in seconds:

- ``cell.metadata["timeout"]`` when it is an integer > 0, at most ``MAX_TIMEOUT`` (a larger value is
  cut to ``MAX_TIMEOUT``);
- else ``HEAVY_TIMEOUT`` (600 s) for cells tagged ``heavy`` or ``heavy:<group>`` (training runs and
  the tests that grade them);
- else ``DEFAULT_TIMEOUT`` (60 s): every other code cell, autograded test cells included (a unit
  test, an import, a small forward pass take seconds; 60 s leaves room for a loaded grading machine).

Metadata and tags are editable by students, so they are never trusted beyond ``MAX_TIMEOUT`` (the
course's former global limit): a student can slow down the grading of their own notebook, no more
than before. An invalid ``timeout`` (not an integer > 0) is ignored with a warning in the log.
"""
import logging

DEFAULT_TIMEOUT = 60
HEAVY_TIMEOUT = 600
MAX_TIMEOUT = 600
HEAVY_TAG = "heavy"

log = logging.getLogger(__name__)


def is_heavy(cell):
    """True for a cell tagged ``heavy`` or ``heavy:<group>``."""
    tags = cell.get("metadata", {}).get("tags", []) or []
    return any(tag == HEAVY_TAG or str(tag).startswith(HEAVY_TAG + ":") for tag in tags)


def _metadata_timeout(cell):
    """The cell's own ``metadata["timeout"]`` in seconds, or None when absent or invalid."""
    value = cell.get("metadata", {}).get("timeout")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        log.warning("ignoring cell metadata timeout=%r (not an integer > 0 seconds)", value)
        return None
    return min(value, MAX_TIMEOUT)


def cell_timeout(cell):
    """Seconds nbclient waits for ``cell`` (a notebook cell dict): metadata, else by kind (see module doc)."""
    own = _metadata_timeout(cell)
    if own is not None:
        return own
    return HEAVY_TIMEOUT if is_heavy(cell) else DEFAULT_TIMEOUT
