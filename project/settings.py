"""Settings of the example project that runs crmsync.

Everything comes from the environment (DESIGN §5): SECRET_KEY, DEBUG, ALLOWED_HOSTS,
DATABASE_URL, REDIS_URL and the CRMSYNC_NOTION_* variables; for a deployment also
CSRF_TRUSTED_ORIGINS, SECURE_SSL_REDIRECT, SECURE_HSTS_SECONDS (+ _INCLUDE_SUBDOMAINS,
_PRELOAD), SESSION_COOKIE_SECURE, CSRF_COOKIE_SECURE, SECURE_PROXY_SSL_HEADER, ADMINS,
SERVER_EMAIL, EMAIL_BACKEND, EMAIL_HOST (+ _PORT, _HOST_USER, _HOST_PASSWORD, _USE_TLS) and
STATIC_ROOT.
"""

import os
from pathlib import Path
from typing import Any

import dj_database_url
import django

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG")
SECRET_KEY = os.environ.get("SECRET_KEY") or ("insecure-dev-key-only-for-debug" if DEBUG else "")
if not SECRET_KEY:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("Set the SECRET_KEY environment variable (or DEBUG=1 for local development).")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")  # e.g. https://crm.example.com

# HTTPS. Off unless set, so that the demo runs over plain HTTP; `check --deploy` names
# each one that is missing.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT")
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS") or 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD")
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE")
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE")
if os.environ.get("SECURE_PROXY_SSL_HEADER"):
    # Behind a proxy that terminates TLS: the header it sets, e.g. X-Forwarded-Proto.
    header = os.environ["SECURE_PROXY_SSL_HEADER"].strip().upper().replace("-", "_")
    SECURE_PROXY_SSL_HEADER = (f"HTTP_{header}", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "crmsync",
    "project",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's, Swagger UI's) with DEBUG off too, without a web server in front.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
WSGI_APPLICATION = "project.wsgi.application"


def database_from_url(url: str) -> dict[str, Any]:
    config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=60))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # A web server and a django-q2 cluster write at once: WAL lets readers go on,
        # IMMEDIATE takes the write lock up front (no upgrade deadlock), and the busy
        # timeout waits for it instead of failing with "database is locked".
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    return config


DATABASES = {
    "default": database_from_url(os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
# manage.py collectstatic fills it; WhiteNoise serves it.
STATIC_ROOT = os.environ.get("STATIC_ROOT") or BASE_DIR / "var" / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# One cache for every process (the API's throttles count there): Redis when REDIS_URL is
# set, else a database table (made by migrate, see project.apps).
if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
        }
    }
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "project_cache"}
    }

# django-q2: the ORM broker by default (no service needed), Redis when REDIS_URL is set.
Q_CLUSTER = {
    "name": "crmsync",
    "workers": 2,
    "timeout": 300,  # CRMSYNC["RUN_TIME_LIMIT"] stays below it
    "retry": 360,
    "max_attempts": 1,
    "catch_up": False,
    "label": "Task queue",
}
if os.environ.get("REDIS_URL"):
    Q_CLUSTER["redis"] = os.environ["REDIS_URL"]
else:
    Q_CLUSTER["orm"] = "default"

# crmsync's API views carry their own authentication, permissions, pagination, throttles
# and schema (CRMSYNC["API"]); these are for the project's own DRF views, if any.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

CRMSYNC: dict[str, Any] = {"CONNECTIONS": {}, "SYNC_INTERVAL": 60}
if os.environ.get("CRMSYNC_LEASE_SECONDS"):  # not part of the contract: for reliability tests
    CRMSYNC["LEASE_SECONDS"] = int(os.environ["CRMSYNC_LEASE_SECONDS"])
if os.environ.get("CRMSYNC_NOTION_TOKEN"):
    notion_options = {
        "token": os.environ["CRMSYNC_NOTION_TOKEN"],
        "database_id": os.environ.get("CRMSYNC_NOTION_DATABASE_ID"),
        "contacts_database_id": os.environ.get("CRMSYNC_NOTION_CONTACTS_DATABASE_ID") or None,
        "activities_database_id": os.environ.get("CRMSYNC_NOTION_ACTIVITIES_DATABASE_ID") or None,
        "requests_per_second": float(os.environ.get("CRMSYNC_NOTION_RPS") or 3),
    }
    if os.environ.get("CRMSYNC_NOTION_API_URL"):
        notion_options["base_url"] = os.environ["CRMSYNC_NOTION_API_URL"]
    CRMSYNC["CONNECTIONS"]["notion"] = {"ADAPTER": "notion", "OPTIONS": notion_options}

# Errors reach someone with DEBUG off: every WARNING and above (a 500 included, through
# django.request) goes to the console (gunicorn's error log, journald, ...), and 500s
# are mailed to ADMINS when it is set.
ADMINS = [admin if django.VERSION >= (6, 0) else (admin.split("@")[0], admin) for admin in env_list("ADMINS")]
SERVER_EMAIL = os.environ.get("SERVER_EMAIL", "root@localhost")
if os.environ.get("EMAIL_BACKEND"):
    EMAIL_BACKEND = os.environ["EMAIL_BACKEND"]
if os.environ.get("EMAIL_HOST"):
    EMAIL_HOST = os.environ["EMAIL_HOST"]
    EMAIL_PORT = int(os.environ.get("EMAIL_PORT") or 25)
    EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"require_debug_false": {"()": "django.utils.log.RequireDebugFalse"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "mail_admins": {
            "level": "ERROR",
            "filters": ["require_debug_false"],
            "class": "django.utils.log.AdminEmailHandler",
        },
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "django": {"handlers": ["console", "mail_admins"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # django-q2 adds no handler of its own when the root logger has one: its cluster's
        # "running" and task lines are INFO.
        "django-q": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "crmsync": {
            "handlers": ["console"],
            "level": os.environ.get("CRMSYNC_LOG_LEVEL", "INFO"),
            "propagate": False,
        },
    },
}
