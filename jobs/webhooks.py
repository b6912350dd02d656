"""The gateway's callbacks. Each job has its own URL carrying an unguessable token; the
gateway signs nothing, so a callback is only a hint: it wakes the job at once, and the
refresh task confirms the status with the gateway under the studio's own key before
anything (money included) moves."""

import json
import logging

from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from jobs import transitions
from jobs.models import RANK, Job, Status, WebhookDelivery
from jobs.queue import send
from studio.ops.metrics import observe_webhook

logger = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 64 * 1024


def _answer(status, message):
    return JsonResponse({"ok": status < 300, "message": message}, status=status)


@csrf_exempt
@require_POST
def pixazo_webhook(request, code, token):
    job = Job.objects.filter(code=code).first()
    if job is None or not job.webhook_token_matches(token):
        return _answer(404, "Unknown webhook.")
    if len(request.body) > MAX_WEBHOOK_BYTES:
        return _answer(413, "Payload too large.")
    payload = _parse(request.body)
    if payload is None:
        return _answer(400, "Expected a JSON status body with request_id and status.")
    if job.request_id and payload["request_id"] != job.request_id:
        return _answer(400, "request_id does not belong to this job.")
    if not job.request_id:
        _adopt_request_id(job, payload["request_id"])
    first = _record(job, payload)
    observe_webhook(payload["status"], duplicate=not first)
    # A repeat still wakes the job while it claims more than the studio has confirmed:
    # the first copy may have come before the gateway's status caught up (or been forged).
    if job.is_live and (first or RANK[Status(payload["status"])] > RANK[Status(job.status)]):
        send("jobs.tasks.refresh_job", job.pk)
    return _answer(200, "Received.")


def _parse(body):
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(payload, dict):
        return None
    if not isinstance(payload.get("request_id"), str) or payload.get("status") not in Status.values:
        return None
    return payload


def _adopt_request_id(job, request_id):
    if transitions.adopt_request_id(job, request_id):
        logger.warning("job %s: request_id recovered from its webhook", job.code)
        job.refresh_from_db()


def _record(job, payload):
    """True the first time the gateway reports this status for this job; a duplicate
    delivery is counted."""
    try:
        with transaction.atomic():
            WebhookDelivery.objects.create(job=job, status=payload["status"], payload=payload)
        return True
    except IntegrityError:
        WebhookDelivery.objects.filter(job=job, status=payload["status"]).update(duplicates=F("duplicates") + 1)
        return False
