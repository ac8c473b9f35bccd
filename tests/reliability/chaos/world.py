"""One seed of chaos: the events, the runs between them, and the settle points.

A seed plays a baseline (a few deals made locally and one page made in Notion, synced
clean), then ``PHASES`` phases. A phase is ``STEPS`` events, each after a clock jump of
2–5 minutes: local saves, a person's Notion edits, trashes and archives, restores, new
deals on both sides, and runs (clean, SIGKILLed at a random fault point, under injected
5xx / 529 / 429 answers and ghost writes — applied, then answered 5xx). Then clean runs
until one is quiet, the invariants (``checks``), and two idle runs that must write
nothing.
"""

import datetime as dt
import uuid

from crmsync.models import Opportunity, SyncConnection, SyncLink

from . import injection, motifs, runs
from .checks import Checker
from .fields import FIELDS, HUMAN, SHARED, fresh_value, notion_properties, owner, show, to_local
from .oracle import LOCAL, NOTION, Rec

PHASES, STEPS = 3, 10
MOTIF_RATE = 0.25  # a step plays a motif (chaos/motifs.py) instead of one random event
BASELINE_LOCAL, BASELINE_NOTION = 4, 1
MAX_SETTLE_RUNS = 6
T0 = dt.datetime(2026, 3, 2, 9, 0, 20, tzinfo=dt.UTC)  # seconds stay in 20..40: one minute per event
UNMAPPED_STAGE = "On Hold"


class World:
    def __init__(self, seed: int, rng, notion):
        self.seed, self.rng, self.notion = seed, rng, notion
        self.source = notion.ids["deal_source"]
        self.now = T0
        self.notion.clock.set(self.now)
        self.recs: list[Rec] = []
        self.phase = 0
        self.log: list[str] = []
        self.violations: list[str] = []
        self.runs = 0
        self.lease_left_by_kill = False
        self.counter = 0
        self.checker = Checker(self)

    # --- Clock and log -----------------------------------------------------------------

    def jump(self, low: int = 2, high: int = 5) -> None:
        self.now += dt.timedelta(minutes=self.rng.randint(low, high))
        self.notion.clock.set(self.now)

    def note(self, text: str) -> None:
        self.log.append(f"{self.now:%H:%M} [phase {self.phase}] {text}")

    def violation(self, text: str) -> None:
        self.violations.append(f"[phase {self.phase}] {text}")
        self.note(f"!! {text}")

    # --- The seed ----------------------------------------------------------------------

    def baseline(self) -> None:
        for _ in range(BASELINE_LOCAL):
            self.new_local()
        for _ in range(BASELINE_NOTION):
            self.new_notion()
        self.settle()

    def play_script(self, script) -> None:
        """A pinned scenario: the baseline, then one phase of the given steps, each
        ``(method name, rec key or None, kwargs)``, a clock jump before each."""
        self.baseline()
        self.phase = 1
        for action, key, kwargs in script:
            self.jump()
            target = [self.rec(key)] if key else []
            getattr(self, action)(*target, **kwargs)
        self.settle()

    def rec(self, key: str) -> Rec:
        return next(r for r in self.recs if r.key == key)

    def play(self) -> None:
        self.baseline()
        for self.phase in range(1, PHASES + 1):
            for _ in range(STEPS):
                self.jump()
                self.step()
            for rec in self.recs:
                if rec.unmapped_stage:  # the person fixes the stage (see notion_edit)
                    self.jump()
                    self.notion_edit(rec, ["stage"])
            self.settle()

    def step(self) -> None:
        if self.rng.random() < MOTIF_RATE and motifs.play(self):
            return
        live = [r for r in self.recs if not r.done and not r.archived]
        trashable = [r for r in live if r.settled(self.phase) and not r.unmapped_stage]
        restorable = [
            r for r in self.recs if r.archived and not r.done and self.deal_of(r) and self.page_of(r)
        ]
        # A person edits new pages more often than old ones: a page whose create was
        # killed or ghosted is where recovery must not lose their edit.
        editable = [r for r in live if not r.human_locked and self.page_of(r)]
        choices = [
            (3, self.local_edit, [r for r in live if self.deal_of(r)], None),
            (3, self.notion_edit, editable, [1 if r.settled(self.phase) else 4 for r in editable]),
            (3.5, self.run, [None], None),
            (0.7, self.new_local, [None], None),
            (0.6, self.new_notion, [None], None),
            (0.8, self.notion_trash, [r for r in trashable if not r.local_writes and self.page_of(r)], None),
            (0.5, self.local_archive, [r for r in trashable if self.deal_of(r)], None),
            (0.7, self.restore, restorable, None),
        ]
        choices = [choice for choice in choices if choice[2]]
        _, action, targets, weights = self.rng.choices(choices, weights=[c[0] for c in choices])[0]
        target = self.rng.choices(targets, weights=weights)[0]
        if target is None:
            action()
        else:
            action(target)

    # --- Finding each side of a deal (as a person would: by what they see) --------------

    def deal_of(self, rec: Rec):
        if rec.local_id is None and rec.page_id:
            link = SyncLink.objects.filter(entity="deal", remote_id=rec.page_id).first()
            rec.local_id = link.local_id if link else None
        return Opportunity.objects.filter(pk=rec.local_id).first() if rec.local_id else None

    def page_of(self, rec: Rec) -> str | None:
        if rec.page_id is None and rec.local_id:
            pages = [
                p
                for p in self.notion.pages_in(self.source, include_trashed=True)
                if p["values"].get("CRM Sync ID") == str(rec.local_id)
            ]
            return min(pages, key=lambda p: p["id"])["id"] if pages else None
        return rec.page_id

    # --- Events --------------------------------------------------------------------------

    def fresh(self, rec: Rec, field: str):
        self.counter += 1
        return fresh_value(self.rng, field, rec.used.get(field, set()), self.counter)

    def pick_fields(self, allowed) -> list[str]:
        return self.rng.sample(allowed, self.rng.randint(1, min(3, len(allowed))))

    def local_edit(self, rec: Rec, fields: list[str] | None = None) -> None:
        # While the Stage is unmapped the person edits the page once more (to fix it): no
        # local write that must stay later than every edit of the page (see oracle).
        notion_fields = {w.field for w in rec.writes if w.side == NOTION} | {"stage"}
        allowed = [
            f
            for f in FIELDS
            if (owner(f) != HUMAN or rec.settled(self.phase))
            and not (rec.unmapped_stage and owner(f) == SHARED and f in notion_fields)
        ]
        deal = self.deal_of(rec)
        fields = [f for f in fields if f in allowed] if fields else self.pick_fields(allowed)
        changes = {field: self.fresh(rec, field) for field in fields}
        for field, value in changes.items():
            setattr(deal, field, to_local(field, value))
            rec.write(self.now, LOCAL, field, value)
        deal.save()
        self.note(f"local save {rec.key}: {show(changes)}")

    def notion_edit(self, rec: Rec, fields: list[str] | None = None, *, unmapped: bool | None = None) -> None:
        """A person's edit. Now and then the Stage gets an option the mapping does not know
        ("On Hold"): the local stage stays, an open conflict is logged (DESIGN §3), and
        only the person's next Stage edit (before the settle point) decides the field."""
        imported_here = rec.origin == NOTION and not rec.settled(self.phase)
        allowed = [f for f in FIELDS if owner(f) in (SHARED, HUMAN) or not imported_here]
        changes = {field: self.fresh(rec, field) for field in fields or self.pick_fields(allowed)}
        properties = notion_properties(changes)
        if "stage" in changes:
            local_stage = any(w.side == LOCAL and w.field == "stage" for w in rec.writes)
            if unmapped is None:
                unmapped = not fields and self.rng.random() < 0.3
            rec.unmapped_stage = unmapped and rec.settled(self.phase) and not local_stage
            if rec.unmapped_stage:
                properties["Stage"] = UNMAPPED_STAGE
                del changes["stage"]
        page = self.page_of(rec)
        self.notion.human_edit(page, properties)
        for field, value in changes.items():
            rec.write(self.now, NOTION, field, value)
        unmapped = (
            f" and Stage {UNMAPPED_STAGE!r} (unmapped)"
            if "stage" not in changes and "Stage" in properties
            else ""
        )
        self.note(f"person edits {rec.key} in Notion (page {page[:8]}): {show(changes)}{unmapped}")

    def notion_trash(self, rec: Rec) -> None:
        self.notion.human_edit(self.page_of(rec), in_trash=True)
        rec.wants_archived = rec.trashed_by_person = True
        self.note(f"person trashes {rec.key} in Notion")

    def local_archive(self, rec: Rec) -> None:
        deal = self.deal_of(rec)
        deal.archived = True
        deal.save()
        rec.wants_archived = True
        self.note(f"local archive {rec.key}")

    def restore(self, rec: Rec) -> None:
        side = self.rng.choice((LOCAL, NOTION))
        if side == LOCAL:
            deal = self.deal_of(rec)
            deal.archived = False
            deal.save()
        else:
            self.notion.human_edit(self.page_of(rec), in_trash=False)
        rec.wants_archived = False
        self.note(f"{'local restore' if side == LOCAL else 'person restores in Notion'} {rec.key}")

    def new_rec(self, origin: str) -> Rec:
        rec = Rec(key=f"D{len(self.recs) + 1}", origin=origin, created_phase=self.phase)
        values = {field: self.fresh(rec, field) for field in FIELDS}
        for field, value in values.items():
            rec.write(self.now, origin, field, value, creation=True)
        self.recs.append(rec)
        return rec, values

    def new_local(self, _=None) -> None:
        rec, values = self.new_rec(LOCAL)
        rec.local_id = uuid.UUID(int=self.rng.getrandbits(128), version=4)
        Opportunity.objects.create(id=rec.local_id, **{f: to_local(f, v) for f, v in values.items()})
        self.note(f"local create {rec.key} ({rec.local_id}): {show(values)}")

    def new_notion(self, _=None) -> None:
        rec, values = self.new_rec(NOTION)
        rec.page_id = self.notion.human_create(self.source, notion_properties(values))
        self.note(f"person creates {rec.key} in Notion (page {rec.page_id[:8]}): {show(values)}")

    # --- Runs ----------------------------------------------------------------------------

    def run(self, _=None, *, kind: str | None = None, kill: str | None = None, faults=()) -> runs.Outcome:
        """A run: ``kind`` "clean", "kill", "faults" or "kill+faults" (random when nothing is
        given); ``kill`` a CRMSYNC_FAULT point; ``faults`` (shape, fail_next kwargs) pairs."""
        if kind is None and kill is None and not faults:
            kind = self.rng.choices(("clean", "kill", "faults", "kill+faults"), (1, 2, 1.5, 1))[0]
        plans = [injection.fail(self.notion, shape, spec) for shape, spec in faults]
        if kind and "faults" in kind:
            plans += injection.inject_faults(self.rng, self.notion)
        if kind and "kill" in kind:
            kill = injection.random_kill(self.rng)
        outcome = self.execute(kill)
        self.notion.faults.clear()
        plan = ", ".join([*plans, *([f"kill at {kill}"] if kill else [])]) or "clean"
        missed = " (kill point not reached)" if kill and outcome.status != "killed" else ""
        self.note(f"run {self.runs} ({plan}): {outcome.describe()}{missed}")
        return outcome

    def execute(self, fault: str | None) -> runs.Outcome:
        self.runs += 1
        if fault:
            outcome = runs.in_worker(self.notion, now=self.now, ids=f"{self.seed}-{self.runs}", fault=fault)
        else:
            outcome = runs.in_process()
        if outcome.status == "skipped" and self.lease_left_by_kill:
            self.note(f"run {self.runs}: skipped")
            self.violation(
                "a SIGKILLed worker's lease was not taken over at once on the same host (DESIGN §8): "
                "the next run was skipped; the test expires the lease and runs again"
            )
            SyncConnection.objects.update(lease_expires_at=T0 - dt.timedelta(days=1))
            self.lease_left_by_kill = False
            return self.execute(fault)
        self.lease_left_by_kill = outcome.status == "killed"
        return outcome

    # --- Settle points -------------------------------------------------------------------

    def settle(self) -> None:
        self.notion.faults.clear()
        quiet = failed = False
        for _ in range(MAX_SETTLE_RUNS):
            self.jump(1, 1)
            before = self.notion.writes()
            outcome = self.run(kind="clean")
            if outcome.status not in ("success", "partial"):
                if not failed:
                    self.violation(f"a clean run after the chaos ended {outcome.describe()}")
                failed = True
            elif self.notion.writes() == before and not runs.writes_in(outcome):
                quiet = True
                break
        if not quiet:
            self.violation(f"still writing after {MAX_SETTLE_RUNS} clean runs")
        self.checker.check()
        self.checker.idle_runs()
        for rec in self.recs:
            rec.settle()
