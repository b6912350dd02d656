import uuid
from decimal import Decimal

from django import forms

from studio.billing.models import Price, dollars_to_micros


class TopUpForm(forms.Form):
    amount = forms.DecimalField(min_value=Decimal("0.01"), max_digits=12, decimal_places=6,
                                help_text="Dollars, e.g. 25 or 12.50.")
    reason = forms.CharField(max_length=200, help_text="Recorded on the ledger: an invoice or payment reference.")
    # Made when the form is first shown: submitting the same form twice books once.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("idempotency_key", f"admin:{uuid.uuid4()}")
        super().__init__(*args, **kwargs)

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why the money is added.")
        return reason

    @property
    def micros(self):
        return dollars_to_micros(self.cleaned_data["amount"])


class PriceForm(forms.ModelForm):
    """The admin's price form. A moment that has passed is refused (Price.clean says why);
    left empty, the price takes effect as it is saved."""

    class Meta:
        model = Price
        fields = ["model", "amount", "effective_from"]
        help_texts = {"effective_from": "From now on: a moment that has passed is refused. Leave it empty for now."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["effective_from"].required = False
        if self.instance._state.adding:
            # Not the moment the form was drawn: it will have passed by the time it is sent.
            self.initial["effective_from"] = None
