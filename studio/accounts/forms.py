from decimal import Decimal

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User

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
