"""The admin's base for rows the studio writes and staff only look at: the ledger, the
event log, jobs. Nobody adds, changes or deletes them in the admin; a model admin lets
staff do more by naming it in `staff_may` (revoking an invitation is a change, taking a
comment down a delete), so what the admin allows reads in one line. Adding stays with
the studio: a share link's or an invitation's token is shown once, to whoever makes it."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    staff_may = frozenset()  # "change", "delete" or both; never "add"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return "change" in self.staff_may and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return "delete" in self.staff_may and super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        # A row nobody changes here is shown, field by field, without building a form for it.
        if "change" in self.staff_may:
            return super().get_readonly_fields(request, obj)
        return [field.name for field in self.opts.fields]
