"""python manage.py chaos --jobs N: paid jobs through the studio's real worker and web
server against a faulty gateway emulator, then the money checks (see devtools/chaos.py)."""

import secrets
import signal

from django.core.management.base import BaseCommand, CommandError

from devtools.chaos import ChaosError, ChaosRun, in_main_thread


def fraction(value):
    number = float(value)
    if not 0 <= number <= 1:
        raise ValueError(value)
    return number


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C


class Command(BaseCommand):
    help = ("Run N jobs through the studio's worker and web server against the gateway emulator with faults, "
            "duplicate webhooks and forced failures; check that every job ended and the money is right. "
            "Exits non-zero on drift or a stuck job; refuses to start while another worker cluster runs on the "
            "database (stop the studio's own worker first).")

    def add_arguments(self, parser):
        parser.add_argument("--jobs", type=int, default=20, help="how many jobs to run (default 20)")
        parser.add_argument("--seed", type=int, help="seed for the job plan and the faults (default: random, printed)")
        parser.add_argument("--fault-rate", type=fraction, default=0.3,
                            help="share of gateway requests answered with a fault, 0..1 (default 0.3)")
        parser.add_argument("--timeout", type=float,
                            help="seconds to wait for every job to end (default 120; 300 with --kill-worker)")
        parser.add_argument("--delay", type=float,
                            help="the emulator's seconds from submit to result (default 1.5; 4 with --kill-worker)")
        parser.add_argument("--kill-worker", action="store_true",
                            help="SIGKILL the worker once mid-run, after every job reached the gateway, and restart it")
        parser.add_argument("--force", action="store_true",
                            help="run even though other teams have jobs in flight on this database")

    def handle(self, *args, jobs, seed, fault_rate, timeout, delay, kill_worker, force, **options):
        if not 1 <= jobs <= 1000:
            raise CommandError("--jobs must be between 1 and 1000")
        if timeout is not None and timeout <= 0:
            raise CommandError("--timeout must be a positive number of seconds")
        if delay is not None and not 0 <= delay <= 600:
            raise CommandError("--delay must be between 0 and 600 seconds")
        seed = secrets.randbelow(1_000_000) if seed is None else seed
        # A killed worker's tasks come back after django-q2's retry (120 s) or the sweeper.
        timeout = timeout or (300 if kill_worker else 120)
        delay = (4 if kill_worker else 1.5) if delay is None else delay
        run = ChaosRun(jobs=jobs, seed=seed, fault_rate=fault_rate, timeout=timeout, delay=delay,
                       kill_worker=kill_worker, force=force, say=self.stdout.write)
        previous = signal.signal(signal.SIGTERM, _interrupt) if in_main_thread() else None
        try:
            report = run.execute()
        except ChaosError as exc:
            raise CommandError(f"chaos: {exc}") from None
        except KeyboardInterrupt:
            raise CommandError(f"chaos: interrupted; the processes it started are stopped"
                               f"{f' (logs in {run.log_dir})' if run.log_dir else ''}", returncode=130) from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        self.show(report)
        if not report.ok:
            raise CommandError(f"chaos: {len(report.drifts)} drift(s), {len(report.stuck)} stuck job(s), "
                               f"{len(report.crashes)} crashed process(es); logs kept in {run.log_dir}")
        if report.warnings:
            self.stdout.write(f"chaos: logs kept in {run.log_dir}")
        else:
            run.discard_logs()

    def show(self, report):
        for kind, lines in (("CRASH", report.crashes), ("DRIFT", report.drifts), ("STUCK", report.stuck),
                            ("WARNING", report.warnings)):
            for line in lines:
                self.stderr.write(f"{kind} {line}")
        self.stdout.write(report.faults.describe())
        self.stdout.write(report.summary())
