"""The deal fields the chaos test writes: their owner (DESIGN §2), fresh values, and how
each side shows them (local model attribute, Notion property in simple form).

Values are compared in one plain form of the test's own (not the engine's
``normal_form``): str, Decimal at the local field's precision, date, int, sorted tuple.
"""

import datetime as dt
from decimal import Decimal

AGENT, HUMAN, SHARED = "agent", "human", "shared"
# field: (owner, Notion property)
FIELDS = {
    "name": (SHARED, "Name"),
    "stage": (SHARED, "Stage"),
    "value": (SHARED, "Value"),
    "close_date": (SHARED, "Close Date"),
    "probability": (AGENT, "Probability"),
    "confidence": (AGENT, "Confidence"),
    "qualification": (AGENT, "Qualification"),
    "notes": (HUMAN, "Notes"),
    "tags": (HUMAN, "Tags"),
}
LABELS = {
    "prospecting": "Prospecting",
    "qualification": "Qualification",
    "discovery": "Discovery",
    "proposal": "Proposal",
    "negotiation": "Negotiation",
    "closed_won": "Closed Won",
    "closed_lost": "Closed Lost",
}
STAGES = {label: key for key, label in LABELS.items()}
TAG_POOL = ("hot", "cold", "emea", "apac", "smb", "enterprise", "renewal", "pilot")
CENT, MILLI = Decimal("0.01"), Decimal("0.001")


def owner(field: str) -> str:
    return FIELDS[field][0]


def fresh_value(rng, field: str, used: set, counter: int):
    """A value of ``field`` not in ``used`` (a write the three-way merge can always see)."""
    for _ in range(1000):
        if field == "name":
            value = f"Deal {counter}-{rng.randrange(10**4)}"
        elif field == "stage":
            value = rng.choice(list(LABELS))
        elif field == "value":
            value = Decimal(rng.randrange(100, 10**7)) * CENT
        elif field == "close_date":
            value = dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(0, 700))
        elif field == "probability":
            value = rng.randrange(0, 101)
        elif field == "confidence":
            value = Decimal(rng.randrange(0, 1001)) * MILLI
        elif field in ("qualification", "notes"):
            value = f"{field} {counter}-{rng.randrange(10**4)}"
        else:
            value = tuple(sorted(rng.sample(TAG_POOL, rng.randrange(1, 4))))
        if value not in used:
            return value
    raise AssertionError(f"no fresh value left for {field}")


def to_notion(field: str, value):
    """The value in the emulator's simple form (what a person types)."""
    if field == "stage":
        return LABELS[value]
    if field in ("value", "confidence"):
        return float(value)
    if field == "close_date":
        return value.isoformat()
    if field == "tags":
        return list(value)
    return value


def from_notion(field: str, value):
    if value is None or value == [] or value == "":
        return None
    if field == "stage":
        return STAGES.get(value, f"<unknown option {value!r}>")
    if field == "value":
        return Decimal(str(value)).quantize(CENT)
    if field == "confidence":
        return Decimal(str(value)).quantize(MILLI)
    if field == "close_date":
        return dt.date.fromisoformat(value[:10])
    if field == "tags":
        return tuple(sorted(value))
    return value


def from_local(field: str, value):
    if value is None or value == [] or value == "":
        return None
    if field == "value":
        return Decimal(value).quantize(CENT)
    if field == "confidence":
        return Decimal(value).quantize(MILLI)
    if field == "tags":
        return tuple(sorted(value))
    return value


def to_local(field: str, value):
    return list(value) if field == "tags" else value


def notion_properties(values: dict) -> dict:
    return {FIELDS[field][1]: to_notion(field, value) for field, value in values.items()}


def page_values(simple: dict) -> dict:
    """{field: value} of a page's properties in simple form."""
    return {field: from_notion(field, simple.get(prop)) for field, (_, prop) in FIELDS.items()}


def local_values(deal) -> dict:
    return {field: from_local(field, getattr(deal, field)) for field in FIELDS}


def show(values: dict) -> str:
    """Values as the event log prints them: {name: 'Deal 7', value: 120.50, tags: [hot]}."""
    parts = []
    for field, value in values.items():
        if isinstance(value, tuple):
            text = "[" + ", ".join(value) + "]"
        elif isinstance(value, str):
            text = repr(value)
        else:
            text = str(value)
        parts.append(f"{field}: {text}")
    return "{" + ", ".join(parts) + "}"
