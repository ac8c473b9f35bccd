"""Settings of the example project that runs crmsync.

Everything comes from the environment (DESIGN §5): SECRET_KEY, DEBUG, ALLOWED_HOSTS,
DATABASE_URL, REDIS_URL and the CRMSYNC_NOTION_* variables.
"""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DEBUG")
SECRET_KEY = os.environ.get("SECRET_KEY") or ("insecure-dev-key-only-for-debug" if DEBUG else "")
if not SECRET_KEY:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("Set the SECRET_KEY environment variable (or DEBUG=1 for local development).")
ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1").split(",") if h.strip()
]

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


def database_from_url(url: str) -> dict:
    config = dj_database_url.parse(url, conn_max_age=60)
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
STATIC_ROOT = BASE_DIR / "var" / "static"

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

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: unauthenticated requests get 401 with WWW-Authenticate, not 403.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {"anon": "60/minute", "user": "1200/minute"},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "crmsync API",
    "DESCRIPTION": "Deals, contacts and activities in two-way sync with a CRM.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Interactive docs from the sidecar package: they work offline, no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "crmsync.api.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {"OwnerEnum": "crmsync.choices.Owner", "WinnerEnum": "crmsync.choices.Winner"},
}

CRMSYNC = {"CONNECTIONS": {}, "SYNC_INTERVAL": 60}
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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "crmsync": {"handlers": ["console"], "level": os.environ.get("CRMSYNC_LOG_LEVEL", "INFO")},
    },
}
