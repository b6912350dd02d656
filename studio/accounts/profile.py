"""The profile page: one person's account across all their teams. Their username, email
(verified or not), password and two-factor status, each linking to django-allauth's page
that changes it; the teams they are in, to switch between; and the API keys acting as
them in any of those teams, to revoke where studio.accounts.roles lets them.

It is about the user, not the current team, so a key of another of their teams is
listed and revoked here without switching. The team page asks `with_account_details` too:
owners see whether each member's email is verified and whether they use 2FA.
"""

from allauth.account.models import EmailAddress
from django.apps import apps
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db.models import BooleanField, Exists, OuterRef, Value
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_POST

from studio.accounts.access import current_membership
from studio.accounts.roles import Action, require
from studio.api.models import APIKey

MFA_APP = "allauth.mfa"


def with_account_details(queryset, user="user"):
    """`queryset` (of rows pointing at a user through `user`, or of users with `user=None`)
    annotated with `email_verified` (the user's own address, `user.email`, is verified)
    and `two_factor` (they have an authenticator, as allauth.mfa's is_mfa_enabled
    counts; None without allauth.mfa). Subqueries, so a page of members stays one query."""
    user_ref, email_ref = (OuterRef(user), OuterRef(f"{user}__email")) if user else (OuterRef("pk"), OuterRef("email"))
    verified = EmailAddress.objects.filter(user=user_ref, email__iexact=email_ref, verified=True)
    return queryset.annotate(email_verified=Exists(verified), two_factor=_two_factor(user_ref))


def _two_factor(user_ref):
    if not apps.is_installed(MFA_APP):
        return Value(None, output_field=BooleanField())
    from allauth.mfa.models import Authenticator

    return Exists(Authenticator.objects.filter(user=user_ref))


def mfa_url():
    """allauth.mfa's page for turning 2FA on and off, once it is installed."""
    try:
        return reverse("mfa_index")
    except NoReverseMatch:
        return None


def _own_memberships(user):
    return list(user.memberships.filter(team__archived_at__isnull=True).select_related("team")
                .order_by("team__name"))


def _own_keys(user, memberships):
    """The live keys acting as `user` in their live teams, each with `may_revoke`."""
    by_team = {m.team_id: m for m in memberships}
    keys = list(APIKey.objects.filter(member=user, team__in=by_team, revoked_at__isnull=True)
                .select_related("team", "created_by").order_by("team__name", "-created_at"))
    for key in keys:
        key.may_revoke = by_team[key.team_id].may(Action.REVOKE_KEY, by_team[key.team_id])
    return keys


def get_own_key_to_revoke(request, code):
    """A key acting as the user in one of their live teams (else 404), that their role
    there lets them revoke (else Refused, a 403 with roles.py's words)."""
    key = get_object_or_404(APIKey.objects.select_related("team"), code=code, member=request.user,
                            team__archived_at__isnull=True)
    membership = get_object_or_404(request.user.memberships, team=key.team)
    require(membership, membership, Action.REVOKE_KEY)
    return key


@require_GET
@login_required
def profile(request):
    user = request.user
    memberships = _own_memberships(user)
    current = current_membership(request)
    return render(request, "accounts/profile.html", {
        "details": with_account_details(get_user_model().objects.filter(pk=user.pk), user=None).get(),
        "mfa_url": mfa_url(),
        "memberships": memberships,
        "current_team_id": current.team_id if current else None,
        "keys": _own_keys(user, memberships),
    })


@require_POST
@login_required
def revoke_key(request, code):
    """From any of the user's teams, without switching to it."""
    key = get_own_key_to_revoke(request, code)
    key.revoke(request.user)
    messages.success(request, f"The key “{key.name}” ({key.team.name}) is revoked: it stopped working at once.")
    return redirect("profile")
