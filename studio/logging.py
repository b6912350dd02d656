import logging
import re

# The webhook path carries the job's secret token: /hooks/pixazo/<code>/<token>/.
_WEBHOOK_TOKEN = re.compile(r"(/hooks/pixazo/[0-9a-fA-F-]{36}/)[^/\s\"']+")


class RedactWebhookTokens(logging.Filter):
    """Rewrites any log line that contains a webhook URL so the token never reaches a log."""

    def filter(self, record):
        message = record.getMessage()
        redacted = _WEBHOOK_TOKEN.sub(r"\1[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class DropEnqueued(logging.Filter):
    """django-q2 logs every task it queues ("Enqueued [django_q:studio:q] 2201"): from
    the web process, one line per submission naming neither the task nor the job, and
    about 4% of a submission's CPU. The worker still logs every task it runs, and every
    other django-q2 line passes."""

    def filter(self, record):
        return not (record.levelno == logging.INFO and record.getMessage().startswith("Enqueued ["))
