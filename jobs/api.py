"""Jobs in the native API: list and read the team's jobs, start FIBO and RMBG jobs, retry
one that ended in ERROR. Starting goes through jobs.actions, as the studio page does."""

import datetime
import uuid
from decimal import Decimal
from typing import Annotated, Literal

from ninja import Field, FilterLookup, FilterSchema, Query, Router, Schema
from ninja import Status as Answer
from ninja.pagination import paginate
from pydantic import ConfigDict, model_validator

from jobs import actions, params
from jobs.contract import is_text
from jobs.models import Job, Status
from jobs.views import get_job_for_member
from studio.api.schemas import (
    ERRORS,
    BodyIn,
    IsoDateTime,
    JsonInt,
    code_of,
    usd_of,
    username_of,
)
from studio.library.media import get_asset_for_member, signed_media_url

router = Router(tags=["jobs"])


class OutputOut(Schema):
    asset: uuid.UUID
    media_type: str
    width: int
    height: int
    url: str = Field(description="The full image, signed; the link works for an hour.")


class JobOut(Schema):
    id: uuid.UUID
    model: Literal["fibo", "rmbg"]
    status: Literal["QUEUED", "PROCESSING", "COMPLETED", "FAILED", "ERROR"]
    params: dict
    price_usd: Decimal = Field(description="Held when the job starts; charged on COMPLETED or FAILED, "
                                           "released on ERROR.")
    money: Literal["held", "charged", "released"]
    error: str
    created_by: str | None
    created_at: datetime.datetime
    completed_at: datetime.datetime | None
    retry_of: uuid.UUID | None
    outputs: list[OutputOut]

    @staticmethod
    def resolve_id(job):
        return job.code

    resolve_price_usd = usd_of("price")

    resolve_created_by = username_of("created_by")

    resolve_retry_of = code_of("retry_of")  # lists select it with the job

    @staticmethod
    def resolve_outputs(job):
        # A COMPLETED job lists its images once they are in the studio's storage.
        return [{"asset": a.code, "media_type": a.media_type, "width": a.width, "height": a.height,
                 "url": signed_media_url(a)} for a in job.outputs]


class JobFilter(FilterSchema):
    status: Status | None = None
    model: Job.Model | None = None
    member: Annotated[str | None, FilterLookup("created_by__username")] = Field(
        None, max_length=150, description="A member's username.")
    created_after: Annotated[IsoDateTime | None, FilterLookup("created_at__gte")] = None
    created_before: Annotated[IsoDateTime | None, FilterLookup("created_at__lt")] = None


class FiboIn(BodyIn):
    prompt: str = Field(min_length=1, max_length=params.MAX_PROMPT_LENGTH)
    aspect_ratio: Literal["1:1", "16:9", "4:3", "9:16"] = params.DEFAULT_ASPECT_RATIO
    seed: JsonInt | None = Field(None, ge=0, le=params.MAX_SEED, description="Empty for a random seed.")
    steps_num: JsonInt = Field(params.DEFAULT_STEPS, ge=params.MIN_STEPS, le=params.MAX_STEPS)
    guidance_scale: Decimal = Field(params.DEFAULT_GUIDANCE, ge=params.MIN_GUIDANCE, le=params.MAX_GUIDANCE,
                                    max_digits=4, decimal_places=2)

    @model_validator(mode="after")
    def prompt_has_text(self):
        if not self.prompt.strip():
            raise ValueError("prompt must not be blank")
        if not is_text(self.prompt):
            raise ValueError("prompt must be text without NUL characters or lone surrogates")
        return self


class RmbgIn(BodyIn):
    """One input: a URL, or an image already in the team's library."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": ["image_url"]}, {"required": ["asset"]}]})

    image_url: str = Field(None, max_length=params.MAX_IMAGE_URL_LENGTH, pattern=r"^https?://[^\s]+$",
                           description="An http(s) image URL the studio fetches.")
    asset: uuid.UUID = Field(None, description="An image of the team's library.")

    @model_validator(mode="after")
    def one_source(self):
        if self.image_url is not None and not is_text(self.image_url):
            raise ValueError("image_url must be text without NUL characters or lone surrogates")
        if (self.image_url is None) == (self.asset is None):
            raise ValueError("give either image_url or asset, not both")
        return self


def _jobs(team):
    return Job.objects.for_team(team).with_card_data().select_related("retry_of")


@router.get("", response={200: list[JobOut], **ERRORS}, summary="List the team's jobs, newest first")
@paginate
def list_jobs(request, filters: Query[JobFilter]):
    return filters.filter(_jobs(request.team)).order_by("-created_at", "-pk")


@router.get("/{uuid:code}", response={200: JobOut, **ERRORS}, summary="One job")
def get_job(request, code: uuid.UUID):
    return get_job_for_member(request, code)


@router.post("/fibo", response={201: JobOut, **ERRORS}, summary="Generate an image with Bria FIBO ($0.04)")
def start_fibo(request, body: FiboIn):
    job = actions.start_fibo(request.membership, params.fibo_params(
        body.prompt.strip(), body.aspect_ratio, body.seed, body.steps_num, body.guidance_scale))
    return Answer(201, get_job_for_member(request, job.code))


@router.post("/rmbg", response={201: JobOut, **ERRORS},
             summary="Remove the background of an image with Bria RMBG 2.0 ($0.018)")
def start_rmbg(request, body: RmbgIn):
    if body.asset is not None:
        asset = get_asset_for_member(request, body.asset)
        job = actions.start_rmbg_from_asset(request.membership, asset)
    else:
        job = actions.start_rmbg_from_url(request.membership, body.image_url)
    return Answer(201, get_job_for_member(request, job.code))


@router.post("/{uuid:code}/retry", response={201: JobOut, **ERRORS},
             summary="Run a job that ended in ERROR again, once, as a new job")
def retry_job(request, code: uuid.UUID):
    job = actions.retry_job(request.membership, get_job_for_member(request, code))
    return Answer(201, get_job_for_member(request, job.code))
