from decimal import Decimal

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User

from studio.accounts.models import INVITATION_DAYS, Role
from studio.billing.models import dollars_to_micros


class SignupForm(UserCreationForm):
    email = forms.EmailField()
    team_name = forms.CharField(max_length=100, required=False, help_text="Defaults to your username.")

    class Meta:
        model = User
        fields = ("username", "email")


class DollarsField(forms.DecimalField):
    """Dollars in, micro-dollars out; empty means "none"."""

    def __init__(self, **kwargs):
        super().__init__(required=False, min_value=Decimal("0"), max_digits=12, decimal_places=6, **kwargs)

    def clean(self, value):
        dollars = super().clean(value)
        return None if dollars is None else dollars_to_micros(dollars)


class CapForm(forms.Form):
    monthly_cap = DollarsField(label="Monthly cap", help_text="Dollars per calendar month; empty for no cap.")


class ThresholdForm(forms.Form):
    low_balance_threshold = DollarsField(label="Warn below",
                                         help_text="A banner shows and owners get an email when the available "
                                                   "balance drops below this; empty for no warning.")


INVITABLE_ROLES = [(Role.VIEWER, "Viewer"), (Role.MEMBER, "Member"), (Role.ADMIN, "Admin")]


class InviteForm(forms.Form):
    email = forms.EmailField(required=False, label="Email (optional)",
                             help_text="We email the link there; leave empty to copy the link yourself.")
    role = forms.ChoiceField(choices=INVITABLE_ROLES, initial=Role.MEMBER)
    days = forms.IntegerField(min_value=1, max_value=30, initial=INVITATION_DAYS, label="Valid for (days)")


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=INVITABLE_ROLES, error_messages={
        "invalid_choice": "Choose viewer, member or admin (ownership moves by transfer)."})


class TransferForm(forms.Form):
    """Hand ownership to another member of the team."""

    username = forms.ChoiceField(label="New owner", error_messages={"invalid_choice": "Choose a member of this team."})

    def __init__(self, *args, team, me, **kwargs):
        super().__init__(*args, **kwargs)
        candidates = team.memberships.exclude(user=me).exclude(role=Role.OWNER).select_related("user").order_by("user__username")
        self.fields["username"].choices = [("", "Choose a member…")] + [
            (m.user.get_username(), f"{m.user.get_username()} ({m.get_role_display().lower()})") for m in candidates]


class CloseTeamForm(forms.Form):
    """Deleting a team asks for its slug, typed, so a slip of the mouse cannot do it."""

    slug = forms.CharField(label="Type the team's slug to confirm", max_length=60)

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.team = team
        self.fields["slug"].widget.attrs.update(autocomplete="off", autocapitalize="off", spellcheck="false",
                                                placeholder=team.slug)

    def clean_slug(self):
        if self.cleaned_data["slug"].strip() != self.team.slug:
            raise forms.ValidationError(f"Type {self.team.slug} exactly.")
        return self.team.slug
