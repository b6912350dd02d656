"""The studio page: the two forms and the live job cards."""

import uuid

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget

from jobs import actions
from jobs.access import get_job_for_member
from jobs.forms import FiboForm, RmbgForm
from jobs.models import Job
from studio.accounts.access import member_required, require_runner
from studio.accounts.roles import Role
from studio.billing.models import format_micros
from studio.billing.money import CapExceeded, InsufficientFunds, price_of
from studio.library.models import BadImage
from studio.uploads import takes_upload

CARDS_ON_PAGE = 30


def _page_context(request, fibo_form=None, rmbg_form=None):
    jobs = list(Job.objects.for_team(request.team).with_card_data().order_by("-created_at")[:CARDS_ON_PAGE])
    return {
        "fibo_form": fibo_form or FiboForm(),
        "rmbg_form": rmbg_form or RmbgForm(),
        "jobs": jobs,
        # The page's cursor for teammates' new cards: its newest card.
        "since": jobs[0].created_at if jobs else timezone.now(),
        **_credit(request.membership),
    }


def _credit(membership):
    """The prices, and the jobs the wallet cannot pay for: their buttons are disabled,
    saying why, before anyone submits (the server refuses them all the same). Whom to
    ask is named: the owners for credit, the owners and admins for a viewer's role."""
    team = membership.team
    prices = {"fibo_price": price_of(Job.Model.FIBO), "rmbg_price": price_of(Job.Model.RMBG)}
    available = team.wallet.available
    credit = {"fibo_short": available < prices["fibo_price"], "rmbg_short": available < prices["rmbg_price"]}
    credit["out_of_credit"] = credit["fibo_short"] and credit["rmbg_short"]
    credit["cheapest"] = min(prices.values())
    if not membership.can_run_jobs:
        credit["ask"] = _usernames(team, [Role.OWNER, Role.ADMIN])
    elif credit["out_of_credit"] and membership.role != Role.OWNER:
        credit["ask"] = _usernames(team, [Role.OWNER])
    return {**prices, **credit}


def _usernames(team, roles):
    return list(team.memberships.filter(role__in=roles).order_by("user__username")
                .values_list("user__username", flat=True))


@require_GET
@member_required
def studio(request):
    """The studio page; `?remix=<job code>` fills the form with that job's parameters."""
    fibo_form = None
    remix = _valid_uuids([request.GET.get("remix", "")])
    if remix:
        source = get_job_for_member(request, remix[0])
        fibo_form = FiboForm(initial=source.params) if source.model == Job.Model.FIBO else None
    return render(request, "jobs/studio.html", _page_context(request, fibo_form=fibo_form))


def _started(request, job):
    """The new card, prepended to the list; plain POSTs go back to the page."""
    if not request.htmx:
        return redirect("studio")
    job = get_job_for_member(request, job.code)
    request.team.wallet.refresh_from_db()
    return render(request, "jobs/studio.html#new-card", {"job": job})


def _invalid(request, form, partial, status=400):
    """The form again, with its errors next to the fields; nothing was created."""
    if not request.htmx:
        kwargs = {"fibo_form": form} if partial == "fibo-form" else {"rmbg_form": form}
        return render(request, "jobs/studio.html", _page_context(request, **kwargs), status=status)
    context = {"fibo_form": form, "rmbg_form": form, **_credit(request.membership)}
    response = render(request, f"jobs/studio.html#{partial}", context, status=200)
    return reswap(retarget(response, f"#{partial}"), "outerHTML")


@require_POST
@member_required
def start_fibo(request):
    form = FiboForm(request.POST)
    if form.is_valid():
        try:
            return _started(request, actions.start_fibo(request.membership, form.job_params()))
        except (InsufficientFunds, CapExceeded) as exc:
            form.add_error(None, str(exc))
    return _invalid(request, form, "fibo-form")


def _upload_refused(request, message, status):
    """An upload refused before it was read (studio.uploads): the form again, saying why."""
    form = RmbgForm(data={})
    form.errors.clear()  # what an empty form lacks is beside the point
    form.add_error(None, message)
    return _invalid(request, form, "rmbg-form", status)


@require_POST
@member_required
@takes_upload(require_runner, refused=_upload_refused)
def start_rmbg(request):
    form = RmbgForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            if form.cleaned_data["image"]:
                job = actions.start_rmbg_from_upload(request.membership, form.cleaned_data["image"].read())
            else:
                job = actions.start_rmbg_from_url(request.membership, form.cleaned_data["image_url"])
            return _started(request, job)
        except (InsufficientFunds, CapExceeded, BadImage) as exc:
            form.add_error(None, str(exc))
    return _invalid(request, form, "rmbg-form")


@require_POST
@member_required
def remove_background(request, code):
    """RMBG on a finished card's image, from the studio's own copy."""
    job = get_job_for_member(request, code)
    chosen = request.POST.get("asset")
    asset = next((a for a in job.outputs if str(a.code) == chosen), None) or next(iter(job.outputs), None)
    if asset is None:
        messages.error(request, "This job has no finished image yet.")
        return _refresh_or_redirect(request)
    try:
        return _started(request, actions.start_rmbg_from_asset(request.membership, asset))
    except (InsufficientFunds, CapExceeded) as exc:
        messages.error(request, str(exc))
        return _refresh_or_redirect(request)


@require_POST
@member_required
def retry(request, code):
    """Run an ERROR job again (once), as a new card."""
    job = get_job_for_member(request, code)
    try:
        return _started(request, actions.retry_job(request.membership, job))
    except (actions.NotRetryable, InsufficientFunds, CapExceeded) as exc:
        messages.error(request, str(exc))
        return _refresh_or_redirect(request)


@require_POST
@member_required
def variations(request, code):
    """The same prompt and parameters with N new seeds, held and queued together."""
    source = get_job_for_member(request, code)
    if source.model != Job.Model.FIBO:
        raise Http404("Only generated images have variations.")
    try:
        count = int(request.POST.get("count", ""))
        jobs = actions.start_variations(request.membership, source, count)
    except ValueError:
        messages.error(request, f"Ask for 1 to {actions.MAX_VARIATIONS} variations.")
    except (InsufficientFunds, CapExceeded) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{len(jobs)} variations started for {format_micros(sum(j.price for j in jobs))}.")
        return redirect("studio")
    return redirect(request.POST.get("back") if _is_local(request, request.POST.get("back")) else "studio")


def _is_local(request, url):
    return bool(url) and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()})


def _refresh_or_redirect(request):
    if request.htmx:
        response = render(request, "jobs/studio.html#flash", {})
        return reswap(retarget(response, "#flash"), "outerHTML")
    return redirect("studio")


@require_GET
@member_required
def card(request, code):
    """The job's card: the bare partial for htmx, a page of its own for a link."""
    template = "jobs/studio.html#card" if request.htmx else "jobs/job.html"
    return render(request, template, {"job": get_job_for_member(request, code)})


@require_GET
@member_required
def card_updates(request):
    """One poll for the whole page. The page sends `code:version` for each live card and
    the creation time of its newest card; it gets back, as out-of-band swaps, the live
    cards that changed, the cards teammates started since (and the wallet)."""
    known = {}
    for value in request.GET.getlist("live")[:CARDS_ON_PAGE * 2]:
        code, _, version = value.partition(":")
        known[code] = version
    team_jobs = Job.objects.for_team(request.team).with_card_data()
    changed = [job for job in team_jobs.filter(code__in=_valid_uuids(known)) if job.version != known[str(job.code)]]
    since = parse_datetime(request.GET.get("since", "")) if request.GET.get("since") else None
    new = []
    if since is not None and timezone.is_aware(since):
        # Oldest first, each prepended in turn, so the newest ends on top. A card this
        # page already shows (its own submission) is sent live and so left out here.
        new = list(team_jobs.filter(created_at__gt=since).exclude(code__in=_valid_uuids(known))
                   .order_by("created_at")[:CARDS_ON_PAGE])
    if not changed and not new:
        return HttpResponse(status=204)
    newest = max([since, *[job.created_at for job in new]])
    return render(request, "jobs/studio.html#updates", {"changed": changed, "new": new, "since": newest})


def _valid_uuids(values):
    valid = []
    for value in values:
        try:
            valid.append(uuid.UUID(value))
        except ValueError:
            continue
    return valid

