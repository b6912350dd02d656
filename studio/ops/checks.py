"""System checks for production, and running them where Django does not.

In production (DEBUG off) the cache must be shared by every process on every machine:
it holds the API's per-key rate counters (studio/api/ratelimit.py) and the login
rate limits' counts (django-allauth's, keyed in studio/accounts/adapter.py). A
per-process cache would let each gunicorn process count on its own, multiplying the limits by the number of
processes; a dummy cache counts nothing at all. `manage.py check`, `migrate` (the
release step), `runserver` and `qcluster` run the checks themselves; gunicorn does not,
so studio/wsgi.py calls refuse_to_serve_on_errors() once the application is loaded.
"""

from django.conf import settings
from django.core import checks
from django.core.management.base import BaseCommand

# Cache backends whose counts are not shared across processes, and whose they are.
UNSHARED_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache": "each process's memory",
    "django.core.cache.backends.dummy.DummyCache": "nowhere (it keeps nothing)",
    # One directory per machine, and its incr() is a read then a write, not atomic.
    "django.core.cache.backends.filebased.FileBasedCache": "each machine's disk",
}


def shared_cache_in_production(app_configs, **kwargs):
    if settings.DEBUG:
        return []
    backend = settings.CACHES["default"]["BACKEND"]
    if backend not in UNSHARED_CACHES:
        return []
    return [checks.Error(
        f"DJANGO_DEBUG is off but the cache ({backend}) keeps its counts in {UNSHARED_CACHES[backend]}: "
        "the API's rate limit and the login rate limits would count per process.",
        hint="Set CACHE_URL (or REDIS_URL, which it defaults to) to the Redis every web process shares.",
        id="ops.E001",
    )]


def refuse_to_serve_on_errors():
    """Run the system checks as `manage.py check` does, for a server that does not (gunicorn):
    SystemCheckError on any error, so the process stops instead of serving; warnings go to
    stderr; nothing is printed when all is well."""
    BaseCommand().check()
