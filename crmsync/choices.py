"""Enumerations shared by models, adapters and the sync engine."""

from django.db import models


class DealStage(models.TextChoices):
    PROSPECTING = "prospecting", "Prospecting"
    QUALIFICATION = "qualification", "Qualification"
    DISCOVERY = "discovery", "Discovery"
    PROPOSAL = "proposal", "Proposal"
    NEGOTIATION = "negotiation", "Negotiation"
    CLOSED_WON = "closed_won", "Closed Won"
    CLOSED_LOST = "closed_lost", "Closed Lost"


class ActivityKind(models.TextChoices):
    CALL = "call", "Call"
    EMAIL = "email", "Email"
    MEETING = "meeting", "Meeting"
    NOTE = "note", "Note"


class Owner(models.TextChoices):
    """Who decides a field's value when the two sides disagree (DESIGN §2)."""

    AGENT = "agent", "Agent (local always wins)"
    HUMAN = "human", "Human (the CRM always wins)"
    SHARED = "shared", "Shared (last write wins)"
    MANUAL = "manual", "Manual (staff resolve)"


class ConflictStatus(models.TextChoices):
    AUTO_RESOLVED = "auto_resolved", "Auto-resolved"
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


class Winner(models.TextChoices):
    LOCAL = "local", "Local"
    REMOTE = "remote", "Remote"
    NONE = "none", "None (held)"


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCESS = "success", "Success"
    PARTIAL = "partial", "Partial (time limit; resumes next run)"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped (connection busy)"
    DEFERRED = "deferred", "Deferred (the CRM asked to wait)"
