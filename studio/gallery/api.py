"""Galleries in the native API: list, make, edit and delete them, curate their images,
and manage the links that share them. Access and changes go through the same helpers
and model methods as the gallery pages: members and up edit, viewers only read."""

import datetime
import uuid
from typing import Literal

from django.core.exceptions import PermissionDenied
from django.utils import timezone
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate
from pydantic import StrictBool, field_validator, model_validator

from studio.api.schemas import (
    ERRORS,
    BodyIn,
    IsoDateTime,
    JsonInt,
    code_of,
    username_of,
)
from studio.gallery.access import (
    can_delete_gallery,
    get_gallery_for_editor,
    get_gallery_for_member,
    get_item_for_editor,
    get_link_for_editor,
    require_gallery_editor,
    share_url,
)
from studio.gallery.models import Gallery, ShareLink
from studio.library.api import AssetOut
from studio.library.access import get_asset_for_member
from studio.library.queries import library_assets

router = Router(tags=["galleries"])


class GalleryOut(Schema):
    id: uuid.UUID
    title: str
    description: str
    cover: uuid.UUID | None = Field(description="The image shown for the gallery.")
    item_count: int
    created_by: str | None
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @staticmethod
    def resolve_id(gallery):
        return gallery.code

    resolve_cover = code_of("cover")

    @staticmethod
    def resolve_item_count(gallery):
        count = getattr(gallery, "item_count", None)
        return gallery.items.count() if count is None else count

    resolve_created_by = username_of("created_by")


class ItemOut(Schema):
    position: int
    added_by: str | None
    added_at: datetime.datetime
    asset: AssetOut

    resolve_added_by = username_of("added_by")


class GalleryDetailOut(GalleryOut):
    items: list[ItemOut]

    @staticmethod
    def resolve_items(gallery):
        return gallery.items_list


def _title(value):
    value = value.strip()
    if not value:
        raise ValueError("title must not be blank")
    return value


class GalleryIn(BodyIn):
    title: str = Field(min_length=1, max_length=120)
    description: str = Field("", max_length=2000)

    _clean_title = field_validator("title")(_title)


class GalleryPatch(BodyIn):
    title: str | None = Field(None, min_length=1, max_length=120)
    description: str | None = Field(None, max_length=2000)

    @field_validator("title")
    @classmethod
    def clean_title(cls, value):
        return None if value is None else _title(value)


class ItemIn(BodyIn):
    asset: uuid.UUID


class MoveIn(BodyIn):
    direction: Literal["up", "down"]


class LinkOut(Schema):
    id: uuid.UUID
    state: Literal["active", "expired", "revoked"]
    hide_recipe: bool
    expires_at: datetime.datetime | None
    revoked_at: datetime.datetime | None
    views: int
    created_by: str | None
    created_at: datetime.datetime

    @staticmethod
    def resolve_id(link):
        return link.code

    resolve_created_by = username_of("created_by")


class NewLinkOut(LinkOut):
    url: str = Field(description="The public link. Shown this once: only its hash is kept.")


class LinkIn(BodyIn):
    hide_recipe: StrictBool = Field(False, description="Hide prompts and parameters on the shared page.")
    expires_at: IsoDateTime | None = Field(None, description="When the link stops working.")
    expires_in_days: JsonInt | None = Field(None, ge=1, le=365, description="Or: stop working after this many days.")

    @model_validator(mode="after")
    def one_expiry(self):
        if self.expires_at is not None and self.expires_in_days is not None:
            raise ValueError("give expires_at or expires_in_days, not both")
        if self.expires_at is not None:
            if self.expires_at.tzinfo is None:
                raise ValueError("expires_at needs a time zone")
            if self.expires_at <= timezone.now():
                raise ValueError("expires_at has passed")
        return self

    def expiry(self):
        if self.expires_in_days:
            return timezone.now() + datetime.timedelta(days=self.expires_in_days)
        return self.expires_at


def _detail(request, code):
    gallery = get_gallery_for_member(request, code)
    # The items' images through the library's query: job, author and star in one go.
    assets = {a.pk: a for a in library_assets(request.team, request.user, {}).filter(gallery_items__gallery=gallery)}
    items = list(gallery.items.select_related("added_by"))
    for item in items:
        item.asset = assets[item.asset_id]
    gallery.items_list = items
    return gallery


@router.get("", response={200: list[GalleryOut], **ERRORS}, summary="The team's galleries, latest changed first")
@paginate
def list_galleries(request):
    return request.team.galleries.with_listing().select_related("created_by").order_by("-updated_at", "-pk")


@router.post("", response={201: GalleryDetailOut, **ERRORS}, summary="Make a gallery")
def create_gallery(request, body: GalleryIn):
    require_gallery_editor(request.membership)
    gallery = Gallery.objects.create(team=request.team, created_by=request.user, title=body.title,
                                     description=body.description)
    return Status(201, _detail(request, gallery.code))


@router.get("/{uuid:code}", response={200: GalleryDetailOut, **ERRORS}, summary="One gallery with its images, in order")
def get_gallery(request, code: uuid.UUID):
    return _detail(request, code)


@router.patch("/{uuid:code}", response={200: GalleryDetailOut, **ERRORS},
              summary="Change a gallery's title or description")
def edit_gallery(request, code: uuid.UUID, body: GalleryPatch):
    gallery = get_gallery_for_editor(request, code)
    changes = body.dict(exclude_none=True)
    for field, value in changes.items():
        setattr(gallery, field, value)
    gallery.save(update_fields=[*changes, "updated_at"])
    return _detail(request, code)


@router.delete("/{uuid:code}", response={204: None, **ERRORS},
               summary="Delete a gallery and its share links (the images stay in the library)")
def delete_gallery(request, code: uuid.UUID):
    gallery = get_gallery_for_editor(request, code)
    if not can_delete_gallery(request.membership, gallery):
        raise PermissionDenied("Only the team's owners and admins, or whoever made it, can delete a gallery.")
    gallery.delete()
    return Status(204, None)


@router.post("/{uuid:code}/items", response={200: GalleryDetailOut, 201: GalleryDetailOut, **ERRORS},
             summary="Add one of the team's images (201; 200 when it is already there)")
def add_item(request, code: uuid.UUID, body: ItemIn):
    gallery = get_gallery_for_editor(request, code)
    asset = get_asset_for_member(request, body.asset)
    added = gallery.add(asset, request.user)
    return Status(201 if added else 200, _detail(request, code))


@router.delete("/{uuid:code}/items/{uuid:asset}", response={200: GalleryDetailOut, **ERRORS},
               summary="Take an image out of the gallery (it stays in the library)")
def remove_item(request, code: uuid.UUID, asset: uuid.UUID):
    item = get_item_for_editor(request, code, asset)
    item.gallery.remove(item.asset)
    return _detail(request, code)


@router.post("/{uuid:code}/items/{uuid:asset}/move", response={200: GalleryDetailOut, **ERRORS},
             summary="Move an image one place up or down")
def move_item(request, code: uuid.UUID, asset: uuid.UUID, body: MoveIn):
    item = get_item_for_editor(request, code, asset)
    item.gallery.move(item.asset, -1 if body.direction == "up" else 1)
    return _detail(request, code)


@router.put("/{uuid:code}/cover", response={200: GalleryDetailOut, **ERRORS},
            summary="Choose the cover among its images")
def set_cover(request, code: uuid.UUID, body: ItemIn):
    item = get_item_for_editor(request, code, body.asset)
    item.gallery.set_cover(item.asset)
    return _detail(request, code)


@router.get("/{uuid:code}/links", response={200: list[LinkOut], **ERRORS}, summary="The gallery's share links")
def list_links(request, code: uuid.UUID):
    gallery = get_gallery_for_member(request, code)
    return gallery.share_links.select_related("created_by").order_by("-created_at", "-pk")


@router.post("/{uuid:code}/links", response={201: NewLinkOut, **ERRORS},
             summary="Share the gallery by a public, read-only link")
def create_link(request, code: uuid.UUID, body: LinkIn):
    gallery = get_gallery_for_editor(request, code)
    link, token = ShareLink.create(gallery, request.user, hide_recipe=body.hide_recipe, expires_at=body.expiry())
    link.url = share_url(token)
    return Status(201, link)


@router.delete("/{uuid:code}/links/{uuid:link}", response={200: LinkOut, **ERRORS},
               summary="Revoke a share link: it stops working at once")
def revoke_link(request, code: uuid.UUID, link: uuid.UUID):
    link = get_link_for_editor(request, code, link)
    link.revoke(request.user)
    return link
