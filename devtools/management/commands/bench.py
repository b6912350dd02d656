"""Measure the studio's production-like stack on this machine:

    python manage.py bench [--duration 10] [--concurrency 16] [--report-entries 1000000] [--media s3]

Seeds a scratch database, starts gunicorn, the django-q2 worker and the gateway emulator
as real processes, loads them, stops them (also on failure) and prints one JSON object on
stdout; progress goes to stderr. devtools/bench/ holds the phases and what each figure
means; `make bench` creates and drops the database.

Seeded rows include ledger entries, which can never be deleted: it runs only on a
PostgreSQL database whose name starts with "bench".
"""

import json
import signal
import sys
import time
from dataclasses import fields

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from devtools.bench.runner import Bench, Options


class Command(BaseCommand):
    help = "Load the studio's real processes on a scratch bench* PostgreSQL database and print the figures as JSON."

    def add_arguments(self, parser):
        defaults = Options()
        for option in fields(Options):
            if option.name == "library_sizes":
                parser.add_argument("--library-sizes", type=int, nargs="+", default=list(defaults.library_sizes))
                continue
            if option.name == "media":
                parser.add_argument("--media", choices=("local", "s3"), default=defaults.media,
                                    help="images on the local disk, or in a bucket of a moto S3 server")
                continue
            parser.add_argument(f"--{option.name.replace('_', '-')}", type=type(getattr(defaults, option.name)),
                                default=getattr(defaults, option.name))

    def handle(self, *args, **options):
        name = str(connection.settings_dict["NAME"])
        if connection.vendor != "postgresql" or not name.startswith("bench"):
            raise CommandError(
                "The bench seeds ledger entries, which can never be deleted: it runs only on a PostgreSQL database "
                f"whose name starts with 'bench' (this is {connection.vendor} {name!r}). `make bench` makes one.")
        chosen = Options(**{f.name: options[f.name] for f in fields(Options)})
        chosen.library_sizes = tuple(chosen.library_sizes)
        # A TERM (make interrupted, a CI timeout) unwinds like Ctrl-C, so the processes
        # the bench started are stopped.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        started = time.monotonic()
        result = Bench(chosen, say=self._say).run()
        result["bench_seconds"] = round(time.monotonic() - started, 1)
        self.stdout.write(json.dumps(result, indent=2))

    def _say(self, message):
        self.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}")
        self.stderr.flush()
