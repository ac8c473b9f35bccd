"""The chaos a run meets: a SIGKILL at a random CRMSYNC_FAULT point, and injected answers
of the emulator (5xx, 529, 429, ghost writes: applied, then answered 5xx)."""

from . import runs

FAULT_STATUSES = (500, 502, 503, 504, 529, 429)
FAULT_ENDPOINTS = ("pages.update", "pages.create", "data_sources.query", None)


def random_kill(rng) -> str:
    """A CRMSYNC_FAULT spec: point and n (the run is SIGKILLed the n-th time it gets there)."""
    point = rng.choices(runs.KILL_POINTS, (3, 1, 1, 1, 1.5, 1, 1.5))[0]
    if point == "pull:page":  # result pages: contacts in trash, contacts, deals in trash, deals
        return f"{point}:{rng.choices((1, 2, 3, 4), (1, 1, 2, 3))[0]}"
    return f"{point}:{rng.randint(1, 3)}"


def inject_faults(rng, notion) -> list[str]:
    """One or two of: a ghost create or update (applied, then answered 5xx, once or on
    every retry), an outage of the listing mid-pull or of the writes (more failures
    than the adapter's retries), a short burst of 5xx / 529 / 429 anywhere."""
    plans = []
    for _ in range(rng.randint(1, 2)):
        status = rng.choice(FAULT_STATUSES[:-1])  # 5xx and 529
        shape = rng.choice(("ghost create", "ghost update", "outage mid-pull", "write outage", "burst"))
        if shape == "ghost create":
            spec = {"count": 1, "endpoint": "pages.create", "after": True, "skip": rng.randint(0, 2)}
        elif shape == "ghost update":
            spec = {"count": rng.choice((1, 6)), "endpoint": "pages.update", "after": True}
            spec["skip"] = rng.randint(0, 4)
        elif shape == "outage mid-pull":  # queries: contacts in trash, contacts, deals in trash, deals
            spec = {"count": 6, "endpoint": "data_sources.query", "skip": rng.randint(1, 3)}
        elif shape == "write outage":
            spec = {"count": 6, "endpoint": rng.choice(("pages.create", "pages.update"))}
            spec["skip"] = rng.randint(0, 3)
        else:
            status = rng.choice(FAULT_STATUSES)
            spec = {"count": rng.randint(1, 3), "endpoint": rng.choice(FAULT_ENDPOINTS)}
            spec["skip"] = rng.randint(0, 4)
        plans.append(fail(notion, shape, {"status": status, **spec}))
    return plans


def fail(notion, shape: str, spec: dict) -> str:
    """Inject one fault (``fail_next`` kwargs); returns how the event log names it."""
    notion.fail_next(**spec)
    ghost = " ghost" if spec.get("after") else ""
    return (
        f"{shape}: {spec['count']}× {spec['status']}{ghost} on {spec.get('endpoint') or 'any request'}"
        f" after {spec.get('skip', 0)}"
    )
