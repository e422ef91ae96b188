"""``nbgrader collect`` that takes only what a student really submitted (nbgrader_config.py selects it).

nbgrader's exchange inbound folder is world-writable (mode 733 with the sticky bit), so any student can
put a hand-made ``<student>+<assignment>+<timestamp>+<random>`` folder there, and nbgrader 0.9's own
collect, run with the instructor's rights, copies it with ``shutil.copytree``, which follows links:

- a symbolic link to ``solutions/<assignment>/<notebook>`` (or to any file the instructor can read,
  or to the course folder itself) brings its content into ``submitted/``: full marks, and the
  feedback shows the solutions;
- a folder named after another student, with a later timestamp, replaces that student's submission
  (nbgrader only logs a warning when the folder's owner is not the named student);
- a dangling link, a named pipe, a link to ``/dev/zero``, a folder over the size limit or a folder
  name without a valid time (``alice+a1_rnn_numpy+x+y``) stops (or never ends) the collection of the
  whole class.

``SafeCollect`` keeps nbgrader's collect and adds: an inbound folder counts only when it is a real
folder and every entry in it a regular file or folder (no link, pipe or device), all owned by the
student it names (owners are checked when ``CollectApp.check_owner`` is on, the default). Other folders
are skipped with an error in the log, and the student's latest genuine submission is collected instead.
One submission that cannot be copied is logged and skipped; the others are still collected.
"""
import os
import shutil
import stat
from datetime import datetime

from nbgrader.exchange.default.collect import ExchangeCollect, pwd


def forged(path, student, check_owner=True):
    """Why the inbound folder ``path`` is not a genuine submission of ``student`` ('' when it is).

    Looks at the entries themselves (``lstat``): a link, a special file or an entry owned by someone
    else (a hard link to another user's file, too) is refused. Without ``pwd`` (Windows) only the
    file kinds are checked, and so without ``check_owner``.
    """
    uid, entries = _uid(student) if check_owner else None, [path]
    for top, folders, files in os.walk(path, onerror=_raise):
        entries += [os.path.join(top, name) for name in folders + files]
    for entry in entries:
        info = os.lstat(entry)
        where = os.path.relpath(entry, path)
        if stat.S_ISLNK(info.st_mode):
            return f"{where} is a symbolic link"
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
            return f"{where} is not a regular file"
        if uid is not None and info.st_uid != uid:
            return f"{where} is owned by uid {info.st_uid}, not by {student}"
    return ""


def _uid(student):
    """The Unix uid of ``student``: None without ``pwd`` (Windows), -1 when there is no such account."""
    if pwd is None:
        return None
    try:
        return pwd.getpwnam(student).pw_uid
    except KeyError:
        return -1  # no such account: nothing in the inbound can be theirs


def _raise(error):
    raise error


class SafeCollect(ExchangeCollect):
    """nbgrader's collect, refusing inbound folders a student could have forged (see the module)."""

    def _path_to_record(self, path):
        try:
            record = super()._path_to_record(path)
            record["forged"] = self._refusal(path, record["username"])
        except Exception as error:  # noqa: BLE001 -- nbgrader's own collect stops the whole class here
            name = os.path.basename(path)
            record = {"username": name.rsplit("+", 3)[0], "filename": name, "timestamp": datetime.min,
                      "forged": f"its name holds no valid time ({type(error).__name__}: {error})"}
        if record["forged"]:
            self.log.error("Not collecting %s: %s (a hand-made folder in the exchange?)", record["filename"],
                           record["forged"])
        return record

    def _refusal(self, path, student):
        """Why the inbound folder ``path`` is not collected for ``student`` ('' when it is)."""
        if os.path.islink(path) or not os.path.isdir(path):
            return "it is not a folder"
        try:
            return forged(path, student, self.check_owner)
        except OSError as error:
            return f"it cannot be read ({error.strerror})"

    def _sort_by_timestamp(self, records):
        """Genuine folders first (latest first), so a forged later one never hides a real one."""
        return sorted(records, key=lambda item: (not item.get("forged"), item["timestamp"]), reverse=True)

    def init_src(self):
        super().init_src()
        self.src_records = [record for record in self.src_records if not record.get("forged")]

    def do_copy(self, src, dest, log=None):
        """Copy one submission; a failure is logged and skips it, the next ones are still collected."""
        try:
            super().do_copy(src, dest, log)
        except Exception as error:  # noqa: BLE001 -- one student's folder must not stop the class
            self.log.error("Not collecting %s: %s", src, error)
            if os.path.isdir(dest):
                shutil.rmtree(dest, ignore_errors=True)
