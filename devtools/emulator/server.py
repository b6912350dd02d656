"""An in-memory emulator of the Pixazo gateway (Bria FIBO and Bria RMBG 2.0).

It follows the gateway's API document to the letter (paths, headers, bodies, status
codes, job lifecycle, webhooks) so the studio's client can be developed and tested
against it and then pointed at the real gateway unchanged. It is plain stdlib HTTP with
no Django machinery and no database: the state lives in memory under one lock. Request
bodies are checked by the gateway's contract in the product (jobs/contract.py), which the
studio's gateway-compatible API answers with too.

On top of the gateway API there is a small control API under /_emulator/ (no key) for
tests and demos: fault injection, forced outcomes, run-time settings and inspection.
"""

import json
import os
import queue
import random
import re
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from jobs.contract import (
    ERROR_BODIES,
    HttpError,
    bad_request,
    is_http_url,
    is_int,
    is_number,
    parse_json_object,
    validate_fibo,
    validate_rmbg,
)

FIBO = "bria-fibo-bbq-preview"
RMBG = "bria-rmbg-2-0-682"
# model_id -> the request endpoint below /<model_id>/v1/
ENDPOINTS = {FIBO: "bria-fibo-bbq-preview-request", RMBG: "bria-rmbg-2-0-request"}

TERMINAL = ("COMPLETED", "FAILED", "ERROR")
MAX_BODY = 1024 * 1024
MAX_INPUT_IMAGE = 25 * 1024 * 1024
FETCH_TIMEOUT = 10.0
WEBHOOK_TIMEOUT = 5.0
WEBHOOK_RETRIES = 3
WEBHOOK_BACKOFF = 0.2  # seconds, doubled after every failed attempt
TICK = 0.05
# Outputs live in memory; a long demo keeps only the newest ones (~150 KB each).
MAX_KEPT_OUTPUTS = 500
FAULT_KINDS = ("submit", "status", "media")

FAILED_TEXT = {
    FIBO: "Generation failed: the model could not produce an image for this request",
    RMBG: "Background removal failed: the model could not process this image",
}
ERROR_TEXT = "Internal error while processing the request"


class CloseConnection(Exception):
    """Drop the connection without answering (injected "close" fault)."""


class ModelFailure(Exception):
    """The model ran but could not produce an output: the job ends FAILED with this text."""


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict = field(default_factory=dict)


def json_response(status, payload, headers=None):
    return Response(status, json.dumps(payload).encode("utf-8"), "application/json", headers or {})


# --------------------------------------------------------------------------- helpers


def uuid7() -> str:
    """A UUIDv7 (48-bit millisecond timestamp first), like the gateway's 019d… ids."""
    millis = time.time_ns() // 1_000_000
    value = (millis & (2**48 - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))


def iso(moment: datetime) -> str:
    """'2026-03-31T10:00:15.000Z', the timestamp format of the status endpoint."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# Requests are validated by the gateway's contract, the same functions the studio's own
# gateway-compatible API answers with (jobs/contract.py).
VALIDATORS = {FIBO: validate_fibo, RMBG: validate_rmbg}


def marker_outcome(model_id, params):
    """Prompt markers let a demo or test ask FIBO for a failure without the control API."""
    prompt = params.get("prompt", "").lower() if model_id == FIBO else ""
    if "[error]" in prompt:
        return "ERROR"
    if "[fail]" in prompt:
        return "FAILED"
    return "COMPLETED"


# --------------------------------------------------------------------------- models


def fetch_image(url: str) -> bytes:
    """Download the RMBG input like the real service would, with size and type checks."""
    request = urllib.request.Request(url, headers={"User-Agent": "pixazo-emulator/1.0", "Accept": "image/*"})
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as answer:
            length = answer.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > MAX_INPUT_IMAGE:
                raise ModelFailure("Background removal failed: image_url points to a file larger than 25 MB")
            data = answer.read(MAX_INPUT_IMAGE + 1)
    except urllib.error.HTTPError as exc:
        raise ModelFailure(f"Background removal failed: could not download image_url (HTTP {exc.code})") from None
    except urllib.error.URLError as exc:
        raise ModelFailure(f"Background removal failed: could not download image_url ({exc.reason})") from None
    except (OSError, ValueError) as exc:  # timeouts, resets, malformed URLs
        raise ModelFailure(f"Background removal failed: could not download image_url ({exc})") from None
    if len(data) > MAX_INPUT_IMAGE:
        raise ModelFailure("Background removal failed: image_url points to a file larger than 25 MB")
    return data


def image_models():
    """The stand-in image models, imported when a server starts rather than with this
    module: they bring numpy and OpenCV, which only an emulator's process should hold."""
    from devtools.emulator import images

    return images


def run_model(model_id: str, params: dict) -> bytes:
    """The output PNG for a job; raises ModelFailure for input problems."""
    images = image_models()
    if model_id == FIBO:
        return images.render_fibo(
            params["prompt"], params["seed"], params["aspect_ratio"], params["steps_num"],
            float(params["guidance_scale"]),
        )
    data = fetch_image(params["image_url"])
    try:
        return images.remove_background(data)
    except ValueError as exc:
        raise ModelFailure(f"Background removal failed: image_url is not a usable image ({exc})") from None


# --------------------------------------------------------------------------- state


@dataclass
class Config:
    delay: float
    duplicate_rate: float
    allow_http_webhooks: bool


@dataclass
class Job:
    request_id: str
    model_id: str
    body: dict
    params: dict
    webhook_url: str | None
    webhook_mode: str
    webhook_headers: dict
    created: float  # monotonic clock
    processing_at: float  # QUEUED -> PROCESSING
    due_at: float  # PROCESSING -> terminal (once the output exists)
    sync_interval: float
    outcome: str  # planned terminal status
    generation: int  # reset() bumps the server's generation; stale jobs stop delivering
    error: str | None = None
    status: str = "QUEUED"
    updated: float = 0.0
    completed: float | None = None
    work_done: bool = False
    work_finished: float = 0.0
    last_webhook: float = 0.0
    outbox: deque = field(default_factory=deque)
    delivering: bool = False


class DaemonPool:
    """A fixed set of daemon worker threads.

    Not concurrent.futures: its threads are joined at interpreter exit, so a webhook
    stuck on a 5 s timeout would hold up the end of a test run.
    """

    def __init__(self, name, size):
        self._tasks = queue.Queue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(size)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn, *args):
        self._tasks.put((fn, args))

    def stop(self):
        for _ in self._threads:
            self._tasks.put(None)

    def _work(self):
        while (task := self._tasks.get()) is not None:
            fn, args = task
            try:
                fn(*args)
            except Exception as exc:  # a worker must survive a bad task
                print(f"[pixazo-emulator] background task failed: {exc!r}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- server


class EmulatorServer:
    def __init__(
        self,
        host="127.0.0.1",
        port=0,
        api_key="emulator-key",
        delay=3.0,
        allow_http_webhooks=False,
        duplicate_rate=0.2,
        public_url=None,
    ):
        self.api_key = api_key
        self._initial = Config(float(delay), float(duplicate_rate), bool(allow_http_webhooks))
        check_config(self._initial)
        self.config = Config(**vars(self._initial))
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._random = random.Random()
        self._clock_origin = (time.monotonic(), datetime.now(timezone.utc))
        self._generation = 0
        self._clear_state()

        # Bind now so .url is known before start(); port=0 lets the OS pick a free port.
        server_class = _IPv6Server if ":" in host else _IPv4Server
        self._httpd = server_class((host, port), _Handler)
        self._httpd.emulator = self
        self.host, self.port = self._httpd.server_address[:2]
        bound_host = f"[{self.host}]" if ":" in self.host else self.host
        self.bound_url = f"http://{bound_host}:{self.port}"
        self.url = (public_url or self.bound_url).rstrip("/")
        self._serve_thread = None
        self._workers = None
        self._deliverers = None

    def _clear_state(self):
        self.jobs = {}
        self._active = set()
        self._outputs = {}
        self._faults = {kind: deque() for kind in FAULT_KINDS}
        self._outcomes = deque()
        self._deliveries = []

    # ---------------------------------------------------------------- lifecycle

    def _start_background(self):
        image_models()  # loaded before the first job, not on its clock
        self._workers = DaemonPool("emulator-model", 4)
        self._deliverers = DaemonPool("emulator-webhook", 16)
        threading.Thread(target=self._tick_forever, name="emulator-ticker", daemon=True).start()

    def start(self):
        """Serve in daemon threads and return self."""
        self._start_background()
        self._serve_thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="emulator-http", daemon=True
        )
        self._serve_thread.start()
        return self

    def serve_forever(self):
        """Serve in the calling thread until stop() or KeyboardInterrupt."""
        self._start_background()
        self._serve_thread = threading.current_thread()
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._serve_thread = None  # the loop is over: stop() must not wait for it
            self.stop()

    def stop(self):
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._serve_thread is not None and self._serve_thread is not threading.current_thread():
            self._httpd.shutdown()
        self._httpd.server_close()
        for pool in (self._workers, self._deliverers):
            if pool:
                pool.stop()

    @property
    def stopped(self):
        return self._stopping.is_set()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---------------------------------------------------------------- clock

    def _wall(self, moment: float) -> datetime:
        """Map a monotonic instant to wall-clock time (stable even if the system clock jumps)."""
        origin_mono, origin_wall = self._clock_origin
        return origin_wall + timedelta(seconds=moment - origin_mono)

    def _tick_forever(self):
        # Jobs advance on their own, so terminal webhooks fire without anyone polling.
        while not self._stopping.wait(TICK):
            now = time.monotonic()
            try:
                with self._lock:
                    for request_id in list(self._active):
                        self._advance(self.jobs[request_id], now)
            except Exception as exc:  # keep ticking; one bad job must not freeze the clock
                print(f"[pixazo-emulator] ticker error: {exc!r}", file=sys.stderr, flush=True)

    def _advance(self, job: Job, now: float):
        """Move a job along its timeline (caller holds the lock). Idempotent."""
        if job.status == "QUEUED" and now >= job.processing_at:
            self._set_status(job, "PROCESSING", job.processing_at, now)
        if job.status == "PROCESSING" and now >= job.due_at and job.work_done:
            self._set_status(job, job.outcome, max(job.due_at, job.work_finished), now)
        elif job.webhook_mode == "sync" and job.status not in TERMINAL and now - job.last_webhook >= job.sync_interval:
            # sync mode: a progress callback on every "poll cycle" while in flight.
            self._queue_webhook(job, now)

    def _set_status(self, job: Job, status: str, at: float, now: float):
        job.status = status
        job.updated = at
        if status in TERMINAL:
            job.completed = at
            self._active.discard(job.request_id)
            if status != "COMPLETED":
                job.error = job.error or (ERROR_TEXT if status == "ERROR" else FAILED_TEXT[job.model_id])
        if job.webhook_url and (status in TERMINAL or job.webhook_mode == "sync"):
            self._queue_webhook(job, now)

    # ---------------------------------------------------------------- jobs

    def status_body(self, job: Job) -> dict:
        completed = job.status == "COMPLETED"
        return {
            "request_id": job.request_id,
            "status": job.status,
            "model_id": job.model_id,
            "error": job.error if job.status in ("FAILED", "ERROR") else None,
            "output": {"media_url": [self.media_url(job.request_id)], "media_type": "image/png"} if completed else None,
            "created_at": iso(self._wall(job.created)),
            "updated_at": iso(self._wall(job.updated)),
            "completed_at": iso(self._wall(job.completed)) if job.completed is not None else None,
        }

    def media_url(self, request_id):
        # Mirrors the CDN layout: https://pub-….r2.dev/v1/<request_id>/output.png
        return f"{self.url}/v1/{request_id}/output.png"

    def _create_job(self, model_id, body, params, webhook_url, webhook_mode, webhook_headers) -> Job:
        now = time.monotonic()
        with self._lock:
            delay = self.config.delay
            outcome = self._outcomes.popleft() if self._outcomes else marker_outcome(model_id, params)
            job = Job(
                request_id=f"{model_id}_{uuid7()}",
                model_id=model_id,
                body=body,
                params=params,
                webhook_url=webhook_url,
                webhook_mode=webhook_mode,
                webhook_headers=webhook_headers,
                created=now,
                processing_at=now + delay / 3,
                due_at=now + delay,
                sync_interval=min(delay / 3, 15.0),
                outcome=outcome,
                generation=self._generation,
                updated=now,
                last_webhook=now,
            )
            self.jobs[job.request_id] = job
            self._active.add(job.request_id)
            if outcome != "COMPLETED":
                job.work_done, job.work_finished = True, now  # nothing to compute for a planned failure
        if outcome == "COMPLETED":
            self._workers.submit(self._produce, job)
        return job

    def _produce(self, job: Job):
        """Run the model in a worker; the output exists before the job can turn COMPLETED."""
        output, failure = None, None
        try:
            output = run_model(job.model_id, job.params)
        except ModelFailure as exc:
            failure = ("FAILED", str(exc))
        except Exception as exc:
            print(f"[pixazo-emulator] model crashed on {job.request_id}: {exc!r}", file=sys.stderr, flush=True)
            failure = ("ERROR", ERROR_TEXT)
        with self._lock:
            if job.generation != self._generation:
                return
            if output is not None:
                self._outputs[job.request_id] = output
                while len(self._outputs) > MAX_KEPT_OUTPUTS:
                    del self._outputs[next(iter(self._outputs))]  # dicts keep insertion order
            elif job.outcome == "COMPLETED":  # a forced FAILED/ERROR keeps its own outcome
                job.outcome, job.error = failure
            job.work_done, job.work_finished = True, time.monotonic()
            self._advance(job, time.monotonic())

    # ---------------------------------------------------------------- webhooks

    def _queue_webhook(self, job: Job, now: float):
        """Queue a callback; each job's callbacks go out one at a time, in order."""
        job.last_webhook = now
        job.outbox.append(self.status_body(job))
        if not job.delivering:
            job.delivering = True
            self._deliverers.submit(self._drain_outbox, job)

    def _drain_outbox(self, job: Job):
        while not self._stopping.is_set():
            with self._lock:
                if not job.outbox or job.generation != self._generation:
                    job.delivering = False
                    return
                payload = job.outbox.popleft()
                duplicate_rate = self.config.duplicate_rate
            if self._deliver(job, payload) and self._random.random() < duplicate_rate:
                # The gateway documents at-least-once delivery; make the studio prove it copes.
                self._deliver(job, payload, duplicate=True)

    def _deliver(self, job: Job, payload: dict, duplicate=False) -> bool:
        """POST one callback, retrying failures with backoff. True once a 2xx came back."""
        data = json.dumps(payload).encode("utf-8")
        for attempt in range(1, WEBHOOK_RETRIES + 2):
            http_status, error = post_json(job.webhook_url, data)
            self._record_delivery(job, payload, attempt, duplicate, http_status, error)
            if http_status is not None and 200 <= http_status < 300:
                return True
            if attempt <= WEBHOOK_RETRIES and self._stopping.wait(WEBHOOK_BACKOFF * 2 ** (attempt - 1)):
                return False
        return False

    def _record_delivery(self, job, payload, attempt, duplicate, http_status, error):
        with self._lock:
            if job.generation != self._generation:
                return
            self._deliveries.append(
                {
                    "request_id": job.request_id,
                    "url": job.webhook_url,
                    "status": payload["status"],
                    "attempt": attempt,
                    "duplicate": duplicate,
                    "http_status": http_status,
                    "error": error,
                    "payload": payload,
                }
            )

    # ---------------------------------------------------------------- control API (also usable from Python)

    def add_faults(self, faults: dict):
        """Append faults per kind ("submit", "status", "media"); each answers one request."""
        if not isinstance(faults, dict) or not faults:
            raise bad_request(f"Body must map some of {', '.join(FAULT_KINDS)} to lists of faults")
        for kind, entries in faults.items():
            if kind not in FAULT_KINDS:
                raise bad_request(f"Unknown fault kind {kind!r}; use {', '.join(FAULT_KINDS)}")
            if not isinstance(entries, list) or not all(check_fault(entry) for entry in entries):
                raise bad_request(f"{kind} must be a list of HTTP codes (400-599), 'hang:SECONDS' or 'close'")
        with self._lock:
            for kind, entries in faults.items():
                self._faults[kind].extend(entries)
            return {kind: list(entries) for kind, entries in self._faults.items()}

    def add_outcomes(self, outcomes):
        if not isinstance(outcomes, list) or not all(o in TERMINAL for o in outcomes):
            raise bad_request(f"next must be a list of {', '.join(TERMINAL)}")
        with self._lock:
            self._outcomes.extend(outcomes)
            return list(self._outcomes)

    def configure(self, **changes):
        with self._lock:
            unknown = set(changes) - set(vars(self.config))
            if unknown:
                raise bad_request(f"Unknown setting(s): {', '.join(sorted(unknown))}")
            candidate = Config(**{**vars(self.config), **changes})
            try:
                check_config(candidate)
            except ValueError as exc:
                raise bad_request(str(exc)) from None
            self.config = candidate
            return dict(vars(candidate))

    def reset(self):
        """Forget everything and restore the constructor's settings."""
        with self._lock:
            self._generation += 1  # in-flight workers and deliveries see they are stale
            self._clear_state()
            self.config = Config(**vars(self._initial))

    def complete(self, request_id, status="COMPLETED"):
        """Make a job due now (with the given outcome) instead of waiting for its delay."""
        if status not in TERMINAL:
            raise bad_request(f"status must be one of {', '.join(TERMINAL)}")
        now = time.monotonic()
        with self._lock:
            job = self._find_job(request_id)
            if job.status in TERMINAL:
                raise HttpError(409, f"Request '{request_id}' is already {job.status}", "Conflict")
            job.processing_at = min(job.processing_at, now)
            job.due_at = now
            if status != "COMPLETED":
                job.outcome, job.error = status, None
                job.work_done, job.work_finished = True, now
            self._advance(job, now)
            return self.status_body(job)

    def requests(self):
        now = time.monotonic()
        with self._lock:
            result = []
            for job in self.jobs.values():
                self._advance(job, now)
                result.append(
                    {
                        "request_id": job.request_id,
                        "model_id": job.model_id,
                        "body": job.body,
                        "headers": dict(job.webhook_headers),
                        "status": job.status,
                    }
                )
            return result

    def deliveries(self):
        with self._lock:
            return [dict(d) for d in self._deliveries]

    # ---------------------------------------------------------------- request handling

    def handle(self, method, path, headers, raw) -> Response:
        if path.startswith("/_emulator/"):
            return self._handle_control(method, path, raw)
        if method == "POST" and (match := re.fullmatch(r"/([^/]+)/v1/([^/]+)", path)):
            self._check_key(headers)
            self._apply_fault("submit")
            return self._submit(match.group(1), match.group(2), headers, raw)
        if method in ("GET", "HEAD") and (match := re.fullmatch(r"/v2/requests/status/([^/]+)", path)):
            self._check_key(headers)
            self._apply_fault("status")
            return self._status(match.group(1))
        if method in ("GET", "HEAD") and (match := re.fullmatch(r"/v1/([^/]+)/output\.png", path)):
            self._apply_fault("media")  # the CDN is public: no key
            return self._media(match.group(1))
        raise HttpError(404, f"No route for {method} {path}", "Not Found")

    def _check_key(self, headers):
        if headers.get("Ocp-Apim-Subscription-Key") != self.api_key:
            raise HttpError(401)

    def _apply_fault(self, kind):
        with self._lock:
            fault = self._faults[kind].popleft() if self._faults[kind] else None
        if fault is None:
            return
        if fault == "close":
            raise CloseConnection()
        if isinstance(fault, str):  # "hang:N": stall, then answer normally
            self._stopping.wait(float(fault.split(":", 1)[1]))
            return
        raise HttpError(fault, headers={"Retry-After": "1"} if fault == 429 else None)

    def _submit(self, model_id, endpoint, headers, raw) -> Response:
        if model_id not in ENDPOINTS:
            raise HttpError(400, f"Model '{model_id}' not found or is disabled", "Model not found")
        if endpoint != ENDPOINTS[model_id]:
            raise HttpError(404, f"Model '{model_id}' has no endpoint '{endpoint}'", "Not Found")
        webhook_url, webhook_mode, webhook_headers = self._webhook_settings(headers)
        body = parse_json_object(raw)
        params = VALIDATORS[model_id](body)
        job = self._create_job(model_id, body, params, webhook_url, webhook_mode, webhook_headers)
        polling_url = f"{self.url}/v2/requests/status/{job.request_id}"
        return json_response(202, {"request_id": job.request_id, "status": "QUEUED", "polling_url": polling_url})

    def _webhook_settings(self, headers):
        url = headers.get("X-Webhook-URL")
        mode = headers.get("X-Webhook-Mode")
        if mode is not None and mode not in ("terminal", "sync"):
            raise bad_request("X-Webhook-Mode must be 'terminal' or 'sync'")
        if url is None:
            return None, "terminal", {}
        schemes = ("https", "http") if self.config.allow_http_webhooks else ("https",)
        if not is_http_url(url, schemes):
            raise bad_request("X-Webhook-URL must be an HTTPS URL")
        recorded = {"X-Webhook-URL": url, **({"X-Webhook-Mode": mode} if mode else {})}
        return url, mode or "terminal", recorded

    def _find_job(self, request_id) -> Job:
        job = self.jobs.get(request_id)
        if job is None:
            raise HttpError(404, f"Request '{request_id}' not found", "Not Found")
        return job

    def _status(self, request_id) -> Response:
        with self._lock:
            job = self._find_job(request_id)
            self._advance(job, time.monotonic())  # the same clock the ticker uses
            return json_response(200, self.status_body(job))

    def _media(self, request_id) -> Response:
        with self._lock:
            job = self.jobs.get(request_id)
            data = self._outputs.get(request_id) if job and job.status == "COMPLETED" else None
        if data is None:
            raise HttpError(404, f"No output for request '{request_id}'", "Not Found")
        return Response(200, data, "image/png", {"Cache-Control": "public, max-age=31536000, immutable"})

    def _handle_control(self, method, path, raw) -> Response:
        if method == "GET" and path == "/_emulator/requests":
            return json_response(200, {"requests": self.requests(), "deliveries": self.deliveries()})
        if method != "POST":
            raise HttpError(404, f"No route for {method} {path}", "Not Found")
        if path == "/_emulator/reset":
            self.reset()
            return json_response(200, {"reset": True})
        if match := re.fullmatch(r"/_emulator/complete/([^/]+)", path):
            body = parse_json_object(raw) if raw.strip() else {}
            return json_response(200, self.complete(match.group(1), body.get("status", "COMPLETED")))
        body = parse_json_object(raw)
        if path == "/_emulator/faults":
            return json_response(200, {"faults": self.add_faults(body)})
        if path == "/_emulator/outcomes":
            return json_response(200, {"next": self.add_outcomes(body.get("next"))})
        if path == "/_emulator/config":
            return json_response(200, self.configure(**body))
        raise HttpError(404, f"No route for {method} {path}", "Not Found")


def check_config(config: Config):
    if not is_number(config.delay) or not 0 <= config.delay <= 3600:
        raise ValueError("delay must be a number of seconds between 0 and 3600")
    if not is_number(config.duplicate_rate) or not 0 <= config.duplicate_rate <= 1:
        raise ValueError("duplicate_rate must be a number between 0 and 1")
    if not isinstance(config.allow_http_webhooks, bool):
        raise ValueError("allow_http_webhooks must be true or false")


def check_fault(entry) -> bool:
    if is_int(entry):
        return 400 <= entry <= 599 and entry in HTTPStatus._value2member_map_
    if entry == "close":
        return True
    if isinstance(entry, str) and (match := re.fullmatch(r"hang:(\d+(?:\.\d+)?)", entry)):
        return float(match.group(1)) <= 300
    return False


def post_json(url: str, data: bytes):
    """(http_status, None) when the receiver answered, (None, error text) when it did not."""
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json", "User-Agent": "pixazo-emulator/1.0"}
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as answer:
            answer.read(64 * 1024)
            return answer.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except urllib.error.URLError as exc:
        return None, str(exc.reason)
    except (OSError, ValueError) as exc:
        return None, str(exc) or exc.__class__.__name__


# --------------------------------------------------------------------------- HTTP plumbing


class _IPv4Server(ThreadingHTTPServer):
    daemon_threads = True


class _IPv6Server(ThreadingHTTPServer):
    daemon_threads = True
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real gateway
    server_version = "PixazoEmulator/1.0"
    timeout = 60  # drop idle keep-alive connections eventually

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method):
        path = urlsplit(self.path).path  # the query string is never logged or used
        try:
            raw = self._read_body()
            response = self.server.emulator.handle(method, path, self.headers, raw)
        except CloseConnection:
            self.close_connection = True
            self._log(method, path, "closed")
            return
        except HttpError as exc:
            response = json_response(exc.status, exc.body, exc.headers)
        except Exception as exc:
            print(f"[pixazo-emulator] unhandled error on {method} {path}: {exc!r}", file=sys.stderr, flush=True)
            response = json_response(500, {"error": "Internal Server Error", "message": ERROR_BODIES[500][1]})
        # Log before answering, so the line is written by the time the client sees the response.
        self._log(method, path, response.status)
        self._send(response, include_body=method != "HEAD")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise HttpError(411, "Send the body with a Content-Length", "Length Required")
        length = self.headers.get("Content-Length", "0").strip() or "0"
        if not length.isdigit():
            self.close_connection = True
            raise bad_request("Invalid Content-Length")
        if int(length) > MAX_BODY:
            self.close_connection = True  # the unread body would desync the connection
            raise HttpError(413, "Request body is too large", "Payload Too Large")
        return self.rfile.read(int(length))

    def _send(self, response: Response, include_body=True):
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if include_body:
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. timed out on a hang)

    def _log(self, method, path, status):
        if self.server.emulator.stopped:
            return  # a request that outlived stop() (e.g. a hang fault) is just noise
        # Path and status only: headers carry the key and the webhook URL's secret token.
        print(f"[pixazo-emulator] {method} {path} {status}", file=sys.stderr, flush=True)

    def log_request(self, code="-", size="-"):
        pass  # replaced by _log, which runs after the response is sent

    def log_message(self, format, *args):
        # Only reached for malformed requests rejected by http.server itself.
        print(f"[pixazo-emulator] {format % args}", file=sys.stderr, flush=True)
