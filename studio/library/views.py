"""The team library: every image the team made or uploaded, newest first, with filters,
stars and "load more"; and a page per image with its recipe and what can be done with it.
Every query starts from request.team: another team's image is a 404."""


from django import forms
from django.core.paginator import Paginator
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from jobs.models import Job, Status
from studio.accounts.access import member_required
from studio.billing.money import price_of
from studio.dates import DateRangeForm
from studio.gallery.models import Gallery
from studio.library.access import get_library_asset
from studio.library.models import Star
from studio.library.queries import library_assets

PER_PAGE = 24
MAX_VARIATIONS = 8
DEFAULT_VARIATIONS = 4
# What an htmx request swaps, by the id of its target: the filter form replaces the whole
# results section, "Load more" replaces itself with the next items.
PARTS = {"library-results": "results", "load-more": "items"}
PARAM_LABELS = {
    "prompt": "Prompt", "aspect_ratio": "Aspect ratio", "seed": "Seed", "steps_num": "Steps",
    "guidance_scale": "Guidance scale", "image_url": "Input URL", "source": "Input image",
}


class LibraryFilter(DateRangeForm):
    q = forms.CharField(label="Prompt contains", required=False, max_length=200,
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": "e.g. balloon"}))
    model = forms.ChoiceField(choices=[("", "All models"), *Job.Model.choices], required=False)
    # A username: the page offers the team's members; anyone else simply matches nothing.
    member = forms.CharField(required=False, max_length=150)
    status = forms.ChoiceField(label="Job status", choices=[("", "Any status"), *Status.choices], required=False)
    starred = forms.BooleanField(label="Starred only", required=False)
    field_order = ["q", "model", "member", "status", "date_from", "date_to", "starred"]

    def filters(self):
        """The cleaned filters for library_assets; the "To" day is included to its end."""
        data = self.cleaned_data
        start, end = self.period()
        return {"q": data["q"], "model": data["model"], "member": data["member"], "status": data["status"],
                "starred": data["starred"], "start": start, "end": end}


@require_GET
@member_required
def library(request):
    form = LibraryFilter(request.GET)
    context = {"form": form, "members": request.team.memberships.select_related("user").order_by("user__username")}
    if form.is_valid():
        assets = library_assets(request.team, request.user, form.filters())
        context["page"] = Paginator(assets, PER_PAGE).get_page(request.GET.get("page"))
    part = None
    if request.htmx and not request.htmx.history_restore_request:
        part = PARTS.get(request.htmx.target)
    if part:
        # htmx swaps only 2xx answers, so a bad filter comes back as a 200 partial
        # carrying its message; a plain GET gets the page with a 400.
        response = render(request, f"library/library.html#{part}", context)
    else:
        response = render(request, "library/library.html", context, status=200 if form.is_valid() else 400)
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response


@require_POST
@member_required
def star(request, code):
    """Set (starred=1) or clear (starred=0) the user's star."""
    asset = get_library_asset(request, code)
    wanted = request.POST.get("starred")
    if wanted not in ("0", "1"):
        return HttpResponseBadRequest("starred must be 1 or 0")
    Star.set(asset, request.user, wanted == "1")
    asset.starred = wanted == "1"
    back = request.POST.get("next", "")
    if request.htmx:
        return render(request, "library/library.html#star", {"asset": asset, "next": back})
    if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(back)
    return redirect("asset_detail", asset.code)


@require_GET
@member_required
def asset_detail(request, code):
    asset = get_library_asset(request, code)
    job = asset.job
    fibo_output = job is not None and job.model == Job.Model.FIBO and asset.role == "output"
    context = {
        "asset": asset, "job": job, "fibo_output": fibo_output,
        "recipe": _recipe(job) if job else [],
        "galleries": Gallery.objects.filter(team=request.team).order_by("title"),
    }
    if fibo_output and request.membership.can_run_jobs:
        context.update(_variation_total(DEFAULT_VARIATIONS))
    return render(request, "library/asset.html", context)


@require_GET
@member_required
def variation_price(request):
    """The live total next to the variations count (htmx, no script of our own)."""
    try:
        count = int(request.GET.get("count", ""))
    except ValueError:
        count = 0
    return render(request, "library/asset.html#variation-total", _variation_total(count))


def _variation_total(count):
    unit = price_of(Job.Model.FIBO)
    valid = 1 <= count <= MAX_VARIATIONS
    return {"count": count, "count_valid": valid, "unit_price": unit, "total_price": unit * count if valid else 0,
            "max_variations": MAX_VARIATIONS}


def _recipe(job):
    """The job's parameters as (label, value) rows, the known ones first and in order,
    then any others under their own names. The prompt and an RMBG source are shown apart."""
    params = {"seed": job.seed_display, **job.params} if job.model == Job.Model.FIBO else dict(job.params)
    params.pop("prompt", None)
    params.pop("source", None)
    ordered = [key for key in PARAM_LABELS if key in params] + [key for key in params if key not in PARAM_LABELS]
    return [(PARAM_LABELS.get(key, key), params[key]) for key in ordered]
