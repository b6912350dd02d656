from decimal import Decimal

from django.contrib import messages
from django.contrib.auth import login
from django.db import transaction
from django.db.models import Sum
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from jobs.models import Job
from studio.accounts.access import MANAGING_ROLES, member_required, require_manager, require_owner
from studio.accounts.forms import CapForm, SignupForm, ThresholdForm
from studio.accounts.models import Membership, Role, Team
from studio.activity.models import Event, record
from studio.billing import money
from studio.billing.models import MICROS_PER_DOLLAR, format_micros


def signup(request):
    """A new user gets a personal team, which they own, with an empty wallet."""
    if request.user.is_authenticated:
        return redirect("studio")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            user = form.save()
            Team.create_for(user, form.cleaned_data["team_name"] or user.username)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("studio")
    return render(request, "accounts/signup.html", {"form": form}, status=400 if form.errors else 200)


def _team_context(request, cap_forms=None, threshold_form=None):
    team = request.team
    memberships = team.memberships.select_related("user").order_by("created_at")
    spent = dict(
        Job.objects.filter(team=team, created_at__gte=money.month_start(), money__in=[Job.Money.HELD, Job.Money.CHARGED])
        .values_list("created_by").annotate(total=Sum("price"))
    )
    cap_forms = cap_forms or {}
    rows = [
        {"membership": m, "spent": spent.get(m.user_id, 0),
         "form": cap_forms.get(m.user.username) or CapForm(initial={"monthly_cap": _dollars(m.monthly_cap)})}
        for m in memberships
    ]
    threshold_form = threshold_form or ThresholdForm(initial={"low_balance_threshold": _dollars(team.low_balance_threshold)})
    return {"rows": rows, "threshold_form": threshold_form, "can_manage": request.membership.role in MANAGING_ROLES,
            "is_owner": request.membership.role == Role.OWNER}


def _dollars(micros):
    return None if micros is None else Decimal(micros) / MICROS_PER_DOLLAR


@require_GET
@member_required
def team_page(request):
    return render(request, "accounts/team.html", _team_context(request))


@require_POST
@member_required
def set_cap(request, username):
    require_manager(request.membership)
    membership = get_object_or_404(Membership, team=request.team, user__username=username)
    form = CapForm(request.POST)
    if not form.is_valid():
        return render(request, "accounts/team.html", _team_context(request, cap_forms={username: form}), status=400)
    with transaction.atomic():
        membership.monthly_cap = form.cleaned_data["monthly_cap"]
        membership.save(update_fields=["monthly_cap"])
        record(request.team, request.user, Event.Verb.CAP_CHANGED,
               f"{username}: {_cap_text(membership.monthly_cap)}", member=username, cap=membership.monthly_cap)
    messages.success(request, f"{username}'s monthly cap is now {_cap_text(membership.monthly_cap)}.")
    return redirect("team")


@require_POST
@member_required
def set_threshold(request):
    require_owner(request.membership)
    form = ThresholdForm(request.POST)
    if not form.is_valid():
        return render(request, "accounts/team.html", _team_context(request, threshold_form=form), status=400)
    with transaction.atomic():
        request.team.low_balance_threshold = form.cleaned_data["low_balance_threshold"]
        request.team.save(update_fields=["low_balance_threshold"])
        record(request.team, request.user, Event.Verb.THRESHOLD_CHANGED,
               _cap_text(request.team.low_balance_threshold), threshold=request.team.low_balance_threshold)
    messages.success(request, f"Low-balance warning: {_cap_text(request.team.low_balance_threshold)}.")
    return redirect("team")


def _cap_text(micros):
    return "none" if micros is None else format_micros(micros)
