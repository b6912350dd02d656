"""/healthz is liveness, /readyz readiness (studio/ops/health.py): the probes a load
balancer sends. The outages are real: a redis-server of the test's own that is frozen
and then stopped, a database port that refuses connections, each under a real gunicorn."""

import signal
import sys
import time
from datetime import timedelta

import httpx
import pytest
import redis
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.signing import SignedPackage

from jobs.gateway import GatewayError, PixazoClient
from studio.ops import health
from tests.stack import Process, bound_socket, database_env, free_port, wait_until

CHECKS = {"database", "cache", "broker", "storage", "gateway", "queue"}


@pytest.fixture(autouse=True)
def no_gateway_note(monkeypatch):
    """Each test starts without a note of the gateway's last answer (this process's, or
    the shared cache's)."""
    monkeypatch.setattr(health, "_last_note", {"at": 0.0, "ok": None})
    store = health.shared_cache_redis() or cache
    store.delete(health.GATEWAY_NOTE_KEY)
    yield
    store.delete(health.GATEWAY_NOTE_KEY)


def readyz():
    response = Client(HTTP_HOST="127.0.0.1").get("/readyz")
    return response.status_code, response.json()


def test_healthz_answers_without_asking_anything_else():
    response = Client(HTTP_HOST="127.0.0.1").get("/healthz")
    assert (response.status_code, response.json()) == (200, {"ok": True})


def test_readyz_reports_every_dependency(db, settings):
    status, body = readyz()
    assert status == 200 and body["status"] == "ok"
    checks = body["checks"]
    assert set(checks) == CHECKS
    assert {name: checks[name]["state"] for name in ("database", "cache", "broker", "storage")} == dict.fromkeys(
        ("database", "cache", "broker", "storage"), "up")
    assert checks["gateway"] == {"state": "unknown", "seconds": checks["gateway"]["seconds"]}
    assert checks["queue"]["state"] == "ok"
    # The storage's known object, written by the first probe and only looked at since.
    assert (settings.MEDIA_ROOT / health.STORAGE_MARKER).read_bytes() == b"ok\n"


def test_readyz_refuses_other_methods(db):
    assert Client(HTTP_HOST="127.0.0.1").post("/readyz").status_code == 405


def test_readyz_reports_the_gateway_as_last_answered_without_calling_it(db, emulator):
    with PixazoClient() as client, pytest.raises(GatewayError):
        client.status("no-such-request")  # the gateway answers 404: it is there
    before = len(emulator.requests())
    status, body = readyz()
    assert (status, body["status"]) == (200, "ok")
    assert body["checks"]["gateway"]["state"] == "up" and body["checks"]["gateway"]["last_answer"] == "404"

    emulator.faults(status=[503, 503, 503])
    with PixazoClient() as client, pytest.raises(GatewayError):
        client.status("no-such-request")
    status, body = readyz()
    assert (status, body["status"]) == (200, "degraded"), "a failing gateway degrades, it does not take us out"
    assert body["checks"]["gateway"]["state"] == "failing" and body["checks"]["gateway"]["last_answer"] == "503"
    assert len(emulator.requests()) == before, "the probes never called the gateway"


@pytest.mark.django_db(transaction=True)  # the probe reads the queue on a connection of its own
def test_a_task_waiting_too_long_degrades_readiness():
    broker = get_broker()
    broker.purge_queue()
    queued_long_ago = timezone.now() - timedelta(seconds=health.QUEUE_SLOW_AFTER + 30)
    broker.enqueue(SignedPackage.dumps({"id": "t1", "name": "waiting", "func": "math.floor", "args": (1,),
                                        "kwargs": {}, "started": queued_long_ago}))
    try:
        status, body = readyz()
    finally:
        broker.purge_queue()
    assert (status, body["status"]) == (200, "degraded")
    queue = body["checks"]["queue"]
    assert (queue["state"], queue["depth"]) == ("slow", 1)
    assert health.QUEUE_SLOW_AFTER + 30 <= queue["oldest_task_seconds"] < health.QUEUE_SLOW_AFTER + 60


# -- outages, under a real gunicorn -------------------------------------------------


def gunicorn(tmp_path, workers=1, **env):
    """The web process as production runs it (README: Health, metrics and logs), answering."""
    port = free_port()
    web = Process("gunicorn", [sys.executable, "-m", "gunicorn", "-c", "python:studio.ops.gunicorn", "studio.wsgi",
                               "--bind", f"127.0.0.1:{port}", "--workers", str(workers)],
                  {"MEDIA_ROOT": str(tmp_path / "media"), **env}, tmp_path)
    web.url = f"http://127.0.0.1:{port}"
    try:
        web.wait_for_http(f"{web.url}/healthz")
    except RuntimeError:
        web.stop()
        raise
    return web


def probe(web):
    """(status, body, seconds the answer took)."""
    started = time.monotonic()
    response = httpx.get(f"{web.url}/readyz", timeout=30)
    return response.status_code, response.json(), time.monotonic() - started


class RedisServer:
    """A redis-server of the test's own, on a free port, that the test may freeze, stop
    and start again (never the machine's Redis)."""

    def __init__(self, tmp_path):
        self.port, self.tmp_path = free_port(), tmp_path
        self.start()

    def start(self):
        self.process = Process("redis", ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no", "--daemonize", "no"], {}, self.tmp_path)
        wait_until(self.answers, seconds=20, what="redis-server answering")

    def answers(self):
        try:
            return redis.Redis(port=self.port, socket_timeout=1).ping()
        except redis.RedisError:
            return False

    def signal(self, signum):
        self.process.popen.send_signal(signum)

    def stop(self):
        self.process.stop()


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path)
    yield server
    server.signal(signal.SIGCONT)
    server.stop()


@pytest.mark.django_db(transaction=True)
def test_readyz_answers_503_within_seconds_while_redis_is_frozen_or_stopped(own_redis, tmp_path):
    url = f"redis://127.0.0.1:{own_redis.port}/0"
    web = gunicorn(tmp_path, **database_env(), REDIS_URL=url, CACHE_URL=url)
    try:
        status, body, _ = probe(web)
        assert (status, body["status"]) == (200, "ok"), body
        assert (body["checks"]["cache"]["backend"], body["checks"]["broker"]["backend"]) == ("redis", "redis")

        # Frozen: connections are accepted and never answered, the worst case.
        own_redis.signal(signal.SIGSTOP)
        status, body, took = probe(web)
        assert (status, body["status"]) == (503, "down")
        assert (body["checks"]["cache"]["state"], body["checks"]["broker"]["state"]) == ("down", "down")
        assert body["checks"]["database"]["state"] == "up" and body["checks"]["storage"]["state"] == "up"
        assert took < health.DEADLINE + 1, f"/readyz took {took:.1f} s with Redis frozen"

        own_redis.signal(signal.SIGCONT)
        assert probe(web)[0] == 200

        own_redis.stop()
        status, body, took = probe(web)
        assert (status, body["checks"]["cache"]["state"], body["checks"]["broker"]["state"]) == (503, "down", "down")
        assert took < health.DEADLINE + 1, f"/readyz took {took:.1f} s with Redis stopped"

        own_redis.start()  # the same port
        wait_until(lambda: probe(web)[0] == 200, seconds=15, what="/readyz 200 once Redis is back")
    finally:
        web.stop()


def test_readyz_answers_503_when_the_database_refuses_connections(tmp_path):
    refusing = bound_socket()
    try:
        port = refusing.getsockname()[1]
        web = gunicorn(tmp_path, DATABASE_URL=f"postgres://studio@127.0.0.1:{port}/studio", REDIS_URL="", CACHE_URL="")
        try:
            status, body, took = probe(web)
        finally:
            web.stop()
    finally:
        refusing.close()
    assert (status, body["status"]) == (503, "down")
    checks = body["checks"]
    # The ORM broker lives in that database too; the storage does not.
    states = (checks["database"]["state"], checks["broker"]["state"], checks["storage"]["state"])
    assert states == ("down", "down", "up")
    assert checks["database"]["error"] == "OperationalError" and checks["queue"] == {"state": "unknown"}
    assert took < health.DEADLINE + 1
