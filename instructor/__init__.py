"""The instructor's tools, used by ``make`` and by ``tests/`` alike (students never need them).

- ``instructor.course``    the course root, assignment ids, running nbgrader, notebook cells by grade_id
- ``instructor.integrity`` the integrity scan of submissions (what could fool a test cell)
- ``python -m instructor`` the commands behind ``make release``, ``make autograde``, ``make grades``
"""
