"""The scale section of bench/run.py: admin pages, API filters and the idle cycle at
1,000 / 10,000 / 100,000 deals, each against its plain baseline in the same run.

The data: every deal linked to the connection, 1 % of them pending in the outbox, 0.1 %
quarantined, a conflict per ten deals (every other one open) and a contact per ten deals.
It grows in place from one size to the next (bulk inserts). Each page is requested from
crmsync and from its plain twin (a plain ``ModelAdmin`` on a second AdminSite, a plain DRF
``ModelViewSet``: bench/urls.py) in interleaved pairs; a cell is the median of the per-pair
ratios, with both query counts. The idle cycle is timed in this process (the emulator runs
in its own), after a deal was touched since the last scan.
"""

import datetime as dt
import statistics
import time

FULL_SIZES = (1_000, 10_000, 100_000)
SMOKE_SIZES = (50, 200)
ROUNDS = {"full": 15, "smoke": 2}
IDLE_CYCLES = {"full": 7, "smoke": 2}
ADMIN_TARGET = 1.3
API_TARGET = 1.1
IDLE_TARGET = 1.2
STAGES = ("prospecting", "qualification", "discovery", "proposal", "negotiation", "closed_won", "closed_lost")


def grow_to(count: int, alias: str) -> None:
    """Deals (and their links, contacts and conflicts) up to ``count``; no outbox."""
    from django.utils import timezone

    from crmsync.models import Conflict, Contact, Opportunity, SyncLink

    start = Opportunity.objects.count()
    chunk = 5000
    today = dt.date(2027, 1, 1)
    for first in range(start, count, chunk):
        numbers = range(first, min(count, first + chunk))
        contacts = Contact.objects.bulk_create(
            [Contact(name=f"Person {i}", email=f"p{i}@example.com") for i in numbers if i % 10 == 0]
        )
        by_number = dict(zip([i for i in numbers if i % 10 == 0], contacts, strict=True))
        deals = Opportunity.objects.bulk_create(
            [
                Opportunity(
                    name=f"Deal {i:06d}",
                    stage=STAGES[i % len(STAGES)],
                    value=(i % 1000) * 10,
                    close_date=today + dt.timedelta(days=i % 365),
                    probability=i % 101,
                    contact=by_number.get(i),
                )
                for i in numbers
            ]
        )
        SyncLink.objects.bulk_create(
            [
                SyncLink(
                    connection=alias,
                    entity="deal",
                    local_id=deal.pk,
                    remote_id=f"page-{i}",
                    base={"name": deal.name, "stage": deal.stage},
                )
                for i, deal in zip(numbers, deals, strict=True)
            ]
        )
        now = timezone.now()
        Conflict.objects.bulk_create(
            [
                Conflict(
                    connection=alias,
                    entity="deal",
                    object_id=deal.pk,
                    record_name=deal.name,
                    field="stage",
                    local_value="negotiation",
                    remote_value="proposal",
                    rule="manual" if i % 20 == 0 else "shared",
                    winner="none" if i % 20 == 0 else "local",
                    reason="both changed",
                    status="open" if i % 20 == 0 else "auto_resolved",
                    local_time=now,
                    remote_time=now,
                )
                for i, deal in zip(numbers, deals, strict=True)
                if i % 10 == 0
            ]
        )


def analyze() -> None:
    """Planner statistics after the bulk inserts, as autovacuum (PostgreSQL) or a periodic
    ANALYZE (SQLite) would have them: both sides of every comparison read the same tables."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


def fill_outbox(alias: str) -> None:
    """1 % of deals pending, 0.1 % quarantined (the admin's and the API's view of them)."""
    from crmsync.models import Opportunity, OutboxEntry

    ids = list(Opportunity.objects.order_by("name").values_list("pk", flat=True))
    OutboxEntry.objects.filter(connection=alias).delete()
    OutboxEntry.objects.bulk_create(
        [
            OutboxEntry(connection=alias, entity="deal", local_id=pk, quarantined=n % 1000 == 5)
            for n, pk in enumerate(ids)
            if n % 100 == 5 or n % 1000 == 5
        ],
        batch_size=5000,
        ignore_conflicts=True,
    )


def clear_outbox(alias: str) -> None:
    from crmsync.models import OutboxEntry

    OutboxEntry.objects.filter(connection=alias).delete()


def prepare_idle(alias: str, remote_now) -> None:
    """The first sync is done: full pull finished, watermark now, unlinked scan done."""
    from crmsync.models import SyncConnection, SyncCursor

    SyncConnection.objects.get_or_create(alias=alias)
    SyncCursor.objects.update_or_create(
        connection=alias,
        entity="deal",
        defaults={"full_pull_done": True, "watermark": remote_now, "unlinked_scan_at": None},
    )


def idle_cycles(alias: str, cycles: int) -> tuple[float, float, int]:
    """Median engine CPU (this process), median wall time and the most queries of an idle
    cycle run just after a deal was touched (``updated_at`` moved, as by a local save that
    the outbox already holds)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from crmsync.models import Opportunity
    from crmsync.sync.engine import SyncEngine

    SyncEngine(alias).run()  # the first scan of every deal, once
    cpus, walls, queries = [], [], []
    for n in range(cycles):
        pk = Opportunity.objects.order_by("name").values_list("pk", flat=True)[n]
        Opportunity.objects.filter(pk=pk).update(updated_at=timezone.now())
        with CaptureQueriesContext(connection) as captured:
            started, cpu = time.perf_counter(), time.process_time()
            run = SyncEngine(alias).run()
            walls.append(time.perf_counter() - started)
            cpus.append(time.process_time() - cpu)
        assert run.status == "success" and run.updated_local == run.updated_remote == 0, run.error_summary
        queries.append(len(captured))
    return statistics.median(cpus), statistics.median(walls), max(queries)


def pages(count: int) -> dict[str, tuple[str, str]]:
    """{row: (crmsync url, plain url)}."""
    from crmsync.models import Conflict, Opportunity

    deal = Opportunity.objects.get(
        pk=Conflict.objects.filter(status="open").order_by("created_at").values("object_id")[:1]
    )
    change = f"crmsync/opportunity/{deal.pk}/change/"
    since = (
        Opportunity.objects.order_by("-updated_at").values_list("updated_at", flat=True)[max(1, count // 100)]
    ).isoformat()
    deep = max(1, count // 50 // 2)
    api, plain = "/api/v1/opportunities/?page_size=50", "/plain/opportunities/?page_size=50"
    from urllib.parse import quote

    return {
        "admin deals changelist": ("/admin/crmsync/opportunity/", "/plain-admin/crmsync/opportunity/"),
        "admin changelist ?sync=linked": (
            "/admin/crmsync/opportunity/?sync=linked",
            "/plain-admin/crmsync/opportunity/?archived__exact=0",
        ),
        "admin deal change page": (f"/admin/{change}", f"/plain-admin/{change}"),
        "admin connection health": (
            "/admin/crmsync/syncconnection/notion/change/",
            "/plain-admin/crmsync/syncconnection/notion/change/",
        ),
        "admin conflicts list": ("/admin/crmsync/conflict/", "/plain-admin/crmsync/conflict/"),
        "api list": (api, plain),
        "api ?stage=": (f"{api}&stage=negotiation", f"{plain}&stage=negotiation"),
        "api ?stage= twice": (
            f"{api}&stage=negotiation&stage=proposal",
            f"{plain}&stage__in=negotiation,proposal",
        ),
        "api ?value_min=": (f"{api}&value_min=5000", f"{plain}&value__gte=5000"),
        "api ?close_date_after=": (
            f"{api}&close_date_after=2027-06-01",
            f"{plain}&close_date__gte=2027-06-01",
        ),
        "api ?updated_since=": (
            f"{api}&updated_since={quote(since)}",
            f"{plain}&updated_at__gte={quote(since)}",
        ),
        "api deep page": (f"{api}&page={deep}", f"{plain}&page={deep}"),
    }


def compare(urls: dict, rounds: int) -> dict[str, tuple[float, int, int]]:
    """{row: (median per-pair time ratio, crmsync queries, plain queries)}."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    user = get_user_model().objects.filter(username="bench").first()
    user = user or get_user_model().objects.create_superuser("bench")
    client = Client()
    client.force_login(user)

    def timed(url):
        started = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, (url, response.status_code)
        return elapsed

    results = {}
    for row, (ours, plain) in urls.items():
        timed(ours), timed(plain)  # warm up
        ratios = []
        for n in range(rounds):
            if n % 2:
                b, a = timed(plain), timed(ours)
            else:
                a, b = timed(ours), timed(plain)
            ratios.append(a / b)
        counts = []
        for url in (ours, plain):
            with CaptureQueriesContext(connection) as captured:
                timed(url)
            counts.append(len(captured))
        results[row] = (statistics.median(ratios), *counts)
    return results


def measure_scale(smoke: bool, alias: str, remote_now) -> dict:
    """One entry per size: page ratios and query counts, and the idle cycle."""
    from django.conf import settings

    settings.CRMSYNC = {**settings.CRMSYNC, "API": {"THROTTLE_CACHE": "throttle"}}
    mode = "smoke" if smoke else "full"
    sizes = SMOKE_SIZES if smoke else FULL_SIZES
    per_size = {}
    for count in sizes:
        grow_to(count, alias)
        clear_outbox(alias)
        prepare_idle(alias, remote_now())
        idle = idle_cycles(alias, IDLE_CYCLES[mode])
        fill_outbox(alias)
        analyze()
        per_size[count] = {"idle": idle, "pages": compare(pages(count), ROUNDS[mode])}
    clear_outbox(alias)
    return {"scale": {"sizes": list(sizes), "per_size": {str(k): v for k, v in per_size.items()}}}


def size_label(count: int) -> str:
    return f"{count // 1000}k" if count >= 1000 and count % 1000 == 0 else str(count)


def scale_rows(results: list[dict]) -> list[str]:
    """Table rows (one per page, then the idle cycle), one cell per backend."""
    present = [r for r in results if "scale" in r]
    if not present:
        return []
    first = present[0]["scale"]
    rows = list(first["per_size"][str(first["sizes"][0])]["pages"])
    lines = []
    for row in rows:
        target = ADMIN_TARGET if row.startswith("admin") else API_TARGET
        cells = []
        for r in results:
            if "scale" not in r:
                cells.append("—")
                continue
            sizes = r["scale"]["sizes"]
            cells_per_size = [r["scale"]["per_size"][str(n)]["pages"][row] for n in sizes]
            ratios = " / ".join(f"{ratio:.2f}" for ratio, _, _ in cells_per_size)
            ours = {q for _, q, _ in cells_per_size}
            plain = {p for _, _, p in cells_per_size}
            constant = len(ours) == 1
            meets = cells_per_size[-1][0] <= target and constant
            queries = "/".join(str(q) for _, q, _ in cells_per_size) if not constant else str(ours.pop())
            cells.append(
                f"{'✓' if meets else '✗'} {ratios} (queries {queries} vs {'/'.join(map(str, sorted(plain)))})"
            )
        lines.append(
            f"| scale: {row} ({sizes_text(first)}) | ≤ {target} at the largest | " + " | ".join(cells) + " |"
        )
    cells = []
    for r in results:
        if "scale" not in r:
            cells.append("—")
            continue
        sizes = r["scale"]["sizes"]
        idle = [r["scale"]["per_size"][str(n)]["idle"] for n in sizes]
        growth = idle[-1][0] / idle[0][0]
        constant = len({q for _, _, q in idle}) == 1
        meets = growth <= IDLE_TARGET and constant
        cpu = " / ".join(f"{c * 1000:.1f}" for c, _, _ in idle)
        wall = " / ".join(f"{w * 1000:.1f}" for _, w, _ in idle)
        queries = "/".join(str(q) for _, _, q in idle)
        cells.append(
            f"{'✓' if meets else '✗'} {growth:.2f} (engine CPU ms {cpu}; wall ms {wall}; queries {queries})"
        )
    lines.append(
        f"| scale: idle cycle engine CPU, largest ÷ smallest ({sizes_text(first)}) | ≤ {IDLE_TARGET}, queries constant | "
        + " | ".join(cells)
        + " |"
    )
    return lines


def sizes_text(scale: dict) -> str:
    return " / ".join(size_label(n) for n in scale["sizes"])
