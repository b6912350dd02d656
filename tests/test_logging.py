"""Webhook tokens never reach a log line."""

import io
import logging

from studio.logging import RedactWebhookTokens

URL = "/hooks/pixazo/5b0d8a3e-1d2c-4b7a-9a55-0f7c3e2d1a10/s3cr3t-T0ken_abc/"


def emit(message, *args):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactWebhookTokens())
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    try:
        logger.warning(message, *args)
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
