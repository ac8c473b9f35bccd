"""The example project's settings, plus a plain DRF viewset to compare the API against."""

import os

os.environ.setdefault("SECRET_KEY", "bench-only")

from project.settings import *  # noqa: F403
from project.settings import REST_FRAMEWORK

ROOT_URLCONF = "bench.urls"
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}
LOGGING = {"version": 1, "disable_existing_loggers": False}
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
