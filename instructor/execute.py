"""nbgrader's Execute preprocessor, made to survive a kernel that dies.

nbgrader discards a whole submission when its kernel dies ("Kernel died": a segfault, an
out-of-memory kill, ``os._exit``) and the grading of the batch stops. ``ResilientExecute``
instead records an error in the cell that killed the kernel (that cell's test, if any, scores
0), starts a fresh kernel, replays the code cells before it (their outputs are kept from the
first run) and goes on with the next cell, so every other cell keeps its points. Used through
``c.Autograde.autograde_preprocessors`` (see ``AUTOGRADE_PREPROCESSORS``).
"""
import copy

from jupyter_core.utils import run_sync
from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute

KERNEL_DIED = "KernelDied"
MAX_RESTARTS = 3


class ResilientExecute(Execute):
    """Execute every cell; after a kernel death, restart, replay the earlier cells, continue."""

    def preprocess(self, nb, resources=None, km=None):
        self._restarts = 0
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._restarts += 1
            cell.outputs.append(NotebookNode(
                output_type="error", ename=KERNEL_DIED,
                evalue="the Python process died while running this cell (out of memory, a crash, or os._exit); "
                       "the grader restarted it and re-ran the cells above",
                traceback=[f"{KERNEL_DIED}: the Python process died while running this cell"]))
            if self._restarts > MAX_RESTARTS:
                raise
            self.log.warning("kernel died in cell %d; restarting and replaying cells 0..%d", index, index - 1)
            self._restart_and_replay(index)
            return cell, self.resources

    def _restart_and_replay(self, index):
        """A fresh kernel that has run the code cells before ``index`` (outputs discarded)."""
        run_sync(self.km.restart_kernel)(now=True)
        self.kc.stop_channels()
        self.kc = self.km.client()
        self.kc.start_channels()
        run_sync(self.kc.wait_for_ready)(timeout=self.startup_timeout)
        for earlier, cell in enumerate(self.nb.cells[:index]):
            if cell.cell_type == "code" and not any(o.get("ename") == KERNEL_DIED for o in cell.get("outputs", [])):
                try:
                    self.execute_cell(copy.deepcopy(cell), earlier, store_history=False)
                except DeadKernelError:
                    raise
                except Exception:  # noqa: BLE001 -- the first run already recorded this cell's error
                    pass
