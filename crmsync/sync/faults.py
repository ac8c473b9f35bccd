"""Fault points for reliability tests.

- ``CRMSYNC_FAULT=<point>[:<n>]`` kills the process (SIGKILL, like an OOM kill) the n-th
  time (default 1st) execution reaches ``point``.
- ``CRMSYNC_PAUSE=<point>@<path>`` stops the first time execution reaches ``point``:
  it creates ``<path>.reached`` and waits (at most 120 s) until ``<path>`` exists, so a
  test can act while a run is at a known place, with no sleep.

Off unless a variable is set; costs one dict lookup otherwise.
"""

import os
import signal
import time
from pathlib import Path

_hits: dict[str, int] = {}


def point(name: str) -> None:
    if os.environ.get("CRMSYNC_PAUSE"):
        _pause(name, os.environ["CRMSYNC_PAUSE"])
    spec = os.environ.get("CRMSYNC_FAULT")
    if not spec:
        return
    target, _, nth = spec.rpartition(":")
    if not nth.isdigit():
        target, nth = spec, "1"
    if target != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def _pause(name: str, spec: str) -> None:
    target, _, path = spec.partition("@")
    if target != name or _hits.get(f"pause:{name}"):
        return
    _hits[f"pause:{name}"] = 1
    release = Path(path)
    Path(f"{path}.reached").touch()
    deadline = time.monotonic() + 120
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
