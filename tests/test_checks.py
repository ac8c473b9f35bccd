"""System checks (crmsync.checks): each bad setting named, with the key to fix."""

import pytest
from django.core import checks

from crmsync.checks import check_q_cluster, check_settings, check_throttle_cache
from crmsync.exceptions import ConfigurationError


def ids(messages):
    return [message.id for message in messages]


@pytest.mark.parametrize(
    ("cluster", "crmsync", "expected"),
    [
        ({"name": "crm", "orm": "default", "timeout": 300, "retry": 360}, {}, []),
        # The README's old snippet: django-q2's default retry (60 s) below its timeout.
        ({"name": "crm", "orm": "default", "timeout": 300}, {}, ["crmsync.W001"]),
        ({"name": "crm", "orm": "default", "timeout": 300, "retry": 300}, {}, ["crmsync.W001"]),
        ({"name": "crm", "orm": "default"}, {}, ["crmsync.W001"]),  # no timeout at all
        ({"timeout": 200, "retry": 360}, {}, ["crmsync.W002"]),  # RUN_TIME_LIMIT 240 >= 200
        ({"timeout": 300, "retry": 360}, {"RUN_TIME_LIMIT": 300}, ["crmsync.W002"]),
        ({"timeout": 300, "retry": 360}, {"RUN_TIME_LIMIT": 290}, []),
        ({"sync": True}, {}, []),  # tasks run inline: nothing is handed out twice
    ],
)
def test_q_cluster_retry_and_timeout(settings, cluster, crmsync, expected):
    settings.Q_CLUSTER = cluster
    settings.CRMSYNC = crmsync
    found = check_q_cluster()
    assert ids(found) == expected
    assert all(isinstance(message, checks.Warning) for message in found)


def test_a_missing_q_cluster_is_reported(settings):
    del settings.Q_CLUSTER
    assert ids(check_q_cluster()) == ["crmsync.W001"]


def test_a_mistyped_option_is_named(settings, notion_emulator):
    from crmsync.testing.pytest_plugin import notion_options

    options = notion_options(notion_emulator, requests_per_second="fast", match_deals_by_name="yes")
    settings.CRMSYNC = {"CONNECTIONS": {"notion": {"ADAPTER": "notion", "OPTIONS": options}}}
    messages = [str(message.msg) for message in check_settings()]
    assert any(
        """["OPTIONS"]['requests_per_second'] = 'fast': expected a number""" in message
        for message in messages
    ), messages
    assert any("['match_deals_by_name'] = 'yes': expected True or False" in message for message in messages)
    assert not any("not supported between" in message for message in messages)


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("token", 5, "['token'] = (hidden): expected a string"),
        ("max_retries", -1, "['max_retries'] = -1: expected a number at least 0"),
        ("timeout", 0, "['timeout'] = 0: expected a number above 0"),
        ("burst", 1.5, "['burst'] = 1.5: expected a whole number"),
        ("base_url", "ftp://x", "['base_url'] = 'ftp://x': expected an http(s) URL"),
        ("choice_options", {"deal": {"stge": {}}}, "'stge' is no choice field"),
        ("choice_options", {"deal": {"stage": {"won": "Won"}}}, "unknown value 'won'"),
        ("choice_options", {"deal": {"stage": {"proposal": ""}}}, "non-empty string"),
    ],
)
def test_an_option_out_of_range_is_an_error_at_startup(settings, notion_emulator, option, value, expected):
    from crmsync.testing.pytest_plugin import notion_options

    options = {**notion_options(notion_emulator), option: value}
    settings.CRMSYNC = {"CONNECTIONS": {"notion": {"ADAPTER": "notion", "OPTIONS": options}}}
    errors = check_settings()
    assert [e.id for e in errors] == ["crmsync.E002"] and expected in errors[0].msg, [e.msg for e in errors]


def test_every_bad_option_is_reported_at_once_and_no_token_shown(settings, notion_emulator):
    from crmsync.testing.pytest_plugin import notion_options

    options = {
        **notion_options(notion_emulator),
        "token": b"secret_abc",
        "max_retries": -1,
        "retry_backof": 1,
    }
    settings.CRMSYNC = {"CONNECTIONS": {"notion": {"ADAPTER": "notion", "OPTIONS": options}}}
    messages = [e.msg for e in check_settings()]
    assert len(messages) == 3 and not any("secret_abc" in m for m in messages), messages


def test_api_settings_are_checked(settings):
    settings.CRMSYNC = {"API": {"THROTLE_RATES": {}}}
    assert ids(check_settings()) == ["crmsync.E001"]
    settings.CRMSYNC = {"API": {"PERMISSION_CLASSES": ["nowhere.Permission"]}}
    (error,) = check_settings()
    assert error.id == "crmsync.E004" and "PERMISSION_CLASSES" in error.msg


def test_deploy_warns_when_throttles_count_per_process(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert ids(check_throttle_cache()) == ["crmsync.W003"]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "t"}}
    assert check_throttle_cache() == []
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.CRMSYNC = {"API": {"THROTTLE_CLASSES": []}}
    assert check_throttle_cache() == []


# --- crmsync_check: what a failure means ------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"token": "wrong-token"}, "401 unauthorized"),
        ({"database_id": "99999999-9999-4999-8999-999999999999"}, "404 object_not_found"),
        ({"base_url": "http://127.0.0.1:9", "max_retries": 0}, "Cannot reach Notion"),
    ],
)
def test_crmsync_check_does_not_blame_the_mapping_for_access_problems(
    settings, notion_emulator, options, says
):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from crmsync.testing.pytest_plugin import notion_options

    options = notion_options(
        notion_emulator, contacts_database_id=None, activities_database_id=None, **options
    )
    settings.CRMSYNC = {"CONNECTIONS": {"notion": {"ADAPTER": "notion", "OPTIONS": options}}}
    with pytest.raises(CommandError) as caught:
        call_command("crmsync_check")
    assert says in str(caught.value) and "does not match the mapping" not in str(caught.value)


def test_crmsync_check_names_the_kind_of_failure():
    from crmsync.exceptions import AdapterError, RemoteNotFound, TransientAdapterError
    from crmsync.management.commands.crmsync_check import describe

    assert "refused the credentials" in describe(AdapterError("unauthorized", status=401))
    assert "not found" in describe(RemoteNotFound("no such database", status=404))
    assert "cannot reach" in describe(TransientAdapterError("ConnectError"))
    assert "cannot reach" not in describe(TransientAdapterError("busy", status=503))


@pytest.mark.parametrize(
    ("crmsync", "fragment", "check_id"),
    [
        ({"API": {"THROTTLE_RATES": {"anon": "lots"}}}, "'lots' is no rate", "crmsync.E001"),
        ({"API": {"THROTTLE_CACHE": "nosuch"}}, "no such cache", "crmsync.E001"),
        (
            {"API": {"PERMISSION_CLASSES": "rest_framework.permissions.AllowAny"}},
            "expected a list",
            "crmsync.E001",
        ),
        ({"LEASE_SECONDS": "30"}, "expected a positive number", "crmsync.E003"),
        ({"RUN_TIME_LIMIT": 0}, "expected a positive number", "crmsync.E003"),
    ],
)
def test_settings_that_would_fail_at_run_time_are_check_errors(settings, crmsync, fragment, check_id):
    from crmsync.checks import check_settings

    settings.CRMSYNC = {"CONNECTIONS": {}, **crmsync}
    errors = check_settings()
    assert any(fragment in e.msg and e.id == check_id for e in errors), [e.msg for e in errors]


def test_a_crmsync_setting_that_is_no_dict_is_one_error_not_a_traceback(settings):
    from django.core import checks as django_checks

    settings.CRMSYNC = []
    messages = django_checks.run_checks(tags=["crmsync"])
    assert [m.id for m in messages if m.id.startswith("crmsync.E")] == ["crmsync.E001"]


def test_a_nan_rate_is_a_configuration_error_naming_the_option(settings):
    from crmsync.registry import build_adapter

    settings.CRMSYNC = {
        "CONNECTIONS": {
            "notion": {
                "ADAPTER": "notion",
                "OPTIONS": {
                    "token": "t",
                    "database_id": "0123456789abcdef0123456789abcdef",
                    "requests_per_second": float("nan"),
                },
            }
        }
    }
    with pytest.raises(ConfigurationError, match="requests_per_second"):
        build_adapter("notion")
