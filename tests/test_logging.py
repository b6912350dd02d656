"""Log lines: no secret reaches one (webhook tokens, team API keys, share, invitation
and signed-media tokens), LOG_FORMAT=json writes one JSON object a line, and a request
id follows a job from the request into the worker."""

import io
import json
import logging

import pytest
from django.test import Client

from jobs.models import Job
from studio.logging import JsonFormatter, RedactSecrets, RequestIdFilter
from studio.ops import requestid
from tests.conftest import login
from tests.stack import wait_until

URL = "/hooks/pixazo/5b0d8a3e-1d2c-4b7a-9a55-0f7c3e2d1a10/s3cr3t-T0ken_abc/"


def emit(message, *args, formatter=None, **kwargs):
    """What the studio's handler writes for one line: its filters, and `formatter`."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets())
    handler.addFilter(RequestIdFilter())
    if formatter:
        handler.setFormatter(formatter)
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    try:
        logger.warning(message, *args, **kwargs)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_the_token_in_a_request_path_is_redacted():
    line = emit("Not Found: %s", URL)
    assert "s3cr3t" not in line
    assert "/hooks/pixazo/5b0d8a3e-1d2c-4b7a-9a55-0f7c3e2d1a10/[redacted]/" in line


def test_a_full_webhook_url_is_redacted():
    assert "s3cr3t" not in emit(f"posting to https://studio.example{URL} failed")


def test_other_lines_are_untouched():
    assert emit("job %s is now %s", "abc", "COMPLETED") == "job abc is now COMPLETED\n"


def test_the_studio_logging_config_redacts_on_every_handler(settings):
    handlers = settings.LOGGING["handlers"]
    assert all("redact_tokens" in h.get("filters", []) for h in handlers.values())


def test_django_q_enqueue_lines_are_dropped_and_its_other_lines_kept(caplog):
    # The configured "django-q" logger carries the filter; caplog listens at the root.
    logger = logging.getLogger("django-q")
    with caplog.at_level(logging.INFO):
        logger.info("Enqueued [django_q:studio:q] 2201")
        logger.info("Q Cluster alpha-bravo running.")
        logger.error("Enqueued [django_q:studio:q] failed")
    assert [record.getMessage() for record in caplog.records] == [
        "Q Cluster alpha-bravo running.", "Enqueued [django_q:studio:q] failed"]


SHARE_TOKEN = "Zq3xVb8kLm2nPq4rSt6uVw8xYz0aBc2dEf4gHi6jKl8"
API_KEY = "bria_Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8L9z0X1c"


@pytest.mark.parametrize("line, kept", [
    (f"GET /s/{SHARE_TOKEN}/download.zip 200", "/s/[redacted]/download.zip"),
    (f"https://studio.example/s/{SHARE_TOKEN}/assets/5b0d8a3e-1d2c-4b7a-9a55-0f7c3e2d1a10/", "/s/[redacted]/assets/"),
    (f"Not Found: /invitations/{SHARE_TOKEN}/", "/invitations/[redacted]/"),
    (f"fetching https://studio.example/m/{SHARE_TOKEN}:1tq2Zx:signature/ failed", "/m/[redacted]/"),
    (f"Authorization: Bearer {API_KEY}", "Bearer bria_[redacted]"),
    (f"key={API_KEY}&x=1", "key=bria_[redacted]&x=1"),
])
def test_share_invitation_and_media_tokens_and_api_keys_are_redacted(line, kept):
    written = emit(line)
    assert SHARE_TOKEN not in written and API_KEY not in written
    assert kept in written


def test_a_traceback_is_redacted_too():
    try:
        raise ValueError(f"bad link /s/{SHARE_TOKEN}/ for {API_KEY}")
    except ValueError:
        written = emit("it failed", exc_info=True)
    assert "ValueError: bad link /s/[redacted]/ for bria_[redacted]" in written
    assert SHARE_TOKEN not in written and API_KEY not in written


def test_json_lines_carry_the_request_id_and_no_secret(rf):
    request = rf.get("/")
    token = requestid._current.set("req-0042")
    try:
        raise RuntimeError(f"posting to https://studio.example{URL} failed")
    except RuntimeError:
        written = emit("webhook %s for job %s", URL, "abc", exc_info=True, extra={"request": request},
                       formatter=JsonFormatter())
    finally:
        requestid._current.reset(token)
    [line] = written.splitlines()
    record = json.loads(line)
    assert {"time", "level", "logger", "message", "request_id", "process", "exc_info"} <= set(record)
    assert (record["level"], record["request_id"]) == ("WARNING", "req-0042")
    assert record["message"] == "webhook /hooks/pixazo/5b0d8a3e-1d2c-4b7a-9a55-0f7c3e2d1a10/[redacted]/ for job abc"
    assert "RuntimeError" in record["exc_info"] and "s3cr3t" not in line
    assert "request" not in record, "Django's request extra (its repr names the path) is left out"


def test_outside_a_request_the_request_id_is_null():
    assert json.loads(emit("tick", formatter=JsonFormatter()))["request_id"] is None


@pytest.mark.parametrize("given, kept", [
    ("3f2a9c1e8d7b4a6f", True), ("Root=1-67891233-abcdef012345678912345678", False),
    ("abc.def:ghi_jkl-1", True), ("", False), ("has space", False), ("x" * 129, False), ("<script>", False),
])
def test_the_request_id_is_the_proxys_when_sane_or_a_new_one(db, given, kept):
    response = Client(HTTP_HOST="127.0.0.1").get("/healthz", HTTP_X_REQUEST_ID=given)
    answered = response["X-Request-ID"]
    if kept:
        assert answered == given
    else:
        assert answered != given and len(answered) == 32 and int(answered, 16) >= 0


@pytest.fixture
def worker_env():
    return {"LOG_FORMAT": "json"}


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_request_id_follows_a_job_into_the_worker(member, team, worker, emulator):
    emulator.faults(submit=[400])  # the gateway refuses the job: the worker logs its end
    form = {"prompt": "a kite", "aspect_ratio": "1:1", "seed": "1", "steps_num": "30", "guidance_scale": "7.5"}
    response = login(member).post("/studio/fibo/", form, HTTP_HX_REQUEST="true", HTTP_X_REQUEST_ID="req-kite-0001")
    assert response["X-Request-ID"] == "req-kite-0001"
    job = Job.objects.get()

    def lines():
        return [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]

    ended = wait_until(lambda: [r for r in lines() if r["message"] == f"job {job.code} is now FAILED"], seconds=30,
                       what=f"the worker's line for the job\n{worker.log_tail()}")
    assert ended[0]["request_id"] == "req-kite-0001"
    # The cluster's monitor logs the task's result with the same id.
    processed = wait_until(lambda: [r for r in lines() if r["message"].startswith("Processed 'jobs.tasks.submit_job'")],
                           seconds=15, what="the monitor's line")
    assert processed[0]["request_id"] == "req-kite-0001"
    # Every line the worker wrote is one JSON object; lines for no request carry null.
    assert all(line.startswith("{") for line in worker.output().splitlines() if line.strip()), worker.log_tail()
    assert any(r["request_id"] is None for r in lines())
