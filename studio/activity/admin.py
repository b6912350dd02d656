from django.contrib import admin

from studio.activity.models import Comment, Event
from studio.admin import ReadOnlyAdmin


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    """Events are append-only: the admin shows them and nothing else."""

    list_display = ["created_at", "team", "actor", "verb", "summary"]
    list_select_related = ["team", "actor"]
    list_filter = ["verb"]
    search_fields = ["team__slug", "actor__username", "summary"]
    date_hierarchy = "created_at"


@admin.register(Comment)
class CommentAdmin(ReadOnlyAdmin):
    """Staff may take a comment down; nobody rewrites what someone else said."""

    staff_may = {"delete"}
    list_display = ["created_at", "asset", "author", "body"]
    list_select_related = ["asset", "author"]
    search_fields = ["asset__team__slug", "author__username", "body"]
