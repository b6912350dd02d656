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
