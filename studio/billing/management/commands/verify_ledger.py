from django.core.management.base import BaseCommand, CommandError

from studio.billing.verify import verify


class Command(BaseCommand):
    help = "Check every money invariant; exit non-zero naming each drift."

    def handle(self, *args, **options):
        drifts = verify()
        for drift in drifts:
            self.stderr.write(f"DRIFT {drift}")
        if drifts:
            raise CommandError(f"{len(drifts)} drift(s) found")
        self.stdout.write("ledger OK: wallets equal their ledgers, every job has its money effect, nothing negative")
