"""Log lines: secrets never reach them, and each carries the id of the request (or the
queued task) it belongs to.

Every handler in settings.LOGGING has both filters below; LOG_FORMAT=json swaps the
plain formatter for JsonFormatter, one JSON object a line.
"""

import logging
import re

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as BaseJsonFormatter

from studio.ops import requestid

# Secrets that travel in URLs, and team API keys. The webhook path carries the job's
# token (/hooks/pixazo/<code>/<token>/); a share link (/s/<token>/), an invitation
# (/invitations/<token>/) and a signed media URL (/m/<token>/) are each a key to
# something; a team API key is "bria_" and its secret.
_SECRET = re.compile(
    r"(?P<path>/hooks/pixazo/[0-9a-fA-F-]{36}/|/s/|/invitations/|/m/)[^/\s\"'?#]+"
    r"|bria_[A-Za-z0-9_-]{8,}"
)


def _replace(match):
    return match.group("path") + "[redacted]" if match.group("path") else "bria_[redacted]"


def redact(text):
    """`text` with every secret above replaced by "[redacted]"."""
    return _SECRET.sub(_replace, text)


class RedactSecrets(logging.Filter):
    """Rewrites a log line, its exception's traceback and its stack so that no secret
    above reaches a log. It runs before the handler formats, and the record it rewrites
    is the one Sentry's logging integration reads afterwards."""

    def filter(self, record):
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class RequestIdFilter(logging.Filter):
    """Puts the current request id (studio/ops/requestid.py) on the record, None outside
    a request or a task one queued."""

    def filter(self, record):
        record.request_id = requestid.current()
        return True


class JsonFormatter(BaseJsonFormatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, request_id,
    process, and `exc_info` when there is an exception. Django's `request` extra is left
    out: its repr carries the path, secrets included, and the message names the path."""

    def __init__(self):
        super().__init__(
            ["levelname", "name", "message", "request_id", "process"],
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
            reserved_attrs=[*RESERVED_ATTRS, "request"],
        )

    def formatException(self, ei):
        return redact(super().formatException(ei))


class DropEnqueued(logging.Filter):
    """django-q2 logs every task it queues ("Enqueued [django_q:studio:q] 2201"): from
    the web process, one line per submission naming neither the task nor the job, and
    about 4% of a submission's CPU. The worker still logs every task it runs, and every
    other django-q2 line passes."""

    def filter(self, record):
        return not (record.levelno == logging.INFO and record.getMessage().startswith("Enqueued ["))
