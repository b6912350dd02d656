"""The yardsticks the gateway-compatible API is measured against, on the same server and
database: a view that does nothing, and one that does a submission's writes and nothing
else. Mounted only by devtools/bench/urls.py, on the bench's own web server."""

import uuid
from functools import cache

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django_q.conf import Conf
from django_q.signing import SignedPackage

from jobs.models import Job
from jobs.queue import uses_orm_broker

FIBO_ID = "bria-fibo-bbq-preview"

# The hold as one conditional UPDATE: no overdraft, without a separate lock round trip.
HOLD = """
UPDATE billing_wallet SET held = held + %s
WHERE team_id = %s AND balance - held >= %s
RETURNING balance, held
"""
INSERT_JOB = """
INSERT INTO jobs_job (code, team_id, created_by_id, model, params, price, status, submission, money, error,
                      webhook_token_hash, media_urls, outputs_fetched, output_error, client_webhook_url,
                      client_webhook_mode, client_callback_attempts, poll_failures, submit_attempts, fetch_attempts,
                      created_at, updated_at)
VALUES (%s, %s, %s, 'fibo', %s, %s, 'QUEUED', 'pending', 'held', '', '', '[]', false, '', '', '', 0, 0, 0, 0, %s, %s)
RETURNING id
"""
INSERT_ENTRY = """
INSERT INTO billing_entry (team_id, actor_id, member_id, kind, model, job_id, balance_delta, held_delta,
                           balance_after, held_after, idempotency_key, memo, created_at)
VALUES (%s, %s, %s, 'hold', 'fibo', %s, 0, %s, %s, %s, %s, '', %s)
"""
INSERT_TASK = 'INSERT INTO django_q_ormq ("key", payload, "lock") VALUES (%s, %s, %s)'


@csrf_exempt
def trivial(request):
    """The ceiling: the server, the middleware and the load generator, and no work."""
    return HttpResponse(b"ok", content_type="text/plain")


@csrf_exempt
@require_POST
def raw_submit(request, team_id, user_id):
    """A FIBO submission's writes in raw SQL, in one transaction: the hold on the wallet,
    the job, its ledger entry and its submit task (a queue row with the ORM broker, a
    push on commit with Redis, as the studio does). No authentication, no validation
    (the body is stored as the job's parameters), no rate limit, no audit event."""
    price = settings.PRICES_MICROS["fibo"]
    code, now = uuid.uuid4(), timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(HOLD, [price, team_id, price])
        wallet = cursor.fetchone()
        if wallet is None:
            return JsonResponse({"error": "Insufficient Balance"}, status=402)
        cursor.execute(INSERT_JOB, [_db_uuid(code), team_id, user_id, request.body.decode(), price, _db_time(now),
                                    _db_time(now)])
        job_id = cursor.fetchone()[0]
        cursor.execute(INSERT_ENTRY, [team_id, user_id, user_id, job_id, price, wallet[0], wallet[1],
                                      f"job:{code}:hold", _db_time(now)])
        _enqueue_submit(cursor, job_id, now)
    return JsonResponse({"request_id": f"{FIBO_ID}_{code}", "status": "QUEUED"}, status=202)


def _enqueue_submit(cursor, job_id, now):
    """The task django-q2's async_task would send for jobs.tasks.submit_job, built and
    signed the same way, so a worker could run it."""
    task = {"id": uuid.uuid4().hex, "name": f"bench-{job_id}", "func": "jobs.tasks.submit_job", "args": (job_id,),
            "kwargs": {}, "started": now, "ack_failure": True}
    package = SignedPackage.dumps(task)
    if uses_orm_broker():
        cursor.execute(INSERT_TASK, [Conf.CLUSTER_NAME, package, _db_time(now)])
    else:
        transaction.on_commit(lambda: redis_client().rpush(f"django_q:{Conf.CLUSTER_NAME}:q", package))


@cache
def redis_client():
    """One client (and connection pool) per process."""
    import redis

    return redis.Redis.from_url(settings.REDIS_URL)


def _db_uuid(value):
    return Job._meta.get_field("code").get_db_prep_value(value, connection)


def _db_time(value):
    return connection.ops.adapt_datetimefield_value(value)
