"""The operator's way to issue a team API key, outside the team's roles: whoever runs it
already holds the database, so it may make a key acting as any member of an active team
(the team's first owner by default). Inside the studio, a key is an action on its
member and studio.accounts.roles decides who may make one (studio.api.views)."""

from django.core.management.base import BaseCommand, CommandError

from studio.accounts.models import Role, Team
from studio.api.models import APIKey


class Command(BaseCommand):
    help = "Issue an API key for a team (TEAM is its slug); the key is the last line printed."

    def add_arguments(self, parser):
        parser.add_argument("team", help="the team's slug")
        parser.add_argument("--name", default="command line", help="what the key is for")
        parser.add_argument("--member", help="username the key acts as (default: the team's first owner)")

    def handle(self, team, name, member, **options):
        team_obj = Team.objects.filter(slug=team, archived_at__isnull=True).first()
        if team_obj is None:
            raise CommandError(f"no team with slug {team!r}")
        memberships = team_obj.memberships.select_related("user").order_by("created_at")
        chosen = (memberships.filter(user__username=member) if member else memberships.filter(role=Role.OWNER)).first()
        if chosen is None:
            raise CommandError(f"{member!r} is not a member of {team}" if member else f"{team} has no owner")
        key, raw = APIKey.issue(team_obj, chosen.user, name)
        self.stdout.write(f"Key “{key.name}” for {team}, acting as {chosen.user.get_username()} ({chosen.get_role_display()}).")
        self.stdout.write("It is shown once; keep it secret:")
        self.stdout.write(raw)
