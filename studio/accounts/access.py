"""Who may see and do what. Every team-scoped view starts from `request.membership`,
set by `member_required`; objects of another team are looked up through the team, so
they are a 404, never a 403 that confirms they exist."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

SESSION_KEY = "current_team"


def current_membership(request):
    """The membership of the team the user works in: the one chosen in the session,
    else the oldest."""
    if not hasattr(request, "_membership"):
        request._membership = _find_membership(request)
    return request._membership


def _find_membership(request):
    if not request.user.is_authenticated:
        return None
    memberships = request.user.memberships.select_related("team", "team__wallet").order_by("created_at")
    chosen = request.session.get(SESSION_KEY)
    if chosen:
        membership = memberships.filter(team__slug=chosen).first()
        if membership:
            return membership
    return memberships.first()


def member_required(view):
    """Logged in and a member of a team; sets request.membership and request.team."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        membership = current_membership(request)
        if membership is None:
            return render(request, "accounts/no_team.html", status=403)
        request.membership = membership
        request.team = membership.team
        return view(request, *args, **kwargs)

    return wrapper


def require_runner(membership):
    """Viewers browse; only members and up spend the team's money."""
    if not membership.can_run_jobs:
        raise PermissionDenied("Your role in this team cannot run jobs.")


MANAGING_ROLES = frozenset({"owner", "admin"})


def require_manager(membership):
    """Owners and admins manage members and their spend caps."""
    if membership.role not in MANAGING_ROLES:
        raise PermissionDenied("Only the team's owners and admins can do this.")


def require_owner(membership):
    """Owners manage the wallet."""
    if membership.role != "owner":
        raise PermissionDenied("Only the team's owners can do this.")
