"""``manage.py crmsync_sync --json`` on the chaos test's clock.

The test runs one virtual clock: the emulator's (frozen, moved in jumps of minutes) is
also the local clock of the test process. A worker started here reads
``CHAOS_NOW`` (the virtual time at launch) and lets it run on in real time, so every
process stamps local times on the same clock as Notion. ``CHAOS_IDS`` seeds the ids it
generates (new local records), so a seed replays the same order of records.

    python -m tests.reliability.chaos.worker crmsync_sync --json
"""

import datetime as dt
import os
import random
import sys
import time
import uuid


def install_clock(start: dt.datetime) -> None:
    from django.utils import timezone

    began = time.monotonic()
    timezone.now = lambda: start + dt.timedelta(seconds=time.monotonic() - began)


def install_ids(seed: str) -> None:
    rng = random.Random(seed)
    uuid.uuid4 = lambda: uuid.UUID(int=rng.getrandbits(128), version=4)
    random.seed(seed)  # retry jitter: only timing, but the same timing


def main(argv: list[str]) -> None:
    # Before Django imports the models: their defaults capture these functions.
    install_clock(dt.datetime.fromisoformat(os.environ["CHAOS_NOW"]))
    install_ids(os.environ["CHAOS_IDS"])
    from django.core.management import execute_from_command_line

    execute_from_command_line(["manage.py", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
