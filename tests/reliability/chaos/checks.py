"""The invariants, checked at every settle point of a seed:

- no duplicates: one local deal and one Notion page per deal the test made, the page
  carrying the deal's UUID as CRM Sync ID, no extra records on either side;
- no lost agent-owned write, human-owned fields equal the last person's edit, shared
  fields equal the later write (``Rec.expect``), on both sides;
- trash ↔ archive: the local ``archived`` flag, the page's ``in_trash`` and the oracle agree;
- two idle runs write nothing (no request that writes, no local row touched).
"""

from collections import defaultdict

from crmsync.models import Opportunity, SyncLink

from . import runs
from .fields import AGENT, local_values, owner, page_values


class Checker:
    def __init__(self, world):
        self.world = world

    def check(self) -> None:
        world = self.world
        deals = {deal.pk: deal for deal in Opportunity.objects.all()}
        pages = {p["id"]: p for p in world.notion.pages_in(world.source, include_trashed=True)}
        by_sync_id = defaultdict(list)
        for page in pages.values():
            by_sync_id[page["values"].get("CRM Sync ID") or ""].append(page["id"])
        links = dict(SyncLink.objects.filter(entity="deal").values_list("remote_id", "local_id"))
        seen_deals, seen_pages = set(), set()
        for rec in world.recs:
            deal, page = self.resolve(rec, deals, pages, by_sync_id, links)
            seen_deals |= {deal.pk} if deal else set()
            seen_pages |= {page["id"]} if page else set()
            if deal and page:
                self.compare(rec, deal, page)
        for pk in set(deals) - seen_deals:
            world.violation(f"duplicate: an extra local deal {deals[pk].name!r} ({pk})")
        for page_id in set(pages) - seen_pages:
            values = pages[page_id]["values"]
            world.violation(
                f"duplicate: an extra Notion page {values.get('Name')!r} ({page_id}, "
                f"CRM Sync ID {values.get('CRM Sync ID')!r}, in trash: {pages[page_id]['in_trash']})"
            )

    def resolve(self, rec, deals, pages, by_sync_id, links):
        """The rec's local deal and page, or (None, None) after reporting why not."""
        world = self.world
        if rec.origin == "notion":
            page = pages.get(rec.page_id)
            if rec.local_id is None and links.get(rec.page_id):
                world.note(f"{rec.key} is local deal {links[rec.page_id]}")
            rec.local_id = links.get(rec.page_id)
            if rec.local_id is None:
                if "import" not in rec.diverged:
                    world.violation(f"{rec.key}: the page made in Notion ({rec.page_id}) was never imported")
                rec.diverged.add("import")
                return None, page
        deal = deals.get(rec.local_id)
        if deal is None:
            world.violation(f"{rec.key}: its local deal {rec.local_id} is gone")
            return None, None
        if rec.origin == "local":
            found = by_sync_id.get(str(rec.local_id), [])
            if len(found) != 1:
                world.violation(
                    f"duplicate: {rec.key} has {len(found)} Notion pages with its CRM Sync ID: {found}"
                )
            if not found:
                return deal, None
            if rec.page_id not in found:
                rec.page_id = min(found)
                world.note(f"{rec.key} is page {rec.page_id}")
        page = pages[rec.page_id]
        sync_id = page["values"].get("CRM Sync ID")
        if sync_id != str(rec.local_id):
            world.violation(f"{rec.key}: page {rec.page_id} has CRM Sync ID {sync_id!r}, not {rec.local_id}")
        linked = [remote for remote, local in links.items() if local == rec.local_id]
        if linked != [rec.page_id]:
            world.violation(f"{rec.key}: linked to pages {linked}, expected [{rec.page_id}]")
        return deal, page

    def compare(self, rec, deal, page) -> None:
        world = self.world
        local, remote = local_values(deal), page_values(page["values"])
        for field, (value, why) in rec.expect().items():
            edited_then_trashed = (
                rec.trashed_by_person and any(w.side == "notion" and w.field == field for w in rec.writes)
            ) or (field in rec.reverts_waiting and rec.want_archived())
            if owner(field) == AGENT and edited_then_trashed:
                # A person edited it, then trashed the page: Notion refuses edits to trashed
                # pages, and DESIGN does not say the revert waits for a restore. Local only.
                remote[field] = value
            if field in rec.diverged:
                continue
            if local[field] != value or remote[field] != value:
                rec.adopted[field] = local[field]
                if local[field] != remote[field]:
                    rec.diverged.add(field)
                world.violation(
                    f"{rec.key}.{field} ({owner(field)}-owned): expected {value!r} ({why}); "
                    f"local {local[field]!r}, Notion {remote[field]!r}"
                )
        archived = rec.want_archived()
        if "archived" not in rec.diverged and (deal.archived != archived or page["in_trash"] != archived):
            rec.adopted["archived"] = deal.archived
            if deal.archived != page["in_trash"]:
                rec.diverged.add("archived")
            world.violation(
                f"{rec.key} trash ↔ archive: expected archived={archived}; "
                f"local archived={deal.archived}, Notion in_trash={page['in_trash']}"
            )

    def idle_runs(self) -> None:
        world = self.world
        rows = _local_rows()
        writes = world.notion.writes()
        for index in (1, 2):
            world.jump(1, 1)
            outcome = world.run(kind="clean")
            wrote = world.notion.writes() - writes
            if wrote or runs.writes_in(outcome) or _local_rows() != rows:
                changed = sorted(row[0] for pk, row in _local_rows().items() if rows.get(pk) != row)
                world.violation(
                    f"idle run {index} wrote: {wrote} Notion writes, summary {outcome.describe()}, "
                    f"local deals touched: {changed}"
                )
                return


def _local_rows() -> dict:
    return {
        pk: (name, updated, archived, tuple(sorted(times.items())))
        for pk, name, updated, archived, times in Opportunity.objects.values_list(
            "pk", "name", "updated_at", "archived", "field_modified_at"
        )
    }
