"""A smoke run of every benchmark (tiny sizes) so that bench/ keeps working.
Benchmarks gate nothing on time: this checks that they run and report every measure."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

pytestmark = [pytest.mark.heavy, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_bench_smoke_reports_every_measure(tmp_path):
    backends = "postgres,sqlite" if connection.vendor == "postgresql" else "sqlite"
    env = {**os.environ}
    if connection.vendor == "postgresql":
        settings = connection.settings_dict
        env["BENCH_POSTGRES_URL"] = (
            f"postgres://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/crmsync_bench_smoke"
        )
    result = subprocess.run(
        [
            sys.executable,
            "bench/run.py",
            "--smoke",
            "--backends",
            backends,
            "--sqlite-path",
            tmp_path / "bench.sqlite3",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout
    for measure in (
        "request efficiency",
        "budget use",
        "idle query ratio",
        "idle time ratio",
        "cpu ms per pushed",
        "cpu ms per pulled",
        "memory ratio",
        "api p50 ratio",
        "api query growth",
        "freshness s",
        "push cpu floor ratio",
        "pull cpu floor ratio",
        "scaleout ratio",
    ):
        assert f"| {measure} |" in table
    # Ratios that do not depend on the machine's speed hold even at smoke sizes.
    assert "throttled 429: 0" in table
    idle_row = next(line for line in table.splitlines() if line.startswith("| idle query ratio"))
    assert "1.000" in idle_row
    # The scale section: every page beside its plain twin, and the idle cycle.
    for row in (
        "admin deals changelist",
        "admin deal change page",
        "api ?stage=",
        "api deep page",
        "idle cycle",
    ):
        assert f"| scale: {row}" in table
    scaleout = next(line for line in table.splitlines() if line.startswith("| scaleout ratio"))
    assert "429: 0" in scaleout and "overlapping runs: 0" in scaleout
