"""Bria Studio settings.

Everything an operator can change comes from an environment variable read through the
small typed helpers below. A bad value stops start-up with ImproperlyConfigured naming
the variable, so a typo never turns into a half-working studio.
"""

import contextlib
import os
import re
import tempfile
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.checks.security.base import REFERRER_POLICY_VALUES
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management.utils import get_random_secret_key
from django.core.validators import validate_email

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


def env_email(name, default):
    """An email address, optionally with a display name: `Bria Studio <studio@example.com>`."""
    return _email_address(name, os.environ.get(name) or default)


def env_emails(name):
    """Email addresses separated by commas."""
    return [_email_address(name, a.strip()) for a in env_str(name).split(",") if a.strip()]


def _email_address(name, raw):
    try:
        validate_email(parseaddr(raw)[1])
    except ValidationError:
        raise ImproperlyConfigured(f"{name} must be an email address, got {raw!r}") from None
    return raw


def dev_secret_key(path):
    """The development key: random, made by the first process that needs it and kept in
    `path` (under var/, which git ignores), so every process of `make run` on a checkout
    signs with the same key and no key printed in the source signs anything. Written
    whole to a private file, then linked into place: of two processes starting at once,
    the first link wins and both read its key."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w") as file:
            file.write(get_random_secret_key())
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
        os.unlink(draft)
    return path.read_text()


DEBUG = env_bool("DJANGO_DEBUG", True)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
    SECRET_KEY = dev_secret_key(VAR_DIR / "secret_key")

ALLOWED_HOSTS = [h.strip() for h in env_str("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()]

# Where the gateway (and people following share links) reach the studio. Webhook URLs
# and the image URLs handed to RMBG are built from it.
PUBLIC_BASE_URL = env_url("PUBLIC_BASE_URL", "http://127.0.0.1:8000")
CSRF_TRUSTED_ORIGINS = [PUBLIC_BASE_URL] if PUBLIC_BASE_URL.startswith("https://") else []

# HTTPS in production: everything below is on when DEBUG is off (`manage.py check
# --deploy` passes) and off in development, which runs over plain HTTP. Each can be
# overridden. The health checks and the metrics answer over plain HTTP too: load
# balancers and Prometheus probe them on the inside, without TLS.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
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

# Failed logins (django-allauth's "login_failed" rate limit, keyed in
# studio/accounts/adapter.py): past this many in a window for one username from one
# client address, the login form refuses that pair without checking the password. The
# same username from another address, the real user's, is still let in, and other
# usernames from the attacker's address too (an office behind one NAT shares it).
LOGIN_FAILURES_PER_USERNAME = env_int("LOGIN_FAILURES_PER_USERNAME", 5, minimum=1)
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
    "studio.worker",  # before django_q: its `qcluster` command stops in bounded time
    "django_q",
    "ninja",
    "csp",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "studio.accounts",
    "studio.billing",
    "studio.library",
    "studio.gallery",
    "studio.reports",
    "studio.activity",
    "studio.api",
    "studio.ops",
    "jobs",
    "devtools",  # the emulator, chaos and bench commands; nothing in it loads with the app
]

MIDDLEWARE = [
    "studio.ops.requestid.RequestIdMiddleware",
    # Outside the others, so it shapes the APIs' errors whichever of them answers.
    "studio.api.middleware.APIErrorShape",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "studio.accounts.mfa.TwoFactorRequired",  # staff without 2FA are sent to enrol before the admin
    "studio.textinput.TextOnlyQuery",  # inside the others: its 400 gets their headers
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
# Server-side cursors (a streamed CSV's rows, .iterator()) live beyond one transaction in
# autocommit: off (false) behind a pooler in transaction mode, which would hand the next
# fetch to another server connection that has no such cursor.
DATABASE_SERVER_SIDE_CURSORS = env_bool("DATABASE_SERVER_SIDE_CURSORS", True)
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
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = not DATABASE_SERVER_SIDE_CURSORS
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
            # SQLITE_TEST_PATH lets two test runs on one checkout keep apart.
            "TEST": {"NAME": env_str("SQLITE_TEST_PATH", str(VAR_DIR / "test-studio.sqlite3"))},
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
# How long a stopping `qcluster` lets running tasks reach a safe point before it kills
# them as a crash would (studio/worker/management/commands/qcluster.py): under the
# platform's own grace period (Docker's is 10 s).
Q_STOP_SECONDS = env_int("Q_STOP_SECONDS", 7, minimum=1)
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
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",  # by username or email
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Accounts (django-allauth; the studio's hooks are in studio/accounts/adapter.py). Email
# verification is optional: an unverified address still logs in (the demo user has
# none), and the verification link is sent, from the queue, to every new address.
ACCOUNT_ADAPTER = "studio.accounts.adapter.AccountAdapter"
ACCOUNT_FORMS = {"signup": "studio.accounts.forms.SignupForm", "login": "studio.accounts.forms.LoginForm"}
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "optional"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_CHANGE_EMAIL = True  # one address per user: a new one replaces it once verified
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_SESSION_REMEMBER = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Bria Studio] "
# A reset link works once (its token hashes the password it replaces) for 3 hours.
PASSWORD_RESET_TIMEOUT = 3 * 60 * 60
# Two-factor (allauth.mfa): an authenticator app's codes, and recovery codes for when it
# is lost. Owners may require it of their team (Team.requires_2fa); staff need it for
# the admin (studio/accounts/mfa.py).
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Bria Studio"
MFA_TOTP_TOLERANCE = 1  # a phone's clock a step (30 s) off still works; a login's code works once
ACCOUNT_RATE_LIMITS = {
    # The key is the username and the client's address together (see LOGIN_FAILURES_PER_USERNAME).
    "login_failed": f"{LOGIN_FAILURES_PER_USERNAME}/{LOGIN_FAILURE_WINDOW_SECONDS}s/key",
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Where the release step collects static files (whitenoise serves them from there).
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))

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
# Media on an S3-compatible bucket (AWS S3, MinIO, R2…) when AWS_STORAGE_BUCKET_NAME is
# set, under django-storages' own names, so every web and worker machine sees the same
# images. The bucket stays private: objects are written without an ACL, and after the
# access check the media views redirect to a presigned URL that expires
# (studio/library/media.py); only the gateway's RMBG inputs get an hour.
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
if AWS_STORAGE_BUCKET_NAME:
    from botocore.config import Config as _S3Config

    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", AWS_STORAGE_BUCKET_NAME):
        raise ImproperlyConfigured(f"AWS_STORAGE_BUCKET_NAME must be an S3 bucket name, got {AWS_STORAGE_BUCKET_NAME!r}")
    # Empty for AWS itself; MinIO, R2 or the tests' moto server answer at their own URL.
    AWS_S3_ENDPOINT_URL = env_url("AWS_S3_ENDPOINT_URL", "") or None
    AWS_S3_REGION_NAME = env_str("AWS_S3_REGION_NAME") or None
    if AWS_S3_REGION_NAME and not re.fullmatch(r"[a-z0-9-]+", AWS_S3_REGION_NAME):
        raise ImproperlyConfigured(f"AWS_S3_REGION_NAME must be a region name, got {AWS_S3_REGION_NAME!r}")
    if not (AWS_S3_REGION_NAME or AWS_S3_ENDPOINT_URL):
        raise ImproperlyConfigured("AWS_S3_REGION_NAME must be set for a bucket on AWS: presigned URLs name it")
    # Both halves of the key, or neither for boto3's own chain (an instance role, ~/.aws).
    AWS_ACCESS_KEY_ID = env_str("AWS_ACCESS_KEY_ID") or None
    AWS_SECRET_ACCESS_KEY = env_str("AWS_SECRET_ACCESS_KEY") or None
    if bool(AWS_ACCESS_KEY_ID) != bool(AWS_SECRET_ACCESS_KEY):
        _missing = "AWS_SECRET_ACCESS_KEY" if AWS_ACCESS_KEY_ID else "AWS_ACCESS_KEY_ID"
        raise ImproperlyConfigured(f"{_missing} must be set with the other half of the access key")
    # Path style (https://host/bucket/key) suits MinIO and other self-hosted stores;
    # AWS wants the bucket in the host name.
    AWS_S3_ADDRESSING_STYLE = env_str("AWS_S3_ADDRESSING_STYLE", "path" if AWS_S3_ENDPOINT_URL else "virtual")
    if AWS_S3_ADDRESSING_STYLE not in ("path", "virtual"):
        raise ImproperlyConfigured(f"AWS_S3_ADDRESSING_STYLE must be path or virtual, got {AWS_S3_ADDRESSING_STYLE!r}")
    # How long the presigned URL a browser is redirected to lasts (SigV4 allows a week).
    AWS_QUERYSTRING_EXPIRE = env_int("AWS_QUERYSTRING_EXPIRE", 300, minimum=10)
    if AWS_QUERYSTRING_EXPIRE > 7 * 24 * 3600:
        raise ImproperlyConfigured(f"AWS_QUERYSTRING_EXPIRE must be at most 604800 (a week), got {AWS_QUERYSTRING_EXPIRE}")
    AWS_QUERYSTRING_AUTH = True
    AWS_DEFAULT_ACL = None
    AWS_S3_FILE_OVERWRITE = True  # names are unique per asset: no HEAD request before each write
    # Signature v4 (every region, MinIO, moto). A stalled store fails a request within
    # 3 x (5 + 10) s rather than botocore's minutes: a worker's task fails, and the job's
    # next refresh tries again, instead of being killed at the queue's timeout (90 s).
    AWS_S3_CLIENT_CONFIG = _S3Config(signature_version="s3v4", s3={"addressing_style": AWS_S3_ADDRESSING_STYLE},
                                     connect_timeout=5, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})
    STORAGES["default"] = {"BACKEND": "storages.backends.s3.S3Storage"}
    # Pages' <img> tags follow the media views' redirects to the bucket: its origin is an
    # image source (the host botocore signs for; tests/test_storage_s3.py compares them).
    _s3 = urlsplit(AWS_S3_ENDPOINT_URL or "https://" + ("s3.amazonaws.com" if AWS_S3_REGION_NAME == "us-east-1"
                                                          else f"s3.{AWS_S3_REGION_NAME}.amazonaws.com"))
    _bucket_in_host = AWS_S3_ADDRESSING_STYLE == "virtual" and "." not in AWS_STORAGE_BUCKET_NAME
    MEDIA_BUCKET_ORIGIN = f"{_s3.scheme}://{AWS_STORAGE_BUCKET_NAME + '.' if _bucket_in_host else ''}{_s3.netloc}"
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["img-src"].append(MEDIA_BUCKET_ORIGIN)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
UPLOAD_MAX_BYTES = 20 * 1024 * 1024
# Uploads are bounded before they are read (studio/uploads.py): a multipart body over
# UPLOAD_MAX_BYTES + DATA_UPLOAD_MAX_MEMORY_SIZE is refused from its Content-Length, and
# file data stops being read past UPLOAD_MAX_BYTES.
FILE_UPLOAD_HANDLERS = [
    "studio.uploads.BoundedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
UPLOAD_MAX_PIXELS = 40_000_000
# Image URLs members paste are fetched by the studio; private and loopback addresses are
# refused (SSRF) unless this is on, for a studio that only serves a private network.
FETCH_ALLOW_PRIVATE_ADDRESSES = env_bool("FETCH_ALLOW_PRIVATE_ADDRESSES", False)

# Email: SMTP under Django's own names when EMAIL_HOST is set, the console (the process's
# output) otherwise; EMAIL_BACKEND still overrides. Every email is sent by a queued task
# (studio/mail.py), never by a request, so only the worker ever talks to the server.
_email_host = env_str("EMAIL_HOST")
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend" if _email_host
                        else "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = _email_host or "localhost"  # Django's default, for an SMTP EMAIL_BACKEND set by hand
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are exclusive: STARTTLS (587) or implicit TLS (465)")
EMAIL_PORT = env_int("EMAIL_PORT", 465 if EMAIL_USE_SSL else 587 if EMAIL_USE_TLS else 25, minimum=1)
if EMAIL_PORT > 65535:
    raise ImproperlyConfigured(f"EMAIL_PORT must be a TCP port, got {EMAIL_PORT}")
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
# Each step of an SMTP conversation waits this long at most. A send takes a few steps,
# which must end well inside the queue's task timeout (90 s), or the task is killed
# instead of being offered again.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
if EMAIL_TIMEOUT > 20:
    raise ImproperlyConfigured(f"EMAIL_TIMEOUT must be at most 20 (seconds), got {EMAIL_TIMEOUT}")
DEFAULT_FROM_EMAIL = env_email("DEFAULT_FROM_EMAIL", "Bria Studio <studio@localhost>")
SERVER_EMAIL = env_email("SERVER_EMAIL", DEFAULT_FROM_EMAIL)  # the sender of staff alerts
EMAIL_SUBJECT_PREFIX = "[Bria Studio] "
ADMINS = [("Studio staff", address) for address in env_emails("STAFF_ALERT_EMAILS")]

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

# Operations (studio/ops/): /readyz, /metrics, logs and error reports.
# /metrics answers to `Authorization: Bearer $METRICS_TOKEN`, and is off (404) without it.
METRICS_TOKEN = env_str("METRICS_TOKEN")
if METRICS_TOKEN and not re.fullmatch(r"[\x21-\x7e]{16,}", METRICS_TOKEN):
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 16 printable characters without spaces")
# A worker machine without a web process serves its own /metrics on this port (0: off).
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0, minimum=0)
if WORKER_METRICS_PORT and not (METRICS_TOKEN and WORKER_METRICS_PORT <= 65535):
    raise ImproperlyConfigured("WORKER_METRICS_PORT must be a TCP port, with METRICS_TOKEN set")
# plain: "time level logger message"; json: one JSON object a line, with the request id.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, got {LOG_FORMAT!r}")
SENTRY_DSN = env_url("SENTRY_DSN", "")
if SENTRY_DSN:
    from studio.ops.sentry import start_error_reports

    start_error_reports(SENTRY_DSN, environment=env_str("SENTRY_ENVIRONMENT", "development" if DEBUG else "production"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "studio.logging.JsonFormatter"},
    },
    "filters": {
        "redact_tokens": {"()": "studio.logging.RedactSecrets"},
        "request_id": {"()": "studio.logging.RequestIdFilter"},
        "drop_enqueued": {"()": "studio.logging.DropEnqueued"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT,
                    "filters": ["redact_tokens", "request_id"]},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        "httpx": {"level": "WARNING"},
        "django-q": {"filters": ["drop_enqueued"]},
    },
}
