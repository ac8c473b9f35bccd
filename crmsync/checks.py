"""System checks: bad CRMSYNC configuration is reported at startup.

crmsync.E001  CRMSYNC (or CRMSYNC["API"]) is not a dict / has unknown keys
crmsync.E002  a connection cannot be built (unknown adapter, bad, mistyped or missing option)
crmsync.E003  SYNC_INTERVAL is not a whole number of minutes
crmsync.E004  a class named in CRMSYNC["API"] cannot be imported
crmsync.W001  Q_CLUSTER's retry is not above its timeout: a long sync would be handed out twice
crmsync.W002  RUN_TIME_LIMIT is not below Q_CLUSTER's timeout: a run would be killed mid-way
crmsync.W003  (--deploy) the API's throttles count in a per-process cache
crmsync.E005  an option has the wrong form (e.g. a malformed Notion database id)
"""

from typing import Any

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from .conf import API_DEFAULTS, DEFAULTS, app_settings
from .registry import adapter_class, build_adapter

Q_CLUSTER_DOCS = "https://django-q2.readthedocs.io/en/master/configure.html#retry"


@checks.register("crmsync")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    configured = getattr(settings, "CRMSYNC", {})
    if not isinstance(configured, dict):
        return [checks.Error("settings.CRMSYNC must be a dict.", id="crmsync.E001")]
    unknown = sorted(set(configured) - set(DEFAULTS))
    if unknown:
        errors.append(
            checks.Error(
                f"Unknown CRMSYNC keys: {', '.join(unknown)}.",
                hint=f"Known keys: {', '.join(sorted(DEFAULTS))}.",
                id="crmsync.E001",
            )
        )
    errors += check_api(configured.get("API", {}))
    errors += check_numbers(configured)
    for alias in configured.get("CONNECTIONS", {}):
        mistyped = mistyped_options(alias)
        if mistyped:
            errors += [
                checks.Error(message, obj=f'CRMSYNC["CONNECTIONS"][{alias!r}]', id="crmsync.E002")
                for message in mistyped
            ]
            continue
        try:
            build_adapter(alias).close()
        except Exception as err:  # any construction failure is a configuration problem
            check_id = getattr(err, "check_id", "crmsync.E002")
            errors.append(checks.Error(str(err), obj=f'CRMSYNC["CONNECTIONS"][{alias!r}]', id=check_id))
    interval = configured.get("SYNC_INTERVAL", DEFAULTS["SYNC_INTERVAL"])
    if not isinstance(interval, int) or interval < 60 or interval % 60:
        errors.append(
            checks.Error(
                f'CRMSYNC["SYNC_INTERVAL"] = {interval!r}: use a whole number of minutes in seconds (60, 120, ...).',
                hint="django-q2 schedules in minutes.",
                id="crmsync.E003",
            )
        )
    return errors


def check_api(api: Any) -> list[checks.CheckMessage]:
    if not isinstance(api, dict):
        return [checks.Error('CRMSYNC["API"] must be a dict.', id="crmsync.E001")]
    unknown = sorted(set(api) - set(API_DEFAULTS))
    if unknown:
        return [
            checks.Error(
                f'Unknown CRMSYNC["API"] keys: {", ".join(unknown)}.',
                hint=f"Known keys: {', '.join(sorted(API_DEFAULTS))}.",
                id="crmsync.E001",
            )
        ]
    errors = check_api_values(app_settings.API)
    if errors:
        return errors
    for key, value in app_settings.API.items():
        if key in ("THROTTLE_RATES", "THROTTLE_CACHE"):
            continue
        for path in value if isinstance(value, list | tuple) else [value]:
            try:
                import_string(path)
            except ImportError as err:
                errors.append(
                    checks.Error(
                        f'CRMSYNC["API"][{key!r}]: {path!r} cannot be imported: {err}', id="crmsync.E004"
                    )
                )
    return errors


def check_api_values(api: dict) -> list[checks.CheckMessage]:
    """The shapes of CRMSYNC["API"] values: lists of dotted paths, rates DRF can read, a
    configured cache (each would otherwise fail every API request at run time)."""
    from rest_framework.throttling import SimpleRateThrottle

    errors: list[checks.CheckMessage] = []

    def error(key: str, message: str) -> None:
        errors.append(checks.Error(f'CRMSYNC["API"][{key!r}] = {api[key]!r}: {message}', id="crmsync.E001"))

    for key, value in api.items():
        if key.endswith("_CLASSES") and not (
            isinstance(value, list | tuple) and all(isinstance(path, str) for path in value)
        ):
            error(key, "expected a list of dotted paths.")
        elif key.endswith("_CLASS") and not isinstance(value, str):
            error(key, "expected a dotted path.")
    rates = api.get("THROTTLE_RATES")
    if not isinstance(rates, dict):
        error("THROTTLE_RATES", 'expected a dict such as {"anon": "60/minute"}.')
    else:
        for scope, rate in rates.items():
            try:
                SimpleRateThrottle.parse_rate(SimpleRateThrottle, rate)  # type: ignore[arg-type]
            except (ValueError, KeyError, TypeError, AttributeError, IndexError):
                error("THROTTLE_RATES", f'{scope!r}: {rate!r} is no rate such as "60/minute" (or None).')
    if api.get("THROTTLE_CACHE") not in settings.CACHES:
        error("THROTTLE_CACHE", f"no such cache in settings.CACHES ({', '.join(settings.CACHES)}).")
    return errors


def check_numbers(configured: dict) -> list[checks.CheckMessage]:
    """Numeric CRMSYNC settings must be positive numbers."""
    errors: list[checks.CheckMessage] = []
    for key in ("RETENTION_DAYS", "MAX_RECORD_FAILURES", "RUN_TIME_LIMIT", "LEASE_SECONDS"):
        value = configured.get(key, DEFAULTS[key])
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            errors.append(
                checks.Error(f"CRMSYNC[{key!r}] = {value!r}: expected a positive number.", id="crmsync.E003")
            )
    return errors


def mistyped_options(alias: str) -> list[str]:
    """Every problem of the connection's options (unknown, missing, mistyped, out of
    range), each named with the setting to fix, as the adapter class judges them."""
    config = app_settings.CONNECTIONS.get(alias)
    if not isinstance(config, dict) or not isinstance(config.get("OPTIONS", {}), dict):
        return []
    try:
        cls = adapter_class(config.get("ADAPTER", ""))
    except Exception:  # reported by build_adapter with its own message
        return []
    return cls.option_problems(alias, config.get("OPTIONS", {}))


@checks.register("crmsync")
def check_q_cluster(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A sync must run to its end once: django-q2 hands a task out again after ``retry``
    seconds without acknowledgement, and kills it after ``timeout``."""
    cluster = getattr(settings, "Q_CLUSTER", {})
    if not isinstance(cluster, dict) or cluster.get("sync"):
        return []
    timeout, retry = cluster.get("timeout"), cluster.get("retry", 60)
    limit = app_settings.RUN_TIME_LIMIT
    warnings: list[checks.CheckMessage] = []
    if not isinstance(timeout, int | float) or not isinstance(retry, int | float) or retry <= timeout:
        warnings.append(
            checks.Warning(
                f'Q_CLUSTER["retry"] ({retry!r}) must be above Q_CLUSTER["timeout"] ({timeout!r}): '
                "django-q2 would hand a long sync out a second time while the first still runs.",
                hint=f'For example Q_CLUSTER = {{..., "timeout": 300, "retry": 360}} (see {Q_CLUSTER_DOCS}).',
                id="crmsync.W001",
            )
        )
    if isinstance(timeout, int | float) and isinstance(limit, int | float) and limit >= timeout:
        warnings.append(
            checks.Warning(
                f'CRMSYNC["RUN_TIME_LIMIT"] ({limit!r} s) must be below Q_CLUSTER["timeout"] ({timeout!r} s): '
                "django-q2 would kill a run before it stops on its own.",
                hint=f"Lower RUN_TIME_LIMIT (default {DEFAULTS['RUN_TIME_LIMIT']}) or raise the timeout.",
                id="crmsync.W002",
            )
        )
    return warnings


PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@checks.register("crmsync", deploy=True)
def check_throttle_cache(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    api = app_settings.API
    if not api["THROTTLE_CLASSES"]:
        return []
    alias = api["THROTTLE_CACHE"]
    backend = getattr(settings, "CACHES", {}).get(alias, {}).get("BACKEND", PER_PROCESS_CACHES[0])
    if backend not in PER_PROCESS_CACHES:
        return []
    return [
        checks.Warning(
            f"The API's throttles count in the cache {alias!r} ({backend.rsplit('.', 1)[-1]}), which no two "
            "processes share: with N web workers a client gets N times the documented rate.",
            hint='Use Redis or the database cache (CACHES), or name a shared one in CRMSYNC["API"]["THROTTLE_CACHE"].',
            id="crmsync.W003",
        )
    ]
