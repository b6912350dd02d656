from django.contrib import admin

from studio.admin import ReadOnlyAdmin
from studio.gallery.models import Gallery, GalleryItem, ShareLink


class GalleryItemInline(admin.TabularInline):
    model = GalleryItem
    fields = ["position", "asset", "added_by", "added_at"]
    readonly_fields = ["added_at"]
    raw_id_fields = ["asset", "added_by"]
    extra = 0


class ShareLinkInline(admin.TabularInline):
    model = ShareLink
    fields = ["code", "hide_recipe", "expires_at", "revoked_at", "views", "created_by", "created_at"]
    readonly_fields = ["code", "views", "created_by", "created_at"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # a link's token is shown once to whoever makes it, in the studio


@admin.register(Gallery)
class GalleryAdmin(admin.ModelAdmin):
    list_display = ["title", "team", "created_by", "updated_at"]
    list_select_related = ["team", "created_by"]
    search_fields = ["title", "team__slug", "code"]
    readonly_fields = ["code", "created_at", "updated_at"]
    raw_id_fields = ["team", "cover", "created_by"]
    inlines = [GalleryItemInline, ShareLinkInline]


@admin.register(ShareLink)
class ShareLinkAdmin(ReadOnlyAdmin):
    """Staff can revoke (set revoked_at) or shorten a link; the token itself is never
    stored, only its hash, which is shown read-only. Links are made in the studio, which
    shows the token once to whoever makes it."""

    staff_may = {"change", "delete"}
    list_display = ["code", "gallery", "state", "views", "expires_at", "revoked_at", "created_by", "created_at"]
    list_select_related = ["gallery", "created_by"]
    list_filter = ["hide_recipe"]
    search_fields = ["code", "gallery__title", "gallery__team__slug"]
    fields = ["code", "gallery", "token_hash", "hide_recipe", "expires_at", "revoked_at", "views", "created_by", "created_at"]
    readonly_fields = ["code", "gallery", "token_hash", "views", "created_by", "created_at"]
