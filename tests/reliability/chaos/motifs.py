"""Motifs: short shapes of events where DESIGN's promises are most at risk, played now
and then in place of one random step. They are ordinary events (the oracle needs no
special case); each one only makes a dangerous interleaving likely instead of rare.

- ``edit_trash_die``: a person edits one deal and trashes another, and the next run dies
  between the listing of trashed pages and the listing of live ones (SIGKILL or an
  outage): the watermark must not pass the edit it never read (DESIGN §3).
- ``lost_create_then_edit``: a new local deal's create is applied but its answer lost
  (ghost 5xx, or SIGKILL after the create), then a person edits the new page before the
  recovery: recovery links it with the values the create sent as base (DESIGN §8).
- ``unmapped_then_fixed``: a person picks a Stage the mapping lacks, a run logs the open
  conflict, the person picks a real one, and the agent later moves the stage locally:
  neither edit may be swallowed by the (now stale) conflict.
- ``ghost_update_then_edit``: a local edit's update is applied but answered 5xx on every
  retry, then a person edits the page.
"""

STATUSES_5XX = (500, 502, 503, 504, 529)


def play(world) -> bool:
    """Play one motif whose preconditions hold; False when none does."""
    motifs = [edit_trash_die, lost_create_then_edit, unmapped_then_fixed, ghost_update_then_edit]
    world.rng.shuffle(motifs)
    return any(motif(world) for motif in motifs)


def _settled_live(world):
    """Deals synced at the last settle point, on both sides, open to any event."""
    return [
        r
        for r in world.recs
        if r.settled(world.phase)
        and not (r.done or r.archived or r.human_locked)
        and world.deal_of(r)
        and world.page_of(r)
    ]


def _note(world, name: str) -> None:
    world.note(f"motif {name}:")


def edit_trash_die(world) -> bool:
    candidates = [r for r in _settled_live(world) if not r.unmapped_stage]
    trashable = [r for r in candidates if not r.local_writes]
    if len(candidates) < 2 or not trashable:
        return False
    trashed = world.rng.choice(trashable)
    edited = world.rng.choice([r for r in candidates if r is not trashed])
    _note(world, "edit_trash_die")
    world.notion_edit(edited, unmapped=False)
    world.jump()
    world.notion_trash(trashed)
    world.jump()
    if world.rng.random() < 0.5:
        world.run(kill="pull:page:4")  # after the deals' trash listing, before the live one
    else:
        # data_sources.query: contacts in trash, contacts, deals in trash, then deals fails.
        status = world.rng.choice(STATUSES_5XX)
        world.run(
            faults=[
                (
                    "outage mid-pull",
                    {"count": 6, "status": status, "endpoint": "data_sources.query", "skip": 3},
                )
            ]
        )
    return True


def lost_create_then_edit(world) -> bool:
    _note(world, "lost_create_then_edit")
    world.new_local()
    rec = world.recs[-1]
    world.jump()
    if world.rng.random() < 0.5:
        world.run(kill="push:after-create:1")
    else:
        status = world.rng.choice(STATUSES_5XX)
        world.run(
            faults=[
                ("ghost create", {"count": 1, "status": status, "endpoint": "pages.create", "after": True})
            ]
        )
    world.jump()
    if world.page_of(rec):
        fields = world.rng.sample(["name", "stage", "value", "notes", "tags", "probability"], 3)
        world.notion_edit(rec, fields, unmapped=False)
    return True


def unmapped_then_fixed(world) -> bool:
    candidates = [r for r in _settled_live(world) if not any(w.field == "stage" for w in r.writes)]
    if not candidates:
        return False
    rec = world.rng.choice(candidates)
    _note(world, "unmapped_then_fixed")
    world.notion_edit(rec, ["stage"], unmapped=True)
    world.jump()
    world.run(kind="clean")
    world.jump()
    world.notion_edit(rec, ["stage"], unmapped=False)
    world.jump()
    world.run(kind="clean")
    world.jump()
    world.local_edit(rec, ["stage"])
    return True


def ghost_update_then_edit(world) -> bool:
    candidates = [r for r in _settled_live(world) if not r.unmapped_stage]
    if not candidates:
        return False
    rec = world.rng.choice(candidates)
    _note(world, "ghost_update_then_edit")
    world.local_edit(
        rec, world.rng.sample(["name", "value", "close_date", "probability", "qualification"], 2)
    )
    world.jump()
    status = world.rng.choice(STATUSES_5XX)
    world.run(
        faults=[("ghost update", {"count": 6, "status": status, "endpoint": "pages.update", "after": True})]
    )
    world.jump()
    if not rec.human_locked:
        world.notion_edit(rec, world.rng.sample(["name", "stage", "value", "notes"], 2), unmapped=False)
    return True
