"""Test helpers for crmsync and for projects that use it.

- ``NotionEmulator``: Notion's API over real HTTP (see ``notion_emulator``).
- ``FakeAdapter``: an in-memory CRM adapter.
- ``AdapterContractTests``: the contract every adapter must pass; subclass it with a
  ``make_adapter()`` for your own adapter.
- ``crmsync.testing.pytest_plugin``: fixtures ``notion_emulator`` and ``notion_settings``.
"""

from .contract import AdapterContractTests
from .fake import FakeAdapter
from .notion_emulator import NotionEmulator

__all__ = ["AdapterContractTests", "FakeAdapter", "NotionEmulator"]
