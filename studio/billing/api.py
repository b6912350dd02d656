"""The wallet in the native API: its balance and its ledger, read only. Money comes in
through top-ups (staff) and goes out through jobs; the API moves none by itself."""

import datetime
import uuid
from decimal import Decimal
from typing import Annotated, Literal

from ninja import Field, FilterLookup, FilterSchema, Query, Router, Schema
from ninja.pagination import paginate

from studio.api.schemas import ERRORS, IsoDateTime, code_of, usd, usd_of, username_of
from studio.billing.models import Entry, Wallet

router = Router(tags=["wallet"])


class WalletOut(Schema):
    team: str
    balance_usd: Decimal = Field(description="What the team owns.")
    held_usd: Decimal = Field(description="Reserved for jobs in flight.")
    available_usd: Decimal = Field(description="What a new job may hold.")
    low_balance_threshold_usd: Decimal | None = Field(description="The team is warned below this; empty for never.")


class EntryOut(Schema):
    kind: Literal["topup", "bonus", "hold", "capture", "release", "adjustment"]
    amount_usd: Decimal = Field(description="The change to the balance (negative for a charge).")
    held_change_usd: Decimal = Field(description="The change to the held amount.")
    balance_after_usd: Decimal
    held_after_usd: Decimal
    job: uuid.UUID | None
    model: str
    member: str | None = Field(description="Whose job it was.")
    actor: str | None = Field(description="Who did it; empty when the studio settled a job itself.")
    memo: str
    created_at: datetime.datetime

    resolve_amount_usd = usd_of("balance_delta")
    resolve_held_change_usd = usd_of("held_delta")
    resolve_balance_after_usd = usd_of("balance_after")
    resolve_held_after_usd = usd_of("held_after")
    resolve_job = code_of("job")
    resolve_member = username_of("member")
    resolve_actor = username_of("actor")


class EntryFilter(FilterSchema):
    kind: Entry.Kind | None = None
    created_after: Annotated[IsoDateTime | None, FilterLookup("created_at__gte")] = None
    created_before: Annotated[IsoDateTime | None, FilterLookup("created_at__lt")] = None


@router.get("", response={200: WalletOut, **ERRORS}, summary="The team's wallet")
def get_wallet(request):
    wallet = Wallet.objects.select_related("team").get(team=request.team)
    return {
        "team": wallet.team.slug, "balance_usd": usd(wallet.balance), "held_usd": usd(wallet.held),
        "available_usd": usd(wallet.available), "low_balance_threshold_usd": (
            None if wallet.team.low_balance_threshold is None else usd(wallet.team.low_balance_threshold)),
    }


@router.get("/ledger", response={200: list[EntryOut], **ERRORS}, summary="The wallet's ledger, newest first")
@paginate
def ledger(request, filters: Query[EntryFilter]):
    entries = request.team.ledger.select_related("job", "member", "actor")
    return filters.filter(entries).order_by("-created_at", "-pk")
