"""Chaos runs (`manage.py chaos`): paid jobs through the studio's real processes against a
gateway that misbehaves, then the money checks.

A run owns everything it starts. An in-process gateway emulator on a free port answers a
seeded share of requests with faults (500, 503, 429, a hang that outlasts the client's
timeout, a dropped connection), delivers every webhook twice and ends some jobs FAILED or
ERROR. The studio's web server (gunicorn: webhooks, RMBG inputs) and worker
(`manage.py qcluster`) run as child processes on the configured database, pointed at that
emulator. Jobs start through jobs.actions, as a member of team `chaos` would start them.

Afterwards every job must have ended; the ledger must verify (studio.billing.verify, as
`verify_ledger`); each job must be charged exactly when the gateway billed it and
released otherwise; and no job may have reached the gateway twice.

Another worker on the same database would take some of the run's tasks and send them to
its own gateway: a run refuses to start while another worker cluster is alive on the
database (each announces itself there: studio/worker/heartbeat.py), and the checks name
any job that still went astray (a request id the chaos gateway never issued).
"""

import contextlib
import logging
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django_q.models import Schedule

from devtools.emulator.server import EmulatorServer, image_models
from jobs.actions import start_fibo, start_rmbg_from_upload
from jobs.contract import fibo_params
from jobs.models import Job, Status, WebhookDelivery
from jobs.tasks import SUBMIT_UNCERTAIN_AFTER
from studio.accounts.models import Team
from studio.billing import money
from studio.billing.models import Entry, Wallet
from studio.billing.verify import verify
from studio.processes import Child, free_port
from studio.worker.heartbeat import LASTS_SECONDS, live_clusters

TEAM_SLUG = "chaos"
USERNAME = "chaos"

RMBG_SHARE = 0.25
# Share of FIBO jobs the gateway is told to end badly, half FAILED and half ERROR.
FORCED_SHARE = 0.3
SUBJECTS = ("a paper boat on a pond", "a lighthouse at dusk", "a red balloon over green hills",
            "a cat asleep on a windowsill", "a bicycle leaning on a blue door")
# The emulator's prompt markers: the planned outcome lands on the planned job (its
# outcome queue would hand it to whichever job reaches the gateway next).
MARKERS = {"COMPLETED": "", "FAILED": " [fail]", "ERROR": " [error]"}

# The worker's gateway client during a run: a short timeout so that a hang costs seconds,
# and the attempts the faults are sized against.
CLIENT_TIMEOUT = 2
CLIENT_ATTEMPTS = 4
CLIENT_BACKOFF_MS = 100
HANG = f"hang:{CLIENT_TIMEOUT + 1}"  # outlasts the client: the gateway's answer is lost
# A dropped submit leaves the job "submitting" until the sweeper gives up on it: only
# runs that last that long (plus a sweep) can see those jobs end.
LOST_SUBMIT_SETTLES_AFTER = SUBMIT_UNCERTAIN_AFTER.total_seconds() + 120

SUBMIT_PATH = re.compile(r"/[^/]+/v1/[^/]+")
STATUS_PATH = re.compile(r"/v2/requests/status/([^/]+)")
MEDIA_PATH = re.compile(r"/v1/([^/]+)/output\.png")
WEBHOOK_JOB = re.compile(r"/hooks/pixazo/([0-9a-f-]{36})/")


class ChaosError(Exception):
    """The run cannot start (or go on); the message says why."""


# -- what to run, and which requests fail -----------------------------------------------


@dataclass(frozen=True)
class Planned:
    model: str
    outcome: str  # the status the gateway is asked to end the job with


def make_plan(seed, count):
    rng = random.Random(f"{seed}:plan")
    plan = []
    for _ in range(count):
        model_roll, outcome_roll = rng.random(), rng.random()
        if model_roll < RMBG_SHARE:
            plan.append(Planned(Job.Model.RMBG, "COMPLETED"))  # the markers are FIBO prompts
        elif outcome_roll < FORCED_SHARE / 2:
            plan.append(Planned(Job.Model.FIBO, "FAILED"))
        elif outcome_roll < FORCED_SHARE:
            plan.append(Planned(Job.Model.FIBO, "ERROR"))
        else:
            plan.append(Planned(Job.Model.FIBO, "COMPLETED"))
    return plan


def fault_mixes(lost_submits):
    common = [500, 503, 429, "close", HANG]
    # A hung submit's answer is lost, but the gateway took the job: its webhook brings
    # the request id home within seconds. A dropped one never reached the gateway, and
    # the job waits for the sweeper's verdict: only in runs that last that long.
    return {"submit": common if lost_submits else [500, 503, 429, HANG], "status": common, "media": common}


class Faults:
    """Decides, request by request, which gateway calls fail and how.

    Each kind of request (submit, status, media) draws from its own seeded stream, so a
    seed repeats the sequence of faults per kind (thread timing still decides which job
    meets which). A job meets at most `attempts - 1` faults of a kind: the client's
    retries always get through in the end, so the run exercises retries, deduplication
    and recovery rather than how long the studio waits out an outage."""

    def __init__(self, seed, rate, mixes, attempts=CLIENT_ATTEMPTS):
        self.rate = rate
        self.mixes = mixes
        self.limit = attempts - 1
        self.injected = Counter()  # (kind, fault) -> times
        self._streams = {kind: random.Random(f"{seed}:{kind}") for kind in mixes}
        self._met = Counter()
        self._lock = threading.Lock()

    def draw(self, kind, target):
        with self._lock:
            stream = self._streams[kind]
            roll, fault = stream.random(), stream.choice(self.mixes[kind])  # both, so the stream stays aligned
            if roll >= self.rate or self._met[kind, target] >= self.limit:
                return None
            self._met[kind, target] += 1
            self.injected[kind, fault] += 1
            return fault

    @property
    def total(self):
        return sum(self.injected.values())

    def describe(self):
        kinds = []
        for kind in self.mixes:
            faults = sorted(((f, n) for (k, f), n in self.injected.items() if k == kind), key=lambda item: str(item[0]))
            detail = ", ".join(f"{fault} ×{n}" for fault, n in faults)
            kinds.append(f"{kind} {sum(n for _, n in faults)}" + (f" ({detail})" if detail else ""))
        return "faults: " + "; ".join(kinds)


def job_code_in(webhook_url):
    match = WEBHOOK_JOB.search(webhook_url or "")
    return match.group(1) if match else None


def classify(method, path, headers):
    """(kind of gateway request, the job or request id it is about), or (None, None)."""
    if method == "POST" and SUBMIT_PATH.fullmatch(path):
        return "submit", job_code_in(headers.get("X-Webhook-URL"))
    if method in ("GET", "HEAD") and (match := STATUS_PATH.fullmatch(path)):
        return "status", match.group(1)
    if method in ("GET", "HEAD") and (match := MEDIA_PATH.fullmatch(path)):
        return "media", match.group(1)
    return None, None


class ChaosEmulator(EmulatorServer):
    """The bundled emulator, with each fault queued through its own control API just
    before the request it is drawn for, so faults behave exactly as the emulator defines
    them. (Two requests racing may swap a fault between them; the count stays right.)"""

    def __init__(self, faults, **options):
        super().__init__(**options)
        self.faults = faults

    def handle(self, method, path, headers, raw):
        kind, target = classify(method, path, headers)
        if kind and (fault := self.faults.draw(kind, target)) is not None:
            self.add_faults({kind: [fault]})
        return super().handle(method, path, headers, raw)


# -- the studio's processes ---------------------------------------------------------------


def database_env():
    """Environment that points a child at the database this process uses (under the test
    runner, the test database)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        name = str(db["NAME"])
        if name == ":memory:" or "mode=memory" in name:
            raise ChaosError("an in-memory SQLite database cannot be shared with the worker")
        return {"DATABASE_URL": "", "SQLITE_PATH": name}
    url = urlsplit(os.environ.get("DATABASE_URL", ""))
    if not url.scheme:
        raise ChaosError("cannot tell the worker where the database is: set DATABASE_URL")
    return {"DATABASE_URL": urlunsplit(url._replace(path="/" + quote(db["NAME"])))}


def child_env(emulator, web_url):
    """The studio's own settings, pointed at the chaos gateway and the chaos web server
    (plain HTTP on loopback, so no HTTPS redirect for the gateway's callbacks)."""
    hosts = ",".join(dict.fromkeys([*settings.ALLOWED_HOSTS, "127.0.0.1"]))
    return {
        **os.environ, **database_env(),
        "PIXAZO_BASE_URL": emulator.url, "PIXAZO_API_KEY": emulator.api_key,
        "PIXAZO_WEBHOOKS": "true", "PIXAZO_ALLOW_HTTP_WEBHOOKS": "true",
        "PIXAZO_TIMEOUT_SECONDS": str(CLIENT_TIMEOUT), "PIXAZO_MAX_ATTEMPTS": str(CLIENT_ATTEMPTS),
        "PIXAZO_BACKOFF_MS": str(CLIENT_BACKOFF_MS),
        "PUBLIC_BASE_URL": web_url, "ALLOWED_HOSTS": hosts, "SECURE_SSL_REDIRECT": "false",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT), "PYTHONUNBUFFERED": "1",
    }


class Stack:
    """gunicorn and `manage.py qcluster`, as the Procfile runs them."""

    def __init__(self, emulator, log_dir):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = child_env(emulator, self.url)
        self.log_dir = log_dir
        self.web = self.worker = None
        self.workers_started = 0

    def start(self):
        self.web = Child("web", [sys.executable, "-m", "gunicorn", "studio.wsgi", "--bind", f"127.0.0.1:{self.port}",
                                 "--workers", "2", "--threads", "4", "--timeout", "30"], self.env, self.log_dir)
        self.start_worker()
        self._wait_for_web()

    def start_worker(self):
        self.workers_started += 1
        name = "worker" if self.workers_started == 1 else f"worker-{self.workers_started}"
        self.worker = Child(name, [sys.executable, "manage.py", "qcluster"], self.env, self.log_dir)

    def _wait_for_web(self, seconds=30):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.web.exit_code() is not None:
                raise ChaosError(f"the web server exited with code {self.web.exit_code()}:\n{self.web.output()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.2)
        raise ChaosError(f"the web server did not answer on {self.url}/healthz in {seconds} s")

    def children(self):
        return [child for child in (self.web, self.worker) if child is not None]

    def crashed(self):
        return [f"{child.name} (pid {child.pid}) exited on its own with code {child.exit_code()}; see {child.log_path}"
                for child in self.children() if child.exit_code() is not None]

    def stop(self):
        for child in reversed(self.children()):
            child.stop()


# -- the team, its money, its jobs --------------------------------------------------------


def chaos_membership():
    """The dedicated team `chaos` and its member `chaos` (no password: nobody logs in)."""
    user, created = User.objects.get_or_create(username=USERNAME, defaults={"email": ""})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    team = Team.objects.filter(slug=TEAM_SLUG).first() or Team.create_for(user, "Chaos", slug=TEAM_SLUG)
    membership = team.memberships.select_related("team", "user").filter(user=user).first()
    if membership is None or team.archived_at:
        raise ChaosError(f"team {TEAM_SLUG!r} exists but user {USERNAME!r} cannot run jobs in it")
    return membership


def fund(team, amount, key):
    """Top the wallet up, in whole dollars, to cover `amount`; booked once under `key`."""
    short = amount - Wallet.objects.get(team=team).available
    if short > 0:
        dollars = -(-short // 1_000_000) * 1_000_000
        money.top_up(team, dollars, reason="chaos run credit", key=key)


def start_jobs(membership, plan, run):
    picture = None
    jobs = []
    for number, planned in enumerate(plan, 1):
        if planned.model == Job.Model.RMBG:
            picture = picture or image_models().render_fibo("a bright parcel on a plain table", 7, "1:1")
            jobs.append(start_rmbg_from_upload(membership, picture))
        else:
            prompt = f"chaos {run} #{number}: {SUBJECTS[number % len(SUBJECTS)]}{MARKERS[planned.outcome]}"
            jobs.append(start_fibo(membership, fibo_params(prompt, seed=number)))
    return jobs


# -- the checks ------------------------------------------------------------------------


@dataclass
class Report:
    statuses: Counter
    faults: Faults
    duplicates: int
    drifts: list = field(default_factory=list)
    stuck: list = field(default_factory=list)
    crashes: list = field(default_factory=list)
    warnings: list = field(default_factory=list)

    @property
    def ok(self):
        return not (self.drifts or self.stuck or self.crashes)

    def summary(self):
        total = sum(self.statuses.values())
        ended = (Status.COMPLETED, Status.FAILED, Status.ERROR)
        parts = [f"{self.statuses[status]} {status.lower()}" for status in ended]
        in_flight = total - sum(self.statuses[status] for status in ended)
        if in_flight:
            parts.append(f"{in_flight} in flight")
        return (f"chaos: {total} jobs ({', '.join(parts)}), {self.faults.total} faults injected, "
                f"{self.duplicates} duplicate webhooks absorbed, drift {len(self.drifts)}, stuck {len(self.stuck)} — "
                + ("OK" if self.ok else "FAILED"))


def with_money(jobs):
    def count(kind):
        return Count("ledger", filter=Q(ledger__kind=kind))

    return jobs.annotate(holds=count(Entry.Kind.HOLD), captures=count(Entry.Kind.CAPTURE),
                         releases=count(Entry.Kind.RELEASE)).order_by("pk")


def gateway_submissions(emulator):
    """job code -> what the gateway did with each submission it took for that job (the
    per-job webhook URL names the job)."""
    seen = defaultdict(list)
    for request in emulator.requests():
        seen[job_code_in(request["headers"].get("X-Webhook-URL"))].append(request)
    return seen


def job_drifts(job, submissions):
    name = f"job {job.code} ({job.model}, {job.status})"
    drifts = []
    if len(submissions) > 1:
        drifts.append(f"{name} reached the gateway {len(submissions)} times")
    issued = {s["request_id"]: s["status"] for s in submissions}
    if job.request_id and job.request_id not in issued:
        drifts.append(f"{name} has request id {job.request_id}, which the chaos gateway never issued "
                      "(is another worker running on this database?)")
    if job.holds != 1:
        drifts.append(f"{name} has {job.holds} holds instead of 1")
    if not job.is_terminal:
        return drifts
    for request_id, status in issued.items():
        if status != job.status:
            drifts.append(f"{name}: the gateway says {request_id} is {status}")
    charged, released = (job.captures, job.releases) == (1, 0), (job.captures, job.releases) == (0, 1)
    billed = any(status in settings.CHARGED_STATUSES for status in issued.values())
    if not (charged or released):
        drifts.append(f"{name}: {job.captures} captures and {job.releases} releases instead of one of them")
    elif charged and not billed:
        drifts.append(f"{name} was charged but the gateway billed nothing")
    elif released and billed:
        drifts.append(f"{name} was released but the gateway billed it")
    return drifts


def stuck_line(job):
    state = job.status if not job.is_terminal else "COMPLETED with its outputs not copied yet"
    line = (f"job {job.code} ({job.model}) still {state}: submission {job.submission}, "
            f"request id {job.request_id or 'none'}, money {job.money}")
    return line + (f"; last error: {job.error}" if job.error else "")


def delivery_warnings(emulator):
    refused = Counter(str(d["http_status"] or d["error"]) for d in emulator.deliveries()
                      if not (d["http_status"] and 200 <= d["http_status"] < 300))
    return [f"{n} webhook deliveries were not accepted ({answer})" for answer, n in sorted(refused.items())]


def log_warnings(children):
    warnings = []
    for child in children:
        text = child.output()
        for needle in ("Traceback", "database is locked"):
            if needle in text:
                warnings.append(f"{child.name} logged {needle!r} {text.count(needle)} times; see {child.log_path}")
    return warnings


class Progress:
    """A line every 10 s while jobs finish, and every minute while nothing moves."""

    def __init__(self, say, total, started):
        self.say, self.total, self.started = say, total, started
        self.shown, self.shown_at = 0, started

    def show(self, finished):
        now = time.monotonic()
        if now - self.shown_at >= (10 if finished != self.shown else 60):
            self.say(f"chaos: {finished}/{self.total} finished after {now - self.started:.0f} s")
            self.shown, self.shown_at = finished, now


# -- a run --------------------------------------------------------------------------------


class ChaosRun:
    """One run, start to finish; `execute()` returns the Report and always stops what it
    started. `say` receives progress lines for the operator."""

    def __init__(self, *, jobs, seed, fault_rate, timeout, delay, kill_worker, force, say):
        self.plan = make_plan(seed, jobs)
        self.seed, self.timeout, self.delay = seed, timeout, delay
        self.kill_worker, self.force, self.say = kill_worker, force, say
        self.run = f"{timezone.now():%Y%m%d-%H%M%S}-{seed}"
        self.faults = Faults(seed, fault_rate, fault_mixes(lost_submits=timeout >= LOST_SUBMIT_SETTLES_AFTER))
        self.log_dir = self.emulator = self.stack = None
        self.killed = False

    def execute(self):
        membership = self.preflight()
        drift_before = verify()  # told apart in the report: the run did not cause these
        self.log_dir = Path(tempfile.mkdtemp(prefix="chaos-"))
        # The emulator logs every request to stderr, and django-q every enqueued task:
        # into the log folder, beside the children's logs.
        with (open(self.log_dir / "emulator.log", "w") as emulator_log, contextlib.redirect_stderr(emulator_log),
              _quiet("django-q")):
            try:
                self.start_processes()
                jobs = self.submit(membership)
                self.wait([job.pk for job in jobs])
                return self.check([job.pk for job in jobs], drift_before)
            finally:
                self.stop()

    def preflight(self):
        clusters = live_clusters()
        if clusters:
            raise ChaosError(f"a worker cluster is running on this database ({', '.join(clusters)}) and would take "
                             "the run's tasks: stop it and run again (a cluster that was killed is forgotten "
                             f"within {LASTS_SECONDS} s)")
        others = Job.objects.in_flight().exclude(team__slug=TEAM_SLUG).count()
        if others and not self.force:
            raise ChaosError(f"{others} jobs of other teams are in flight on this database, and the chaos worker would "
                             "poll them against its own gateway (and send lost ones there): let them finish, stop the "
                             "studio's worker, and run again, or pass --force")
        if not Schedule.objects.filter(func="jobs.tasks.sweep").exists():
            self.say("chaos: warning: the sweeper schedule is missing (run migrate): lost work will not be recovered")
        earlier = Job.objects.in_flight().filter(team__slug=TEAM_SLUG).count()
        if earlier:
            self.say(f"chaos: note: {earlier} jobs of earlier chaos runs are still in flight (their gateway is gone)")
        return chaos_membership()

    def start_processes(self):
        self.emulator = ChaosEmulator(self.faults, api_key=f"chaos-{os.urandom(8).hex()}", delay=self.delay,
                                      allow_http_webhooks=True, duplicate_rate=1.0).start()
        self.stack = Stack(self.emulator, self.log_dir)
        self.stack.start()
        counts = Counter(planned.model for planned in self.plan)
        outcomes = Counter(planned.outcome for planned in self.plan)
        self.say(f"chaos: seed {self.seed}, {len(self.plan)} jobs ({counts['fibo']} FIBO, {counts['rmbg']} RMBG; "
                 f"asked to end {outcomes['COMPLETED']} completed, {outcomes['FAILED']} failed, "
                 f"{outcomes['ERROR']} error), fault rate {self.faults.rate:g}")
        self.say(f"chaos: gateway emulator {self.emulator.url} (delay {self.delay:g} s, every webhook twice), "
                 f"web {self.stack.url} (pid {self.stack.web.pid}), worker pid {self.stack.worker.pid}, "
                 f"logs in {self.log_dir}")

    def submit(self, membership):
        prices = sum(money.price_of(planned.model) for planned in self.plan)
        fund(membership.team, prices, key=f"chaos:{self.run}")
        try:
            return start_jobs(membership, self.plan, self.run)
        except (money.InsufficientFunds, money.CapExceeded) as exc:
            raise ChaosError(f"the chaos team cannot pay for the run: {exc}") from None

    def wait(self, job_ids):
        """Until every job has ended (or the timeout, or a child's crash)."""
        started = time.monotonic()
        deadline = started + self.timeout
        progress = Progress(self.say, len(job_ids), started)
        while True:
            live = [job for job in Job.objects.filter(pk__in=job_ids) if job.is_live]
            if not live or time.monotonic() >= deadline or self.stack.crashed():
                return
            if self.kill_worker and not self.killed and all(j.submission == Job.Submission.ACCEPTED for j in live):
                self.kill_and_restart_worker(len(live))
            progress.show(len(job_ids) - len(live))
            time.sleep(0.5)

    def kill_and_restart_worker(self, in_flight):
        """SIGKILL, as the OOM killer or a lost machine would, then a fresh worker as a
        supervisor would start. Only once every job has reached the gateway: killed between
        its claim and its POST, a job waits for the sweeper's ten minutes, by design."""
        old = self.stack.worker
        old.kill()
        self.stack.start_worker()
        self.killed = True
        self.say(f"chaos: worker (pid {old.pid}) killed with SIGKILL with {in_flight} jobs in flight; "
                 f"restarted as pid {self.stack.worker.pid}")

    def check(self, job_ids, drift_before):
        jobs = list(with_money(Job.objects.filter(pk__in=job_ids)))
        seen = gateway_submissions(self.emulator)
        planned = dict(zip(job_ids, self.plan))
        report = Report(
            statuses=Counter(job.status for job in jobs), faults=self.faults,
            duplicates=WebhookDelivery.objects.filter(job_id__in=job_ids).aggregate(n=Sum("duplicates"))["n"] or 0,
            crashes=self.stack.crashed(),
        )
        report.drifts = verify()
        for job in jobs:
            report.drifts += job_drifts(job, seen.get(str(job.code), []))
            if job.is_terminal and job.status != planned[job.pk].outcome:
                report.warnings.append(f"job {job.code} ({job.model}) was meant to end {planned[job.pk].outcome} "
                                       f"and ended {job.status}: {job.error or 'no error given'}")
            if job.output_error:
                report.warnings.append(f"job {job.code}: {job.output_error}")
        report.stuck = [stuck_line(job) for job in jobs if job.is_live]
        report.warnings += [f"before the run: {drift}" for drift in drift_before]
        if self.kill_worker and not self.killed:
            report.warnings.append("the worker was not killed: no moment came with every job past its submission")
        report.warnings += delivery_warnings(self.emulator) + log_warnings(self.stack.children())
        return report

    def stop(self):
        # A second Ctrl-C (or SIGTERM) must not leave a worker behind half-stopped.
        signals = (signal.SIGINT, signal.SIGTERM) if in_main_thread() else ()
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in signals}
        try:
            if self.stack:
                self.stack.stop()
            if self.emulator:
                self.emulator.stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def discard_logs(self):
        if self.log_dir:
            shutil.rmtree(self.log_dir, ignore_errors=True)


@contextlib.contextmanager
def _quiet(logger_name):
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def in_main_thread():
    return threading.current_thread() is threading.main_thread()
