"""The release step (the Procfile's `release:`), run once per deploy before the new web
and worker processes start: the deploy checks, the database migrations and the static
files. It stops at the first failure with a non-zero exit, so a broken release never
reaches traffic."""

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Release a new version: deploy checks, migrations, static files."

    def handle(self, *args, **options):
        verbosity = options["verbosity"]
        # Errors stop the release; warnings are printed for the operator to read.
        call_command("check", deploy=True, fail_level="ERROR", verbosity=verbosity)
        call_command("migrate", interactive=False, verbosity=verbosity)
        call_command("collectstatic", interactive=False, verbosity=verbosity)
        self.stdout.write(self.style.SUCCESS("Release done: checks passed, database migrated, static files collected."))
