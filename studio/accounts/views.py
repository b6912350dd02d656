"""Sign-up and login (django-allauth's views, with the studio's twists), the team page,
and everything that changes who is in a team.

Each write checks who is asking first (403 for a role that may not, 404 for anyone or
anything outside the current team), then validates (400 with the message next to the
field), then calls one model method that changes the rows and records the event
together. Invitation links carry a secret, so the pages that show one are rendered,
never redirected to, and never cached.
"""

from decimal import Decimal
from urllib.parse import urlencode

from allauth.account import views as allauth_views
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.db.models import Sum
from django.forms.forms import NON_FIELD_ERRORS
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from jobs.models import Job
from studio.accounts.access import (
    MANAGING_ROLES,
    forget_team,
    get_invitation_for_manager,
    get_member_for,
    get_own_team,
    member_required,
    require_manager,
    require_owner,
    switch_team,
    team_rules,
)
from studio.accounts.adapter import pending_invitation, remember_invitation
from studio.accounts.forms import CapForm, CloseTeamForm, InviteForm, RoleForm, ThresholdForm, TransferForm
from studio.accounts.mfa import TwoFactorForm
from studio.accounts.models import ROLE_DESCRIPTIONS, Invitation, Role, TeamError, TeamHasMoney, cap_text
from studio.accounts.profile import with_account_details
from studio.accounts.roles import Action, require
from studio.activity.models import Event, record
from studio.billing import money
from studio.billing.models import MICROS_PER_DOLLAR, format_micros
from studio.mail import queue_email


class SignupView(allauth_views.SignupView):
    """allauth's sign-up. Opened after an invitation's link, it names the team the new
    user joins and asks for no team of their own (studio.accounts.adapter)."""

    def get_form(self, form_class=None):
        form = super().get_form(form_class)
        if pending_invitation(self.request):
            form.fields.pop("team_name", None)  # allauth hands out one form per request, cached
        return form

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "invitation": pending_invitation(self.request)}

    def form_invalid(self, form):
        response = super().form_invalid(form)
        response.status_code = 400
        return response


class LoginView(allauth_views.LoginView):
    """allauth's login, by username or email; a username refused for too many failures
    from this address answers 429 (the form says why)."""

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.has_error(NON_FIELD_ERRORS, "too_many_login_attempts"):
            response.status_code = 429
        return response


# The team page.

def _team_context(request, cap_forms=None, threshold_form=None, role_forms=None, **extra):
    team, me = request.team, request.membership
    is_owner = me.role == Role.OWNER
    memberships = team.memberships.select_related("user").order_by("created_at")
    if is_owner:  # whose email is verified, who uses 2FA: for the owners' eyes only
        memberships = with_account_details(memberships)
    spent = dict(
        Job.objects.filter(team=team, created_at__gte=money.month_start(), money__in=[Job.Money.HELD, Job.Money.CHARGED])
        .values_list("created_by").annotate(total=Sum("price"))
    )
    cap_forms, role_forms = cap_forms or {}, role_forms or {}
    rows = [
        {"membership": m, "spent": spent.get(m.user_id, 0), "is_me": m.pk == me.pk,
         "may_change_role": me.may(Action.CHANGE_ROLE, m), "may_remove": me.may(Action.REMOVE, m),
         "may_set_cap": me.may(Action.SET_CAP, m),
         "form": cap_forms.get(m.user.username) or CapForm(initial={"monthly_cap": _dollars(m.monthly_cap)}),
         "role_form": role_forms.get(m.user.username) or RoleForm(initial={"role": m.role})}
        for m in memberships
    ]
    threshold_form = threshold_form or ThresholdForm(initial={"low_balance_threshold": _dollars(team.low_balance_threshold)})
    context = {
        "rows": rows, "threshold_form": threshold_form, "can_manage": me.role in MANAGING_ROLES, "is_owner": is_owner,
        "grantable_roles": [(role, role.label) for role in me.grantable_roles],
        "removes_anyone": any(row["may_remove"] for row in rows),
        "role_descriptions": [(Role(role).label, text) for role, text in ROLE_DESCRIPTIONS.items()],
        "invitations": team.invitations.pending().select_related("invited_by").order_by("-created_at")
        if me.role in MANAGING_ROLES else [],
        "invite_form": InviteForm(),
        "transfer_form": TransferForm(team=team, me=me) if is_owner else None,
        "can_leave": not is_owner or sum(row["membership"].role == Role.OWNER for row in rows) > 1,
    }
    return {**context, **extra}


def _team_page(request, status=200, **extra):
    response = render(request, "accounts/team.html", _team_context(request, **extra), status=status)
    response["Cache-Control"] = "private, no-store"  # it may carry a new invitation's one-time link
    return response


def _dollars(micros):
    return None if micros is None else Decimal(micros) / MICROS_PER_DOLLAR


@require_GET
@member_required
def team_page(request):
    return _team_page(request)


@require_POST
@member_required
def set_cap(request, username):
    membership = get_member_for(request, username, Action.SET_CAP)
    form = CapForm(request.POST)
    if not form.is_valid():
        return _team_page(request, status=400, cap_forms={username: form})
    with team_rules():
        membership = request.team.set_cap(membership.user, form.cleaned_data["monthly_cap"], request.user)
    messages.success(request, f"{username}'s monthly cap is now {cap_text(membership.monthly_cap)}.")
    return redirect("team")


@require_POST
@member_required
def set_threshold(request):
    require_owner(request.membership)
    form = ThresholdForm(request.POST)
    if not form.is_valid():
        return _team_page(request, status=400, threshold_form=form)
    with transaction.atomic():
        request.team.low_balance_threshold = form.cleaned_data["low_balance_threshold"]
        request.team.save(update_fields=["low_balance_threshold"])
        record(request.team, request.user, Event.Verb.THRESHOLD_CHANGED,
               _threshold_text(request.team.low_balance_threshold), threshold=request.team.low_balance_threshold)
    messages.success(request, f"Low-balance warning: {_threshold_text(request.team.low_balance_threshold)}.")
    return redirect("team")


def _threshold_text(micros):
    return "none" if micros is None else format_micros(micros)


@require_POST
@member_required
def set_two_factor(request):
    """Owners require two-factor authentication of every member, or stop requiring it;
    an owner turns it on only once they use it themselves."""
    require_owner(request.membership)
    form = TwoFactorForm(request.POST, owner=request.user)
    if not form.is_valid():
        return _team_page(request, status=400, two_factor_form=form)
    required = form.cleaned_data["requires_2fa"]
    with transaction.atomic():
        request.team.requires_2fa = required
        request.team.save(update_fields=["requires_2fa"])
        record(request.team, request.user, Event.Verb.TWO_FACTOR_CHANGED, _two_factor_text(required),
               requires_2fa=required)
    messages.success(request, f"Two-factor authentication is {_two_factor_text(required)} in {request.team.name}.")
    return redirect("team")


def _two_factor_text(required):
    return "required" if required else "optional"


# Members and roles.

@require_POST
@member_required
def change_role(request, username):
    membership = get_member_for(request, username, Action.CHANGE_ROLE)
    form = RoleForm(request.POST)
    if not form.is_valid():
        return _team_page(request, status=400, role_forms={username: form})
    role = form.cleaned_data["role"]
    require(request.membership, role, Action.GRANT)
    if role == membership.role:
        messages.info(request, f"{username} is already {membership.get_role_display().lower()}; nothing changed.")
        return redirect("team")
    with team_rules():
        membership = request.team.change_role(membership.user, role, request.user)
    messages.success(request, f"{username} is now {membership.get_role_display().lower()}.")
    return redirect("team")


@require_POST
@member_required
def remove_member(request, username):
    membership = get_member_for(request, username, Action.REMOVE)
    with team_rules():
        request.team.remove_member(membership.user, request.user)
    messages.success(request, f"{username} is no longer in {request.team.name}.")
    return redirect("team")


@require_POST
@member_required
def leave_team(request):
    """Anyone but the last owner; the session then falls back to another team, if any."""
    team = request.team
    with team_rules():
        team.leave(request.user)
    forget_team(request)
    messages.success(request, f"You left {team.name}.")
    return redirect("studio")


@require_POST
@member_required
def transfer_ownership(request):
    require_owner(request.membership)
    form = TransferForm(request.POST, team=request.team, me=request.membership)
    if not form.is_valid():
        return _team_page(request, status=400, transfer_form=form)
    successor = get_member_for(request, form.cleaned_data["username"], Action.TRANSFER)
    with team_rules():
        request.team.transfer_ownership(request.user, successor.user)
    messages.success(request, f"{successor.user.get_username()} owns {request.team.name} now; you are an admin.")
    return redirect("team")


# Closing a team.

@require_http_methods(["GET", "POST"])
@member_required
def close_team(request):
    """Asks first, with the slug typed. A team with money history is archived (its
    ledger stays), one without is deleted; one with money in its wallet is neither."""
    require_owner(request.membership)
    team = request.team
    form = CloseTeamForm(request.POST or None, team=team)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                outcome = team.close(request.user)
            except TeamHasMoney as error:
                form.add_error(None, str(error))
                status = 409
            else:
                forget_team(request)
                messages.success(request, f"{team.name} is {outcome}." + (
                    " Its money history is kept; nobody can open the team any more." if outcome == "archived" else ""))
                return redirect("studio")
    team.wallet.refresh_from_db()
    context = {"form": form, "has_money_history": team.has_money_history}
    return render(request, "accounts/close_team.html", context, status=status)


# Switching teams.

@require_POST
@login_required
def switch(request):
    team = get_own_team(request, request.POST.get("team", ""))
    switch_team(request, team)
    messages.info(request, f"You are working in {team.name}.")
    return redirect("studio")


# Invitations.

def invitation_url(token):
    return settings.PUBLIC_BASE_URL + reverse("invitation", args=[token])


@require_POST
@member_required
def invite(request):
    """Make an invitation, email it if an address was given, and show its link once."""
    require_manager(request.membership)
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _team_page(request, status=400, invite_form=form)
    data = form.cleaned_data
    require(request.membership, data["role"], Action.GRANT)
    with team_rules(), transaction.atomic():  # the email is queued if and only if the invitation is made
        invitation, token = request.team.invite(request.user, data["role"], email=data["email"], days=data["days"])
        url = invitation_url(token)
        if invitation.email:
            _email_invitation(request, invitation, url)
    return _team_page(request, new_invitation=invitation, new_invitation_url=url)


def _email_invitation(request, invitation, url):
    """Queued, not sent: mail is network I/O and the worker's job. The link is on the
    page too, to pass on by hand if the email never arrives."""
    context = {"invitation": invitation, "team": invitation.team, "inviter": request.user, "url": url}
    subject = f"{request.user.get_username()} invited you to {invitation.team.name} on Bria Studio"
    queue_email(subject, render_to_string("accounts/invite_email.txt", context), [invitation.email])
    messages.success(request, f"The invitation is on its way to {invitation.email}.")


@require_POST
@member_required
def revoke_invitation(request, code):
    invitation = get_invitation_for_manager(request, code)
    invitation.revoke()
    messages.success(request, "The invitation is revoked: its link stopped working at once.")
    return redirect("team")


@require_http_methods(["GET", "POST"])
def invitation(request, token):
    """The accept link. Unknown, expired, revoked and used links are the same 404. The
    token is the URL: keep it out of caches, search engines and other sites' logs."""
    invitation = Invitation.find_valid(token)
    if invitation is None:
        response = render(request, "accounts/invitation_invalid.html", status=404)
    elif not request.user.is_authenticated:
        if request.method == "GET":
            remember_invitation(request, invitation, token)
            response = _invitation_page(request, invitation)
        else:
            response = redirect_to_login(request.path)
    elif request.method == "POST":
        response = _accept(request, invitation)
    else:
        response = _invitation_page(request, invitation)
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex"
    # Not "no-referrer": the browser would then send `Origin: null` with the Join form,
    # and the CSRF check refuses that. Same-origin keeps the token on this site.
    response["Referrer-Policy"] = "same-origin"
    return response


def _invitation_page(request, invitation):
    back = urlencode({"next": request.path})
    existing = None
    if request.user.is_authenticated:
        existing = invitation.team.memberships.filter(user=request.user).first()
    return render(request, "accounts/invitation.html", {
        "invitation": invitation, "existing": existing,
        # Signing up joins the team at once (the session remembers the invitation);
        # logging in comes back here to accept.
        "login_url": f"{reverse('login')}?{back}", "signup_url": reverse("signup"),
    })


def _accept(request, invitation):
    team = invitation.team
    try:
        membership = invitation.accept(request.user)
    except TeamError:  # used or revoked a moment ago
        return render(request, "accounts/invitation_invalid.html", status=404)
    switch_team(request, team)
    if membership is None:
        messages.info(request, f"You are already in {team.name}; nothing changed.")
    else:
        messages.success(request, f"Welcome to {team.name}: you joined as {membership.get_role_display().lower()}.")
    return redirect("team")
