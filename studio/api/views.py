"""Managing the team's API keys: owners and admins issue keys that act as a member, see
when each was last used, and revoke them."""

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from studio.accounts.access import member_required, require_manager
from studio.api.models import APIKey


class KeyForm(forms.Form):
    name = forms.CharField(max_length=80, help_text="What the key is for, e.g. “nightly catalogue script”.")
    member = forms.ChoiceField(help_text="Jobs run with the key are this member's: their role and cap apply.")

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.memberships = {m.user.get_username(): m for m in team.memberships.select_related("user")}
        self.fields["member"].choices = [(name, f"{name} ({m.get_role_display()})")
                                         for name, m in sorted(self.memberships.items())]


def get_key_for_manager(request, code):
    require_manager(request.membership)
    return get_object_or_404(APIKey, code=code, team=request.team)


def _page(request, form=None, new_key=None, status=200):
    require_manager(request.membership)
    keys = request.team.api_keys.select_related("member", "created_by").order_by("-created_at")
    response = render(request, "api/keys.html", {"keys": keys, "form": form or KeyForm(team=request.team),
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
    form = KeyForm(request.POST, team=request.team)
    if not form.is_valid():
        return _page(request, form=form, status=400)
    member = form.memberships[form.cleaned_data["member"]].user
    key, raw = APIKey.issue(request.team, member, form.cleaned_data["name"], created_by=request.user)
    return _page(request, new_key=raw)


@require_POST
@member_required
def revoke_key(request, code):
    key = get_key_for_manager(request, code)
    key.revoke(request.user)
    messages.success(request, f"The key “{key.name}” is revoked: it stopped working at once.")
    return redirect("api_keys")
