"""The bench's phases, in order, on a scratch PostgreSQL database:

1. seed: 50 paying teams with an API key each, jobs whose webhook tokens we know, two
   libraries (100 and 10,000 images), a team for the latency run;
2. start gunicorn (the studio with the bench's yardstick views) and the emulator;
3. rates at a fixed concurrency: the trivial view; submissions on one wallet and on 50,
   each through the gateway-compatible API and through the raw-SQL view; webhooks;
4. the library page at both sizes, and an image through the studio's media view;
5. start the worker (the backlog of phase 3 dropped first) and time, job by job, the
   gateway completing a job to the studio having it COMPLETED;
6. stop everything, then time the spend reports on 1,000,000 ledger entries.

Media are on the local disk, or with `--media s3` in a private bucket of a moto server
(tests/s3.py) that every process uses, as production does with AWS_STORAGE_BUCKET_NAME.

Progress goes to `say`; run() returns the figures as one dict.
"""

import hashlib
import io
import itertools
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import httpx
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import OrmQ
from PIL import Image

from devtools.bench import load
from devtools.bench.stack import (
    CpuMeter,
    MemorySampler,
    database_backends,
    descendants,
    status_kb,
)
from jobs.contract import GATEWAY_MODELS, fibo_params
from jobs.models import TERMINAL, Job, Status, WebhookDelivery, hash_token
from jobs.queue import uses_orm_broker
from studio.accounts.models import Team
from studio.api.models import APIKey
from studio.billing import money
from studio.billing.models import MICROS_PER_DOLLAR
from studio.library.models import Asset, Star
from studio.processes import Child, free_port

FIBO_ID, SUBMIT_PATH = GATEWAY_MODELS["fibo"]
# The seed document's minimal request.
SEED_PROMPT = ("A magnificent hot air balloon festival at sunrise, dozens of colorful balloons floating over a "
               "misty valley with rolling hills")
CREDIT = 1_000_000 * MICROS_PER_DOLLAR  # per team: far more than any run can spend
EMULATOR_KEY = "bench-emulator-key"
POLL_INTERVAL_S = 5  # the seed document's "Typical Workflow": poll every 5-10 seconds

TARGETS = {"submission_ratio": 0.5, "webhook_p99_ms": 250, "library_p95_ms": 150, "spend_report_ms": 1000,
           "web_worker_mb": 150}


@dataclass
class Options:
    concurrency: int = 16
    warmup: float = 2.0
    duration: float = 10.0
    submission_rounds: int = 5
    web_workers: int = 2 * (os.cpu_count() or 1) + 1
    q_workers: int = 4
    wallets: int = 50
    webhook_jobs: int = 20_000
    latency_jobs: int = 100
    latency_rate: float = 2.5
    library_sizes: tuple = (100, 10_000)
    library_requests: int = 30
    report_entries: int = 1_000_000
    media: str = "local"  # or "s3"


class Bench:
    def __init__(self, options, say):
        self.o = options
        self.say = say
        self.children = []
        self.memory = MemorySampler()
        self.cpu = CpuMeter()
        # The web server's key; sessions made here for it are signed with it too.
        self.secret_key = secrets.token_urlsafe(40)

    # -- the whole run ---------------------------------------------------------------

    def run(self):
        result = {"machine": machine(), "config": self.config()}
        self.scratch = Path(tempfile.mkdtemp(prefix="bria-bench-"))
        failed = True
        try:
            self.start_media()
            self.seed()
            self.start_web()
            self.memory.start()
            self.cpu.start()
            result["trivial_view"] = self.trivial()
            result["submissions"] = self.submissions()
            result["webhooks"] = {"ingest": self.webhook_ingest()}
            result["library"] = self.library()
            result["media"] = self.media()
            self.drop_backlog()
            self.start_worker()
            result["webhooks"].update(self.webhook_latency())
            result["memory_mb"] = self.memory_figures()
            failed = False
        finally:
            self.memory.stop()
            self.cpu.stop()
            for child in reversed(self.children):
                child.stop()
            self.drop_backlog(jobs=False)
            if failed:
                self.say(f"failed: the processes' logs are in {self.scratch}")
            else:
                shutil.rmtree(self.scratch, ignore_errors=True)
        result["machine"]["load_average_after_load"] = [round(x, 2) for x in os.getloadavg()]
        if self.o.report_entries:
            result["spend_report"] = self.spend_report()
        result["targets"] = targets(result)
        return result

    def config(self):
        return {**asdict(self.o), "web": f"gunicorn, {self.o.web_workers} sync workers", "broker":
                "orm" if uses_orm_broker() else "redis", "database": connection.settings_dict["NAME"],
                "media": "a private bucket on a moto S3 server" if self.o.media == "s3" else "the local disk"}

    # -- seeding -----------------------------------------------------------------------

    def seed(self):
        started = time.monotonic()
        self.say("seeding teams, keys, webhook jobs and libraries…")
        with transaction.atomic():
            self.wallets = [self._paying_team(f"bench-{n}") for n in range(self.o.wallets)]
            self.latency_team = self._paying_team("bench-latency")
            self.hooks = self._webhook_jobs(self.o.webhook_jobs)
        self.libraries = {size: self._library(size) for size in self.o.library_sizes}
        with connection.cursor() as cursor:
            # What autovacuum does soon after a bulk load: without statistics, the planner
            # takes a 10,000-image team for a handful of rows and joins them all.
            cursor.execute("ANALYZE")
        self.say(f"seeded in {time.monotonic() - started:.1f} s")

    def _paying_team(self, slug):
        user = User.objects.create(username=slug, password="!")
        team = Team.create_for(user, slug, slug=slug)
        money.top_up(team, CREDIT, reason="bench credit", key=slug)
        _, raw_key = APIKey.issue(team, user, "bench")
        return {"team": team.pk, "user": user.pk, "key": raw_key}

    def _webhook_jobs(self, count):
        """Jobs the gateway has accepted, each with a webhook token we know, and the
        terminal callback the gateway would send for it."""
        user = User.objects.create(username="bench-hooks", password="!")
        team = Team.create_for(user, "bench-hooks", slug="bench-hooks")
        tokens = [secrets.token_urlsafe(32) for _ in range(count)]
        now = timezone.now()
        codes = [uuid.uuid4() for _ in range(count)]
        jobs = Job.objects.bulk_create(
            Job(team=team, created_by=user, model="fibo", params=fibo_params(SEED_PROMPT), price=40_000,
                code=code, request_id=f"{FIBO_ID}_{code}", status=Status.PROCESSING,
                submission=Job.Submission.ACCEPTED, webhook_token_hash=hash_token(token), submitted_at=now)
            for code, token in zip(codes, tokens)
        )
        requests = []
        for job, token in zip(jobs, tokens):
            request_id = f"{FIBO_ID}_{job.code}"
            body = {"request_id": request_id, "status": "COMPLETED", "model_id": FIBO_ID, "error": None,
                    "output": {"media_url": [f"https://cdn.example/v1/{request_id}/output.png"],
                               "media_type": "image/png"},
                    "created_at": _iso(now), "updated_at": _iso(now), "completed_at": _iso(now)}
            requests.append(load.http_request("POST", f"/hooks/pixazo/{job.code}/{token}/",
                                              body=json.dumps(body).encode(),
                                              headers={"Content-Type": "application/json"}))
        return requests

    def _library(self, size):
        """A team with `size` finished FIBO jobs, one image each (all the same tiny PNG
        in storage), every fifth starred by its member."""
        slug = f"bench-library-{size}"
        image, thumbnail = self._tiny_image()
        with transaction.atomic():
            user = User.objects.create(username=slug, password="!")
            team = Team.create_for(user, slug, slug=slug)
            now = timezone.now()
            jobs = Job.objects.bulk_create(
                Job(team=team, created_by=user, model="fibo", params=fibo_params(f"bench image {n}", seed=n),
                    price=40_000, status=Status.COMPLETED, submission=Job.Submission.ACCEPTED,
                    money=Job.Money.CHARGED, outputs_fetched=True, submitted_at=now, completed_at=now)
                for n in range(size)
            )
            assets = Asset.objects.bulk_create(
                Asset(team=team, job=job, role=Asset.Role.OUTPUT, created_by=user, **image, thumbnail=thumbnail)
                for job in jobs
            )
            Star.objects.bulk_create(Star(asset=asset, user=user) for asset in assets[::5])
        client = Client(HTTP_HOST="127.0.0.1")
        with override_settings(SECRET_KEY=self.secret_key):
            client.force_login(user)
        return {"user": user, "session": client.cookies[settings.SESSION_COOKIE_NAME].value}

    def _tiny_image(self):
        out = io.BytesIO()
        Image.new("RGB", (64, 64), (200, 80, 40)).save(out, "PNG")
        data = out.getvalue()
        self._store("bench/image.png", data, "image/png")
        thumb = io.BytesIO()
        Image.new("RGB", (64, 64), (200, 80, 40)).save(thumb, "WEBP")
        self._store("bench/thumb.webp", thumb.getvalue(), "image/webp")
        return ({"file": "bench/image.png", "media_type": "image/png", "width": 64, "height": 64,
                 "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}, "bench/thumb.webp")

    def _store(self, name, data, media_type):
        """A file where the stack's processes keep their media."""
        if self.o.media == "s3":
            self.s3.client().put_object(Bucket=self.bucket, Key=name, Body=data, ContentType=media_type)
            return
        path = self.scratch / "media" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    # -- processes ---------------------------------------------------------------------

    def start_media(self):
        if self.o.media != "s3":
            return
        from tests.s3 import S3Server  # moto is a development requirement, like the bench

        self.say("starting moto's S3 server…")
        self.s3 = S3Server(self.scratch).start()
        self._start(self.s3.process)
        self.bucket = self.s3.create_bucket("bench-media")

    def env(self):
        return {
            # One configuration for every process of the stack, as in production.
            "DJANGO_SETTINGS_MODULE": "devtools.bench.settings",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": self.secret_key,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            # Plain HTTP on localhost: production redirects to HTTPS, which ends behind a proxy.
            "SECURE_SSL_REDIRECT": "false",
            "PUBLIC_BASE_URL": self.web_url,
            "PIXAZO_BASE_URL": self.emulator_url,
            "PIXAZO_API_KEY": EMULATOR_KEY,
            "PIXAZO_WEBHOOKS": "true",
            "PIXAZO_WEBHOOK_MODE": "terminal",
            "PIXAZO_ALLOW_HTTP_WEBHOOKS": "true",
            "API_RATE_LIMIT_PER_MINUTE": str(10**9),
            "Q_WORKERS": str(self.o.q_workers),
            "MEDIA_ROOT": str(self.scratch / "media"),
            "BENCH_STATIC_ROOT": str(self.scratch / "static"),
            **(self.s3.env(self.bucket) if self.o.media == "s3" else {}),
        }

    def start_web(self):
        self.web_port, emulator_port = free_port(), free_port()
        self.web_url, self.emulator_url = f"http://127.0.0.1:{self.web_port}", f"http://127.0.0.1:{emulator_port}"
        subprocess.run([sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"], cwd=settings.BASE_DIR,
                       env={**os.environ, **self.env()}, check=True)
        self.say(f"starting gunicorn ({self.o.web_workers} sync workers) and the emulator…")
        emulator = self._start(Child.manage("emulator", [
            "pixazo_emulator", "--port", str(emulator_port), "--delay", "0", "--duplicate-rate", "0",
            "--allow-http-webhooks", "--api-key", EMULATOR_KEY], self.env(), self.scratch))
        self.web = self._start(Child("web", [
            sys.executable, "-m", "gunicorn", "studio.wsgi", "--bind", f"127.0.0.1:{self.web_port}",
            "--workers", str(self.o.web_workers), "--worker-class", "sync", "--timeout", "60",
            "--graceful-timeout", "5"], self.env(), self.scratch))
        emulator.wait_for_http(f"{self.emulator_url}/_emulator/requests")
        self.web.wait_for_http(f"{self.web_url}/healthz")
        self.memory.watch("web", self.web.pid)
        self.cpu.add("web", lambda: descendants(self.web.pid))
        self.cpu.add("database", lambda: database_backends(connection.settings_dict["NAME"]))
        self.cpu.add("emulator", lambda: descendants(emulator.pid))
        self.cpu.add("load_generator", lambda: [os.getpid()])

    def start_worker(self):
        self.say(f"starting the worker (qcluster, {self.o.q_workers} workers)…")
        self.worker = self._start(Child.manage("worker", ["qcluster"], self.env(), self.scratch))
        self.worker.wait_for_log(" running.")
        self.memory.watch("worker", self.worker.pid)
        self.cpu.add("worker", lambda: descendants(self.worker.pid))

    def _start(self, child):
        self.children.append(child)
        return child

    def drop_backlog(self, jobs=True):
        """With no worker running, the load phases left thousands of submit and refresh
        tasks queued. They are dropped, and their jobs ended, so neither the worker nor
        its sweeper spends the latency run on them."""
        if uses_orm_broker():
            OrmQ.objects.all().delete()
        else:
            get_broker().delete_queue()
        if jobs:
            Job.objects.exclude(status__in=TERMINAL).update(
                status=Status.ERROR, submission=Job.Submission.REJECTED, error="bench backlog, dropped",
                updated_at=timezone.now())

    # -- rates -------------------------------------------------------------------------

    def _load(self, what, requests, ok=range(200, 300)):
        self.say(f"{what}: {self.o.warmup:g} s warm-up, {self.o.duration:g} s at concurrency {self.o.concurrency}…")
        return self._summary(*self._window(requests, self.o.warmup, self.o.duration, ok))

    def _window(self, requests, warmup, duration, ok=range(200, 300)):
        """One timed window: its Outcome and the CPU each group used in it."""
        self.web.check_alive()
        marks = []
        outcome = load.run(("127.0.0.1", self.web_port), requests, concurrency=self.o.concurrency,
                           warmup=warmup, duration=duration, window=lambda: marks.append(self.cpu.reading()), ok=ok)
        return outcome, CpuMeter.between(*marks) if len(marks) == 2 else {}

    def _summary(self, outcome, used):
        summary = outcome.summary()
        if used and summary["requests"]:
            # CPU per request depends far less on what else the machine is doing than rates do.
            summary["cpu_ms_per_request"] = {name: round(used[name] * 1000 / summary["requests"], 2)
                                             for name in ("web", "database", "load_generator")}
        self.say(f"  {summary['rps']} req/s, {summary['errors']} errors, CPU ms/request "
                 f"{summary.get('cpu_ms_per_request')}")
        return summary

    def trivial(self):
        return self._load("trivial view", itertools.repeat(load.http_request("GET", "/_bench/trivial/")))

    def submissions(self):
        """The API beside the raw-SQL view, on one wallet and on 50. The machine's speed
        drifts (it is a shared VM), so the four loads take turns in short windows, raw,
        API, API, raw, round after round, and each side's figure adds its windows up:
        a drift then weighs on both sides alike."""
        one, fifty = self.wallets[:1], self.wallets
        loads = {
            "raw_one": itertools.cycle([self._raw_request(t) for t in one]),
            "api_one": itertools.cycle([self._api_request(t) for t in one]),
            "api_fifty": itertools.cycle([self._api_request(t) for t in fifty]),
            "raw_fifty": itertools.cycle([self._raw_request(t) for t in fifty]),
        }
        rounds, warmup = self.o.submission_rounds, min(self.o.warmup, 1.0)
        self.say(f"submissions, raw SQL and API, on 1 and {len(fifty)} wallets: {rounds} rounds of "
                 f"{warmup:g} s warm-up and {self.o.duration / rounds:g} s each, at concurrency {self.o.concurrency}…")
        totals = {name: (load.Outcome(seconds=0), Counter()) for name in loads}
        for _ in range(rounds):
            for name, requests in loads.items():
                outcome, used = self._window(requests, warmup, self.o.duration / rounds)
                total, cpu = totals[name]
                total.merge(outcome)
                cpu.update(used)
        figures = {}
        for name, (outcome, cpu) in totals.items():
            self.say(f"  {name.replace('_', ' ')}:")
            figures[name] = self._summary(outcome, cpu)
        return {"one_wallet": _beside(figures["api_one"], figures["raw_one"], 1),
                "fifty_wallets": _beside(figures["api_fifty"], figures["raw_fifty"], len(fifty))}

    @staticmethod
    def _api_request(team, prompt=SEED_PROMPT):
        return load.http_request("POST", SUBMIT_PATH, body=json.dumps({"prompt": prompt}).encode(), headers={
            "Content-Type": "application/json", "Cache-Control": "no-cache", "Ocp-Apim-Subscription-Key": team["key"]})

    @staticmethod
    def _raw_request(team):
        return load.http_request("POST", f"/_bench/raw-submit/{team['team']}/{team['user']}/",
                                 body=json.dumps({"prompt": SEED_PROMPT}).encode(),
                                 headers={"Content-Type": "application/json"})

    def webhook_ingest(self):
        """First deliveries of terminal callbacks, each to its own job: token check,
        dedupe row, refresh task enqueued (the worker is not running yet)."""
        used = itertools.count()
        requests = (request for request, _ in zip(self.hooks, used))
        summary = self._load("webhooks", requests)
        if next(used) >= len(self.hooks):
            summary.update(valid=False, note=f"ran out of the {len(self.hooks)} seeded jobs: raise --webhook-jobs")
        summary["deliveries_recorded"] = WebhookDelivery.objects.count()
        return summary

    # -- the library -------------------------------------------------------------------

    def library(self):
        figures = {}
        for size, library in self.libraries.items():
            self.say(f"library page, {size} images…")
            figures[str(size)] = {"queries": self._library_queries(library["user"]),
                                  **self._library_times(library["session"])}
        counts = {f["queries"] for f in figures.values()}
        figures["same_query_count"] = len(counts) == 1
        figures["how"] = ("GET /library/ through the bench's gunicorn, one request at a time, after 3 uncounted; "
                          "queries counted in-process with the test client")
        return figures

    def _library_times(self, session):
        headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"}
        times = []
        with httpx.Client(base_url=self.web_url, headers=headers, timeout=30) as client:
            for n in range(3 + self.o.library_requests):
                started = time.perf_counter()
                response = client.get("/library/")
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    raise RuntimeError(f"/library/ answered {response.status_code}:\n{self.web.log_tail()}")
                if n >= 3:
                    times.append(elapsed)
        return {"ms": {k: v for k, v in load.quantiles_ms(times).items() if k in ("p50", "p95", "max")},
                "requests": len(times)}

    @staticmethod
    def _library_queries(user):
        # This process may run with DEBUG on or off: plain static URLs and no HTTPS
        # redirect, so the page renders here as it does on the server.
        plain_static = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
        with override_settings(SECURE_SSL_REDIRECT=False, STORAGES={**settings.STORAGES, "staticfiles": plain_static}):
            client = Client(HTTP_HOST="127.0.0.1")
            client.force_login(user)
            client.get("/library/")
            with CaptureQueriesContext(connection) as captured:
                response = client.get("/library/")
        if response.status_code != 200:
            raise RuntimeError(f"/library/ answered {response.status_code} in-process")
        return len(captured)

    # -- media -------------------------------------------------------------------------

    def media(self):
        """A member's thumbnails through the studio's access-checked view: streamed from
        the disk (200), or a redirect to a presigned URL of the bucket (302), whose bytes
        the store then sends without the studio."""
        size = min(self.o.library_sizes)
        codes = Asset.objects.filter(team__slug=f"bench-library-{size}").values_list("code", flat=True)[:100]
        headers = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={self.libraries[size]['session']}"}
        requests = itertools.cycle([load.http_request("GET", f"/assets/{code}/thumbnail/", headers=headers)
                                    for code in codes])
        expected = 302 if self.o.media == "s3" else 200
        summary = self._load(f"thumbnails from {self.o.media} media", requests, ok=range(expected, expected + 1))
        summary["how"] = (f"GET /assets/<code>/thumbnail/ of a {size}-image team, logged in, at concurrency "
                          f"{self.o.concurrency}; every answer a {expected}; the studio's side only")
        return summary

    # -- webhook to COMPLETED ----------------------------------------------------------

    def webhook_latency(self):
        """Jobs submitted through the API at a steady rate; for each, the time from the
        emulator completing it (the completed_at of its terminal callback) to the
        studio's completed_at (set as the job turns COMPLETED, its image stored)."""
        n, rate, warmup = self.o.latency_jobs, self.o.latency_rate, 2 * self.o.q_workers
        team = self.latency_team
        self.say(f"webhook → COMPLETED: {warmup} jobs to warm the worker up, then {n} at {rate:g}/s…")
        self._run_jobs(team, warmup, rate, "warm-up")
        counted_from = Job.objects.filter(team_id=team["team"]).latest("pk").pk
        before = self.cpu.reading()
        self._run_jobs(team, n, rate, "counted")
        used = CpuMeter.between(before, self.cpu.reading())
        jobs = Job.objects.filter(team_id=team["team"], pk__gt=counted_from)
        gateway_done = self._emulator_completions()
        received = dict(WebhookDelivery.objects.filter(job__team_id=team["team"], status=Status.COMPLETED)
                        .values_list("job__request_id", "received_at"))
        total, to_webhook, webhook_to_done, missing = [], [], [], 0
        for request_id, status, completed_at in jobs.values_list("request_id", "status", "completed_at"):
            if status != Status.COMPLETED or request_id not in gateway_done:
                missing += 1
                continue
            total.append((completed_at - gateway_done[request_id]).total_seconds())
            if request_id in received:
                to_webhook.append((received[request_id] - gateway_done[request_id]).total_seconds())
                webhook_to_done.append((completed_at - received[request_id]).total_seconds())
        phase = POLL_INTERVAL_S * 1000
        return {
            "to_completed_ms": {**load.quantiles_ms(total), "jobs": len(total), "not_completed": missing,
                                "valid": missing == 0 and bool(total)},
            "breakdown_ms": {"gateway_to_webhook_received": load.quantiles_ms(to_webhook),
                             "webhook_received_to_completed": load.quantiles_ms(webhook_to_done)},
            # What one job costs each process (submit, webhook, refresh, download, thumbnail, settle;
            # the emulator renders a 1024x1024 PNG): on two cores, this is what queues the tail.
            "cpu_ms_per_job": {name: round(used[name] * 1000 / n, 1)
                               for name in ("worker", "web", "emulator", "database")},
            "polling_every_5s_ms": {"p50": phase * 0.5, "p99": phase * 0.99, "how": (
                "analytic: a poll every 5 s finds the job a uniform [0, 5 s) after the gateway completed it; "
                "detection only, before the studio's own download and settle")},
            "how": (f"{n} FIBO jobs through the API at {rate:g}/s (after {warmup} uncounted), emulator delay 0, "
                    "terminal webhooks, worker running; the studio's Job.completed_at minus the completed_at "
                    "in the emulator's callback"),
        }

    def _run_jobs(self, team, n, rate, what):
        """Submit `n` FIBO jobs through the API at `rate` a second and wait until all are
        over (or a minute past the last)."""
        requests = [self._api_request(team, f"{SEED_PROMPT} ({what} #{i})") for i in range(n)]
        refused = [status for status, _ in load.paced(("127.0.0.1", self.web_port), requests, rate=rate)
                   if status != 202]
        if refused:
            raise RuntimeError(f"{len(refused)} {what} submissions refused: {refused[:5]}\n{self.web.log_tail()}")
        deadline = time.monotonic() + 60
        while Job.objects.filter(team_id=team["team"]).exclude(status__in=TERMINAL).exists():
            self.worker.check_alive()
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)

    def _emulator_completions(self):
        """When the emulator completed each job: its terminal callbacks carry completed_at
        (milliseconds, the emulator's clock mapped to wall time)."""
        deliveries = httpx.get(f"{self.emulator_url}/_emulator/requests", timeout=30).json()["deliveries"]
        return {d["request_id"]: datetime.fromisoformat(d["payload"]["completed_at"]) for d in deliveries
                if d["status"] == "COMPLETED" and d["http_status"] == 200}

    # -- memory ------------------------------------------------------------------------

    def memory_figures(self):
        peaks = {pid: status_kb(pid, "VmHWM") for pid in descendants(self.web.pid) if pid != self.web.pid}
        worker = self.memory.peaks.get("worker", {})
        return {
            "web_worker_peak": round(max(peaks.values()) / 1024, 1),
            "web_workers": len(peaks),
            "web_all_peak_rss": round(self.memory.peaks["web"]["rss_kb"] / 1024, 1),
            "worker_cluster_peak_rss": round(worker.get("rss_kb", 0) / 1024, 1),
            "worker_cluster_peak_pss": round(worker.get("pss_kb", 0) / 1024, 1),
            "worker_cluster_processes": worker.get("processes", 0),
            "how": ("web worker: the largest VmHWM (peak RSS) among gunicorn's workers after all load phases; "
                    "worker cluster: the peak, sampled every 0.25 s, of the qcluster tree's summed RSS "
                    "(shared pages counted in every process) and PSS (counted once)"),
        }

    # -- spend report ------------------------------------------------------------------

    def spend_report(self):
        self.say(f"spend reports over {self.o.report_entries:,} ledger entries (bench_spend_report)…")
        out = io.StringIO()
        call_command("bench_spend_report", entries=self.o.report_entries, stdout=out, stderr=sys.stderr)
        return json.loads(out.getvalue())


def _beside(api, raw, wallets):
    """The API's rate as a share of the raw view's; and the same from the CPU each
    request cost the web server and PostgreSQL, which other load on the machine moves
    far less."""
    def cpu(summary):
        return sum(v for k, v in summary.get("cpu_ms_per_request", {}).items() if k != "load_generator")

    return {"wallets": wallets, "api": api, "raw_sql": raw,
            "ratio": round(api["rps"] / raw["rps"], 3) if raw["rps"] else None,
            "cpu_ratio": round(cpu(raw) / cpu(api), 3) if cpu(api) else None}


def _iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "postgresql": pg,
            "load_average_before": [round(x, 2) for x in os.getloadavg()]}


def targets(result):
    """Each target of the issue: the figure, the bound, and whether it was met."""
    t = TARGETS
    checks = {}
    for name, figures in result.get("submissions", {}).items():
        valid = figures["api"]["valid"] and figures["raw_sql"]["valid"]
        ok = valid and (figures["ratio"] or 0) >= t["submission_ratio"]
        checks[f"submissions_{name}_ratio_at_least_{t['submission_ratio']}"] = {
            "value": figures["ratio"], "met": ok, "cpu_ratio": figures["cpu_ratio"]}
    latency = result.get("webhooks", {}).get("to_completed_ms")
    if latency:
        checks[f"webhook_to_completed_p99_at_most_{t['webhook_p99_ms']}ms"] = {
            "value": latency["p99"], "met": latency["valid"] and latency["p99"] <= t["webhook_p99_ms"]}
    library = result.get("library")
    if library:
        p95 = max(f["ms"]["p95"] for k, f in library.items() if k.isdigit())
        counts = sorted({f["queries"] for k, f in library.items() if k.isdigit()})
        checks["library_same_query_count"] = {"value": counts, "met": library["same_query_count"]}
        checks[f"library_p95_under_{t['library_p95_ms']}ms"] = {"value": p95, "met": p95 < t["library_p95_ms"]}
    report = result.get("spend_report")
    if report:
        # The staff's overview as it opens (the last 30 days); the whole seeded 90 days beside it.
        value = report["overview_ms"]["p50"]
        checks[f"spend_report_under_{t['spend_report_ms']}ms"] = {
            "value": value, "met": value < t["spend_report_ms"], "overview_90_days": report["overview_90d_ms"]["p50"]}
    memory = result.get("memory_mb")
    if memory:
        value = memory["web_worker_peak"]
        checks[f"web_worker_under_{t['web_worker_mb']}mb"] = {"value": value, "met": value < t["web_worker_mb"]}
    return checks
