"""Fault points for reliability tests: ``CRMSYNC_FAULT=<point>[:<n>]`` kills the
process (SIGKILL, like an OOM kill) the n-th time (default 1st) execution reaches
``point``. Off unless the variable is set; costs one dict lookup otherwise."""

import os
import signal

_hits: dict[str, int] = {}


def point(name: str) -> None:
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
