"""AdapterContractTests: what every CRM adapter must do, as tests.

    class MyAdapterContract(AdapterContractTests):
        def make_adapter(self):
            return MyAdapter(alias="test", ...)

The base class holds no test of its own, so it runs silently (no "skipped" line per
test in your suite, under pytest or Django's runner); each subclass gets every test of
the contract and runs them against its adapter. A subclass may override a test.
"""

import datetime as dt
import inspect
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.test import TestCase

from ..adapters.base import ActivityData, ContactData, OpportunityData, OpportunityFilter
from ..exceptions import MappingError, RemoteNotFound


class AdapterContractTests(TestCase):
    """Subclass with ``make_adapter()``: the subclass runs the contract (``ContractTests``)."""

    adapter: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, test in vars(ContractTests).items():
            if name.startswith("test_") and getattr(cls, name, None) is None:
                setattr(cls, name, test)

    def make_adapter(self) -> Any:
        """Return the adapter under test (a fresh, empty remote per test is best)."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_adapter()")

    def setUp(self) -> None:
        super().setUp()
        self.adapter = self.make_adapter()

    def tearDown(self):
        if hasattr(self, "adapter"):
            self.adapter.close()
        super().tearDown()

    def deal(self, **overrides: Any) -> OpportunityData:
        values = {
            "name": "Acme rollout",
            "stage": "proposal",
            "value": Decimal("1200.50"),
            "close_date": dt.date(2026, 12, 31),
            "probability": 40,
            "confidence": Decimal("0.7"),
            "qualification": "Budget confirmed",
            "notes": "Call back on Monday",
            "tags": ("enterprise", "emea"),
            "contact_email": "ada@example.com",
        }
        return OpportunityData(**{**values, **overrides})


# For type checkers the tests are TestCase methods (they are, once given to a subclass).
_TestsBase: type = TestCase if TYPE_CHECKING else object


class ContractTests(_TestsBase):
    """The contract's tests, given to every subclass of AdapterContractTests (this class
    is never collected on its own: it is not a TestCase)."""

    adapter: Any
    deal: Any

    def test_create_then_get_round_trips_every_value(self):
        sync_id = str(uuid.uuid4())
        created = self.adapter.create_opportunity(self.deal(), sync_id)
        fetched = self.adapter.get_opportunity(created.remote_id)
        self.assertEqual(fetched.sync_id, sync_id)
        self.assertEqual(fetched.values, self.deal().to_values())
        self.assertFalse(fetched.archived)
        self.assertIsNotNone(fetched.modified_at)

    def test_update_changes_only_the_given_fields(self):
        created = self.adapter.create_opportunity(self.deal(), str(uuid.uuid4()))
        updated = self.adapter.update_opportunity(
            created.remote_id, {"stage": "negotiation", "value": Decimal("99")}
        )
        self.assertEqual(updated.values["stage"], "negotiation")
        self.assertEqual(updated.values["value"], "99")
        self.assertEqual(updated.values["name"], "Acme rollout")
        self.assertEqual(self.adapter.get_opportunity(created.remote_id).values, updated.values)

    def test_clearing_a_value(self):
        created = self.adapter.create_opportunity(self.deal(), str(uuid.uuid4()))
        updated = self.adapter.update_opportunity(
            created.remote_id, {"close_date": None, "qualification": ""}
        )
        self.assertIsNone(updated.values["close_date"])
        self.assertIsNone(updated.values["qualification"])

    def test_find_by_sync_id(self):
        sync_id = str(uuid.uuid4())
        created = self.adapter.create_opportunity(self.deal(), sync_id)
        self.adapter.create_opportunity(self.deal(name="Other"), str(uuid.uuid4()))
        found = self.adapter.find_by_sync_id("deal", sync_id)
        self.assertEqual([r.remote_id for r in found], [created.remote_id])
        self.assertEqual(self.adapter.find_by_sync_id("deal", str(uuid.uuid4())), [])

    def test_write_sync_id_changes_no_value(self):
        created = self.adapter.create_opportunity(self.deal(), str(uuid.uuid4()))
        self.assertIsNone(self.adapter.write_sync_id("deal", created.remote_id, str(uuid.uuid4())))
        self.assertEqual(self.adapter.get_opportunity(created.remote_id).values, created.values)

    def test_get_missing_record_raises_remote_not_found(self):
        with self.assertRaises(RemoteNotFound):
            self.adapter.get_opportunity(str(uuid.uuid4()))

    def test_changes_since_a_cursor_include_new_and_updated_records(self):
        before = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(minutes=1)
        first = self.adapter.create_opportunity(self.deal(), str(uuid.uuid4()))
        second = self.adapter.create_opportunity(self.deal(name="Second"), str(uuid.uuid4()))
        self.adapter.update_opportunity(first.remote_id, {"stage": "closed_won"})
        changes = {c.remote_id: c for c in self.adapter.get_changes_since(before)}
        self.assertIn(second.remote_id, changes)
        self.assertEqual(changes[first.remote_id].values["stage"], "closed_won")

    def test_trash_archives_and_restore_brings_back(self):
        created = self.adapter.create_opportunity(self.deal(), str(uuid.uuid4()))
        self.assertTrue(self.adapter.trash("deal", created.remote_id).archived)
        self.assertTrue(self.adapter.get_opportunity(created.remote_id).archived)
        trashed = [c for c in self.adapter.get_changes_since(None) if c.remote_id == created.remote_id]
        self.assertTrue(trashed and all(c.archived for c in trashed))
        self.assertFalse(self.adapter.restore("deal", created.remote_id).archived)

    def test_list_opportunities_filters(self):
        won = self.adapter.create_opportunity(self.deal(stage="closed_won"), str(uuid.uuid4()))
        self.adapter.create_opportunity(self.deal(stage="proposal"), str(uuid.uuid4()))
        listed = self.adapter.list_opportunities(OpportunityFilter(stage="closed_won"))
        self.assertEqual([r.remote_id for r in listed], [won.remote_id])
        self.adapter.trash("deal", won.remote_id)
        self.assertEqual(self.adapter.list_opportunities(OpportunityFilter(stage="closed_won")), [])
        archived = self.adapter.list_opportunities(
            OpportunityFilter(stage="closed_won", include_archived=True)
        )
        self.assertEqual([r.remote_id for r in archived], [won.remote_id])

    def test_contacts_create_and_update(self):
        if "contact" not in self.adapter.entities:
            self.skipTest("this adapter is not configured for contacts")
        sync_id = str(uuid.uuid4())
        created = self.adapter.create_contact(
            ContactData(name="Ada", email="Ada@Example.com", company="Analytical"), sync_id
        )
        self.assertEqual(created.values["email"], "ada@example.com")
        updated = self.adapter.update_contact(created.remote_id, {"title": "CTO"})
        self.assertEqual(updated.values["title"], "CTO")
        self.assertEqual(updated.values["company"], "Analytical")
        self.assertEqual(
            [r.remote_id for r in self.adapter.find_by_sync_id("contact", sync_id)], [created.remote_id]
        )

    def test_activity_is_created_related_to_its_deal(self):
        if "activity" not in self.adapter.entities:
            self.skipTest("this adapter is not configured for activities")
        deal = self.adapter.create_opportunity(self.deal(), str(uuid.uuid4()))
        occurred = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)
        activity = self.adapter.create_activity(
            ActivityData(
                subject="Kick-off", kind="meeting", occurred_at=occurred, opportunity_remote_id=deal.remote_id
            ),
            str(uuid.uuid4()),
        )
        self.assertEqual(activity.values["opportunity"], deal.remote_id)
        self.assertEqual(activity.values["subject"], "Kick-off")
        self.assertEqual(activity.values["kind"], "meeting")

    def test_bad_value_is_refused_with_a_mapping_error_naming_the_field(self):
        with self.assertRaises(MappingError) as caught:
            self.adapter.create_opportunity(self.deal(tags=("a,b",)), str(uuid.uuid4()))
        self.assertEqual(caught.exception.field, "tags")

    # --- What the sync engine relies on (DESIGN §10) -------------------------------

    def test_hooks_take_every_argument_the_engine_passes(self):
        """The engine's calls, as it makes them: a keyword the base class does not
        declare (or an adapter drops) fails here, not in a user's sync."""
        calls = {
            "iter_changes": (("deal", None), {"by": "created", "include_trashed": False}),
            "create": (("deal", {}, "sync-id"), {}),
            "update": (("deal", "remote-id", {}), {"sync_id": "sync-id"}),
            "write_sync_id": (("deal", "remote-id", "sync-id"), {}),
            "get": (("deal", "remote-id"), {}),
            "find_by_sync_id": (("deal", "sync-id"), {}),
            "trash": (("deal", "remote-id"), {}),
            "restore": (("deal", "remote-id"), {}),
            "blocked_fields": (("deal",), {}),
            "match_field": (("deal",), {}),
        }
        for hook, (args, kwargs) in calls.items():
            with self.subTest(hook=hook):
                inspect.signature(getattr(self.adapter, hook)).bind(*args, **kwargs)
        self.assertIsInstance(self.adapter.TIME_GRANULARITY, dt.timedelta)
        self.assertIsInstance(self.adapter.LISTING_OVERLAP, dt.timedelta)
        self.assertIn(type(self.adapter.clock_offset), (type(None), dt.timedelta))
        self.assertIsInstance(self.adapter.blocked_fields("deal"), dict)

    def test_listing_by_creation_leaves_trashed_records_out_on_request(self):
        live = self.adapter.create_opportunity(self.deal(name="Live"), str(uuid.uuid4()))
        gone = self.adapter.create_opportunity(self.deal(name="Gone"), str(uuid.uuid4()))
        self.adapter.trash("deal", gone.remote_id)
        listed = [
            r.remote_id
            for page in self.adapter.iter_changes("deal", None, by="created", include_trashed=False)
            for r in page.records
        ]
        self.assertIn(live.remote_id, listed)
        self.assertNotIn(gone.remote_id, listed)
        everything = {
            r.remote_id: r.archived
            for page in self.adapter.iter_changes("deal", None, by="modified", include_trashed=True)
            for r in page.records
        }
        self.assertEqual(everything.get(gone.remote_id), True)

    def test_a_checkpoint_never_passes_an_unread_record(self):
        for index in range(3):
            self.adapter.create_opportunity(self.deal(name=f"Deal {index}"), str(uuid.uuid4()))
        seen: set = set()
        pages = list(self.adapter.iter_changes("deal", None, by="modified", include_trashed=True))
        everything = {r.remote_id: r for page in pages for r in page.records if not r.archived}
        for page in pages:
            seen |= {r.remote_id for r in page.records}
            if page.checkpoint is None:
                continue
            unread = [
                r for r in everything.values() if r.remote_id not in seen and r.modified_at < page.checkpoint
            ]
            self.assertEqual(unread, [], f"checkpoint {page.checkpoint} passes unread records")
