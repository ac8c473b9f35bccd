"""Packaging of a reusable app: one version, a license, type information, classifiers that
match what CI tests, optional SDKs in extras."""

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import crmsync

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_one_version_source():
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "crmsync.__version__"}
    assert version("crmsync") == crmsync.__version__


def test_license_changelog_and_type_marker_ship():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    assert (ROOT / "CHANGELOG.md").exists() and (ROOT / "crmsync" / "py.typed").exists()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["crmsync"]
    assert {"Homepage", "Changelog", "Issues"} <= set(PYPROJECT["project"]["urls"])


def test_classifiers_list_the_django_versions_ci_tests():
    tested = set(re.findall(r'"django>=(\d+\.\d+),', (ROOT / "scripts" / "test").read_text()))
    classified = {
        c.rsplit(" :: ", 1)[1]
        for c in PYPROJECT["project"]["classifiers"]
        if c.startswith("Framework :: Django :: ")
    }
    assert tested and classified == tested


def test_tenacity_comes_with_the_notion_extra_only():
    assert not any(dep.startswith("tenacity") for dep in PYPROJECT["project"]["dependencies"])
    assert any(dep.startswith("tenacity") for dep in PYPROJECT["project"]["optional-dependencies"]["notion"])
    users = [
        p
        for p in (ROOT / "crmsync").rglob("*.py")
        if "tenacity" in p.read_text() and "import" in p.read_text()
    ]
    assert [p.relative_to(ROOT).as_posix() for p in users if "from tenacity" in p.read_text()] == [
        "crmsync/adapters/notion.py"
    ]
