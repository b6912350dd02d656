"""Enqueueing that keeps the queue and the database in step.

With django-q2's ORM broker the task row is written inside the caller's transaction,
which makes the queue an outbox: the task exists if and only if the job does. Redis
cannot join a database transaction, so there the task is sent on commit, and the
sweeper re-enqueues jobs whose task was lost in between.
"""

from functools import cache

from django.conf import settings
from django.db import transaction
from django_q.brokers import get_broker
from django_q.tasks import async_task


def uses_orm_broker():
    return "orm" in settings.Q_CLUSTER


def enqueue(func, *args, **kwargs):
    """Queue a task with the transaction it belongs to (see the module's docstring)."""
    if uses_orm_broker():
        send(func, *args, **kwargs)
    else:
        transaction.on_commit(lambda: send(func, *args, **kwargs))


def send(func, *args, **kwargs):
    """Queue a task now, through this process's broker: for callers outside a transaction
    of their own (a webhook waking its job)."""
    if uses_orm_broker():
        return async_task(func, *args, **kwargs)
    return async_task(func, *args, broker=redis_broker(), **kwargs)


@cache
def redis_broker():
    """One broker per process. Left to itself, async_task builds a new Redis client, and
    opens a new connection, for every task; the client's pool survives forks (it checks
    its pid)."""
    return get_broker()
