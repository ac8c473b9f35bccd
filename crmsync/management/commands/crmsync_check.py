from django.core.management.base import BaseCommand, CommandError

from crmsync.conf import app_settings
from crmsync.exceptions import AdapterError, ConfigurationError, RemoteNotFound, TransientAdapterError
from crmsync.registry import connections


def describe(err: Exception) -> str:
    """What a failed check means for the person running it: the credentials, the
    configured ids, or the network, not the mapping."""
    if isinstance(err, ConfigurationError):
        return f"configuration: {err}"
    status = getattr(err, "status", None)
    if status in (401, 403):
        return f"the CRM refused the credentials (check the token and the integration's access): {err}"
    if isinstance(err, RemoteNotFound) or status == 404:
        return f"not found: a configured database or id does not exist or is not shared with the integration: {err}"
    if isinstance(err, TransientAdapterError) and status is None:
        return f"cannot reach the CRM (check base_url and the network): {err}"
    return str(err)


class Command(BaseCommand):
    help = (
        "Check each connection's remote side: that it can be reached with its credentials and, "
        "for Notion, that every mapped property exists with a type that can hold it; prints "
        "advice (an ID property for large data sources). Sends a few read requests; exits 1 on "
        "any problem (advice is not one)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--connection", help='a key of CRMSYNC["CONNECTIONS"] (default: all)')

    def handle(self, *args, connection=None, **options):
        aliases = [connection] if connection else list(app_settings.CONNECTIONS)
        if not aliases:
            raise CommandError('No connection configured: add one to CRMSYNC["CONNECTIONS"].')
        problems = []
        for alias in aliases:
            advice = []
            try:
                adapter = connections[alias]
                found = adapter.check()
                advice = adapter.advice() if hasattr(adapter, "advice") else []
            except (ConfigurationError, AdapterError) as err:
                found = [describe(err)]
            for note in advice:
                self.stdout.write(f"{alias}: advice: {note}")
            if found:
                # One line per distinct problem (an unreachable CRM fails every entity alike).
                problems += [f"{alias}: {problem}" for problem in dict.fromkeys(found)]
            else:
                self.stdout.write(f"{alias}: OK")
        if problems:
            raise CommandError("crmsync_check found problems:\n  " + "\n  ".join(problems))
