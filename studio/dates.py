"""The date-range filter that the wallet, the library and their CSV exports share."""

import datetime

from django import forms
from django.utils import timezone

BAD_DATE = "Enter the date as YYYY-MM-DD, for example 2026-05-01."


def date_field(label):
    return forms.DateField(
        label=label, required=False, input_formats=["%Y-%m-%d"], error_messages={"invalid": BAD_DATE},
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )


def midnight(day):
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


class DateRangeForm(forms.Form):
    """`date_from` and `date_to`, both optional and both included."""

    date_from = date_field("From")
    date_to = date_field("To")

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError("The “From” date is after the “To” date.")
        return data

    @property
    def is_filtered(self):
        return any(self.cleaned_data.values())

    def period(self):
        """The chosen days as [start, end) moments in the studio's time zone, so that the
        "To" day is included to its last microsecond; None for an open side (the last
        day there is has no next midnight, so it is no bound at all)."""
        start, end = self.cleaned_data["date_from"], self.cleaned_data["date_to"]
        return (midnight(start) if start else None,
                midnight(end + datetime.timedelta(days=1)) if end and end < datetime.date.max else None)
