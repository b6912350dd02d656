"""Error reports (studio/ops/sentry.py): with SENTRY_DSN set, an unhandled error reaches
Sentry with the same redaction as the logs. The DSN points at a real HTTP server of the
test's own, which receives the envelopes sentry-sdk posts, as Sentry's ingest would;
the error is real too (a gunicorn whose database refuses connections)."""

import gzip
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from django_q.tasks import async_task

from studio.ops import requestid
from tests.stack import bound_socket, wait_until
from tests.test_health import gunicorn

SHARE_TOKEN = "Zq3xVb8kLm2nPq4rSt6uVw8xYz0aBc2dEf4gHi6jKl8"
WEBHOOK_TOKEN = "Wh00k-t0ken-Zq3xVb8kLm2nPq4rSt6uVw8xYz0aBc2"
API_KEY = "bria_Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8L9z0X1c"
GATEWAY_KEY = "gateway-subscription-key-0f9e8d7c"
SESSION = "sessionid-value-6b5a4c3d2e1f"
QUERY_SECRET = "query-secret-9a8b7c6d"
STUDIO_SECRETS = {"PIXAZO_API_KEY": "studio-pixazo-key-1a2b3c4d5e", "METRICS_TOKEN": "studio-metrics-token-5e4d3c2b1a",
                  "DJANGO_SECRET_KEY": "studio-secret-key-" + "k" * 40}
SECRETS = [SHARE_TOKEN, WEBHOOK_TOKEN, API_KEY, API_KEY[5:], GATEWAY_KEY, SESSION, QUERY_SECRET,
           *STUDIO_SECRETS.values()]


class Ingest(BaseHTTPRequestHandler):
    """Sentry's ingest, as far as the SDK can tell: it accepts every envelope."""

    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format, *args):
        pass


@pytest.fixture
def ingest():
    Ingest.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Ingest)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def events(received):
    """The event items of the envelopes received: a header line, then (item header,
    payload) pairs, each payload `length` bytes long or one line."""
    found = []
    for _, body in received:
        rest = body.split(b"\n", 1)[1]
        while rest.strip():
            header_line, _, rest = rest.partition(b"\n")
            header = json.loads(header_line)
            length = header.get("length")
            if length is None:
                payload, _, rest = rest.partition(b"\n")
            else:
                payload, rest = rest[:length], rest[length + 1:]
            if header.get("type") == "event":
                found.append(json.loads(payload))
    return found


def test_an_error_reaches_sentry_with_secrets_redacted(ingest, tmp_path):
    refusing = bound_socket()  # the database: every connection refused
    web = gunicorn(tmp_path, SENTRY_DSN=f"http://publickey@127.0.0.1:{ingest.server_address[1]}/1", REDIS_URL="",
                   CACHE_URL="", DATABASE_URL=f"postgres://studio@127.0.0.1:{refusing.getsockname()[1]}/studio",
                   **STUDIO_SECRETS)
    try:
        with httpx.Client(base_url=web.url, timeout=10) as client:
            shared = client.get(f"/s/{SHARE_TOKEN}/", params={"key": API_KEY, "sig": QUERY_SECRET},
                                headers={"Authorization": f"Bearer {API_KEY}", "Ocp-Apim-Subscription-Key": GATEWAY_KEY,
                                         "Cookie": f"sessionid={SESSION}", "X-Request-ID": "req-sentry-0001"})
            hooked = client.post(f"/hooks/pixazo/{uuid.uuid4()}/{WEBHOOK_TOKEN}/", content=b"{}",
                                 headers={"X-Request-ID": "req-sentry-0002"})
        assert (shared.status_code, hooked.status_code) == (500, 500)
        reported = wait_until(lambda: len(errors := [e for e in events(Ingest.received) if e.get("exception")]) >= 2
                              and errors, seconds=20, what=f"two error events\n{web.log_tail()}")
    finally:
        web.stop()
        refusing.close()

    everything = b"".join(body for _, body in Ingest.received)
    leaked = [secret for secret in SECRETS if secret.encode() in everything]
    assert not leaked, f"secrets in what Sentry received: {leaked}"

    by_request = {event["tags"]["request_id"]: event for event in reported}
    share = by_request["req-sentry-0001"]
    assert share["exception"]["values"][-1]["type"] == "OperationalError"
    assert share["request"]["url"].endswith("/s/[redacted]/")
    assert share["request"]["query_string"] == "[Filtered]"
    headers = share["request"]["headers"]
    assert headers["Authorization"] == headers["Ocp-Apim-Subscription-Key"] == headers["Cookie"] == "[Filtered]"
    assert share["request"].get("data") in (None, "", {}) and "cookies" not in share["request"]
    hook = by_request["req-sentry-0002"]
    assert "/hooks/pixazo/" in hook["request"]["url"] and hook["request"]["url"].endswith("/[redacted]/")
    # The frames keep their variables (the useful part of a report), scrubbed.
    frames = [frame for value in share["exception"]["values"] for frame in value["stacktrace"]["frames"]]
    assert any(frame.get("vars") for frame in frames)


@pytest.fixture
def worker_env(ingest):
    return {"SENTRY_DSN": f"http://publickey@127.0.0.1:{ingest.server_address[1]}/1"}


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_failing_task_reaches_sentry_with_the_request_id_that_queued_it(worker):
    token = requestid._current.set("req-sentry-task")
    try:
        # A job that does not exist: the task raises, django-q2 records the failure and its
        # monitor logs it at ERROR, which the logging integration reports.
        async_task("jobs.tasks.refresh_job", 987654321, task_name=f"refresh-{API_KEY}")
    finally:
        requestid._current.reset(token)
    [event] = wait_until(lambda: [e for e in events(Ingest.received) if "refresh_job" in json.dumps(e)], seconds=30,
                         what=f"the failed task's event\n{worker.log_tail()}")
    assert event["level"] == "error" and event["tags"]["request_id"] == "req-sentry-task"
    assert "DoesNotExist" in json.dumps(event)
    assert API_KEY[5:].encode() not in b"".join(body for _, body in Ingest.received)
