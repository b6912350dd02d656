from decimal import Decimal

from allauth.account.forms import LoginForm as AllauthLoginForm
from allauth.account.forms import SignupForm as AllauthSignupForm
from django import forms

from studio.accounts.models import INVITATION_DAYS
from studio.accounts.roles import Action, Role
from studio.billing.models import dollars_to_micros


class SignupForm(AllauthSignupForm):
    """allauth's sign-up, plus the name of the personal team a user signing up on their
    own gets (studio.accounts.adapter makes it; an invitation's sign-up has no field)."""

    team_name = forms.CharField(max_length=100, required=False, help_text="Defaults to your username.")


class LoginForm(AllauthLoginForm):
    """allauth's login, its field named for what it takes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["login"].label = "Username or email"


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


# Any role is a valid answer: which ones the asker may give is studio.accounts.roles'
# to say (a 403), and the pages offer only those.
ROLE_ERRORS = {"invalid_choice": "Choose viewer, member or admin."}


class InviteForm(forms.Form):
    email = forms.EmailField(required=False, label="Email (optional)",
                             help_text="We email the link there; leave empty to copy the link yourself.")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER, error_messages=ROLE_ERRORS)
    days = forms.IntegerField(min_value=1, max_value=30, initial=INVITATION_DAYS, label="Valid for (days)")


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices, error_messages=ROLE_ERRORS)


def member_field(field, memberships, me, action):
    """Any member of the team is a valid choice (roles decides, with a 403, whether `me`
    may take `action` on them); the menu offers only those `me` may."""
    def choice(m):
        return m.user.get_username(), f"{m.user.get_username()} ({m.get_role_display().lower()})"

    field.choices = [choice(m) for m in memberships]
    field.widget.choices = [("", "Choose a member…")] + [choice(m) for m in memberships if me.may(action, m)]


class TransferForm(forms.Form):
    """Hand ownership to another member of the team."""

    username = forms.ChoiceField(label="New owner", error_messages={"invalid_choice": "Choose a member of this team."})

    def __init__(self, *args, team, me, **kwargs):
        super().__init__(*args, **kwargs)
        memberships = team.memberships.select_related("user").order_by("user__username")
        member_field(self.fields["username"], memberships, me, Action.TRANSFER)


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
