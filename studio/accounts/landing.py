"""Where "/" (and every login) lands: staff on the spend report, a member of a team in
the studio (of the team used last), and someone in no team on a page that says how to
join one or create their own."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from studio.accounts.access import current_membership, switch_team
from studio.accounts.models import Team


class NewTeamForm(forms.Form):
    name = forms.CharField(max_length=100, label="Team name",
                           help_text="Its wallet starts empty: staff add credit.")

    def clean_name(self):
        name = self.cleaned_data["name"]
        if not any(ch.isalnum() for ch in name):
            raise forms.ValidationError("Use at least one letter or digit.")
        return name


@login_required
@require_http_methods(["GET", "POST"])
def home(request):
    if request.method == "POST":
        return create_team(request)
    if request.user.is_staff:
        return redirect("reports")
    if current_membership(request) is not None:
        return redirect("studio")
    return no_team_page(request)


def create_team(request):
    """A new team the user owns, with an empty wallet, and the studio in it."""
    form = NewTeamForm(request.POST)
    if not form.is_valid():
        return no_team_page(request, form, status=400)
    team = Team.create_for(request.user, form.cleaned_data["name"])
    switch_team(request, team)
    messages.success(request, f"{team.name} is yours. Its wallet is empty: ask the studio's staff to top it up.")
    return redirect("studio")


def no_team_page(request, form=None, status=200):
    return render(request, "accounts/no_team.html", {"form": form or NewTeamForm()}, status=status)
