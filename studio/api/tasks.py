"""Calling back clients of the gateway-compatible API, as the gateway would: the status
body POSTed to their X-Webhook-URL, retried with backoff, never to a private address."""

import logging
import random
import time

import httpx

from jobs.fetch import FetchRefused, check_url, public_client
from jobs.models import Job

logger = logging.getLogger(__name__)

ATTEMPTS = 4
TIMEOUT_SECONDS = 5


def deliver_callback(job_id, status):
    """POST the job's status body (as of now) to the client; at least once."""
    from studio.api.gateway import (
        status_body,  # the same body the status endpoint serves
    )

    job = Job.objects.with_card_data().get(pk=job_id)
    url = job.client_webhook_url
    try:
        check_url(url)
    except FetchRefused as exc:
        logger.warning("job %s: callback not sent: %s", job.code, exc)
        return "refused"
    body = status_body(job)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            # Pinned to the addresses it checks, so the name cannot be re-pointed at a
            # private address between the check above and the connection.
            with public_client(TIMEOUT_SECONDS) as client:
                response = client.post(url, json=body)
            if 200 <= response.status_code < 300:
                return "delivered"
            logger.info("job %s: callback answered %s", job.code, response.status_code)
        except FetchRefused as exc:
            logger.warning("job %s: callback not sent: %s", job.code, exc)
            return "refused"
        except httpx.HTTPError as exc:
            logger.info("job %s: callback failed: %s", job.code, type(exc).__name__)
        if attempt < ATTEMPTS:
            time.sleep(random.uniform(0, 0.5 * 2 ** (attempt - 1)))
    return "gave up"
