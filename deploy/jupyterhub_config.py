"""JupyterHub for a class of the RNN course: one JupyterLab per Unix user, nbgrader's exchange between
them (README "Running a class", deploy/README.md).

    sudo -E .venv/bin/jupyterhub -f deploy/jupyterhub_config.py

- JupyterHub 5 (pip, requirements-class.txt) behind configurable-http-proxy (npm, installed into
  .venv/bin by `make setup-class`); the hub runs as root, each user's server as that Unix user
  (LocalProcessSpawner): nbgrader names a student by the Unix user of the server that fetches and
  submits, so hub users are real accounts (PAM checks their passwords).
- Every server runs ``jupyterhub-singleuser`` of the course's environment (``RNN_HUB_VENV``, default
  this repository's .venv), so students have the course's packages, kernel and nbgrader extensions.
  Students' processes read that environment and the code it imports (an editable install: this
  repository), so keep the repository's private parts unreadable to them (deploy/README.md), or give
  students the student bundle's environment (``RNN_HUB_STUDENT_VENV``; it needs jupyterhub installed).
- nbgrader for everyone: Assignment List (fetch, submit, fetch feedback) and Validate. Formgrader,
  the course list and Create Assignment only for the instructors: students' servers get the Jupyter
  config folder deploy/student-jupyter/ first on JUPYTER_CONFIG_PATH, which turns those off.
- The exchange: ``NBGRADER_EXCHANGE`` (default /srv/nbgrader/exchange, a folder with mode 1777) is
  passed to every server; the course's nbgrader_config.py reads it.

Settings (environment variables of the hub process; one config for production and the tests):

    RNN_HUB_INSTRUCTORS   Unix users who are hub admins and see formgrader (comma-separated)
    RNN_HUB_STUDENTS      Unix users who may log in (comma-separated) ...
    RNN_HUB_STUDENT_GROUP ... and/or the members of this Unix group
    RNN_HUB_URL           public URL the proxy listens on (default http://:8000)
    RNN_HUB_API_URL       where the hub itself listens (default http://127.0.0.1:8081)
    RNN_HUB_PROXY_API_URL the proxy's REST API (default http://127.0.0.1:8001)
    RNN_HUB_STATE         folder of the hub's database, cookie secret and proxy pid (default /srv/jupyterhub)
    RNN_HUB_VENV          the course's environment (default: .venv of this repository)
    RNN_HUB_STUDENT_VENV  students' environment (default: RNN_HUB_VENV)
    RNN_HUB_SERVICE_TOKEN optional: a token for scripts (service "course-admin": manage users, servers, tokens)
    RNN_HUB_AUTH          "pam" (default) or "dummy" (tests and demos only: RNN_HUB_DUMMY_PASSWORD for everyone)
    NBGRADER_EXCHANGE     the exchange folder (default /srv/nbgrader/exchange)
"""
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = Path(os.environ.get("RNN_HUB_VENV") or HERE.parent / ".venv")
STUDENT_VENV = Path(os.environ.get("RNN_HUB_STUDENT_VENV") or VENV)
STATE = Path(os.environ.get("RNN_HUB_STATE") or "/srv/jupyterhub")
EXCHANGE = os.environ.get("NBGRADER_EXCHANGE") or "/srv/nbgrader/exchange"
STUDENT_CONFIG = HERE / "student-jupyter"  # Jupyter config folder: formgrader & co. off


def names(variable):
    """The set of comma-separated names in environment variable ``variable``."""
    return {name.strip() for name in os.environ.get(variable, "").split(",") if name.strip()}


INSTRUCTORS = names("RNN_HUB_INSTRUCTORS")

c = get_config()  # noqa: F821 (provided by JupyterHub)

# ---------------------------------------------------------------- network and state
c.JupyterHub.bind_url = os.environ.get("RNN_HUB_URL") or "http://:8000"
c.JupyterHub.hub_bind_url = os.environ.get("RNN_HUB_API_URL") or "http://127.0.0.1:8081"
c.ConfigurableHTTPProxy.api_url = os.environ.get("RNN_HUB_PROXY_API_URL") or "http://127.0.0.1:8001"
c.ConfigurableHTTPProxy.command = [str(VENV / "bin" / "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = str(STATE / "jupyterhub-proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")

# ---------------------------------------------------------------- who may log in
if os.environ.get("RNN_HUB_AUTH", "pam") == "dummy":  # any user name, one shared password: never in production
    c.JupyterHub.authenticator_class = "dummy"
    c.DummyAuthenticator.password = os.environ["RNN_HUB_DUMMY_PASSWORD"]
else:
    c.JupyterHub.authenticator_class = "pam"
c.Authenticator.admin_users = INSTRUCTORS
c.Authenticator.allowed_users = INSTRUCTORS | names("RNN_HUB_STUDENTS")
if os.environ.get("RNN_HUB_STUDENT_GROUP"):
    c.LocalAuthenticator.allowed_groups = {os.environ["RNN_HUB_STUDENT_GROUP"]}

if os.environ.get("RNN_HUB_SERVICE_TOKEN"):
    c.JupyterHub.services = [{"name": "course-admin", "api_token": os.environ["RNN_HUB_SERVICE_TOKEN"]}]
    c.JupyterHub.load_roles = [{"name": "course-admin", "services": ["course-admin"],
                                "scopes": ["admin:users", "admin:servers", "tokens", "access:servers"]}]

# ---------------------------------------------------------------- each user's server
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 90


def per_user(spawner):
    """Instructors: the course's environment and every nbgrader extension. Students: their
    environment, and formgrader, the course list and Create Assignment turned off."""
    instructor = spawner.user.name in INSTRUCTORS
    venv = VENV if instructor else STUDENT_VENV
    spawner.cmd = [str(venv / "bin" / "jupyterhub-singleuser")]
    environment = {**spawner.environment, "NBGRADER_EXCHANGE": EXCHANGE,
                   "PATH": os.pathsep.join([str(venv / "bin"), "/usr/local/bin", "/usr/bin", "/bin"])}
    if not instructor:
        environment["JUPYTER_CONFIG_PATH"] = str(STUDENT_CONFIG)
    spawner.environment = environment


c.Spawner.pre_spawn_hook = per_user
