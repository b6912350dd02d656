"""The studio's own processes started from Python, the way the Procfile runs them
(gunicorn, `manage.py qcluster`, the emulator): by the test suite, `manage.py chaos` and
`manage.py bench`. Each child runs in its own process group, with its output in a file."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from django.conf import settings


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Child:
    """A child process in a process group of its own: a Ctrl-C at the terminal reaches
    the parent alone, and the parent stops its children (and theirs)."""

    def __init__(self, name, argv, env, log_dir):
        self.name = name
        self.log_path = Path(log_dir) / f"{name}.log"
        with open(self.log_path, "wb") as log:
            self.popen = subprocess.Popen(argv, cwd=settings.BASE_DIR,
                                          env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
                                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    @classmethod
    def manage(cls, name, args, env, log_dir):
        """`python manage.py ARGS` with this interpreter."""
        return cls(name, [sys.executable, "manage.py", *args], env, log_dir)

    @property
    def pid(self):
        return self.popen.pid

    def exit_code(self):
        return self.popen.poll()

    def output(self):
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines=30):
        return "\n".join(self.output().splitlines()[-lines:])

    def check_alive(self):
        if self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}")

    def kill(self):
        """SIGKILL to the whole group, as a crash or the OOM killer would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, grace=10):
        # SIGTERM to the leader alone, as a platform stops a process: qcluster and gunicorn
        # stop their own workers.
        with contextlib.suppress(ProcessLookupError):
            self.popen.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)  # whatever is left of the group
        self.popen.wait(10)

    def wait_for_http(self, url, seconds=60):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                httpx.get(url, timeout=2)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer at {url} in {seconds} s:\n{self.log_tail()}")

    def wait_for_log(self, text, seconds=60):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check_alive()
            if text in self.output():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not log {text!r} in {seconds} s:\n{self.log_tail()}")
