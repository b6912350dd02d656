"""Prometheus metrics, served at /metrics (studio/ops/views.py) and, where no web process
runs, by the worker (serve_worker_metrics).

Two kinds of figures, read two ways:

- Events, counted by the process that sees them: webhooks received and deduplicated,
  holds refused (web); gateway answers and the webhook→COMPLETED latency (worker). With
  PROMETHEUS_MULTIPROC_DIR set, every process on a machine, web and worker alike, keeps
  its counts in files there (prometheus-client's multiprocess mode) and a scrape adds
  them up; across machines Prometheus adds the machines up (`sum by (code)`…).
- State, read from the database and the broker at scrape time (StateCollector): jobs by
  model and status, spend by model, the queue's depth and its oldest task's age. Any web
  process on any machine answers the same figures: aggregate them with `max`, not `sum`.
"""

import hmac
import logging
import os
import threading
from datetime import timedelta
from wsgiref.simple_server import WSGIRequestHandler, make_server

import redis
from django.conf import settings
from django.core import checks
from django.db import DatabaseError
from django.db.models import Count, Min, Sum
from django.utils import timezone
from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram,
                               disable_created_metrics, generate_latest)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from jobs.models import TERMINAL, Job, Status, WebhookDelivery
from studio.billing.models import Entry
from studio.ops import health, multiproc

logger = logging.getLogger(__name__)

# prometheus-client chose its storage when imported: files in this directory, or memory.
MULTIPROC_DIR = multiproc.directory()
if MULTIPROC_DIR:
    os.makedirs(MULTIPROC_DIR, exist_ok=True)  # the histogram below opens its file now
# No *_created series: multiprocess mode has none either, so both modes read alike.
disable_created_metrics()

# -- events -------------------------------------------------------------------------

WEBHOOKS_RECEIVED = Counter(
    "studio_webhooks_received", "Gateway webhooks accepted (right token, a status body), by the status they report.",
    ["status"])
WEBHOOKS_DEDUPLICATED = Counter(
    "studio_webhooks_deduplicated", "Accepted webhooks that repeated a status already received for their job.",
    ["status"])
HOLDS_REFUSED = Counter(
    "studio_holds_refused", "Submissions refused when holding their price: insufficient_funds or cap.", ["reason"])
GATEWAY_RESPONSES = Counter(
    "studio_gateway_responses",
    "Answers the gateway client got, by HTTP code; unreachable: no connection, no_answer: connected, no answer.",
    ["code"])
WEBHOOK_TO_COMPLETED = Histogram(
    "studio_webhook_to_completed_seconds",
    "From the arrival of the webhook announcing COMPLETED to the job COMPLETED with its outputs stored.",
    buckets=(0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))


def observe_gateway_answer(answer):
    """The gateway client's one call per answer: an HTTP code, or "unreachable"/"no_answer"."""
    GATEWAY_RESPONSES.labels(str(answer)).inc()
    health.note_gateway_answer(answer, ok=isinstance(answer, int) and answer < 500 and answer != 429)


def observe_webhook(status, duplicate):
    WEBHOOKS_RECEIVED.labels(status).inc()
    if duplicate:
        WEBHOOKS_DEDUPLICATED.labels(status).inc()


def observe_completed(job):
    """After `job` moved to COMPLETED (its outputs stored first): how long since the
    webhook that announced it arrived. A job completed by polling has no such webhook."""
    received_at = WebhookDelivery.objects.filter(job_id=job.pk, status=Status.COMPLETED).values_list(
        "received_at", flat=True).first()
    if received_at is not None:
        WEBHOOK_TO_COMPLETED.observe(max((job.completed_at - received_at).total_seconds(), 0.0))


# -- state --------------------------------------------------------------------------

# A row older than this was committed by now: no transaction that writes jobs or ledger
# entries stays open that long (none does network I/O).
SETTLED_AFTER = timedelta(minutes=5)


class Tally:
    """Counts over a table's rows that will never change again, kept by this process
    and extended as more rows settle, plus a fresh count of the rows above them at each
    scrape: a scrape reads the recent rows only (a range of the primary key), however
    long the table. `count(after, upto)` counts the rows with after < pk <= upto (upto
    None: no bound), as {labels: value}."""

    def __init__(self, count):
        self.count = count
        self.settled_upto = 0
        self.settled = {}
        self.lock = threading.Lock()

    def read(self, settled_upto):
        with self.lock:
            if settled_upto > self.settled_upto:
                _add(self.settled, self.count(self.settled_upto, settled_upto))
                self.settled_upto = settled_upto
            return _add(dict(self.settled), self.count(self.settled_upto, None))


def _add(totals, more):
    for labels, value in more.items():
        totals[labels] = totals.get(labels, 0) + value
    return totals


def _pk_range(queryset, after, upto):
    queryset = queryset.filter(pk__gt=after)
    return queryset if upto is None else queryset.filter(pk__lte=upto)


def _count_jobs(after, upto):
    rows = _pk_range(Job.objects.all(), after, upto).values_list("model", "status").annotate(n=Count("pk"))
    return {(model, status): n for model, status, n in rows}


def _spend_micros(after, upto):
    rows = _pk_range(Entry.objects.filter(kind=Entry.Kind.CAPTURE), after, upto).values_list("model").annotate(
        spent=Sum("balance_delta"))
    return {(model,): -spent for model, spent in rows}


def _newest_settled_pk(queryset):
    """The newest row created more than SETTLED_AFTER ago (the created_at index): every
    row below it was committed by now."""
    # Rows created in the same instant are told apart by their key: the newest is the
    # highest (a tie left to the database would give any of them).
    pk = queryset.filter(created_at__lt=timezone.now() - SETTLED_AFTER).order_by("-created_at", "-pk").values_list(
        "pk", flat=True).first()
    return pk or 0


def _jobs_settled_upto():
    """Jobs below the oldest job in flight are terminal, and a terminal status is final.
    (Deleting a team deletes its jobs: a process that tallied them counts them until it
    restarts.) A job stuck in flight holds the mark back: scrapes stay right, and read
    more rows."""
    upto = _newest_settled_pk(Job.objects.all())
    in_flight = [status for status in Status.values if status not in TERMINAL]
    oldest_live = Job.objects.filter(status__in=in_flight).aggregate(pk=Min("pk"))["pk"]  # the (status, …) index
    return upto if oldest_live is None else min(upto, oldest_live - 1)


def _spend_settled_upto():
    """Ledger entries are append-only (a trigger refuses UPDATE and DELETE)."""
    return _newest_settled_pk(Entry.objects.all())


JOBS = Tally(_count_jobs)
SPEND = Tally(_spend_micros)


class StateCollector:
    """Figures read at scrape time. When the database or the broker cannot be read,
    studio_state_up is 0 and the figures are left out (rather than reported as zero)."""

    def collect(self):
        up = GaugeMetricFamily("studio_state_up", "1 when the figures below could be read (database, broker).")
        try:
            families = [self._jobs(), self._spend(), *self._queue()]
        except (DatabaseError, redis.RedisError, OSError) as exc:
            logger.warning("metrics: state figures unavailable: %r", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _jobs(self):
        counts = JOBS.read(_jobs_settled_upto())
        family = GaugeMetricFamily("studio_jobs", "Jobs by model and status.", labels=["model", "status"])
        for model in Job.Model.values:
            for status in Status.values:
                family.add_metric([model, status], counts.get((model, status), 0))
        return family

    def _spend(self):
        spent = SPEND.read(_spend_settled_upto())
        family = CounterMetricFamily("studio_spend_dollars", "What the ledger charged (captures), by model.",
                                     labels=["model"])
        for model in Job.Model.values:
            family.add_metric([model], spent.get((model,), 0) / 1_000_000)
        return family

    def _queue(self):
        depth, oldest = health.queue_figures()
        yield GaugeMetricFamily("studio_queue_depth", "Tasks waiting on the broker for a worker.", value=depth)
        yield GaugeMetricFamily("studio_queue_oldest_task_age_seconds",
                                "How long the oldest waiting task has waited (0 when none waits).", value=oldest or 0)


STATE = CollectorRegistry()
STATE.register(StateCollector())


def exposition(with_state=True):
    """The text a scrape gets: this machine's events (every process's, in multiprocess
    mode), then the state figures."""
    if MULTIPROC_DIR:
        events = CollectorRegistry()
        MultiProcessCollector(events)
    else:
        events = REGISTRY
    return generate_latest(events) + (generate_latest(STATE) if with_state else b"")


# -- who may read them ----------------------------------------------------------------


def refusal(authorization):
    """None when the Authorization header carries METRICS_TOKEN as a bearer token, else
    the HTTP status to refuse with: 404 while METRICS_TOKEN is unset (the metrics are
    off, in development too), 401 without a bearer token, 403 with a wrong one."""
    if not settings.METRICS_TOKEN:
        return 404
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return 401
    if not hmac.compare_digest(given.strip().encode(), settings.METRICS_TOKEN.encode()):
        return 403
    return None


# -- the worker's own listener --------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass  # one line per scrape would drown the worker's log


def _worker_app(environ, start_response):
    if environ.get("PATH_INFO") != "/metrics":
        status = 404
    else:
        status = refusal(environ.get("HTTP_AUTHORIZATION", "")) or 200
    if status != 200:
        start_response({401: "401 Unauthorized", 403: "403 Forbidden", 404: "404 Not Found"}[status],
                       [("Content-Type", "text/plain"), *([("WWW-Authenticate", "Bearer")] if status == 401 else [])])
        return [b""]
    body = exposition(with_state=False)
    start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
    return [body]


def serve_worker_metrics(port):
    """For a machine that runs workers and no web process: `manage.py qcluster` with
    WORKER_METRICS_PORT set serves /metrics on that port (same token), from a thread of
    its main process. It serves this machine's events only: the state figures come
    from the web processes, which read them from the database and the broker."""
    server = make_server("0.0.0.0", port, _worker_app, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True).start()
    logger.info("worker metrics on :%s/metrics", port)
    return server


# -- a system check ----------------------------------------------------------------


def counted_per_process(app_configs, **kwargs):
    """A system check: in production, /metrics without the multiprocess directory would
    answer with the counts of whichever web process took the scrape."""
    if settings.DEBUG or not settings.METRICS_TOKEN or MULTIPROC_DIR:
        return []
    return [checks.Warning(
        "METRICS_TOKEN is set but PROMETHEUS_MULTIPROC_DIR is not: each process counts on its own, and /metrics "
        "answers with the counts of whichever web process takes the scrape.",
        hint="Set PROMETHEUS_MULTIPROC_DIR to a directory on local disk, the same for web and worker on a machine.",
        id="ops.W001",
    )]
