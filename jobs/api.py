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

from jobs import actions, contract
from jobs.access import get_job_for_member
from jobs.addresses import check_url
from jobs.models import Job, Status
from studio.api.schemas import (
    ERRORS,
    BodyIn,
    IsoDateTime,
    code_of,
    contract_field,
    usd_of,
    username_of,
)
from studio.library.access import get_asset_for_member
from studio.library.media import signed_media_url

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


def _integers(low, high):
    return {"type": "integer", "minimum": low, "maximum": high}


def _image_url_at_submit(value):
    """The contract's image URL, and one the studio can already tell it could fetch."""
    return check_url(contract.image_url(value), name="image_url")


# The gateway's parameters, judged by jobs/contract.py as the form and both gateway APIs judge them.
Prompt = contract_field(str, contract.prompt, {"type": "string", "minLength": 1})
AspectRatio = contract_field(str, contract.aspect_ratio, {"type": "string", "enum": list(contract.ASPECT_RATIOS)})
Seed = contract_field(int | None, contract.seed,
                      {"anyOf": [_integers(contract.MIN_SEED, contract.MAX_SEED), {"type": "null"}]})
Steps = contract_field(int, contract.steps_num, _integers(contract.MIN_STEPS, contract.MAX_STEPS))
Guidance = contract_field(Decimal, contract.guidance_scale,
                          {"type": "number", "minimum": int(contract.MIN_GUIDANCE),
                           "maximum": int(contract.MAX_GUIDANCE)})
ImageUrl = contract_field(str, _image_url_at_submit, {"type": "string", "maxLength": contract.MAX_IMAGE_URL_LENGTH,
                                                      "pattern": r"^[hH][tT][tT][pP][sS]?://\S+$"})


class FiboIn(BodyIn):
    prompt: Prompt = Field(description=f"At most {contract.MAX_PROMPT_LENGTH} characters; surrounding whitespace "
                                       "is removed.")
    aspect_ratio: AspectRatio = contract.DEFAULT_ASPECT_RATIO
    seed: Seed = Field(None, description="Empty for a random seed.")
    steps_num: Steps = contract.DEFAULT_STEPS
    guidance_scale: Guidance = Field(contract.DEFAULT_GUIDANCE, description="At most two decimal places.",
                                     json_schema_extra={"default": float(contract.DEFAULT_GUIDANCE)})


class RmbgIn(BodyIn):
    """One input: a URL, or an image already in the team's library."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": ["image_url"]}, {"required": ["asset"]}]})

    image_url: ImageUrl = Field(None, description="An http(s) image URL on a public host, which the studio "
                                                  "fetches.")
    asset: uuid.UUID = Field(None, description="An image of the team's library.")

    @model_validator(mode="after")
    def one_source(self):
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
    job = actions.start_fibo(request.membership, contract.fibo_params(
        body.prompt, body.aspect_ratio, body.seed, body.steps_num, body.guidance_scale))
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
