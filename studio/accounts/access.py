"""Who may see and do what. Every team-scoped view starts from `request.membership`,
set by `member_required`; objects of another team are looked up through the team, so
they are a 404, never a 403 that confirms they exist. Who may act on which member is
studio.accounts.roles' table; the helpers here ask it.

One exception to the 404, in one place (`get_for_member` and `member_required`): a link
followed to an object of another of the user's own teams switches to that team and opens
it again. Only a page the browser navigates to does that; a form's POST, an htmx request,
an image loaded by a page and the APIs keep the 404, so nothing is done, or polled, in a
team the user did not choose."""

from contextlib import contextmanager
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.validators import slug_re
from django.db.models import F
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone

from studio.accounts.roles import Action, require

SESSION_KEY = "current_team"


def current_membership(request):
    """The membership of the team the user works in: the one chosen in the session,
    else the one used last (on any device), else the oldest."""
    if not hasattr(request, "_membership"):
        request._membership = _find_membership(request)
    return request._membership


def _find_membership(request):
    """All the user's memberships in one query (people are in a handful of teams): the
    chosen one, which also knows the others, for the header's team switcher."""
    if not request.user.is_authenticated:
        return None
    memberships = list(request.user.memberships.filter(team__archived_at__isnull=True)
                       .select_related("team", "team__wallet")
                       .order_by(F("last_used_at").desc(nulls_last=True), "created_at"))
    chosen = request.session.get(SESSION_KEY)
    membership = next((m for m in memberships if m.team.slug == chosen), memberships[0] if memberships else None)
    if membership is not None:
        membership.other_teams = sorted((m.team for m in memberships if m is not membership), key=lambda t: t.name.lower())
    return membership


def switch_team(request, team):
    """Work in `team` from the next request on, and in later sessions too (the caller
    checked the user is in it)."""
    request.session[SESSION_KEY] = team.slug
    request.user.memberships.filter(team=team).update(last_used_at=timezone.now())
    request.__dict__.pop("_membership", None)


def forget_team(request):
    """After leaving or closing the current team: fall back to the one used last."""
    request.session.pop(SESSION_KEY, None)
    request.__dict__.pop("_membership", None)


def get_own_team(request, slug):
    """One of the user's own (live) teams, to switch to; anything else is a 404 (a
    string that is no slug at all, a NUL say, is not looked up)."""
    if not slug_re.match(slug):
        raise Http404("No such team.")
    memberships = request.user.memberships.filter(team__archived_at__isnull=True).select_related("team")
    return get_object_or_404(memberships, team__slug=slug).team


def member_required(view):
    """Logged in and a member of a team; sets request.membership and request.team. A
    followed link to an object of another of the user's teams switches there. A team
    that requires two-factor authentication sends a member without it to enrol."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        membership = current_membership(request)
        if membership is None:
            from studio.accounts.landing import no_team_page

            return no_team_page(request, status=403)
        request.membership = membership
        request.team = membership.team
        request.follows_link = follows_link(request)
        from studio.accounts.mfa import team_requires_enrolment

        if enrol := team_requires_enrolment(request):
            return enrol
        try:
            return view(request, *args, **kwargs)
        except InAnotherTeam as elsewhere:
            return _switch_to_show(request, elsewhere.team)

    return wrapper


def follows_link(request):
    """A page the browser navigates to: not a form, an htmx request or an image of a
    page (a client that sends no Sec-Fetch-Mode is taken to navigate)."""
    return (request.method in ("GET", "HEAD") and not request.htmx
            and request.headers.get("Sec-Fetch-Mode", "navigate") == "navigate")


def _switch_to_show(request, team):
    switch_team(request, team)
    messages.info(request, f"Switched to team {team.name} to show this.")
    return redirect(request.get_full_path())


class InAnotherTeam(Http404):
    """The object is in another of the user's teams: a 404 wherever it is not caught,
    which only member_required does, for a followed link."""

    def __init__(self, team):
        super().__init__("Not in this team.")
        self.team = team


def get_for_member(request, queryset, **lookup):
    """The current team's object of `queryset` matching `lookup`, else a 404. For a
    followed link to one of the user's other live teams' objects, InAnotherTeam."""
    try:
        return queryset.get(team=request.team, **lookup)
    except queryset.model.DoesNotExist:
        pass
    if getattr(request, "follows_link", False):
        team = _own_team_holding(request.user, queryset.model.objects.filter(**lookup))
        if team is not None:
            raise InAnotherTeam(team)
    raise Http404(f"No {queryset.model._meta.verbose_name} matches the given query.")


def _own_team_holding(user, objects):
    from studio.accounts.models import Team

    return Team.objects.filter(archived_at__isnull=True, memberships__user=user, pk__in=objects.values("team")).first()


def require_runner(membership):
    """Viewers browse; only members and up spend the team's money."""
    if not membership.can_run_jobs:
        raise PermissionDenied("Your role in this team cannot run jobs.")


MANAGING_ROLES = frozenset({"owner", "admin"})


def require_manager(membership):
    """Owners and admins see the team's invitations and API keys; what each may do to
    whom is studio.accounts.roles' table."""
    if membership.role not in MANAGING_ROLES:
        raise PermissionDenied("Only the team's owners and admins can do this.")


def require_owner(membership):
    """Owners manage the wallet."""
    if membership.role != "owner":
        raise PermissionDenied("Only the team's owners can do this.")


def get_member_for(request, username, action):
    """A member of the current team on whom the current user may take `action`
    (studio.accounts.roles): 403 with the reason if they may not, 404 for anyone not in
    this team."""
    membership = get_object_or_404(request.team.memberships.select_related("user"), user__username=username)
    require(request.membership, membership, action)
    return membership


@contextmanager
def team_rules():
    """A rule a team's model keeps under its lock (two managers acting at once, a member
    who left a moment ago) is a 403."""
    from studio.accounts.models import TeamError

    try:
        yield
    except TeamError as error:
        raise PermissionDenied(str(error)) from None


def get_invitation_for_manager(request, code):
    """A pending or past invitation of the current team, for someone who could have made it."""
    require_manager(request.membership)
    invitation = get_object_or_404(request.team.invitations, code=code)
    require(request.membership, invitation.role, Action.GRANT)
    return invitation
