"""Requests per minute per API key, shared by both APIs. The counters live with the cache:
in Redis whenever the studio runs more than one web process (see settings), else in the
process's memory."""

import time
from functools import cache as once

from django.conf import settings
from django.core.cache import cache

REDIS_CACHE = "django.core.cache.backends.redis.RedisCache"
WINDOW_S = 60


class RateLimited(Exception):
    def __init__(self, retry_after):
        super().__init__(f"Rate limit exceeded for this key; retry in {retry_after} s.")
        self.retry_after = retry_after


def check_rate(key):
    """Count one request for `key` in the current minute; RateLimited past the limit.
    A fixed window: cheap (one atomic increment) and what Retry-After can state exactly."""
    now = time.time()
    count = _count(f"api-rate:{key.code}:{int(now // WINDOW_S)}")
    if count > settings.API_RATE_LIMIT_PER_MINUTE:
        raise RateLimited(max(1, WINDOW_S - int(now % WINDOW_S)))


def _count(name):
    """Add one to the counter `name`, which lives for two windows; the new count."""
    client = _redis()
    if client is None:
        try:
            return cache.incr(name)
        except ValueError:  # the window's first request (or a racing one)
            return 1 if cache.add(name, 1, timeout=2 * WINDOW_S) else cache.incr(name)
    # One round trip: create the counter with its expiry if it is new, and count. (The
    # cache's own incr() costs two, and a new client object per call.)
    name = cache.make_key(name)
    pipe = client.pipeline(transaction=False)
    pipe.set(name, 0, ex=2 * WINDOW_S, nx=True)
    pipe.incr(name)
    return pipe.execute()[1]


@once
def _redis():
    """The cache's Redis, one client (and connection pool) per process; None when the
    cache is not Redis."""
    options = settings.CACHES["default"]
    if options["BACKEND"] != REDIS_CACHE:
        return None
    import redis

    return redis.Redis.from_url(options["LOCATION"])
