"""The request id: one token per request, carried by every log line the request causes,
in the web process and in the worker.

The middleware takes the proxy's `X-Request-ID` when it is a sane token (or makes one),
keeps it in a context variable until the response is closed, and answers with it. A task
queued meanwhile carries it in its django-q2 package, beside (not among) the task's
arguments, so task functions, their names and jobs/queue.py's outbox are unchanged. The
worker process puts it back in the context variable while it runs that task, and the
cluster's monitor while it logs the task's result; tasks queued by a task inherit it.
studio/logging.py's RequestIdFilter puts it on every log record.
"""

import re
import uuid
from contextvars import ContextVar

HEADER = "X-Request-ID"
# The key in django-q2's task package (a dict of its own keys: id, name, func, args…).
TASK_KEY = "studio_request_id"
# What a proxy may hand us: nginx's $request_id, a UUID, Heroku's and most others'.
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

_current = ContextVar("request_id", default=None)
# The values of the request's cookies (its session id, say), which an error report must
# not carry wherever they turn up: a frame's variables, a repr (studio/ops/sentry.py).
_cookie_values = ContextVar("cookie_values", default=())


def current():
    """The request id of the request or task this code runs for, or None."""
    return _current.get()


def cookie_values():
    """The values of the current request's cookies, long enough to be secrets."""
    return _cookie_values.get()


class RequestIdMiddleware:
    """First in the chain, so even a redirect or a refusal answers with its id. The id
    stays set until the response is closed (`clear`, on request_finished): Django logs
    "Not Found" and a streamed response's errors after the middleware has returned."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.headers.get(HEADER, "")
        request_id = given if _SANE.fullmatch(given) else uuid.uuid4().hex
        _current.set(request_id)
        _cookie_values.set(tuple(value for value in request.COOKIES.values() if len(value) >= 8))
        response = self.get_response(request)
        response[HEADER] = request_id
        return response


def clear(**kwargs):
    _current.set(None)
    _cookie_values.set(())


# -- django-q2 signals (connected in studio/ops/apps.py) -----------------------------


def stamp_task(sender, task, **kwargs):
    """pre_enqueue, in whichever process queues the task."""
    request_id = _current.get()
    if request_id:
        task[TASK_KEY] = request_id


def adopt_task(sender, task, **kwargs):
    """pre_execute in the worker process, post_execute in the monitor: the lines that
    follow are this task's (None for a task no request queued, a schedule's)."""
    _current.set(task.get(TASK_KEY))


def forget_task(sender, **kwargs):
    """post_execute_in_worker: the worker's "processing" line for its next task comes
    before that task's pre_execute, and must not carry this one's id."""
    _current.set(None)
