"""Deployment tests (issue: a real class): the student bundle, JupyterHub with the nbgrader exchange,
the gradebook on PostgreSQL, JupyterLab in a real browser. All are marked ``deploy`` (select them
with ``-m deploy``, leave them out with ``-m "not deploy"``); what they need from the machine is in
``deploy_tools`` (a missing tool skips locally and fails in CI)."""
import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/deploy/" in item.nodeid.replace("\\", "/") or item.nodeid.startswith("deploy/"):
            item.add_marker(pytest.mark.deploy)
