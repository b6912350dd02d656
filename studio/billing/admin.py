"""Money is moved by studio.billing.money only: the admin shows wallets, the ledger and
top-ups, and lets staff set prices from now on."""

from django.contrib import admin
from django.utils import timezone

from studio.admin import ReadOnlyAdmin
from studio.billing.forms import PriceForm
from studio.billing.models import Entry, Price, TopUp, Wallet


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = ["team", "balance_display", "held_display", "available_display"]
    list_select_related = ["team"]
    search_fields = ["team__slug"]


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "team", "kind", "balance_delta", "held_delta", "balance_after", "held_after",
                    "actor", "member", "model", "job"]
    list_select_related = ["team", "actor", "member", "job"]
    list_filter = ["kind", "model"]
    search_fields = ["team__slug", "idempotency_key"]


@admin.register(TopUp)
class TopUpAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "team", "amount", "actor", "reason"]
    list_select_related = ["team", "actor"]
    search_fields = ["team__slug", "reason", "idempotency_key"]


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    """Staff add prices with an effective date, from now on (Price refuses a moment that
    has passed). A price already in effect is history (jobs froze it), so only prices
    still in the future can be changed or removed."""

    form = PriceForm
    list_display = ["model", "amount_display", "effective_from", "created_by"]
    list_filter = ["model"]
    fields = ["model", "amount", "effective_from"]

    def save_model(self, request, obj, form, change):
        obj.created_by = obj.created_by or request.user
        super().save_model(request, obj, form, change)

    def _in_future(self, obj):
        # As saved: the form has already put its (maybe refused) moment on `obj`.
        return obj is None or Price.objects.filter(pk=obj.pk, effective_from__gt=timezone.now()).exists()

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._in_future(obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._in_future(obj)
