"""A small HTTP load generator: a fixed number of concurrent clients, each sending its
next request as soon as the last one is answered, for a warm-up whose answers are not
counted and then a timed window.

It speaks just enough HTTP/1.1 over asyncio streams: one request per connection, which
is what gunicorn's sync workers do anyway. The client shares the machine's two cores
with the server and PostgreSQL, so it must cost as little as possible per request (about
0.3 ms of CPU here, against the trivial view's 0.5 ms on the server's side).
"""

import asyncio
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field


def http_request(method, path, *, headers=None, body=b""):
    """(head, body) of one request; `send` fills in the Host header."""
    lines = [f"{method} {path} HTTP/1.1", "Host: {host}", "Connection: close", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), body


@dataclass
class Outcome:
    seconds: float
    latencies: list = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)
    # The statuses that count as answered: 2xx, or the redirect a media view answers with.
    ok: range = range(200, 300)

    @property
    def requests(self):
        return len(self.latencies)

    @property
    def errors(self):
        return sum(n for status, n in self.statuses.items() if status not in self.ok) + sum(self.failures.values())

    def merge(self, other):
        """Add another window's answers to this one's."""
        self.seconds += other.seconds
        self.latencies += other.latencies
        self.statuses.update(other.statuses)
        self.failures.update(other.failures)

    def summary(self):
        """The figure and what it rests on; `valid` only if every answer was ok."""
        ordered = sorted(self.latencies)
        return {
            "rps": round(self.requests / self.seconds, 1),
            "requests": self.requests,
            "errors": self.errors,
            "valid": self.errors == 0 and self.requests > 0,
            "latency_ms": {"p50": _ms(percentile(ordered, 50)), "p99": _ms(percentile(ordered, 99))},
            **({"statuses": {str(k): v for k, v in sorted(self.statuses.items())}} if self.errors else {}),
            **({"failures": dict(self.failures)} if self.failures else {}),
        }


def percentile(ordered, p):
    """Nearest-rank percentile of a sorted list (None when empty)."""
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * p // 100))  # ceil
    return ordered[int(rank) - 1]


def _ms(seconds):
    return None if seconds is None else round(seconds * 1000, 1)


def run(address, requests, *, concurrency, warmup, duration, window=None, ok=range(200, 300)):
    """Send `requests` (an iterator of (head, body) from http_request) to `address`
    (host, port) from `concurrency` clients: `warmup` seconds uncounted, then
    `duration` seconds counted. Returns an Outcome. `window`, if given, is called as
    the counted window opens and again as it closes. Every answer's status must be in
    `ok`."""
    return asyncio.run(_run(address, iter(requests), concurrency, warmup, duration, window, ok))


async def _run(address, requests, concurrency, warmup, duration, window, ok):
    host, port = address
    started = time.monotonic()
    counted_from, until = started + warmup, started + warmup + duration
    outcome = Outcome(seconds=duration, ok=ok)

    async def watch():
        await asyncio.sleep(warmup)
        window()
        await asyncio.sleep(max(0.0, until - time.monotonic()))
        window()

    async def client():
        for head, body in requests:
            began = time.monotonic()
            if began >= until:
                return
            try:
                status = await send(host, port, head, body)
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
                status = None
                failure = type(exc).__name__
            ended = time.monotonic()
            if counted_from <= ended <= until:  # the rate is answers completed in the window
                outcome.latencies.append(ended - began)
                if status is None:
                    outcome.failures[failure] += 1
                else:
                    outcome.statuses[status] += 1
            elif status not in ok:  # every answer must succeed, warm-up too
                outcome.failures[f"outside the window: {status or failure}"] += 1

    await asyncio.gather(*(client() for _ in range(concurrency)), *([watch()] if window else []))
    return outcome


async def send(host, port, head, body):
    """One request on a fresh connection; the answer's status code."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(head.replace(b"{host}", f"{host}:{port}".encode()) + body)
        await writer.drain()
        status_line = await reader.readline()
        await reader.read()  # to the end: Connection: close
        return int(status_line.split()[1])
    finally:
        writer.close()


def paced(address, requests, *, rate):
    """Send `requests` one by one at `rate` per second without waiting for answers (an
    open workload, like clients arriving), then wait for all answers. Returns a list
    of (status or None, sent_at) in order."""
    return asyncio.run(_paced(address, list(requests), rate))


async def _paced(address, requests, rate):
    host, port = address
    started = time.monotonic()

    async def one(i, head, body):
        await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
        sent = time.time()
        try:
            return await send(host, port, head, body), sent
        except (OSError, ValueError, IndexError):
            return None, sent

    return await asyncio.gather(*(one(i, head, body) for i, (head, body) in enumerate(requests)))


def quantiles_ms(values):
    """p50, p95, p99 and max of a list of seconds, in milliseconds."""
    ordered = sorted(values)
    return {"p50": _ms(percentile(ordered, 50)), "p95": _ms(percentile(ordered, 95)),
            "p99": _ms(percentile(ordered, 99)), "max": _ms(ordered[-1] if ordered else None),
            "mean": _ms(statistics.fmean(ordered)) if ordered else None}
