"""Shared helpers of the reliability suite: seeds, worker processes, lease expiry."""

import os
import random

import pytest


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


@pytest.fixture
def crm(settings, notion_emulator):
    """This process configured like the workers, so its saves enter their outbox."""
    from crmsync.testing.pytest_plugin import notion_options

    options = notion_options(notion_emulator, activities_database_id=None)
    settings.CRMSYNC = {"CONNECTIONS": {"notion": {"ADAPTER": "notion", "OPTIONS": options}}}
    return notion_emulator
