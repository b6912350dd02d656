"""Jobs and webhook deliveries are written by the studio alone (jobs/transitions.py,
jobs/webhooks.py): the admin shows them."""

from django.contrib import admin

from jobs.models import Job, WebhookDelivery
from studio.admin import ReadOnlyAdmin


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ["code", "team", "model", "status", "submission", "money", "price", "created_by", "created_at"]
    list_filter = ["model", "status", "submission", "money"]
    search_fields = ["code", "request_id", "team__slug"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["job", "status", "received_at", "duplicates"]
