from django.contrib import admin

from studio.activity.models import Comment, Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """Events are append-only: the admin shows them and nothing else."""

    list_display = ["created_at", "team", "actor", "verb", "summary"]
    list_select_related = ["team", "actor"]
    list_filter = ["verb"]
    search_fields = ["team__slug", "actor__username", "summary"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    """Staff may take a comment down; nobody rewrites what someone else said."""

    list_display = ["created_at", "asset", "author", "body"]
    list_select_related = ["asset", "author"]
    search_fields = ["asset__team__slug", "author__username", "body"]
    readonly_fields = ["code", "asset", "author", "body", "created_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
