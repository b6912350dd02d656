"""The shared cast and the real parts tests run against.

Cast: `owner` and `member` and `viewer` of team `acme` (which has $1.00), `outsider`
who owns team `other`, and `staff`. The gateway is the bundled emulator, a real HTTP
server on a free port, reset before each test that uses it. Media are on the local disk,
or in a private bucket of a local S3 server (moto) for a test that asks for `s3_media`
(tests/s3.py).
"""

import copy
import time
import uuid
from types import SimpleNamespace

import httpx
import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django_q.brokers import get_broker

from devtools.emulator.server import EmulatorServer
from studio.accounts.models import Membership, Role, Team
from studio.api import ratelimit
from studio.billing import money
from tests.resolver import public_names  # noqa: F401 (a fixture for every test)
from tests.s3 import media_env, s3_media, s3_server  # noqa: F401 (fixtures for every test module)
from tests.smtp import empty_queue, silent_smtp_server, smtp_server  # noqa: F401 (fixtures for every test module)
from tests.stack import Process, database_env
from tests.totp import enrol

ACME_CREDIT = 1_000_000  # $1.00


def make_user(username, **extra):
    return User.objects.create_user(username, f"{username}@example.com", "pw-for-tests-only", **extra)


@pytest.fixture
def owner(db):
    return make_user("olivia")


@pytest.fixture
def team(owner):
    team = Team.create_for(owner, "Acme", slug="acme")
    with override_settings(FIRST_TOPUP_BONUS_MICROS=0):  # a round $1.00 to count from
        money.top_up(team, ACME_CREDIT, reason="test credit", key="acme-credit")
    team.wallet.refresh_from_db()
    return team


def _join(team, username, role):
    user = make_user(username)
    Membership.objects.create(team=team, user=user, role=role)
    return user


@pytest.fixture
def member(team):
    return _join(team, "mark", Role.MEMBER)


@pytest.fixture
def viewer(team):
    return _join(team, "vera", Role.VIEWER)


@pytest.fixture
def outsider(db):
    user = make_user("oscar")
    Team.create_for(user, "Other", slug="other")
    return user


@pytest.fixture
def staff(db):
    """Enrolled in two-factor authentication, which the admin requires of staff."""
    user = make_user("stan", is_staff=True, is_superuser=True)
    enrol(user)
    return user


def login(user):
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    return client


@pytest.fixture
def membership(team, member):
    return Membership.objects.select_related("team", "user").get(team=team, user=member)


@pytest.fixture(scope="session", autouse=True)
def cache_of_this_run():
    """Rate-limit counters (allauth's, the API's) live in the shared cache, which is Redis
    when the tests run on it: each run counts under a key prefix of its own, so it never
    inherits the counts of the run before (allauth sends one verification email per
    address every three minutes, say). The cache is never cleared: that would flush the
    queue's Redis database too."""
    caches = copy.deepcopy(django_settings.CACHES)
    caches["default"]["KEY_PREFIX"] = f"studio-cache-test-{uuid.uuid4().hex[:12]}"
    with override_settings(CACHES=caches):
        yield


@pytest.fixture(scope="session")
def emulator_server():
    server = EmulatorServer(port=0, api_key="test-key", delay=0.3, allow_http_webhooks=True, duplicate_rate=0.0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def emulator(emulator_server, settings):
    """The emulator, reset, with the studio pointed at it."""
    emulator_server.reset()
    settings.PIXAZO_BASE_URL = emulator_server.url
    settings.PIXAZO_API_KEY = "test-key"
    settings.PIXAZO_BACKOFF_MS = 10
    settings.PIXAZO_TIMEOUT_SECONDS = 2
    settings.PIXAZO_MAX_ATTEMPTS = 3
    settings.PIXAZO_WEBHOOKS = False
    return Emulator(emulator_server)


class Emulator:
    """Test-side handle on the emulator's control API, over HTTP like any client."""

    def __init__(self, server):
        self.server = server
        self.url = server.url

    def _post(self, path, body):
        response = httpx.post(f"{self.url}/_emulator/{path}", json=body, timeout=5)
        response.raise_for_status()
        return response.json() if response.content else None

    def faults(self, **queues):
        return self._post("faults", queues)

    def pending_faults(self):
        """The injected faults no request has met yet, by kind (adding none reads them):
        a fault leaves its queue when a request arrives, so a test can wait on that."""
        return self.faults(submit=[])["faults"]

    def outcomes(self, *outcomes):
        return self._post("outcomes", {"next": list(outcomes)})

    def configure(self, **config):
        return self._post("config", config)

    def complete(self, request_id, status="COMPLETED"):
        return self._post(f"complete/{request_id}", {"status": status})

    def requests(self):
        return httpx.get(f"{self.url}/_emulator/requests", timeout=5).json()["requests"]

    def deliveries(self):
        return httpx.get(f"{self.url}/_emulator/requests", timeout=5).json()["deliveries"]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """The cast's passwords are only ever checked by tests: a slow hash buys nothing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def rate_clock(monkeypatch):
    """The API rate limiter's clock, stopped 30 s into the current minute. It counts per
    clock minute, so a test's burst of requests must never straddle two windows."""
    stopped = time.time() // ratelimit.WINDOW_S * ratelimit.WINDOW_S + 30
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: stopped))
    return stopped


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Each test writes its images to its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def worker_env():
    """More environment for the `worker`: a test module overrides this fixture (e.g. to
    point the worker at an SMTP server, tests/smtp.py)."""
    return {}


@pytest.fixture
def worker(emulator, live_server, settings, tmp_path, worker_env):
    """A real `manage.py qcluster`, pointed at this test's database, storage, emulator and
    live server (where the emulator's webhooks land)."""
    settings.PUBLIC_BASE_URL = live_server.url
    settings.PIXAZO_WEBHOOKS = True
    settings.PIXAZO_ALLOW_HTTP_WEBHOOKS = True
    emulator.configure(delay=0.6, duplicate_rate=1.0)
    get_broker().purge_queue()  # nothing left over from other tests (Redis outlives them)
    env = {
        **database_env(),
        **media_env(settings),
        "PIXAZO_BASE_URL": emulator.url,
        "PIXAZO_API_KEY": "test-key",
        "PIXAZO_BACKOFF_MS": "10",
        "PUBLIC_BASE_URL": live_server.url,
        "PIXAZO_ALLOW_HTTP_WEBHOOKS": "true",
        "Q_WORKERS": "2",
        **worker_env,
    }
    process = Process.manage("qcluster", ["qcluster"], env, tmp_path)
    yield process
    process.stop()
