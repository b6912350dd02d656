"""Requests per minute per API key, shared by both APIs. The counters live in the cache,
which is Redis whenever the studio runs more than one web process (see settings)."""

import time

from django.conf import settings
from django.core.cache import cache


class RateLimited(Exception):
    def __init__(self, retry_after):
        super().__init__(f"Rate limit exceeded for this key; retry in {retry_after} s.")
        self.retry_after = retry_after


def check_rate(key):
    """Count one request for `key` in the current minute; RateLimited past the limit.
    A fixed window: cheap (one atomic increment) and what Retry-After can state exactly."""
    now = time.time()
    name = f"api-rate:{key.code}:{int(now // 60)}"
    try:
        count = cache.incr(name)
    except ValueError:  # the window's first request (or a racing one)
        count = 1 if cache.add(name, 1, timeout=120) else cache.incr(name)
    if count > settings.API_RATE_LIMIT_PER_MINUTE:
        raise RateLimited(max(1, 60 - int(now % 60)))
