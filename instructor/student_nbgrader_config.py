"""nbgrader configuration of the student bundle (``make student-release`` ships this file as the bundle's
``nbgrader_config.py``; ``make setup`` makes every nbgrader run of the bundle's .venv load it).

Only what a student's nbgrader needs, the same as the course's own nbgrader_config.py (the bundle builder,
``instructor.bundle``, refuses to write a bundle when the two differ): the course id, the per-cell time
limits of ``nbgrader validate`` and JupyterLab's Validate button (the autograder's: instructor/timeouts.py),
and the exchange that JupyterLab's Assignment List reads (a class server's $NBGRADER_EXCHANGE, else the
bundle's own .exchange/, created here: nbgrader's Assignment List needs the folder to exist).
"""
import os

from instructor.timeouts import cell_timeout

c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.course_id = "rnn-course"

c.Execute.timeout_func = cell_timeout
c.Execute.timeout = 600
c.Execute.kernel_name = "python3"
c.Execute.interrupt_on_timeout = True

c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE") or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                       ".exchange")
if not os.environ.get("NBGRADER_EXCHANGE"):
    try:
        os.makedirs(c.Exchange.root, exist_ok=True)
    except OSError:  # a read-only folder: nbgrader reports the missing exchange when it is used
        pass
