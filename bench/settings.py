"""The example project's settings, plus a plain DRF viewset to compare the API against."""

import os

os.environ.setdefault("SECRET_KEY", "bench-only")

from project.settings import *  # noqa: F403
from project.settings import CACHES, REST_FRAMEWORK

ROOT_URLCONF = "bench.urls"
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}
LOGGING = {"version": 1, "disable_existing_loggers": False}
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
# Throttle counts in this process's memory for the API comparisons (crmsync's API and the
# plain viewset both): a shared cache would add its own round trips to both sides alike.
CACHES = {**CACHES, "throttle": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
