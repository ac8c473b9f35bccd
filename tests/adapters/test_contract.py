"""The adapter contract, run against every shipped adapter."""

from crmsync import testing
from crmsync.adapters.local import LocalAdapter
from crmsync.adapters.notion import NotionAdapter
from crmsync.testing import FakeAdapter, NotionEmulator
from crmsync.testing.pytest_plugin import notion_options


class LocalAdapterContract(testing.AdapterContractTests):
    def make_adapter(self):
        return LocalAdapter(alias="local")


class FakeAdapterContract(testing.AdapterContractTests):
    def make_adapter(self):
        return FakeAdapter(alias="fake")


class NotionAdapterContract(testing.AdapterContractTests):
    """Over real HTTP, with the real notion-client, against the emulator."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.emulator = NotionEmulator().start()
        cls.addClassCleanup(cls.emulator.stop)

    def make_adapter(self):
        self.emulator.ids = self.emulator.add_crm_databases()
        return NotionAdapter(alias="notion", **notion_options(self.emulator))
