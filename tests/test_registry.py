import logging

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from django.views.debug import ExceptionReporter

from crmsync.adapters.local import LocalAdapter
from crmsync.adapters.notion import NotionAdapter
from crmsync.checks import check_settings
from crmsync.conf import app_settings
from crmsync.exceptions import ConfigurationError
from crmsync.registry import connections

NOTION = {
    "ADAPTER": "notion",
    "OPTIONS": {"token": "secret_tok_123", "database_id": "0123456789abcdef0123456789abcdef"},
}


def test_defaults_and_user_adapters_are_merged():
    with override_settings(CRMSYNC={"ADAPTERS": {"mine": "x.Y"}}):
        assert app_settings.ADAPTERS["mine"] == "x.Y"
        assert app_settings.ADAPTERS["notion"] == "crmsync.adapters.notion.NotionAdapter"
        assert app_settings.SYNC_INTERVAL == 60
    with pytest.raises(AttributeError, match="Unknown CRMSYNC setting"):
        app_settings.NOPE  # noqa: B018


def test_connections_are_built_lazily_cached_and_follow_override_settings():
    with override_settings(CRMSYNC={"CONNECTIONS": {"crm": {"ADAPTER": "local"}}}):
        adapter = connections["crm"]
        assert isinstance(adapter, LocalAdapter)
        assert connections["crm"] is adapter
    with override_settings(CRMSYNC={"CONNECTIONS": {"crm": NOTION}}):
        assert isinstance(connections["crm"], NotionAdapter)


@pytest.mark.parametrize(
    ("config", "alias", "message"),
    [
        ({}, "crm", 'add it to CRMSYNC["CONNECTIONS"]'),
        ({"crm": {"ADAPTER": "hubspot"}}, "crm", "Unknown crmsync adapter 'hubspot'"),
        ({"crm": {"ADAPTER": "notion", "OPTIONS": {"database_id": "db"}}}, "crm", "[\"OPTIONS\"]['token']"),
        ({"crm": {"ADAPTER": "notion", "OPTIONS": {"token": "t"}}}, "crm", '["OPTIONS"]["database_id"]'),
        ({"crm": {"ADAPTER": "notion", "OPTIONS": {**NOTION["OPTIONS"], "colour": 1}}}, "crm", "['colour']"),
        ({"crm": {"ADAPTER": "local", "OPTIONZ": {}}}, "crm", "unknown keys"),
        (
            {
                "crm": {
                    "ADAPTER": "notion",
                    "OPTIONS": {**NOTION["OPTIONS"], "properties": {"deal": {"nope": "X"}}},
                }
            },
            "crm",
            "no synced field 'nope'",
        ),
    ],
)
def test_bad_configuration_names_the_setting_to_fix(config, alias, message):
    with override_settings(CRMSYNC={"CONNECTIONS": config}), pytest.raises(ConfigurationError) as caught:
        connections[alias]
    assert message in str(caught.value)


def test_unimportable_adapter_path_is_a_configuration_error():
    settings = {"ADAPTERS": {"broken": "nowhere.Adapter"}, "CONNECTIONS": {"crm": {"ADAPTER": "broken"}}}
    with (
        override_settings(CRMSYNC=settings),
        pytest.raises(ConfigurationError, match=r'CRMSYNC\["ADAPTERS"\]'),
    ):
        connections["crm"]


@pytest.mark.django_db
def test_system_checks_report_bad_configuration_at_startup():
    bad = {"CONNECTIONS": {"crm": {"ADAPTER": "hubspot"}}, "SYNC_INTERVAL": 90, "TYPO": 1}
    with override_settings(CRMSYNC=bad):
        ids = sorted(error.id for error in check_settings())
        assert ids == ["crmsync.E001", "crmsync.E002", "crmsync.E003"]
        with pytest.raises(SystemCheckError, match=r"crmsync\.E002"):
            call_command("check")
    with override_settings(CRMSYNC={"CONNECTIONS": {"crm": NOTION}}):
        assert check_settings() == []


def test_the_token_never_shows_in_reprs_errors_or_logs(caplog):
    caplog.set_level(logging.DEBUG)
    with override_settings(CRMSYNC={"CONNECTIONS": {"crm": NOTION}}):
        adapter = connections["crm"]
        assert "secret_tok_123" not in repr(adapter)
    bad = {"CONNECTIONS": {"crm": {"ADAPTER": "notion", "OPTIONS": {"token": "secret_tok_123", "nope": 1}}}}
    with override_settings(CRMSYNC=bad), pytest.raises(ConfigurationError) as caught:
        connections["crm"]
    assert "secret_tok_123" not in str(caught.value)
    assert "secret_tok_123" not in caplog.text


@pytest.mark.parametrize("options", [{"database_id": "not-an-id"}, {"nope": 1}])
def test_the_token_stays_off_error_reports(rf, options):
    """A connection that cannot be built (checks skipped, as under gunicorn): the error
    report (the HTML one Django can mail to ADMINS) showed its options, token included,
    among the local variables of crmsync's frames. (Under DEBUG Django shows every
    local, by design.)"""
    with pytest.raises(ConfigurationError) as caught:
        build_broken_connection(options)
    page = ExceptionReporter(rf.get("/"), caught.type, caught.value, caught.tb).get_traceback_html()
    # (The token by reference: the report quotes this test's source lines too.)
    assert "build_adapter" in page and NOTION["OPTIONS"]["token"] not in page


def build_broken_connection(options: dict) -> None:
    # Neither this frame's variables nor the source lines the report quotes hold the token.
    with override_settings(
        CRMSYNC={"CONNECTIONS": {"crm": {"ADAPTER": "notion", "OPTIONS": {**NOTION["OPTIONS"], **options}}}}
    ):
        connections["crm"]


def test_missing_notion_client_names_the_extra(monkeypatch):
    import crmsync.adapters.notion as notion_module

    monkeypatch.setattr(notion_module, "notion_client", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'crmsync\[notion\]'"):
        NotionAdapter(alias="crm", **NOTION["OPTIONS"])


def test_unimplemented_hook_names_the_class():
    from crmsync.adapters.base import CRMAdapter

    class HalfDone(CRMAdapter):
        pass

    with pytest.raises(NotImplementedError, match="HalfDone does not implement create"):
        HalfDone(alias="x").create("deal", {}, "id")


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("requests_per_second", "fast", "a number"),
        ("match_deals_by_name", "yes", "True or False"),
        ("properties", [], "a dict"),
    ],
)
def test_a_mistyped_option_is_a_configuration_error_naming_it(option, value, expected):
    from crmsync.adapters.notion import NotionAdapter
    from crmsync.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError) as caught:
        NotionAdapter("notion", token="t", database_id="d", **{option: value})
    message = str(caught.value)
    assert f'["OPTIONS"][{option!r}]' in message and expected in message
