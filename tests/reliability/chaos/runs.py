"""One sync cycle as the chaos test starts it: ``crmsync_sync --json`` in a worker process
(for real ``SIGKILL``s at a ``CRMSYNC_FAULT`` point) or in this process (the same
command through ``call_command``: a long-lived worker, and no process start-up)."""

import dataclasses
import io
import json
import signal
import subprocess
import sys

from django.core.management import call_command

from tests.workers import ROOT, worker_env

# Every CRMSYNC_FAULT point of crmsync/sync/engine.py (see crmsync/sync/faults.py).
KILL_POINTS = (
    "pull:page",
    "pull:before-sync-id",
    "push:record",
    "push:before-create",
    "push:after-create",
    "push:before-update",
    "push:after-update",
)
LEASE_SECONDS = 86_400  # a killed worker's lease never expires by itself within a seed


@dataclasses.dataclass
class Outcome:
    status: str  # the run's status, "killed", or "crashed"
    summary: dict
    detail: str = ""

    def describe(self) -> str:
        counts = {
            k: v
            for k, v in self.summary.items()
            if isinstance(v, int) and v and k not in ("requests", "duration", "run_id")
        }
        text = self.status + (f" {counts}" if counts else "")
        errors = (self.summary.get("error_summary") or self.detail or "").strip()
        if errors and self.status != "success":
            text += f" — {errors.splitlines()[0][:160]}"
        return text


def in_process() -> Outcome:
    out = io.StringIO()
    try:
        call_command("crmsync_sync", "--json", stdout=out)
    except Exception as err:  # CommandError for a failed run; anything else is a crash
        summary = _summary(out.getvalue())
        if summary:
            return Outcome(summary.get("status", "failed"), summary, str(err))
        return Outcome("crashed", {}, f"{type(err).__name__}: {err}")
    summary = _summary(out.getvalue())
    return Outcome(summary.get("status", "?"), summary)


def in_worker(emulator, *, now, ids: str, fault: str | None) -> Outcome:
    env = worker_env(
        emulator,
        DJANGO_SETTINGS_MODULE="tests.reliability.chaos.worker_settings",
        CRMSYNC_LEASE_SECONDS=str(LEASE_SECONDS),
        CHAOS_NOW=now.isoformat(),
        CHAOS_IDS=ids,
        **({"CRMSYNC_FAULT": fault} if fault else {}),
    )
    done = subprocess.run(
        [sys.executable, "-m", "tests.reliability.chaos.worker", "crmsync_sync", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode == -signal.SIGKILL:
        return Outcome("killed", {}, f"SIGKILL at {fault}")
    summary = _summary(done.stdout)
    if not summary:
        return Outcome("crashed", {}, (done.stderr or done.stdout).strip()[-500:])
    return Outcome(summary.get("status", "?"), summary, done.stderr.strip()[-300:])


def _summary(stdout: str) -> dict:
    for line in reversed(stdout.strip().splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return {}


def writes_in(outcome: Outcome) -> int:
    keys = ("created_local", "created_remote", "updated_local", "updated_remote", "archived")
    return sum(outcome.summary.get(key, 0) for key in keys)
