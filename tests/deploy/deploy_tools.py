"""What the deployment tests need from the machine (tests/deploy/conftest.py marks them ``deploy``).

A missing tool skips the test on a developer's machine and fails it in CI (``CI`` set), so CI never
passes by skipping; ``make setup-class`` (run by ``make test``) installs them all."""
import os
import shutil
import socket
from pathlib import Path

import pytest

COURSE = Path(__file__).resolve().parents[2]


def require(condition, what):
    """Skip (developer machine) or fail (CI) when ``condition`` is false; ``what`` says what is missing
    and how to get it."""
    if condition:
        return
    message = f"{what} (make setup-class installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_command(name, path=None):
    """The absolute path of command ``name`` (looked up on PATH, which includes .venv/bin)."""
    found = shutil.which(name, path=path)
    require(found, f"the command {name!r} is missing")
    return found


def require_root(why):
    require(os.geteuid() == 0, f"needs root: {why}")


def free_port():
    """A TCP port of 127.0.0.1 that nothing listens on now (for a server the test starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
