from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand
from django.db import transaction

from studio.accounts.models import Team
from studio.billing import money

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-studio-2026"


class Command(BaseCommand):
    help = "Create the demo user in team 'demo' with credit (idempotent) and print the login."

    @transaction.atomic
    def handle(self, *args, **options):
        user, created = User.objects.get_or_create(username=DEMO_USERNAME, defaults={"email": "demo@example.com"})
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        team = Team.objects.filter(slug="demo").first() or Team.create_for(user, "Demo", slug="demo")
        money.top_up(team, settings.DEMO_CREDIT_MICROS, reason="Demo credit", key="demo-credit")
        team.wallet.refresh_from_db()
        self.stdout.write(f"Demo login: {DEMO_USERNAME} / {DEMO_PASSWORD} (team demo, {team.wallet.balance_display})")
