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

# The scale-out row (bench/scaleout.py) runs real qclusters over several connections.
if os.environ.get("BENCH_CRMSYNC_CONNECTIONS"):
    import json

    from project.settings import CRMSYNC, Q_CLUSTER

    CRMSYNC = {**CRMSYNC, "CONNECTIONS": json.loads(os.environ["BENCH_CRMSYNC_CONNECTIONS"])}
    if os.environ.get("BENCH_RUN_TIME_LIMIT"):
        CRMSYNC["RUN_TIME_LIMIT"] = float(os.environ["BENCH_RUN_TIME_LIMIT"])
    Q_CLUSTER = {**Q_CLUSTER, "workers": int(os.environ.get("BENCH_Q_WORKERS") or Q_CLUSTER["workers"])}
