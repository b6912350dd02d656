"""The team's wallet page: the three figures, the ledger with its filters, what each job
cost in the chosen period, and the same ledger as CSV. Every query starts from
request.team: another team's rows are never in reach, whatever the filters say."""

from django import forms
from django.core.paginator import Paginator
from django.db.models import Count, Q, Sum
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from jobs.models import Job
from studio.accounts.access import member_required
from studio.billing.models import Entry, format_micros
from studio.csv import csv_download, dollars, filter_errors
from studio.dates import DateRangeForm

ENTRIES_PER_PAGE = 50
JOBS_SHOWN = 50
CSV_COLUMNS = ["created_at", "kind", "actor", "member", "model", "job_code", "topup_code",
               "amount", "held_change", "balance_after", "held_after", "memo"]


class LedgerFilter(DateRangeForm):
    kind = forms.ChoiceField(choices=[("", "All kinds"), *Entry.Kind.choices], required=False)
    # A username: the page offers the team's members; anyone else simply matches nothing.
    member = forms.CharField(required=False, max_length=150)
    field_order = ["kind", "member", "date_from", "date_to"]

    def period_display(self):
        start, end = self.cleaned_data["date_from"], self.cleaned_data["date_to"]
        if start and end:
            return f"{start:%Y-%m-%d} to {end:%Y-%m-%d}" if start != end else f"{start:%Y-%m-%d}"
        if start:
            return f"since {start:%Y-%m-%d}"
        if end:
            return f"until {end:%Y-%m-%d}"
        return "all time"

    def apply(self, team, members):
        """The team's ledger entries and jobs that pass the filter."""
        entries, jobs = Entry.objects.filter(team=team), Job.objects.for_team(team)
        data = self.cleaned_data
        if data["kind"]:
            entries = entries.filter(kind=data["kind"])
        if data["member"]:
            user = next((u for u in members if u.get_username() == data["member"]), None)
            if user is None:
                return entries.none(), jobs.none()
            entries = entries.filter(Q(member=user) | Q(actor=user))
            jobs = jobs.filter(created_by=user)
        start, end = self.period()
        if start:
            entries, jobs = entries.filter(created_at__gte=start), jobs.filter(created_at__gte=start)
        if end:
            entries, jobs = entries.filter(created_at__lt=end), jobs.filter(created_at__lt=end)
        return entries, jobs


def _members(team):
    return [m.user for m in team.memberships.select_related("user").order_by("user__username")]


def signed_micros(micros):
    """+$0.04 / −$0.04, and an empty string for no change."""
    if not micros:
        return ""
    return ("+" if micros > 0 else "\u2212") + format_micros(abs(micros))


def _ledger_page(request, entries):
    entries = entries.select_related("actor", "member", "job", "topup").order_by("-created_at", "-pk")
    page = Paginator(entries, ENTRIES_PER_PAGE).get_page(request.GET.get("page"))
    for entry in page:
        entry.amount_display = signed_micros(entry.balance_delta)
        entry.held_change_display = signed_micros(entry.held_delta)
    return page


def _jobs_summary(jobs):
    totals = jobs.aggregate(
        count=Count("pk"),
        charged=Sum("price", filter=Q(money=Job.Money.CHARGED), default=0),
        held=Sum("price", filter=Q(money=Job.Money.HELD), default=0),
        released=Count("pk", filter=Q(money=Job.Money.RELEASED)),
    )
    shown = jobs.select_related("created_by").order_by("-created_at", "-pk")[:JOBS_SHOWN]
    return {"jobs": shown, "job_totals": totals, "jobs_shown": JOBS_SHOWN}


@require_GET
@member_required
def wallet(request):
    members = _members(request.team)
    form = LedgerFilter(request.GET)
    context = {"form": form, "members": members}
    if form.is_valid():
        entries, jobs = form.apply(request.team, members)
        context.update(page=_ledger_page(request, entries), **_jobs_summary(jobs))
    if request.htmx and not request.htmx.history_restore_request:
        # htmx swaps only 2xx answers, so a bad filter comes back as a 200 partial
        # carrying its message (as the studio's forms do); a plain GET gets the 400.
        response = render(request, "billing/wallet.html#ledger", {**context, "partial": True})
    else:
        response = render(request, "billing/wallet.html", context, status=200 if form.is_valid() else 400)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _csv_rows(entries):
    rows = entries.order_by("-created_at", "-pk").values_list(
        "created_at", "kind", "actor__username", "member__username", "model", "job__code", "topup__code",
        "balance_delta", "held_delta", "balance_after", "held_after", "memo",
    )
    for (created_at, kind, actor, member, model, job_code, topup_code,
         balance_delta, held_delta, balance_after, held_after, memo) in rows.iterator(chunk_size=2000):
        yield [timezone.localtime(created_at).isoformat(), kind, actor, member, model, job_code, topup_code,
               dollars(balance_delta), dollars(held_delta), dollars(balance_after), dollars(held_after), memo]


@require_GET
@member_required
def wallet_csv(request):
    form = LedgerFilter(request.GET)
    if not form.is_valid():
        return filter_errors(form)
    entries, _ = form.apply(request.team, _members(request.team))
    filename = f"wallet-{request.team.slug}-{timezone.localdate():%Y-%m-%d}.csv"
    return csv_download(filename, CSV_COLUMNS, _csv_rows(entries))
