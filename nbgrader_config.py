"""nbgrader configuration of the course. The course root is the folder of this file, so the
same file works in a clone, on a grading server and in the test suite's temporary roots."""
import os

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.course_id = "rnn-course"
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "solutions"    # instructor notebooks: solutions + hidden tests
c.CourseDirectory.release_directory = "assignments"  # student notebooks, generated, committed

# Autograding: training cells need far more than nbgrader's 30 s default per cell.
c.Execute.timeout = 600
c.Execute.kernel_name = "python3"
c.Execute.interrupt_on_timeout = True

# A student who deletes a graded cell gets it back (scored as unanswered) instead of a crash.
c.OverwriteCells.add_missing_cells = True

# Feedback shows the visible tests and the student's results, never the hidden tests.
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
