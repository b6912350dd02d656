"""`make bench`: the studio's production-like stack measured on this machine.

    runner.py    the phases (seed, load, measure) and the one JSON object they print
    stack.py     the real processes (gunicorn, qcluster, the emulator) and their memory
    load.py      a small HTTP load generator
    views.py     the yardsticks: a trivial view and the submission's writes in raw SQL
    urls.py      the studio's URLs plus those two, for the bench's web server only
    settings.py  the studio's settings with that urlconf and a scratch static root (the
                 DJANGO_SETTINGS_MODULE of the bench's processes): the normal app never
                 routes to the yardsticks

Part of the devtools app (no models, no migrations). `manage.py bench`
(devtools/management/commands/bench.py) runs it.
"""
