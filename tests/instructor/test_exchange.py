"""`nbgrader collect` with the course's config (instructor.exchange.SafeCollect) on hand-made folders in
the exchange's inbound, which any student can write: links to the solutions, a named pipe, a folder
named after someone else. Only genuine submissions reach submitted/, and one bad folder never stops
the collection. Runs as any user: the "students" are the current account and accounts it does not own."""
import os
import pwd
import subprocess

import grading

from instructor.course import ROOT_ENV, nbgrader_command

FIXTURE = grading.REPO_ROOT / "tests" / "fixtures" / "tiny_course"
AID, NB, COURSE_ID = "fx_tiny", "fx_tiny.ipynb", "rnn-course"


def entry(inbound, student, when, tag):
    """A folder in the inbound as `nbgrader submit` names it; returns its path (created, empty)."""
    folder = inbound / f"{student}+{AID}+2026-01-0{when} 00:00:00.000000 UTC+{tag}"
    folder.mkdir()
    return folder


def test_collect_takes_only_genuine_submissions(tmp_path):
    course = grading.course_copy(FIXTURE, tmp_path / "course")
    inbound = tmp_path / "exchange" / COURSE_ID / "inbound"
    inbound.mkdir(parents=True)
    me = pwd.getpwuid(os.getuid()).pw_name
    other = next(p.pw_name for p in pwd.getpwall() if p.pw_uid != os.getuid())  # an account that is not me
    solution = course / "solutions" / AID / NB
    genuine = entry(inbound, me, 1, "real")
    (genuine / NB).write_text('{"mine": 1}')
    (genuine / "timestamp.txt").write_text("2026-01-01 00:00:00.000000 UTC")
    (entry(inbound, me, 2, "link") / NB).symlink_to(solution)              # later, so nbgrader would pick it
    (entry(inbound, me, 3, "dir") / "course").symlink_to(course)           # the whole course, looping
    os.mkfifo(entry(inbound, me, 4, "pipe") / NB)                          # stops nbgrader's copy of the class
    (entry(inbound, me, 5, "dangling") / NB).symlink_to(tmp_path / "nothing")
    (entry(inbound, other, 6, "someone") / NB).write_text('{"not theirs": 1}')  # owned by me, named after other
    (entry(inbound, "no-such-account", 7, "ghost") / NB).write_text("{}")
    (inbound / f"{me}+{AID}+no time+x").mkdir()                            # stops nbgrader's collect too
    env = {**os.environ, "NBGRADER_EXCHANGE": str(tmp_path / "exchange"), ROOT_ENV: str(course)}
    done = subprocess.run(nbgrader_command("collect", AID), cwd=course, env=env, capture_output=True, text=True,
                          timeout=120)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    submitted = course / "submitted"
    assert sorted(p.name for p in submitted.iterdir()) == [me], log
    mine = submitted / me / AID
    assert sorted(p.name for p in mine.iterdir()) == [NB, "timestamp.txt"], log
    assert (mine / NB).read_text() == '{"mine": 1}' and not (mine / NB).is_symlink()
    for reason in (f"{NB} is a symbolic link", "course is a symbolic link", f"{NB} is not a regular file",
                   f"is owned by uid {os.getuid()}, not by {other}", "not by no-such-account",
                   "its name holds no valid time"):
        assert reason in log, f"{reason!r} not in\n{log}"

