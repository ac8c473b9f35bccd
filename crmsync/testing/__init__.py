"""Test helpers for crmsync and for projects that use it.

- ``NotionEmulator``: Notion's API over real HTTP (see ``notion_emulator``).
- ``FakeAdapter``: an in-memory CRM adapter.
- ``AdapterContractTests``: the contract every adapter must pass; subclass it with a
  ``make_adapter()`` for your own adapter.
- ``crmsync.testing.pytest_plugin``: fixtures ``notion_emulator`` and ``notion_settings``.
"""

__all__ = ["AdapterContractTests", "FakeAdapter", "NotionEmulator"]


def __getattr__(name):
    # Imported lazily: ``python -m crmsync.testing.notion_emulator`` must not find the
    # module already imported by its package.
    if name == "AdapterContractTests":
        from .contract import AdapterContractTests

        return AdapterContractTests
    if name == "FakeAdapter":
        from .fake import FakeAdapter

        return FakeAdapter
    if name == "NotionEmulator":
        from .notion_emulator import NotionEmulator

        return NotionEmulator
    raise AttributeError(name)
