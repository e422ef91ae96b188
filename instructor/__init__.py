"""The instructor's tools, used by ``make`` and by ``tests/`` alike (the student bundle carries only
``instructor.timeouts``, the per-cell time limits of ``nbgrader validate``).

- ``instructor.course``    the course root, assignment ids, running nbgrader, notebook cells by grade_id
- ``instructor.integrity`` the integrity scan of submissions (what could fool a test cell)
- ``instructor.bundle``    what students receive (``make student-release``)
- ``python -m instructor`` the commands behind ``make release``, ``make autograde``, ``make grades``,
  ``make student-release``
"""
