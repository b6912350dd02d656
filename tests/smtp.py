"""Real SMTP servers for tests, on 127.0.0.1 at a free port.

`SMTPServer` is aiosmtpd's: it speaks SMTP (with AUTH when given a login) and records
every message it accepts (`messages()`); `wait_for(n)` waits until it holds exactly
that many. `SilentSMTPServer` accepts connections and never says a word, like a mail
server that hangs; it counts the connections it took. `DeadSMTPServer` is a port where
nothing listens. All are context managers (or `start()` and `stop()`), and `env()` gives
the environment that points a child process (a worker, gunicorn) at them.

The `smtp_server` fixture points this process's settings at a fresh `SMTPServer`; a test
that runs a worker passes `smtp_server.env()` to it (see `worker_env` in conftest.py).
conftest.py makes `smtp_server`, `silent_smtp_server` and `empty_queue` fixtures of every
test module.
`run_queued_email()` runs, in this process, the email tasks waiting in the queue, as a
worker would (with `empty_queue`, only this test's).
"""

import pydoc
import socket
import threading
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from django_q.brokers import get_broker
from django_q.signing import SignedPackage

from studio.mail import TASK
from studio.processes import free_port

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


class Endpoint:
    """Where a mail server is (or should be), as this process's settings or a child's
    environment name it; a context manager that starts and stops it."""

    host = "127.0.0.1"
    port = None

    def env(self):
        """The environment that points a child process at this server."""
        return {"EMAIL_HOST": self.host, "EMAIL_PORT": str(self.port)}

    def start(self):
        pass

    def stop(self):
        pass

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


@dataclass
class Received:
    """One message as the server accepted it: the envelope, and the parsed message,
    whose headers it also answers (`received["To"]`)."""
    mail_from: str
    rcpt_tos: list
    message: EmailMessage

    def __getitem__(self, header):
        return self.message[header]

    @property
    def subject(self):
        return self.message["Subject"]

    @property
    def body(self):
        return self.message.get_content()


class SMTPServer(Endpoint):
    """aiosmtpd, recording what it accepts. With `login=(user, password)` it offers AUTH
    (over plain SMTP: there is no TLS here) and requires it."""

    def __init__(self, login=None):
        self.port = free_port()
        self._messages = []
        self.refused_logins = 0  # each mechanism smtplib tries counts
        self._changed = threading.Condition()
        auth = {}
        if login:
            auth = {"authenticator": self._authenticator(login), "auth_required": True, "auth_require_tls": False}
        self._controller = Controller(self, hostname=self.host, port=self.port, **auth)

    def start(self):
        self._controller.start()

    def stop(self):
        self._controller.stop()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self._changed:
            self._messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
            self._changed.notify_all()
        return "250 Message accepted for delivery"

    def _authenticator(self, login):
        expected = tuple(part.encode() for part in login)

        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = (auth_data.login, auth_data.password) == expected
            if not ok:
                with self._changed:
                    self.refused_logins += 1
            return AuthResult(success=ok, handled=False)  # aiosmtpd answers 235 or 535
        return authenticate

    def messages(self):
        """What the server accepted so far (Received), oldest first."""
        with self._changed:
            return list(self._messages)

    def wait_for(self, count, seconds=30):
        """The messages, once there are `count` of them; fails if there are more, or
        fewer after `seconds`."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._messages) >= count, timeout=seconds):
                raise AssertionError(f"{count} email(s) expected in {seconds} s, got {len(self._messages)}")
            assert len(self._messages) == count, [m.subject for m in self._messages]
            return list(self._messages)


class SilentSMTPServer(Endpoint):
    """Accepts TCP connections and never answers (no greeting), like a mail server that
    hangs. Counts the connections it took; closes them when stopped."""

    def __init__(self):
        self._listener = socket.create_server((self.host, 0))
        self._listener.settimeout(0.1)  # to notice `stop` (closing does not wake accept())
        self.port = self._listener.getsockname()[1]
        self._sockets = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def connections(self):
        with self._lock:
            return len(self._sockets)

    def _accept(self):
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            with self._lock:
                self._sockets.append(sock)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stopping.set()
        self._thread.join(5)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()


class DeadSMTPServer(Endpoint):
    """A free port where nothing listens, like a mail server that is down."""

    def __init__(self):
        self.port = free_port()


def point_settings_at(settings, server, timeout=5):
    """This process's email settings, pointed at `server` (any of the above)."""
    settings.EMAIL_BACKEND = SMTP_BACKEND
    settings.EMAIL_HOST, settings.EMAIL_PORT = server.host, server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = timeout


def serving(settings, server):
    """Start `server` and point this process's settings at it, for a fixture to yield from."""
    with server:
        point_settings_at(settings, server)
        yield server


@pytest.fixture
def smtp_server(settings):
    """A fresh SMTPServer, with this process's settings pointed at it."""
    yield from serving(settings, SMTPServer())


@pytest.fixture
def silent_smtp_server(settings):
    """A SilentSMTPServer, with this process's settings pointed at it."""
    yield from serving(settings, SilentSMTPServer())


@pytest.fixture
def empty_queue(db):
    """Nothing in the queue from earlier tests (a Redis queue outlives them)."""
    get_broker().purge_queue()


def run_queued_email():
    """Run the email tasks waiting in the queue (either broker) in this process, as a
    worker would, and return their results. Other tasks are taken off the queue too."""
    broker = get_broker()
    tasks = []
    while broker.queue_size():
        for ack_id, payload in broker.dequeue() or []:
            tasks.append(SignedPackage.loads(payload))
            broker.acknowledge(ack_id)
    send = pydoc.locate(TASK)
    return [send(*task["args"], **task["kwargs"]) for task in tasks if task["func"] == TASK]
