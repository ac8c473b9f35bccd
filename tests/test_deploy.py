"""The example project, deployed: `check --deploy` clean from the environment, errors
logged and mailed with DEBUG off, static files served, throttles shared by every worker,
no demo user on a deployment."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION = {
    "SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "ALLOWED_HOSTS": "crm.example.com,127.0.0.1",
    "CSRF_TRUSTED_ORIGINS": "https://crm.example.com",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
    "SESSION_COOKIE_SECURE": "1",
    "CSRF_COOKIE_SECURE": "1",
    "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
}


def project_env(tmp_path, **extra) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CRMSYNC_", "SECURE_", "DJANGO_", "REDIS_")) and key not in PRODUCTION
    }
    env.pop("DEBUG", None)
    env |= {
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "STATIC_ROOT": str(tmp_path / "static"),
        "PYTHONPATH": str(ROOT),
        **extra,
    }
    return env


def manage(env, *args, check=True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=check
    )


@pytest.mark.slow
def test_check_deploy_is_clean_with_a_production_environment(tmp_path):
    bare = manage(
        project_env(tmp_path, SECRET_KEY=PRODUCTION["SECRET_KEY"]), "check", "--deploy", check=False
    )
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in bare.stderr + bare.stdout
    deployed = manage(
        project_env(tmp_path, **PRODUCTION), "check", "--deploy", "--fail-level", "WARNING", check=False
    )
    assert deployed.returncode == 0, deployed.stderr + deployed.stdout
    assert "System check identified no issues (0 silenced)." in deployed.stdout
    assert "misconfigured" not in deployed.stderr  # django-q2's retry/timeout warning


@pytest.mark.slow
def test_a_server_error_is_logged_and_mailed_with_debug_off(tmp_path):
    env = project_env(
        tmp_path,
        SECRET_KEY="x" * 60,
        ADMINS="ops@example.com",
        EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend",
    )
    # No migrate: the request fails on a missing table, a genuine 500.
    script = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "response = Client(raise_request_exception=False, HTTP_HOST='localhost').get('/api/v1/opportunities/')\n"
        "print('status', response.status_code)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert "status 500" in done.stdout, done.stderr
    assert "ERROR django.request: Internal Server Error: /api/v1/opportunities/" in done.stderr
    assert "Traceback" in done.stderr
    assert "To: ops@example.com" in done.stdout and "Internal Server Error" in done.stdout  # mailed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url, headers=None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def caches():
    yield pytest.param({}, id="database-cache")
    url = os.environ.get("TEST_REDIS_URL")
    yield pytest.param({"REDIS_URL": url} if url else None, id="redis-cache")


@pytest.mark.slow
@pytest.mark.parametrize("cache_env", list(caches()))
def test_under_gunicorn_static_files_are_served_and_throttles_are_shared(tmp_path, cache_env):
    if cache_env is None:
        pytest.skip("TEST_REDIS_URL is not set")
    env = project_env(tmp_path, SECRET_KEY="x" * 60, **cache_env)
    if "REDIS_URL" in cache_env:
        import redis

        redis.from_url(cache_env["REDIS_URL"]).flushdb()
    manage(env, "migrate", "--no-input")
    manage(env, "collectstatic", "--no-input")
    port = free_port()
    log = tmp_path / "gunicorn.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "project.wsgi", "--workers", "3", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                get(f"{base}/static/admin/css/base.css")
                break
            except OSError:
                time.sleep(0.1)
        assert get(f"{base}/static/admin/css/base.css")[0] == 200
        assert get(f"{base}/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")[0] == 200
        # New connections each time: the requests spread over the three workers.
        answers = [get(f"{base}/api/v1/opportunities/")[0] for _ in range(75)]
        assert answers.count(401) == 60 and answers[60:] == [429] * 15, (answers, log.read_text()[-3000:])
    except Exception:
        print(log.read_text()[-5000:])
        raise
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_demo_setup_refuses_without_debug(settings, db):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="only with DEBUG on"):
        call_command("demo_setup")
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(username="demo").exists()
    settings.DEBUG = True
    call_command("demo_setup", stdout=open(os.devnull, "w"))  # noqa: SIM115
    assert get_user_model().objects.filter(username="demo").exists()
