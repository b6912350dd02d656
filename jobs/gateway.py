"""The Pixazo gateway client: all gateway HTTP goes through here.

It follows the gateway's document (../shared/seed) to the letter: the submit paths, the
`Ocp-Apim-Subscription-Key` header, `X-Webhook-URL`/`X-Webhook-Mode`, the universal
status endpoint and the `{"error", "message"}` error bodies.

Retries: 429, 5xx and timeouts are retried with exponential backoff and full jitter, a
bounded number of times; 400/401/402/403/404 are permanent. A submit is a paid POST, so
it is retried only when the gateway cannot have accepted it (connection refused, 429,
5xx); a submit whose answer was lost in flight raises `SubmitOutcomeUnknown` instead of
being sent a second time.
"""

import logging
import random
from dataclasses import dataclass, field

import httpx
from django.conf import settings

from jobs.contract import GATEWAY_MODELS
from studio.ops.metrics import observe_gateway_answer
from studio.worker import stopping

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_MEDIA_BYTES = 50 * 1024 * 1024


class GatewayError(Exception):
    """A call that did not succeed. `permanent` errors must not be retried; the message
    is the gateway's own where it gave one."""

    def __init__(self, message, *, status_code=None, permanent=False):
        super().__init__(message)
        self.status_code = status_code
        self.permanent = permanent


class OutOfBalance(GatewayError):
    """402: the studio's own gateway account is out of money."""


class SubmitOutcomeUnknown(GatewayError):
    """The submit was sent but its answer was lost: the gateway may have accepted it."""


@dataclass
class Submitted:
    request_id: str
    status: str
    polling_url: str


@dataclass
class GatewayStatus:
    request_id: str
    status: str
    model_id: str = ""
    error: str = ""
    media_urls: list = field(default_factory=list)
    media_type: str = ""

    @classmethod
    def from_body(cls, body):
        if not isinstance(body, dict) or body.get("status") not in ("QUEUED", "PROCESSING", "COMPLETED", "FAILED", "ERROR"):
            raise GatewayError("The gateway sent a status body we do not understand.", permanent=True)
        output = body.get("output") or {}
        urls = output.get("media_url") or []
        return cls(
            request_id=str(body.get("request_id") or ""),
            status=body["status"],
            model_id=str(body.get("model_id") or ""),
            error=str(body.get("error") or ""),
            media_urls=[u for u in urls if isinstance(u, str)] if isinstance(urls, list) else [],
            media_type=str(output.get("media_type") or ""),
        )


class PixazoClient:
    def __init__(self, base_url=None, api_key=None, *, timeout=None, max_attempts=None, backoff=None, transport=None):
        self.base_url = (base_url or settings.PIXAZO_BASE_URL).rstrip("/")
        self.api_key = api_key if api_key is not None else settings.PIXAZO_API_KEY
        self.max_attempts = max_attempts or settings.PIXAZO_MAX_ATTEMPTS
        self.backoff = settings.PIXAZO_BACKOFF_MS / 1000 if backoff is None else backoff
        timeout = timeout or settings.PIXAZO_TIMEOUT_SECONDS
        self.http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)),
            headers={"User-Agent": "bria-studio/1.0"},
            transport=transport,
        )

    def close(self):
        self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the gateway's three calls --------------------------------------------------

    def submit(self, model, payload, *, webhook_url=None, webhook_mode="terminal"):
        _, path = GATEWAY_MODELS[model]
        headers = self._headers()
        headers["Content-Type"] = "application/json"
        headers["Cache-Control"] = "no-cache"
        if webhook_url:
            headers["X-Webhook-URL"] = webhook_url
            headers["X-Webhook-Mode"] = webhook_mode
        response = self._send("POST", self.base_url + path, headers=headers, json=payload, idempotent=False)
        if response.status_code != 202:
            raise self._error(response)
        body = self._json(response)
        request_id = body.get("request_id") if isinstance(body, dict) else None
        if not request_id:
            raise GatewayError("The gateway accepted the job but sent no request_id.", permanent=True)
        return Submitted(request_id=request_id, status=body.get("status", "QUEUED"), polling_url=body.get("polling_url", ""))

    def status(self, request_id):
        url = f"{self.base_url}/v2/requests/status/{request_id}"
        response = self._send("GET", url, headers=self._headers(), idempotent=True)
        if response.status_code != 200:
            raise self._error(response)
        return GatewayStatus.from_body(self._json(response))

    def download(self, url):
        """Fetch one output from its media_url. Returns (bytes, content type)."""
        response = self._send("GET", url, headers={}, idempotent=True, follow_redirects=True)
        if response.status_code != 200:
            raise GatewayError(f"Downloading the output failed with HTTP {response.status_code}.",
                               status_code=response.status_code, permanent=response.status_code not in RETRYABLE_STATUS)
        if len(response.content) > MAX_MEDIA_BYTES:
            raise GatewayError("The output is larger than the studio accepts.", permanent=True)
        return response.content, response.headers.get("content-type", "")

    # -- plumbing -------------------------------------------------------------------

    def _headers(self):
        return {"Ocp-Apim-Subscription-Key": self.api_key}

    def _send(self, method, url, *, headers, idempotent, **kwargs):
        for attempt in range(1, self.max_attempts + 1):
            response = None
            try:
                response = self.http.request(method, url, headers=headers, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                observe_gateway_answer("unreachable")
                # Nothing reached the gateway: safe to retry any call.
                if self._last(attempt):
                    raise GatewayError(f"The gateway could not be reached ({type(exc).__name__}).") from exc
            except httpx.TransportError as exc:
                observe_gateway_answer("no_answer")
                if not idempotent:
                    raise SubmitOutcomeUnknown(f"The gateway did not answer the submit ({type(exc).__name__}).") from exc
                if self._last(attempt):
                    raise GatewayError(f"The gateway did not answer in time ({type(exc).__name__}).") from exc
            else:
                observe_gateway_answer(response.status_code)
                if response.status_code not in RETRYABLE_STATUS or self._last(attempt):
                    return response
                logger.info("gateway answered %s to %s; retrying", response.status_code, method)
            self._sleep(attempt, response)
        raise AssertionError("unreachable")

    def _last(self, attempt):
        """No retry after the last attempt, nor in a worker that is stopping: the failure
        is dealt with now (a submit the gateway never got waits and is offered again)
        instead of being cut off by the stop deadline."""
        return attempt == self.max_attempts or stopping.requested()

    def _sleep(self, attempt, response=None):
        delay = random.uniform(0, self.backoff * 2 ** (attempt - 1))
        retry_after = response.headers.get("Retry-After") if response is not None else None
        if retry_after and retry_after.isdigit():
            delay = max(delay, min(int(retry_after), 30))
        stopping.wait(delay)

    @staticmethod
    def _json(response):
        try:
            return response.json()
        except ValueError:
            raise GatewayError(f"The gateway sent a non-JSON answer (HTTP {response.status_code}).") from None

    @staticmethod
    def _error(response):
        code = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        # The seed's error shape: {"error": "Insufficient Balance", "message": "Your wallet…"}
        label = body.get("error") or response.reason_phrase or "HTTP error"
        text = f"{label} ({code}): {body.get('message') or label}"
        if code == 402:
            return OutOfBalance(text, status_code=code, permanent=True)
        return GatewayError(text, status_code=code, permanent=code not in RETRYABLE_STATUS)
