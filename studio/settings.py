"""Bria Studio settings.

Everything an operator can change comes from an environment variable read through the
small typed helpers below. A bad value stops start-up with ImproperlyConfigured naming
the variable, so a typo never turns into a half-working studio.
"""

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.checks.security.base import REFERRER_POLICY_VALUES
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("STUDIO_VAR_DIR", BASE_DIR / "var"))


def env_str(name, default=""):
    return os.environ.get(name, default)


def env_bool(name, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


def env_int(name, default, minimum=None):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_url(name, default, schemes=("http", "https")):
    raw = os.environ.get(name) or default
    if not raw:
        return ""
    parts = urlsplit(raw)
    if parts.scheme not in schemes or not parts.netloc:
        allowed = " or ".join(schemes)
        raise ImproperlyConfigured(f"{name} must be a {allowed} URL, got {raw!r}")
    return raw.rstrip("/")


DEBUG = env_bool("DJANGO_DEBUG", True)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"

ALLOWED_HOSTS = [h.strip() for h in env_str("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()]

# Where the gateway (and people following share links) reach the studio. Webhook URLs
# and the image URLs handed to RMBG are built from it.
PUBLIC_BASE_URL = env_url("PUBLIC_BASE_URL", "http://127.0.0.1:8000")
CSRF_TRUSTED_ORIGINS = [PUBLIC_BASE_URL] if PUBLIC_BASE_URL.startswith("https://") else []

# HTTPS in production: everything below is on when DEBUG is off (`manage.py check
# --deploy` passes) and off in development, which runs over plain HTTP. Each can be
# overridden. The health check answers over plain HTTP too: load balancers probe it
# on the inside, without TLS.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
SESSION_COOKIE_HTTPONLY = env_bool("SESSION_COOKIE_HTTPONLY", True)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = env_bool("SECURE_CONTENT_TYPE_NOSNIFF", True)
SECURE_REFERRER_POLICY = env_str("SECURE_REFERRER_POLICY", "same-origin")
if SECURE_REFERRER_POLICY not in REFERRER_POLICY_VALUES:
    raise ImproperlyConfigured(f"SECURE_REFERRER_POLICY must be a Referrer-Policy, got {SECURE_REFERRER_POLICY!r}")
X_FRAME_OPTIONS = "DENY"
# Behind a proxy that ends TLS, the studio sees plain HTTP: name the header in which the
# proxy says the original scheme (e.g. X-Forwarded-Proto), or SECURE_SSL_REDIRECT loops.
# Only set it when the proxy always sets that header itself: a client could send it too.
_proxy_ssl_header = env_str("SECURE_PROXY_SSL_HEADER")
if _proxy_ssl_header:
    if not re.fullmatch(r"[A-Za-z0-9-]+", _proxy_ssl_header):
        raise ImproperlyConfigured(f"SECURE_PROXY_SSL_HEADER must be a header name, got {_proxy_ssl_header!r}")
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")

# Content-Security-Policy (django-csp) on every response: scripts and styles only from
# the studio's own static files, never inline, never eval. Pages keep their behaviour in
# static/js/ and their looks in static/css/.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    },
}

# Failed logins (studio/accounts/throttle.py): past this many in a window, per username
# and per client address, the login form refuses without checking the password. An
# address gets more, since an office behind one NAT shares it.
LOGIN_FAILURES_PER_USERNAME = env_int("LOGIN_FAILURES_PER_USERNAME", 5, minimum=1)
LOGIN_FAILURES_PER_ADDRESS = env_int("LOGIN_FAILURES_PER_ADDRESS", 20, minimum=1)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 15 * 60, minimum=1)
# Where the client's address is, behind a proxy: a header the proxy appends to (e.g.
# X-Forwarded-For; its last address, the one the proxy saw, is used). Empty: REMOTE_ADDR.
CLIENT_IP_HEADER = env_str("CLIENT_IP_HEADER")
if CLIENT_IP_HEADER and not re.fullmatch(r"[A-Za-z0-9-]+", CLIENT_IP_HEADER):
    raise ImproperlyConfigured(f"CLIENT_IP_HEADER must be a header name, got {CLIENT_IP_HEADER!r}")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "django_q",
    "ninja",
    "csp",
    "studio.accounts",
    "studio.billing",
    "studio.library",
    "studio.gallery",
    "studio.reports",
    "studio.activity",
    "studio.api",
    "jobs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "studio.api.middleware.APIErrorShape",
]

ROOT_URLCONF = "studio.urls"

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
                "studio.accounts.context_processors.current_team",
            ],
        },
    },
]

WSGI_APPLICATION = "studio.wsgi.application"

# Database: SQLite in WAL mode by default; PostgreSQL (or anything dj-database-url
# knows) through DATABASE_URL.
DATABASE_URL = env_str("DATABASE_URL")
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)
if DATABASE_URL:
    try:
        DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
    except (ValueError, KeyError) as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL we understand: {exc}") from None
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DATABASE_PREPARED_STATEMENTS:
        # Parameters bound by the server, and a statement the connection has run five
        # times is prepared: PostgreSQL then parses and plans a submission's statements
        # once per connection instead of once per request. Off (false) behind a pooler
        # in transaction mode that cannot keep prepared statements. The spend reports,
        # whose best plan depends on the period asked for, plan every run afresh
        # (studio.reports.queries.planned_per_run).
        DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH", str(VAR_DIR / "studio.sqlite3")),
            "OPTIONS": {
                # The queue (django-q2's ORM broker), the web process and the webhook
                # receiver all write to this file. WAL lets readers run beside a writer;
                # IMMEDIATE transactions take the write lock up front, so two writers
                # wait on the busy timeout instead of failing with "database is locked"
                # when a read transaction tries to upgrade.
                "init_command": (
                    "PRAGMA journal_mode=WAL;"
                    "PRAGMA synchronous=NORMAL;"
                    "PRAGMA busy_timeout=30000;"
                ),
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
            "TEST": {"NAME": str(VAR_DIR / "test-studio.sqlite3")},
        }
    }
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The task queue: django-q2 on the database by default, on Redis through REDIS_URL.
REDIS_URL = env_url("REDIS_URL", "", schemes=("redis", "rediss", "unix"))
Q_CLUSTER = {
    "name": "studio",
    "workers": env_int("Q_WORKERS", 4, minimum=1),
    # timeout < retry, so a task is never handed to a second worker while the first
    # one is still allowed to run it.
    "timeout": 90,
    "retry": 120,
    "max_attempts": 3,
    "ack_failures": True,
    "save_limit": 500,
    "catch_up": False,
    "poll": 0.1,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# The cache holds the API's per-key request counters, so every web process must share
# it: Redis through CACHE_URL (defaulting to REDIS_URL), else memory, which is right for
# the single process `make run` starts. Keys are prefixed; nothing here calls clear(),
# which would flush the whole Redis database, the queue's included.
CACHE_URL = env_url("CACHE_URL", REDIS_URL, schemes=("redis", "rediss", "unix"))
if CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL,
                          "KEY_PREFIX": "studio-cache"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "studio"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

# Private media: images live in storage and are only ever served through the studio's
# own access-checked views (never a public /media/ URL).
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media-not-public/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
UPLOAD_MAX_BYTES = 20 * 1024 * 1024
UPLOAD_MAX_PIXELS = 40_000_000
# Image URLs members paste are fetched by the studio; private and loopback addresses are
# refused (SSRF) unless this is on, for a studio that only serves a private network.
FETCH_ALLOW_PRIVATE_ADDRESSES = env_bool("FETCH_ALLOW_PRIVATE_ADDRESSES", False)

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
ADMINS = [("Studio staff", a.strip()) for a in env_str("STAFF_ALERT_EMAILS").split(",") if a.strip()]

# The Pixazo gateway. The defaults point at the bundled emulator that `make run` starts.
PIXAZO_BASE_URL = env_url("PIXAZO_BASE_URL", "http://127.0.0.1:8765")
PIXAZO_API_KEY = env_str("PIXAZO_API_KEY", "emulator-key" if DEBUG else "")
if not PIXAZO_API_KEY:
    raise ImproperlyConfigured("PIXAZO_API_KEY must be set when DJANGO_DEBUG is off")
PIXAZO_TIMEOUT_SECONDS = env_int("PIXAZO_TIMEOUT_SECONDS", 15, minimum=1)
PIXAZO_MAX_ATTEMPTS = env_int("PIXAZO_MAX_ATTEMPTS", 4, minimum=1)
PIXAZO_BACKOFF_MS = env_int("PIXAZO_BACKOFF_MS", 500, minimum=0)
# Webhooks need a URL the gateway can reach. The real gateway only calls HTTPS; the
# emulator calls plain HTTP when started with --allow-http-webhooks.
PIXAZO_WEBHOOKS = env_bool("PIXAZO_WEBHOOKS", True)
PIXAZO_ALLOW_HTTP_WEBHOOKS = env_bool("PIXAZO_ALLOW_HTTP_WEBHOOKS", DEBUG)
PIXAZO_WEBHOOK_MODE = env_str("PIXAZO_WEBHOOK_MODE", "sync")
if PIXAZO_WEBHOOK_MODE not in ("terminal", "sync"):
    raise ImproperlyConfigured(f"PIXAZO_WEBHOOK_MODE must be terminal or sync, got {PIXAZO_WEBHOOK_MODE!r}")

# Requests per minute per team API key, on both APIs (429 with Retry-After beyond).
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", 120, minimum=1)
# Like the gateway, the studio calls API clients back over HTTPS only, unless this is on.
API_ALLOW_HTTP_CALLBACKS = env_bool("API_ALLOW_HTTP_CALLBACKS", DEBUG)
# The native API's lists: 50 items a page unless `limit` asks for up to 100.
NINJA_PAGINATION_PER_PAGE = 50
NINJA_PAGINATION_MAX_LIMIT = 100
NINJA_PAGINATION_CLASS = "studio.api.schemas.Pages"

# Money, in integer micro-dollars ($1 = 1_000_000).
PRICES_MICROS = {"fibo": 40_000, "rmbg": 18_000}
# The gateway bills COMPLETED and FAILED; ERROR is "system error — not charged".
CHARGED_STATUSES = frozenset({"COMPLETED", "FAILED"})
DEMO_CREDIT_MICROS = 10_000_000
# The gateway's promotion, passed on: a team's first top-up earns this bonus (0: none).
FIRST_TOPUP_BONUS_MICROS = env_int("FIRST_TOPUP_BONUS_MICROS", 5_000_000, minimum=0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {
        "redact_tokens": {"()": "studio.logging.RedactWebhookTokens"},
        "drop_enqueued": {"()": "studio.logging.DropEnqueued"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_tokens"]},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        "httpx": {"level": "WARNING"},
        "django-q": {"filters": ["drop_enqueued"]},
    },
}
