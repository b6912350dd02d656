"""The team library in the native API: browse and filter the team's images (the same
query as the library page), read one, and star or unstar it for yourself."""

import datetime
import uuid
from typing import Literal

from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate
from pydantic import StrictBool

from jobs.models import Job, Status
from studio.api.schemas import ERRORS, BodyIn, IsoDateTime, code_of, username
from studio.library.access import get_library_asset
from studio.library.media import signed_media_url
from studio.library.models import Star
from studio.library.queries import library_assets

router = Router(tags=["library"])


class AssetOut(Schema):
    id: uuid.UUID
    role: Literal["input", "output"] = Field(description="A job's result, or an image uploaded for RMBG.")
    media_type: str
    width: int
    height: int
    size_bytes: int
    sha256: str
    job: uuid.UUID | None
    model: str | None
    prompt: str | None
    created_by: str | None
    created_at: datetime.datetime
    starred: bool = Field(description="Starred by the key's member.")
    url: str = Field(description="The full image, signed; the link works for an hour.")

    @staticmethod
    def resolve_id(asset):
        return asset.code

    resolve_job = code_of("job")

    @staticmethod
    def resolve_model(asset):
        return asset.job.model if asset.job_id else None

    @staticmethod
    def resolve_prompt(asset):
        return asset.job.params.get("prompt") if asset.job_id else None

    @staticmethod
    def resolve_created_by(asset):
        return username(asset.created_by or (asset.job.created_by if asset.job_id else None))

    @staticmethod
    def resolve_url(asset):
        return signed_media_url(asset)


class LibraryFilter(Schema):
    q: str | None = Field(None, max_length=200, description="Text in the prompt.")
    model: Job.Model | None = None
    member: str | None = Field(None, max_length=150, description="Whose image it is (a username).")
    status: Status | None = Field(None, description="The status of the image's job.")
    starred: bool = Field(False, description="Only the images the key's member starred.")
    created_after: IsoDateTime | None = None
    created_before: IsoDateTime | None = None


class StarIn(BodyIn):
    starred: StrictBool


@router.get("", response={200: list[AssetOut], **ERRORS}, summary="The team's images, newest first")
@paginate
def list_assets(request, filters: Query[LibraryFilter]):
    return library_assets(request.team, request.user, {
        "q": filters.q, "model": filters.model, "member": filters.member, "status": filters.status,
        "starred": filters.starred, "start": filters.created_after, "end": filters.created_before,
    })


@router.get("/{uuid:code}", response={200: AssetOut, **ERRORS}, summary="One image")
def get_asset(request, code: uuid.UUID):
    return get_library_asset(request, code)


@router.put("/{uuid:code}/star", response={200: AssetOut, **ERRORS},
            summary="Star or unstar an image for the key's member")
def star(request, code: uuid.UUID, body: StarIn):
    asset = get_library_asset(request, code)
    Star.set(asset, request.user, body.starred)
    asset.starred = body.starred
    return asset
