import uuid
from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError

from studio.accounts.models import Team
from studio.billing import money
from studio.billing.models import dollars_to_micros, format_micros


class Command(BaseCommand):
    help = "Credit a team wallet: topup TEAM AMOUNT --reason TEXT (AMOUNT in dollars)."

    def add_arguments(self, parser):
        parser.add_argument("team", help="the team's slug")
        parser.add_argument("amount", help="dollars, e.g. 25 or 12.50")
        parser.add_argument("--reason", required=True)
        parser.add_argument("--key", help="idempotency key: the same key books once (default: a new one)")

    def handle(self, team, amount, reason, key, **options):
        try:
            micros = dollars_to_micros(Decimal(amount))
        except (InvalidOperation, ValueError) as exc:
            raise CommandError(f"AMOUNT must be a dollar amount, got {amount!r}") from exc
        if micros <= 0:
            raise CommandError("AMOUNT must be positive")
        team_obj = Team.objects.filter(slug=team).first()
        if team_obj is None:
            raise CommandError(f"no team with slug {team!r}")
        entry = money.top_up(team_obj, micros, reason=reason, key=key or str(uuid.uuid4()))
        team_obj.wallet.refresh_from_db()
        booked = "booked" if entry else "already booked (same key)"
        self.stdout.write(f"{format_micros(micros)} for {team}: {booked}; balance {team_obj.wallet.balance_display}")
