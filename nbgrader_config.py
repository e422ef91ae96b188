"""nbgrader configuration of the course. The course root is the folder of this file, so the
same file works in a clone, on a grading server and in the test suite's temporary roots."""
import os

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (
                                    AssignLatePenalties,
                                    CheckCellMetadata,
                                    ClearHiddenTests,
                                    GetGrades,
                                    IgnorePattern,
                                    LimitOutput,
                                    SaveAutoGrades,
)

from instructor.execute import ResilientExecute
from instructor.feedback import LimitOutputBytes, SanitizeFeedback
from instructor.timeouts import cell_timeout

c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.course_id = "rnn-course"
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "solutions"    # instructor notebooks: solutions + hidden tests
c.CourseDirectory.release_directory = "assignments"  # student notebooks, generated, committed
# The gradebook: <root>/gradebook.db (SQLite), or the database server that $NBGRADER_DB_URL names
# (e.g. postgresql+psycopg://grader@db:5432/rnn; README "Running a class"): instructor.course.gradebook_url.
if os.environ.get("NBGRADER_DB_URL"):
    c.CourseDirectory.db_url = os.environ["NBGRADER_DB_URL"]

# The exchange (release, fetch, submit, collect; JupyterLab's Assignment List and course list): the
# shared folder that $NBGRADER_EXCHANGE names on a class server (README "Running a class"), else the
# course's own .exchange/ (git-ignored), created here so that a local install works without set-up.
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE") or os.path.join(c.CourseDirectory.root, ".exchange")
if not os.environ.get("NBGRADER_EXCHANGE"):
    try:
        os.makedirs(c.Exchange.root, exist_ok=True)
    except OSError:  # a read-only course folder: nbgrader reports the missing exchange when it is used
        pass
# Collect only what students really submitted: the inbound folder is world-writable, and nbgrader's own
# collect follows links (a link to solutions/ would be collected and graded) and trusts folder names.
c.ExchangeFactory.collect = "instructor.exchange.SafeCollect"

# Per-cell time limits carried by the notebook (instructor/timeouts.py): seconds for unit-test
# cells, the stated budget (metadata "timeout") for training cells; a cell that runs over is
# interrupted and the next one runs. `nbgrader validate` uses the same limits wherever it runs.
c.Execute.timeout_func = cell_timeout
c.Execute.timeout = 600
c.Execute.kernel_name = "python3"
c.Execute.interrupt_on_timeout = True

# nbgrader 0.9's autograde steps, with a kernel that may die and come back (instructor/execute.py)
# and outputs capped in bytes, not only lines (instructor/feedback.py).
c.Autograde.autograde_preprocessors = [ResilientExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
                                       LimitOutputBytes, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]

# A student who deletes a graded cell gets it back (scored as unanswered) instead of a crash.
c.OverwriteCells.add_missing_cells = True

# Feedback shows the visible tests and the student's results, never the hidden tests (not even in
# tracebacks) nor the grading machine's paths (instructor/feedback.py).
c.GenerateFeedback.preprocessors = [GetGrades, SanitizeFeedback, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
