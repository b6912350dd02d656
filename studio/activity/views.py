"""The team's activity feed (every member, live), its audit log (owners, and staff for
every team) and the comments on results. Team queries start from request.team: another
team's events, images and comments are never in reach."""

import json

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.text import capfirst
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from studio.accounts.access import MANAGING_ROLES, current_membership, member_required
from studio.accounts.models import Role, Team
from studio.activity.models import AUDITED, Comment, Event, readable
from studio.csv import csv_download, filter_errors
from studio.dates import DateRangeForm
from studio.library.access import get_asset_for_member

FEED_PER_PAGE = 50
AUDIT_PER_PAGE = 50
AUDIT_VERBS = [(verb.value, capfirst(verb.label)) for verb in Event.Verb if verb in AUDITED]
CSV_COLUMNS = ["created_at", "team", "actor", "verb", "summary", "data"]


# Access: one helper per resource.

def get_audit_events(request):
    """Staff read every team's audit log, an owner their current team's; anyone else
    gets a 403 (the page exists for every member, only its content is the owners')."""
    if request.user.is_staff:
        return Event.objects.all()
    membership = current_membership(request)
    if membership is None or membership.role != Role.OWNER:
        raise PermissionDenied("Only the team's owners can read its audit log.")
    return membership.team.events.all()


def get_comment_for_member(request, code):
    return get_object_or_404(Comment.objects.filter(asset__team=request.team).select_related("asset"), code=code)


# The activity feed.

class FeedCursor(forms.Form):
    """Event ids: `before` pages back ("load more"), `after` asks the live poll what is new."""

    before = forms.IntegerField(required=False, min_value=1)
    after = forms.IntegerField(required=False, min_value=0)


@require_GET
@member_required
def activity(request):
    cursor = FeedCursor(request.GET)
    if not cursor.is_valid():
        return HttpResponseBadRequest("before and after are event ids")
    events = request.team.events.select_related("actor")
    if cursor.cleaned_data["after"] is not None:
        return _newer_events(request, events, cursor.cleaned_data["after"])
    before = cursor.cleaned_data["before"]
    if before:
        events = events.filter(pk__lt=before)
    shown = list(events.order_by("-pk")[:FEED_PER_PAGE + 1])
    context = {
        "events": shown[:FEED_PER_PAGE], "has_more": len(shown) > FEED_PER_PAGE,
        # Only the newest page follows the team live; an older page stays as it is.
        "live": before is None, "newest": shown[0].pk if shown else 0,
    }
    if request.htmx and not request.htmx.history_restore_request:
        response = render(request, "activity/activity.html#items", context)
    else:
        response = render(request, "activity/activity.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _newer_events(request, events, after):
    """What the live poll prepends: up to a page of events after the newest shown, the
    oldest of them first so that the next poll carries on where this one stopped."""
    newer = list(events.filter(pk__gt=after).order_by("pk")[:FEED_PER_PAGE])
    if not newer:
        return HttpResponse(status=204)
    return render(request, "activity/activity.html#newer", {"events": newer[::-1], "newest": newer[-1].pk})


# The audit log.

class AuditFilter(DateRangeForm):
    verb = forms.ChoiceField(label="Action", choices=[("", "All actions"), *AUDIT_VERBS], required=False)
    # A team's slug; only staff see the choice, an owner's log is their team's whatever it says.
    team = forms.CharField(required=False, max_length=60)
    field_order = ["team", "verb", "date_from", "date_to"]

    def apply(self, events, staff):
        events = events.filter(verb__in=AUDITED)
        data = self.cleaned_data
        if staff and data["team"]:
            events = events.filter(team__slug=data["team"])
        if data["verb"]:
            events = events.filter(verb=data["verb"])
        start, end = self.period()
        if start:
            events = events.filter(created_at__gte=start)
        if end:
            events = events.filter(created_at__lt=end)
        return events.order_by("-pk")


@require_GET
@login_required
def audit(request):
    events = get_audit_events(request)
    staff = request.user.is_staff
    form = AuditFilter(request.GET)
    if request.GET.get("format") == "csv":
        if not form.is_valid():
            return filter_errors(form)
        return _audit_csv(form.apply(events, staff))
    context = {"form": form, "staff": staff}
    if staff:
        context["teams"] = Team.objects.order_by("slug").values_list("slug", "name")
    if form.is_valid():
        page = Paginator(form.apply(events, staff).select_related("actor", "team"), AUDIT_PER_PAGE)
        context["page"] = page.get_page(request.GET.get("page"))
    return render(request, "activity/audit.html", context, status=200 if form.is_valid() else 400)


def _csv_rows(events):
    rows = events.values_list("created_at", "team__slug", "actor__username", "verb", "summary", "data")
    for created_at, team, actor, verb, summary, data in rows.iterator(chunk_size=2000):
        yield [timezone.localtime(created_at).isoformat(), team, actor, verb, summary,
               json.dumps(readable(data), sort_keys=True, ensure_ascii=False)]


def _audit_csv(events):
    return csv_download(f"audit-{timezone.localdate():%Y-%m-%d}.csv", CSV_COLUMNS, _csv_rows(events))


# Comments on results.

class CommentForm(forms.ModelForm):
    class Meta:
        model = Comment
        fields = ["body"]
        labels = {"body": "Add a comment"}
        widgets = {"body": forms.Textarea(attrs={"rows": 3, "placeholder": "What do you think of this result?"})}
        error_messages = {"body": {
            "required": "Write something first.",
            "max_length": "Keep it to %(limit_value)d characters (this one has %(show_value)d).",
        }}


def _comments_context(request, asset, form=None):
    can_comment = request.membership.can_run_jobs
    return {
        "asset": asset,
        "comments": asset.comments.select_related("author").order_by("created_at", "pk"),
        "can_comment": can_comment,
        "can_moderate": request.membership.role in MANAGING_ROLES,
        "form": form or (CommentForm() if can_comment else None),
    }


def _comments(request, asset, form=None, status=200):
    """The comments section for htmx (a 200 even with errors: htmx swaps only 2xx), the
    page of the image's comments otherwise."""
    context = _comments_context(request, asset, form)
    if request.htmx:
        response = render(request, "activity/comments.html#comments", context)
    else:
        response = render(request, "activity/comments.html", context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_http_methods(["GET", "POST"])
@member_required
def asset_comments(request, code):
    """The comments on one image (every member reads them) and, by POST, a new one
    (members, admins and owners: viewers read but do not write)."""
    asset = get_asset_for_member(request, code)
    if request.method == "GET":
        return _comments(request, asset)
    if not request.membership.can_run_jobs:
        raise PermissionDenied("Viewers read comments but do not write them.")
    form = CommentForm(request.POST)
    if not form.is_valid():
        return _comments(request, asset, form, status=400)
    Comment.post(asset, request.user, form.cleaned_data["body"])
    if request.htmx:
        return _comments(request, asset)
    messages.success(request, "Comment added.")
    return redirect(reverse("asset_detail", args=[asset.code]) + "#comments")


@require_POST
@member_required
def comment_delete(request, code):
    comment = get_comment_for_member(request, code)
    if not comment.can_be_deleted_by(request.membership):
        raise PermissionDenied("Only its author, or the team's owners and admins, can delete a comment.")
    comment.delete()
    if request.htmx:
        return _comments(request, comment.asset)
    messages.success(request, "Comment deleted.")
    return redirect(reverse("asset_detail", args=[comment.asset.code]) + "#comments")
