"""Managing the team's API keys: owners and admins issue keys that act as a member, see
when each was last used, and revoke them. A key can do what its member can, so making
one, or revoking one, is an action on that member (studio.accounts.roles): an admin
works with keys acting as themselves, members and viewers, never an owner or another admin."""

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from studio.accounts.access import get_member_for, member_required, require_manager, team_rules
from studio.accounts.forms import member_field
from studio.accounts.roles import Action, require
from studio.api.models import APIKey


class KeyForm(forms.Form):
    name = forms.CharField(max_length=80, help_text="What the key is for, e.g. “nightly catalogue script”.")
    member = forms.ChoiceField(help_text="Jobs run with the key are this member's: their role and cap apply.")

    def __init__(self, *args, team, me, **kwargs):
        super().__init__(*args, **kwargs)
        member_field(self.fields["member"], team.memberships.select_related("user").order_by("user__username"),
                     me, Action.ISSUE_KEY)


def may_revoke(me, key, members):
    """A key acting as someone `me` may act on; one whose member has left the team acts
    as nobody, and any manager may revoke it. `members`: the team's, by user id."""
    member = members.get(key.member_id)
    return member is None or me.may(Action.REVOKE_KEY, member)


def get_key_for_manager(request, code):
    """One of the team's keys, for someone who may revoke it: 403 for a key acting as
    someone above them, 404 for another team's."""
    require_manager(request.membership)
    key = get_object_or_404(APIKey.objects.select_related("team"), code=code, team=request.team)
    member = request.team.memberships.filter(user=key.member_id).first()
    if member is not None:
        require(request.membership, member, Action.REVOKE_KEY)
    return key


def _page(request, form=None, new_key=None, status=200):
    require_manager(request.membership)
    me = request.membership
    members = {m.user_id: m for m in request.team.memberships.all()}
    keys = list(request.team.api_keys.select_related("member", "created_by").order_by("-created_at"))
    for key in keys:
        key.may_revoke = may_revoke(me, key, members)
    response = render(request, "api/keys.html", {"keys": keys, "form": form or KeyForm(team=request.team, me=me),
                                                 "new_key": new_key}, status=status)
    if new_key:
        response["Cache-Control"] = "no-store"
    return response


@require_GET
@member_required
def api_keys(request):
    return _page(request)


@require_POST
@member_required
def create_key(request):
    """Issue a key and show it this once (rendered, not redirected to, so it never sits
    in the session or a message cookie)."""
    require_manager(request.membership)
    form = KeyForm(request.POST, team=request.team, me=request.membership)
    if not form.is_valid():
        return _page(request, form=form, status=400)
    member = get_member_for(request, form.cleaned_data["member"], Action.ISSUE_KEY)
    with team_rules():
        key, raw = APIKey.issue(request.team, member.user, form.cleaned_data["name"], created_by=request.user)
    return _page(request, new_key=raw)


@require_POST
@member_required
def revoke_key(request, code):
    key = get_key_for_manager(request, code)
    key.revoke(request.user)
    messages.success(request, f"The key “{key.name}” is revoked: it stopped working at once.")
    return redirect("api_keys")
