"""The three-way merge, table-driven: every owner × every change pattern. No database."""

import datetime as dt

import pytest

from crmsync.choices import ConflictStatus, Owner, Winner
from crmsync.sync.merge import merge_record

T0 = dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.UTC)
EARLY, LATE = T0, T0 + dt.timedelta(minutes=5)

# (case, base, local, remote) for the field "f"
PATTERNS = {
    "unchanged": ("a", "a", "a"),
    "only_local": ("a", "L", "a"),
    "only_remote": ("a", "a", "R"),
    "both_same": ("a", "X", "X"),
    "both_different": ("a", "L", "R"),
}
# owner, pattern -> (local write, remote write, new base, decision winner or None, conflict status)
EXPECTED = {
    (Owner.AGENT, "unchanged"): (None, None, "a", None, None),
    (Owner.AGENT, "only_local"): (None, "L", "L", None, None),
    (Owner.AGENT, "only_remote"): (None, "a", "a", Winner.LOCAL, ConflictStatus.AUTO_RESOLVED),
    (Owner.AGENT, "both_same"): (None, None, "X", None, None),
    (Owner.AGENT, "both_different"): (None, "L", "L", Winner.LOCAL, ConflictStatus.AUTO_RESOLVED),
    (Owner.HUMAN, "unchanged"): (None, None, "a", None, None),
    (Owner.HUMAN, "only_local"): ("a", None, "a", Winner.REMOTE, ConflictStatus.AUTO_RESOLVED),
    (Owner.HUMAN, "only_remote"): ("R", None, "R", None, None),
    (Owner.HUMAN, "both_same"): (None, None, "X", None, None),
    (Owner.HUMAN, "both_different"): ("R", None, "R", Winner.REMOTE, ConflictStatus.AUTO_RESOLVED),
    (Owner.SHARED, "unchanged"): (None, None, "a", None, None),
    (Owner.SHARED, "only_local"): (None, "L", "L", None, None),
    (Owner.SHARED, "only_remote"): ("R", None, "R", None, None),
    (Owner.SHARED, "both_same"): (None, None, "X", None, None),
    # local edited at EARLY, remote at LATE (see below): the later remote wins
    (Owner.SHARED, "both_different"): ("R", None, "R", Winner.REMOTE, ConflictStatus.AUTO_RESOLVED),
    (Owner.MANUAL, "unchanged"): (None, None, "a", None, None),
    (Owner.MANUAL, "only_local"): (None, "L", "L", None, None),
    (Owner.MANUAL, "only_remote"): ("R", None, "R", None, None),
    (Owner.MANUAL, "both_same"): (None, None, "X", None, None),
    (Owner.MANUAL, "both_different"): (None, None, "a", Winner.NONE, ConflictStatus.OPEN),
}


@pytest.mark.parametrize(("owner", "pattern"), list(EXPECTED), ids=lambda v: str(v))
def test_merge_table(owner, pattern):
    base, local, remote = PATTERNS[pattern]
    result = merge_record({"f": base}, {"f": local}, {"f": remote}, {"f": owner}, {"f": EARLY}, LATE)
    local_write, remote_write, new_base, winner, status = EXPECTED[owner, pattern]
    assert result.local_writes.get("f") == local_write
    assert result.remote_writes.get("f") == remote_write
    assert result.base["f"] == new_base
    if winner is None:
        assert result.decisions == []
    else:
        (decision,) = result.decisions
        assert (decision.winner, decision.status, decision.rule) == (winner, status, owner)
        assert (decision.base, decision.local, decision.remote) == (base, local, remote)


@pytest.mark.parametrize(
    ("local_time", "remote_time", "winner"),
    [
        (EARLY, LATE, Winner.REMOTE),  # remote minute strictly later
        (LATE, EARLY, Winner.LOCAL),
        (T0.replace(second=59), T0.replace(second=1), Winner.LOCAL),  # same minute: tie goes to local
        (T0.replace(second=1), T0.replace(second=59), Winner.LOCAL),
        (T0.replace(second=59), T0 + dt.timedelta(minutes=1), Winner.REMOTE),
        (None, EARLY, Winner.REMOTE),  # never edited locally
    ],
)
def test_last_write_wins_compares_whole_minutes_and_ties_go_local(local_time, remote_time, winner):
    result = merge_record(
        {"f": "a"}, {"f": "L"}, {"f": "R"}, {"f": Owner.SHARED}, {"f": local_time}, remote_time
    )
    assert result.decisions[0].winner == winner
    expected = "L" if winner == Winner.LOCAL else "R"
    assert result.base["f"] == expected


def test_every_worker_decides_the_same():
    args = ({"f": "a"}, {"f": "L"}, {"f": "R"}, {"f": Owner.SHARED}, {"f": T0}, T0)
    assert len({repr(merge_record(*args)) for _ in range(20)}) == 1


def test_fields_the_remote_does_not_carry_are_not_synced():
    result = merge_record({"f": "a", "g": "a"}, {"f": "a", "g": "L"}, {"f": "a"}, {}, {}, LATE)
    assert result.remote_writes == {} and result.local_writes == {}


def test_field_without_agreed_base_follows_the_owner_rule():
    # Linking by email on first sync: no base, the sides differ.
    result = merge_record({}, {"f": "L"}, {"f": "R"}, {"f": Owner.AGENT}, {"f": EARLY}, LATE)
    assert result.remote_writes == {"f": "L"}
    assert result.decisions[0].base is None
    agreed = merge_record({}, {"f": "X"}, {"f": "X"}, {"f": Owner.SHARED}, {}, LATE)
    assert agreed.base == {"f": "X"} and agreed.decisions == []
