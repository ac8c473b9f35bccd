"""The scale-out row of bench/run.py: CONNECTIONS connections × DEALS deals, each CRM
(its own emulator process) allowing RPS requests per second, drained by CLUSTERS real
qclusters of WORKERS workers on the default schedule.

Drain time of a connection: from its first run's start until every deal is linked there.
The theoretical minimum is the requests it must send (one create per deal, one query for
the first pull) at RPS. A run that ends ``partial`` hands over at once (crmsync.tasks), so
no connection waits for the next minute's tick; runs of one connection never overlap."""

import itertools
import json
import os
import subprocess
import sys
import time

FULL = {"connections": 4, "deals": 2000, "rps": 3, "clusters": 2, "workers": 4, "run_time_limit": 240}
SMOKE = {"connections": 2, "deals": 30, "rps": 20, "clusters": 2, "workers": 2, "run_time_limit": 1}
TARGET = 1.05


def measure_scaleout(smoke: bool, root, emulator_class, token: str, fresh_tables, make_deals) -> dict:
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from crmsync.models import SyncLink, SyncRun
    from crmsync.registry import connections
    from crmsync.tasks import ensure_schedules

    sizes = SMOKE if smoke else FULL
    fresh_tables()
    emulators = [emulator_class(rate=sizes["rps"]) for _ in range(sizes["connections"])]
    clusters = []
    try:
        configured = {
            f"crm{n}": {
                "ADAPTER": "notion",
                "OPTIONS": {
                    "token": token,
                    "base_url": emulator.url,
                    "database_id": emulator.database,
                    "requests_per_second": sizes["rps"],
                },
            }
            for n, emulator in enumerate(emulators)
        }
        settings.CRMSYNC = {
            "CONNECTIONS": configured,
            "SYNC_INTERVAL": 60,
            "RUN_TIME_LIMIT": sizes["run_time_limit"],
        }
        connections.reset()
        make_deals(sizes["deals"])
        from django_q.models import OrmQ, Schedule

        OrmQ.objects.all().delete()
        Schedule.objects.all().delete()
        ensure_schedules()
        # The first run of each connection is queued now (as "Sync now" does), so the
        # clusters start at once; later ticks come from the schedule.
        from django_q.tasks import async_task

        for alias in configured:
            async_task("crmsync.tasks.sync_connection", alias, task_name=f"crmsync sync {alias}")
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "BENCH_CRMSYNC_CONNECTIONS": json.dumps(configured),
            "BENCH_Q_WORKERS": str(sizes["workers"]),
            "CRMSYNC_LOG_LEVEL": "WARNING",
        }
        env.pop("CRMSYNC_NOTION_TOKEN", None)
        if sizes["run_time_limit"] != 240:
            env["BENCH_RUN_TIME_LIMIT"] = str(sizes["run_time_limit"])
        for n in range(sizes["clusters"]):
            log = open(root / "var" / f"bench-scaleout-{connection.vendor}-{n}.log", "w")  # noqa: SIM115
            clusters.append(
                subprocess.Popen(
                    [sys.executable, "manage.py", "qcluster"],
                    cwd=root,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        minimum = (sizes["deals"] + 1) / sizes["rps"]
        drained: dict[str, float] = {}
        deadline = time.monotonic() + max(300, minimum * 3)
        while len(drained) < len(configured) and time.monotonic() < deadline:
            time.sleep(1)
            for alias in configured:
                if alias in drained:
                    continue
                if SyncLink.objects.filter(connection=alias, entity="deal").count() >= sizes["deals"]:
                    first = (
                        SyncRun.objects.filter(connection=alias)
                        .exclude(status="skipped")
                        .order_by("started_at")
                        .first()
                    )
                    drained[alias] = (timezone.now() - first.started_at).total_seconds()
        if len(drained) < len(configured):
            raise RuntimeError(f"scale-out: not drained in time; drained {drained}")
    finally:
        for cluster in clusters:
            cluster.terminate()
        for cluster in clusters:
            try:
                cluster.wait(60)
            except subprocess.TimeoutExpired:
                cluster.kill()
        throttled = 0
        for emulator in emulators:
            try:
                throttled += sum(1 for r in emulator.requests() if r[3] == 429)
            finally:
                emulator.stop()
    overlaps = 0
    for alias in configured:
        runs = list(
            SyncRun.objects.filter(connection=alias)
            .exclude(status="skipped")
            .exclude(finished_at=None)
            .order_by("started_at")
            .values_list("started_at", "finished_at")
        )
        overlaps += sum(1 for (_, end), (start, _) in itertools.pairwise(runs) if start < end)
    worst = max(drained.values())
    statuses = {}
    for status in SyncRun.objects.values_list("status", flat=True):
        statuses[status] = statuses.get(status, 0) + 1
    return {
        "scaleout_ratio": worst / minimum,
        "scaleout_throttled_429": throttled,
        "scaleout_overlaps": overlaps,
        "scaleout_detail": (
            f"drain s {' / '.join(f'{drained[a]:.0f}' for a in sorted(drained))} vs minimum {minimum:.0f}; "
            f"429: {throttled}; overlapping runs: {overlaps}; runs {statuses}"
        ),
    }
