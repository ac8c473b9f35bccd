"""pytest fixtures: ``pytest_plugins = ["crmsync.testing.pytest_plugin"]``.

- ``notion_emulator``: a running ``NotionEmulator`` with the CRM databases of DESIGN §4
  (``notion_emulator.ids`` holds their ids), stopped after the test.
- ``notion_settings``: ``settings.CRMSYNC`` pointing a connection named "notion" at it.
"""

import pytest

from .notion_emulator import NotionEmulator


@pytest.fixture
def notion_emulator():
    with NotionEmulator() as emulator:
        emulator.ids = emulator.add_crm_databases()
        yield emulator


def notion_options(emulator, **overrides) -> dict:
    return {
        "token": emulator.token,
        "base_url": emulator.url,
        "database_id": emulator.ids["deal"],
        "contacts_database_id": emulator.ids.get("contact"),
        "activities_database_id": emulator.ids.get("activity"),
        "requests_per_second": None,
        "timeout": 5,
        "retry_backoff": 0.01,
        **overrides,
    }


@pytest.fixture
def notion_settings(settings, notion_emulator):
    settings.CRMSYNC = {
        "CONNECTIONS": {"notion": {"ADAPTER": "notion", "OPTIONS": notion_options(notion_emulator)}}
    }
    yield settings.CRMSYNC
