"""Shared helpers of the reliability suite: seeds, worker processes, lease expiry."""

import datetime as dt
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from crmsync.models import SyncConnection

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def rng(request):
    """A seeded random generator. Rerun a failure with CRMSYNC_SEED=<the printed seed>."""
    seed = int(os.environ.get("CRMSYNC_SEED") or random.SystemRandom().randrange(2**32))
    request.node.user_properties.append(("seed", seed))
    print(f"\nreplay with CRMSYNC_SEED={seed}")
    return random.Random(seed)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    seeds = [value for name, value in item.user_properties if name == "seed"]
    if report.failed and seeds:
        report.sections.append(("seed", f"replay with CRMSYNC_SEED={seeds[0]} pytest '{item.nodeid}'"))


def database_url() -> str:
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
        **extra,
    }
    env.pop("CRMSYNC_FAULT", None) if "CRMSYNC_FAULT" not in extra else None
    return env


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


@pytest.fixture
def crm(settings, notion_emulator):
    """This process configured like the workers, so its saves enter their outbox."""
    from crmsync.testing.pytest_plugin import notion_options

    options = notion_options(notion_emulator, activities_database_id=None)
    settings.CRMSYNC = {"CONNECTIONS": {"notion": {"ADAPTER": "notion", "OPTIONS": options}}}
    return notion_emulator
