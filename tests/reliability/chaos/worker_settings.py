"""The example project's settings, as ``crmsync_sync`` workers run them, with the short
retry backoff the in-process runs use (a 5xx burst costs milliseconds, not seconds)."""

from project.settings import *  # noqa: F403
from project.settings import CRMSYNC

for _connection in CRMSYNC["CONNECTIONS"].values():
    _connection["OPTIONS"].update(retry_backoff=0.01, timeout=5)
