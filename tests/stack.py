"""Running the studio's real processes from tests: the django-q2 worker, the web server
and the gateway emulator, each as its own OS process, the way Procfile runs them."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_env():
    """Environment that points a child process at the database this test uses."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return {"SQLITE_PATH": db["NAME"], "DATABASE_URL": ""}
    user = db["USER"] or "postgres"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or "5432"
    return {"DATABASE_URL": f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"}


class Process:
    """A child process whose output goes to a log file the test can read."""

    def __init__(self, name, argv, env, log_dir):
        self.name = name
        self.log_path = Path(log_dir) / f"{name}.log"
        self.log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(
            argv, cwd=ROOT, env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    @classmethod
    def manage(cls, name, args, env, log_dir):
        """`python manage.py ARGS` with this interpreter."""
        return cls(name, [sys.executable, "manage.py", *args], env, log_dir)

    def output(self):
        return self.log_path.read_text(errors="replace")

    def stop(self, grace=10):
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        self.log.close()


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
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not reached in {seconds} s")
