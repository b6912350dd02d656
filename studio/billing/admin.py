from django.contrib import admin

from studio.billing.models import Entry, Wallet


class ReadOnlyAdmin(admin.ModelAdmin):
    """Money is moved by studio.billing.money only; the admin shows it."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = ["team", "balance", "held"]
    search_fields = ["team__slug"]


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "team", "kind", "balance_delta", "held_delta", "balance_after", "held_after", "actor", "job"]
    list_filter = ["kind"]
    search_fields = ["team__slug", "idempotency_key"]
