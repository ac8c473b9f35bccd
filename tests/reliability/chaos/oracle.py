"""The oracle: what each field of each deal must hold once clean runs have settled.

One ``Rec`` per deal the test made (locally or as a person in Notion). Between two
settle points (a *phase*) it collects the writes of both sides with their times; at
the settle point ``expect()`` applies DESIGN §2–§3:

- agent-owned: the last local write (a person's edit in Notion is reverted);
- human-owned: the last person's edit (a local edit is pulled back); a deal created
  locally writes them once, with the create;
- shared: the later write. Notion's time is the page's ``last_edited_time`` (minute),
  so the generator keeps that unambiguous: writes are minutes apart, and once a local
  write follows a person's write of the same field, nobody edits that page again
  before the settle point (a later edit of another property would make the page's
  minute later than the local edit, and DESIGN's rule would then pick the remote one).

Every write sets a value the field never had in the phase, so a change is never
invisible to a three-way merge (a write back to the base value is no change).
"""

import dataclasses
import datetime as dt
import uuid

from .fields import AGENT, FIELDS, HUMAN, owner

LOCAL, NOTION = "local", "notion"


@dataclasses.dataclass
class Write:
    at: dt.datetime
    side: str
    field: str
    value: object
    creation: bool = False

    def describe(self) -> str:
        what = "created" if self.creation else "wrote"
        return f"{self.side} {what} {self.value!r} at {self.at:%H:%M}"


@dataclasses.dataclass
class Rec:
    key: str  # "D3": the deal's name in the event log
    origin: str  # LOCAL or NOTION: where it was created
    created_phase: int
    local_id: uuid.UUID | None = None
    page_id: str | None = None
    expected: dict = dataclasses.field(default_factory=dict)  # agreed at the last settle point
    archived: bool = False
    # --- the current phase ---
    writes: list[Write] = dataclasses.field(default_factory=list)
    wants_archived: bool | None = None  # trashed, archived or restored in this phase
    human_locked: bool = False  # see the module docstring
    unmapped_stage: bool = False  # the person's last Stage is an option the mapping lacks
    trashed_by_person: bool = False
    # Agent fields a person edited before trashing the page, while it stays trashed:
    # Notion refuses edits to trashed pages, so the revert waits for a restore.
    reverts_waiting: set = dataclasses.field(default_factory=set)
    used: dict = dataclasses.field(default_factory=dict)  # field -> values seen in this phase
    # What a broken invariant left (field -> local value, "archived" -> flag): later phases
    # go on from there instead of reporting the same break again.
    adopted: dict = dataclasses.field(default_factory=dict)
    # Fields (and "archived") left different on the two sides: nothing can be said of them
    # any more, so later settle points do not check them.
    diverged: set = dataclasses.field(default_factory=set)

    def settled(self, phase: int) -> bool:
        return self.created_phase < phase

    @property
    def done(self) -> bool:
        """Trashed, archived or restored in this phase: no more events on it."""
        return self.wants_archived is not None

    @property
    def local_writes(self) -> bool:
        return any(w.side == LOCAL and not w.creation for w in self.writes)

    def write(self, at, side, field, value, *, creation=False) -> None:
        if (
            side == LOCAL
            and owner(field) not in (AGENT, HUMAN)
            and any(w.side == NOTION and w.field == field for w in self.writes)
        ):
            self.human_locked = True
        self.writes.append(Write(at, side, field, value, creation))
        self.used.setdefault(field, set()).add(value)

    def expect(self) -> dict:
        """{field: (value, why)} once the phase's writes have synced."""
        result = {}
        for field in FIELDS:
            writes = [w for w in self.writes if w.field == field]
            if owner(field) == AGENT:
                winners = [w for w in writes if w.side == LOCAL or w.creation]
            elif owner(field) == HUMAN:
                winners = [w for w in writes if w.side == NOTION or w.creation]
            else:
                winners = writes
            if not winners:
                result[field] = (self.expected.get(field), "unchanged since the last settle point")
                continue
            last = max(winners, key=lambda w: w.at)
            why = f"{owner(field)}-owned: {last.describe()}"
            others = [w for w in writes if w is not last and w.side != last.side]
            if others:
                why += f"; over {max(others, key=lambda w: w.at).describe()}"
            result[field] = (last.value, why)
        return result

    def want_archived(self) -> bool:
        return self.archived if self.wants_archived is None else self.wants_archived

    def settle(self) -> None:
        self.expected = {field: value for field, (value, _) in self.expect().items()}
        self.archived = self.want_archived()
        self.archived = self.adopted.pop("archived", self.archived)
        self.expected.update(self.adopted)
        self.adopted = {}
        if self.archived and self.trashed_by_person:
            self.reverts_waiting |= {w.field for w in self.writes if w.side == "notion"}
        elif not self.archived:
            self.reverts_waiting = set()
        self.writes, self.wants_archived, self.human_locked = [], None, False
        self.unmapped_stage = self.trashed_by_person = False
        self.used = {field: {value} for field, value in self.expected.items()}
