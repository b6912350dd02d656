"""Running the studio's real processes from tests: the django-q2 worker, the web server
and the gateway emulator, each as its own OS process, the way Procfile runs them."""

import socket
import time
from pathlib import Path

import httpx
from django.db import connection

from jobs.queue import redis_broker, uses_orm_broker
from studio.processes import Child as Process
from studio.processes import free_port

__all__ = ["Process", "free_port", "bound_socket", "database_env", "kill_cluster", "wait_for_http", "wait_until"]

ROOT = Path(__file__).resolve().parent.parent


def database_env():
    """Environment that points a child process at the database this test uses."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return {"SQLITE_PATH": db["NAME"], "DATABASE_URL": ""}
    user = db["USER"] or "postgres"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or "5432"
    return {"DATABASE_URL": f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"}


def bound_socket():
    """A socket bound to a free loopback port and never listening: connections to the
    port are refused, and no other process can take the port until the socket is closed
    (a port that is merely free now may be someone else's a moment later)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def wait_for_http(url, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up in {seconds} s")


def wait_until(predicate, seconds=30, interval=0.1, what="condition"):
    """The predicate's first true value. `what` names it in the failure, and may be a
    callable, so that a process's log in the message is read when the wait gives up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what() if callable(what) else what} not reached in {seconds} s")


def kill_cluster(cluster):
    """SIGKILL a `qcluster` and its workers, as a crash or the OOM killer would, and wait
    until the queue's Redis has noticed: Redis hands a pushed task to a client blocked in
    BLPOP, and until it has dropped the dead pusher's connection a task queued next could
    go to it and vanish (the sweeper would find the job a minute later; a test would not)."""
    cluster.kill()
    wait_until(lambda: not blocked_on_the_queue(), seconds=10, what="the killed pusher gone from Redis")


def blocked_on_the_queue():
    """Clients of the queue's Redis waiting in BLPOP (django-q2's pushers); none on the
    ORM broker."""
    if uses_orm_broker():
        return []
    return [client for client in redis_broker().connection.client_list() if client.get("cmd") == "blpop"]
