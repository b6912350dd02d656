"""The benchmark's web server: the studio's settings, unchanged, plus the bench-only
views (devtools/bench/urls.py) and a static root of its own.

Selected with DJANGO_SETTINGS_MODULE=devtools.bench.settings, so the yardsticks are
reachable only on a server started for the bench, never through a flag on a real one.
"""

from studio.settings import *
from studio.settings import VAR_DIR, env_str

ROOT_URLCONF = "devtools.bench.urls"

# With DEBUG off, static files come from collectstatic's manifest. The bench collects
# into a scratch folder rather than the checkout's staticfiles/, which a development
# server (whitenoise with autorefresh) would otherwise serve stale copies from.
STATIC_ROOT = env_str("BENCH_STATIC_ROOT", str(VAR_DIR / "bench-static"))
