from django.contrib import admin

from jobs.models import Job, WebhookDelivery


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["code", "team", "model", "status", "submission", "money", "price", "created_by", "created_at"]
    list_filter = ["model", "status", "submission", "money"]
    search_fields = ["code", "request_id", "team__slug"]
    readonly_fields = [f.name for f in Job._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["job", "status", "received_at", "duplicates"]
    readonly_fields = ["job", "status", "payload", "received_at", "duplicates"]
