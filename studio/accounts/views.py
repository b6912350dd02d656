from django.contrib.auth import login
from django.db import transaction
from django.shortcuts import redirect, render

from studio.accounts.forms import SignupForm
from studio.accounts.models import Team


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
