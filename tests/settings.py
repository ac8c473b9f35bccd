"""Test settings: the example project's, with tasks run inline and fast hashing.

The database comes from DATABASE_URL like the project's (default: SQLite). SQLite
tests use a file so that subprocesses (killed workers) can share it.
"""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key")

from project.settings import *  # noqa: F403
from project.settings import BASE_DIR, DATABASES, Q_CLUSTER

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
Q_CLUSTER = {**Q_CLUSTER, "sync": True}
CRMSYNC = {"CONNECTIONS": {}}
(BASE_DIR / "var" / "static").mkdir(parents=True, exist_ok=True)  # STATIC_ROOT (WhiteNoise)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-{os.getpid()}-{worker}.sqlite3")}
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_crmsync_{os.getpid()}"}
LOGGING = {"version": 1, "disable_existing_loggers": False}
