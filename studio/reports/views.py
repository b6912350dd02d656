"""Spend reports. Staff see every team; a team's owners see their own team. Everything
on a page comes from a few grouped queries over the ledger (studio.reports.queries)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db.models import Exists, OuterRef, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from studio.accounts.access import current_membership
from studio.accounts.models import Membership, Role, Team
from studio.billing.models import Entry
from studio.reports import charts, exports, queries
from studio.reports.forms import PeriodForm, presets

JOBS_ON_PAGE = 500


def get_team_for_reports(request, code):
    """Staff see every team, an owner their own; any other team does not exist."""
    teams = Team.objects.all()
    if not request.user.is_staff:
        teams = teams.filter(memberships__user=request.user, memberships__role=Role.OWNER)
    return get_object_or_404(teams, code=code)


def get_member_for_reports(team, username):
    """A member of the team, or a former one it charged; any other username is a 404,
    so the page never confirms who else has an account."""
    belongs = Q(Exists(Membership.objects.filter(team=team, user=OuterRef("pk")))) | Q(
        Exists(Entry.objects.spend().filter(team=team, member=OuterRef("pk")))
    )
    return get_object_or_404(get_user_model().objects.filter(belongs), username=username)


def _wants_csv(request):
    return request.GET.get("format") == "csv"


def _page(request, template, form, context):
    """The page, or its period form with the errors (400) when the dates are wrong."""
    context = {"form": form, "presets": presets(), **context}
    return render(request, template, context, status=200 if form.is_valid() else 400)


def spend_by_model_and_day(period, entries, models):
    """By model, by day and the chart: what the overview and a team page share."""
    series = charts.series_for(models)
    days = charts.daily(period, queries.by_day_and_model(entries), series)
    return {"models": charts.by_model(models, series), "series": series, "days": days,
            "chart": charts.stacked_bars(days), "total": queries.total(models)}


@require_GET
@login_required
@queries.planned_per_run()
def overview(request):
    if not request.user.is_staff:
        return _owners_team_report(request)
    form = PeriodForm(request.GET)
    if not form.is_valid():
        return _page(request, "reports/overview.html", form, {})
    entries = queries.spend(form.period)
    if _wants_csv(request):
        return exports.overview_csv(form.period, entries)
    teams, models = queries.by_team_and_by_model(entries)
    context = {"period": form.period, "teams": teams, **spend_by_model_and_day(form.period, entries, models)}
    return _page(request, "reports/overview.html", form, context)


def _owners_team_report(request):
    """An owner's way in: their current team's report (or the oldest team they own)."""
    membership = current_membership(request)
    if membership is None or membership.role != Role.OWNER:
        owned = request.user.memberships.filter(role=Role.OWNER).select_related("team").order_by("created_at")
        membership = owned.first()
    if membership is None:
        raise Http404("No reports for you here.")
    url = reverse("report_team", args=[membership.team.code])
    return redirect(f"{url}?{request.GET.urlencode()}" if request.GET else url)


@require_GET
@login_required
@queries.planned_per_run()
def team_report(request, code):
    team = get_team_for_reports(request, code)
    form = PeriodForm(request.GET)
    if not form.is_valid():
        return _page(request, "reports/team.html", form, {"report_team": team})
    entries = queries.spend(form.period, team=team)
    if _wants_csv(request):
        return exports.team_csv(team, form.period, entries)
    members, models = queries.by_member_and_by_model(entries)
    context = {"report_team": team, "period": form.period, "members": members,
               **spend_by_model_and_day(form.period, entries, models)}
    return _page(request, "reports/team.html", form, context)


@require_GET
@login_required
@queries.planned_per_run()
def member_report(request, code, username):
    team = get_team_for_reports(request, code)
    member = get_member_for_reports(team, username)
    form = PeriodForm(request.GET)
    context = {"report_team": team, "member": member}
    if not form.is_valid():
        return _page(request, "reports/member.html", form, context)
    entries = queries.spend(form.period, team=team, member=member)
    if _wants_csv(request):
        return exports.member_csv(team, member, form.period, entries)
    models = queries.by_model(entries)
    context |= {
        "period": form.period, "models": charts.by_model(models, charts.series_for(models)),
        "total": queries.total(models),
        "entries": queries.charged_jobs(entries)[:JOBS_ON_PAGE], "jobs_on_page": JOBS_ON_PAGE,
    }
    return _page(request, "reports/member.html", form, context)
