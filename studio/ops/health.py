"""Readiness: can this studio serve, and how are the parts it depends on?

`readiness()` answers /readyz. The database, the cache when it is shared (Redis), the
broker and the media storage matter: one of them down makes the whole answer "down"
(503, the load balancer stops sending requests here). The gateway and the queue are
reported and can only make it "degraded" (200): the studio still takes submissions,
which wait, held, for the gateway or for a worker.

Each check runs in a thread of its own and the probe waits DEADLINE seconds at most, so
a dead or stalled dependency turns into a fast 503 instead of a hung probe. The Redis
checks use a client of their own with one-second timeouts and no retries (the cache's
and the broker's clients wait and retry far longer), so their threads end promptly too.

The gateway is never called from here: the gateway client notes how the gateway last
answered (note_gateway_answer) in the shared cache's Redis, at most every few seconds
per process and through the same short-timeout client, and the probe reads that note.
"""

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor, wait
from functools import cache

import redis
from django.conf import settings
from django.core import signing
from django.core.cache import cache as default_cache
from django.core.cache import caches
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, connections
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import OrmQ
from django_q.signing import SignedPackage
from redis.backoff import NoBackoff
from redis.retry import Retry

from jobs.queue import uses_orm_broker

logger = logging.getLogger(__name__)

DEADLINE = 3.0
REDIS_TIMEOUT = 1.0
# A task waiting longer than this means the workers are missing or overwhelmed.
QUEUE_SLOW_AFTER = 60
# A known object in the media storage: probed with exists(), written the first time.
STORAGE_MARKER = "ops/readyz"
GATEWAY_NOTE_KEY = "studio:ops:gateway-last-answer"
GATEWAY_NOTE_EVERY = 5
GATEWAY_FORGET_AFTER = 600

# Checks whose failure takes the studio out of service, and those that only degrade it.
CRITICAL = ("database", "cache", "broker", "storage")


def readiness():
    """{"status": "ok" | "degraded" | "down", "checks": {name: {"state": …, …}}}."""
    checks = {"database": check_database, "cache": check_cache, "broker": check_broker,
              "storage": check_storage, "gateway": gateway_last_seen}
    pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="readyz")
    futures = {name: pool.submit(_run, check) for name, check in checks.items()}
    wait(futures.values(), timeout=DEADLINE)
    # A stalled check's thread is left to its own client timeout; the answer is not.
    pool.shutdown(wait=False, cancel_futures=True)
    results = {name: future.result() if future.done() else {"state": "down", "error": f"no answer in {DEADLINE:g} s"}
               for name, future in futures.items()}
    if results["gateway"]["state"] == "down":
        results["gateway"] = {"state": "unknown", "error": results["gateway"]["error"]}
    results["queue"] = _queue_state(results["broker"])
    return {"status": _overall(results), "checks": results}


def _run(check):
    started = time.monotonic()
    try:
        result = check()
    except Exception as exc:  # whatever a dependency's client raises, the dependency is down
        logger.warning("readiness: %s failed: %r", check.__name__, exc)
        result = {"state": "down", "error": type(exc).__name__}
    finally:
        connections.close_all()  # this thread's own connections, opened for the check
    return {**result, "seconds": round(time.monotonic() - started, 4)}


def _overall(results):
    if any(results[name]["state"] == "down" for name in CRITICAL):
        return "down"
    if results["gateway"]["state"] == "failing" or results["queue"]["state"] == "slow":
        return "degraded"
    return "ok"


# -- the dependencies that matter ---------------------------------------------------


def check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"state": "up", "vendor": connection.vendor}


def check_cache():
    """A per-process cache has nothing to reach; a shared one must answer."""
    backend = settings.CACHES["default"]["BACKEND"]
    if client := shared_cache_redis():
        client.ping()
        return {"state": "up", "backend": "redis"}
    if backend.endswith(("LocMemCache", "DummyCache")):
        return {"state": "up", "backend": "local"}
    caches["default"].get("ops:readyz")
    return {"state": "up", "backend": backend.rsplit(".", 1)[-1]}


def check_broker():
    """The broker answers, with the queue's figures (see _queue_state)."""
    depth, oldest = queue_figures()
    return {"state": "up", "backend": "orm" if uses_orm_broker() else "redis", "depth": depth, "oldest": oldest}


def check_storage():
    """One cheap round trip to the media storage (a HEAD request on S3); the marker is
    written the first time, which also proves the bucket exists and takes writes."""
    if not default_storage.exists(STORAGE_MARKER):
        name = default_storage.save(STORAGE_MARKER, ContentFile(b"ok\n"))
        if name != STORAGE_MARKER:  # another probe wrote it first
            default_storage.delete(name)
    return {"state": "up", "backend": settings.STORAGES["default"]["BACKEND"].rsplit(".", 1)[-1]}


@cache
def redis_client(url):
    """A client for the checks and the metrics: one second to connect or answer, no retry."""
    return redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT,
                                retry=Retry(NoBackoff(), 0))


def _first_location(location):
    return location[0] if isinstance(location, (list, tuple)) else location.split(",")[0]


# -- the queue ----------------------------------------------------------------------


def queue_figures():
    """(tasks waiting to be taken, seconds since the oldest of them was queued, or None
    when none waits). Raises when the broker cannot be reached."""
    if uses_orm_broker():
        # A task is taken by moving its lock into the future; one whose lock has passed
        # waits, since it was queued or since its taker let the lock lapse.
        waiting = OrmQ.objects.using(settings.Q_CLUSTER["orm"]).filter(key=_queue_key(), lock__lte=timezone.now())
        depth, head = waiting.count(), waiting.order_by("id").values_list("payload", flat=True).first()
    else:
        with redis_client(settings.Q_CLUSTER["redis"]).pipeline(transaction=False) as pipe:
            depth, head = pipe.llen(_queue_key()).lindex(_queue_key(), 0).execute()
    return depth, _waited(head) if head else None


def _waited(package):
    """Seconds since the task in this signed package was queued; None for a package
    signed with another secret key (it waits for nobody: no worker will run it)."""
    try:
        started = SignedPackage.loads(package)["started"]
    except signing.BadSignature:
        return None
    return max((timezone.now() - started).total_seconds(), 0.0)


@cache
def _queue_key():
    return get_broker().list_key


def _queue_state(broker):
    if broker["state"] != "up":
        return {"state": "unknown"}
    depth, oldest = broker.pop("depth"), broker.pop("oldest")
    state = "slow" if oldest is not None and oldest > QUEUE_SLOW_AFTER else "ok"
    return {"state": state, "depth": depth, "oldest_task_seconds": None if oldest is None else round(oldest, 3)}


# -- the gateway, as last seen -------------------------------------------------------

_last_note = {"at": 0.0, "ok": None}


def note_gateway_answer(answer, ok):
    """Called by the gateway client for every answer (an HTTP code, or "unreachable"/
    "no_answer"): writes the shared note when the verdict changes, else at most every
    GATEWAY_NOTE_EVERY seconds. It never fails, nor stalls, the call it is noting."""
    now = time.time()
    if ok == _last_note["ok"] and now - _last_note["at"] < GATEWAY_NOTE_EVERY:
        return
    note = json.dumps({"at": now, "ok": ok, "answer": str(answer)})
    try:
        if client := shared_cache_redis():
            client.set(GATEWAY_NOTE_KEY, note, ex=GATEWAY_FORGET_AFTER)
        else:
            default_cache.set(GATEWAY_NOTE_KEY, note, GATEWAY_FORGET_AFTER)
    except (redis.RedisError, OSError) as exc:
        logger.warning("could not note the gateway's answer: %r", exc)
        return
    _last_note.update(at=now, ok=ok)


def gateway_last_seen():
    """"up" or "failing" from the last noted answer of the last GATEWAY_FORGET_AFTER
    seconds, "unknown" without one (no job lately, or a per-process cache: in
    development the worker's note stays in the worker)."""
    client = shared_cache_redis()
    note = client.get(GATEWAY_NOTE_KEY) if client else default_cache.get(GATEWAY_NOTE_KEY)
    if not note:
        return {"state": "unknown"}
    note = json.loads(note)
    return {"state": "up" if note["ok"] else "failing", "last_answer": note["answer"],
            "seconds_ago": round(time.time() - note["at"], 1)}


def shared_cache_redis():
    """The Redis of a shared cache, through the short-timeout client (the cache's own
    client waits as long as Redis does), or None for a per-process cache."""
    if not settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        return None
    return redis_client(_first_location(settings.CACHES["default"]["LOCATION"]))
