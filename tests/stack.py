"""Running the studio's real processes from tests: the django-q2 worker, the web server
and the gateway emulator, each as its own OS process, the way Procfile runs them."""

import socket
import time
from pathlib import Path

import httpx
from django.db import connection

from studio.processes import Child as Process
from studio.processes import free_port

__all__ = ["Process", "free_port", "bound_socket", "database_env", "wait_for_http", "wait_until"]

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
