import uuid
from decimal import Decimal, InvalidOperation

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from studio.accounts.models import Team
from studio.billing import money
from studio.billing.models import dollars_to_micros, format_micros


class Command(BaseCommand):
    help = "Credit a team wallet: topup TEAM AMOUNT --reason TEXT (TEAM is the slug, AMOUNT in dollars)."

    def add_arguments(self, parser):
        parser.add_argument("team", help="the team's slug")
        parser.add_argument("amount", help="dollars, e.g. 25 or 12.50")
        parser.add_argument("--reason", required=True, help="recorded on the ledger, e.g. an invoice number")
        parser.add_argument("--key", help="idempotency key: the same key books once (default: a new one)")
        parser.add_argument("--by", help="username of the staff member booking it (recorded as the actor)")

    def handle(self, team, amount, reason, key, by, **options):
        micros = self._amount(amount)
        if not reason.strip():
            raise CommandError("--reason must say why the money is added")
        team_obj = Team.objects.filter(slug=team).first()
        if team_obj is None:
            raise CommandError(f"no team with slug {team!r}")
        actor = None
        if by:
            actor = User.objects.filter(username=by, is_staff=True).first()
            if actor is None:
                raise CommandError(f"--by must name a staff user, {by!r} is not one")
        topup = money.top_up(team_obj, micros, actor=actor, reason=reason, key=key or f"cli:{uuid.uuid4()}")
        team_obj.wallet.refresh_from_db()
        booked = "booked" if topup else "already booked under this key, nothing added"
        self.stdout.write(f"{format_micros(micros)} for {team}: {booked}; balance {team_obj.wallet.balance_display}")

    @staticmethod
    def _amount(amount):
        try:
            micros = dollars_to_micros(Decimal(amount))
        except (InvalidOperation, ValueError):
            raise CommandError(f"AMOUNT must be a dollar amount with at most six decimals, got {amount!r}") from None
        if micros <= 0:
            raise CommandError("AMOUNT must be positive")
        return micros
