from datetime import timedelta

from django import forms
from django.utils import timezone

from studio.reports.queries import Period

DEFAULT_DAYS = 30
MAX_DAYS = 366
DATE_ERRORS = {"invalid": "Write dates as YYYY-MM-DD, e.g. 2026-11-24."}


class PeriodForm(forms.Form):
    """?start=YYYY-MM-DD&end=YYYY-MM-DD, both included; by default the last 30 days
    (UTC) up to today."""

    start = forms.DateField(required=False, input_formats=["%Y-%m-%d"], error_messages=DATE_ERRORS)
    end = forms.DateField(required=False, input_formats=["%Y-%m-%d"], error_messages=DATE_ERRORS)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        end = data.get("end") or timezone.now().date()
        start = data.get("start") or default_period(end).start
        if start > end:
            raise forms.ValidationError("The start date is after the end date.")
        if (end - start).days >= MAX_DAYS:
            raise forms.ValidationError(f"A report covers at most {MAX_DAYS} days.")
        data["period"] = Period(start, end)
        return data

    @property
    def period(self):
        return self.cleaned_data["period"]

    @property
    def messages(self):
        """The errors as sentences for the page (each names its field)."""
        named = [f"{self[name].label}: {error}" for name, errors in self.errors.items() if name != "__all__"
                 for error in errors]
        return [*self.non_field_errors(), *named]


def default_period(end=None):
    end = end or timezone.now().date()
    return Period(end - timedelta(days=DEFAULT_DAYS - 1), end)


def presets():
    """Quick links: the last 7, 30 and 90 days up to today."""
    today = timezone.now().date()
    return [(f"Last {n} days", Period(today - timedelta(days=n - 1), today)) for n in (7, DEFAULT_DAYS, 90)]
