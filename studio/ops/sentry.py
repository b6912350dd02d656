"""Error reports to Sentry (sentry-sdk) when SENTRY_DSN is set, from every process:
settings.py starts them, so the web, the worker and management commands all report.

- Web: the Django integration reports unhandled exceptions with the request (method,
  URL, headers), never its body, cookies or the user's address.
- Worker: django-q2 catches a task's exception and its monitor logs "Failed …" at ERROR;
  the logging integration turns that line (and any other ERROR line) into an event,
  tagged with the request id that queued the task.

Every event goes through before_send, which redacts it as the logs are (studio/logging.py:
webhook tokens, team API keys, share, invitation and signed-media tokens in URLs), drops
the values of secret-bearing fields wherever they appear (Authorization,
Ocp-Apim-Subscription-Key, cookies, query strings, X-Webhook-URL), and replaces the
studio's own secrets (gateway key, secret key, metrics token, storage and SMTP passwords)
and the values of the request's cookies (its session id) should one appear in any text,
a stack frame's variables included; query strings are
dropped wherever a URL is written out.
"""

import logging
import re

import sentry_sdk
from django.conf import settings
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

from studio.logging import redact
from studio.ops import requestid

FILTERED = "[Filtered]"
# Field names (headers, request fields, breadcrumb data, frame variables) whose values
# are dropped whole, compared in lower case.
SECRET_FIELDS = frozenset({
    "authorization", "proxy-authorization", "ocp-apim-subscription-key", "cookie", "cookies", "set-cookie",
    "x-webhook-url", "query_string", "http.query", "webhook_url", "client_webhook_url",
})
# A query string, wherever a URL is written out (a request's repr in a frame's variables).
_QUERY = re.compile(r"\?[^\s'\"<>#]*=[^\s'\"<>#]*")
SECRET_SETTINGS = ("PIXAZO_API_KEY", "SECRET_KEY", "METRICS_TOKEN", "AWS_SECRET_ACCESS_KEY", "EMAIL_HOST_PASSWORD")


def start_error_reports(dsn, environment):
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        send_default_pii=False,
        max_request_body_size="never",  # prompts and uploads are the teams' own
        integrations=[DjangoIntegration(), LoggingIntegration(level=logging.INFO, event_level=logging.ERROR)],
        event_scrubber=EventScrubber(denylist=[*DEFAULT_DENYLIST, *SECRET_FIELDS], recursive=True),
        before_send=before_send,
    )


def before_send(event, hint):
    request_id = requestid.current()
    if request_id:
        event.setdefault("tags", {})["request_id"] = request_id
    return scrub(event, [*_studio_secrets(), *requestid.cookie_values()])


def scrub(value, secrets):
    if isinstance(value, dict):
        return {key: FILTERED if str(key).lower() in SECRET_FIELDS else scrub(item, secrets)
                for key, item in value.items()}
    if isinstance(value, list):
        return [scrub(item, secrets) for item in value]
    if isinstance(value, str):
        value = _QUERY.sub("?" + FILTERED, redact(value))
        for secret in secrets:
            value = value.replace(secret, FILTERED)
    return value


def _studio_secrets():
    values = (getattr(settings, name, None) for name in SECRET_SETTINGS)
    return [value for value in values if isinstance(value, str) and len(value) >= 8]
