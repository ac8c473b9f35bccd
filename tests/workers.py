"""Real worker processes for tests: ``manage.py crmsync_sync`` configured by environment."""

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection
from django.utils import timezone

from crmsync.models import SyncConnection

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The URL of the test database this process uses (for subprocesses to share it)."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    host = settings["HOST"] or "127.0.0.1"
    password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
    return f"postgres://{settings['USER']}{password}@{host}:{settings['PORT'] or 5432}/{settings['NAME']}"


def worker_env(emulator, **extra) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "SECRET_KEY": "test",
        "DATABASE_URL": database_url(),
        "CRMSYNC_NOTION_TOKEN": emulator.token,
        "CRMSYNC_NOTION_API_URL": emulator.url,
        "CRMSYNC_NOTION_DATABASE_ID": emulator.ids["deal"],
        "CRMSYNC_NOTION_CONTACTS_DATABASE_ID": emulator.ids["contact"],
        "CRMSYNC_NOTION_RPS": "1000",
        "CRMSYNC_LOG_LEVEL": "WARNING",
    }
    env.pop("CRMSYNC_FAULT", None)
    env.pop("CRMSYNC_PAUSE", None)
    return {**env, **extra}


def start_worker(emulator, **extra) -> subprocess.Popen:
    """``manage.py crmsync_sync --json`` started in its own process (not waited for)."""
    return subprocess.Popen(
        [sys.executable, "manage.py", "crmsync_sync", "--json"],
        cwd=ROOT,
        env=worker_env(emulator, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until ``path`` exists (a worker reached a CRMSYNC_PAUSE point)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the worker ended before reaching its pause point: {out}{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"the worker did not reach its pause point in {timeout} s")
        time.sleep(0.02)


def run_worker(emulator, fault: str | None = None) -> subprocess.CompletedProcess:
    """``manage.py crmsync_sync --json`` in its own process (``fault``: CRMSYNC_FAULT)."""
    extra = {"CRMSYNC_FAULT": fault} if fault else {}
    return subprocess.run(
        [sys.executable, "manage.py", "crmsync_sync", "--json"],
        cwd=ROOT,
        env=worker_env(emulator, **extra),
        capture_output=True,
        text=True,
        timeout=180,
    )


def expire_leases():
    """What LEASE_SECONDS does for a killed worker's lease, without waiting for it."""
    SyncConnection.objects.update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
