"""Two-factor authentication where it is required. allauth.mfa enrols people (an
authenticator app's codes, recovery codes for a lost phone) and asks the code at login;
this sends someone who has not enrolled to do so before they go on:

- a member of a team whose owners require it, before any of that team's pages
  (member_required asks `team_requires_enrolment`). The APIs answer to API keys, not to
  a login, and are not affected: a key is its own credential, revoked on the team page.
- a staff user, before any page of the admin (`TwoFactorRequired`).
"""

from allauth.mfa.utils import is_mfa_enabled
from django import forms
from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect


class TwoFactorForm(forms.Form):
    """An owner turns the team's requirement on or off."""

    requires_2fa = forms.TypedChoiceField(choices=[("on", "required"), ("off", "optional")],
                                          coerce=lambda value: value == "on")

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner

    def clean_requires_2fa(self):
        required = self.cleaned_data["requires_2fa"]
        if required and not is_mfa_enabled(self.owner):
            raise forms.ValidationError(
                "Set up two-factor authentication for yourself first, then require it of the team.")
        return required


def send_to_enrol(request, reason):
    """To the enrolment page, with why; an htmx request is sent there as a whole page."""
    messages.warning(request, reason)
    url = reverse("mfa_activate_totp")
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def team_requires_enrolment(request):
    """The redirect to enrol, for a member without 2FA in a team that requires it; else None."""
    if request.team.requires_2fa and not is_mfa_enabled(request.user):
        return send_to_enrol(request, f"{request.team.name} requires two-factor authentication: "
                                      "set it up to open the team's pages.")
    return None


class TwoFactorRequired:
    """Staff reach the admin only with two-factor authentication (allauth's login then
    asks their code); without it, every admin page sends them to enrol."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if (user.is_authenticated and user.is_staff and request.path.startswith(reverse("admin:index"))
                and not is_mfa_enabled(user)):
            return send_to_enrol(request, "Staff use two-factor authentication for the admin: set it up to go on.")
        return self.get_response(request)
