"""Races on real PostgreSQL: many connections at once against one wallet. Each race is
repeated, and after each round verify_ledger must find no drift."""

import json
import threading

import pytest
from django.db import connection, connections
from django.test import Client
from django_q.brokers import get_broker

from jobs.actions import start_fibo
from jobs.models import Job, WebhookDelivery, hash_token
from jobs.transitions import apply_status
from studio.accounts.models import Membership, Role, Team
from studio.billing import money
from studio.billing.models import Entry, Wallet
from studio.billing.verify import verify
from tests.conftest import make_user

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are tested on PostgreSQL"),
]

PARAMS = {"prompt": "a race", "aspect_ratio": "1:1", "steps_num": 30, "guidance_scale": "7.5"}
ROUNDS = 10


def run_at_once(functions):
    """Start every function in its own thread (own database connection) at the same
    instant; return what each returned or raised."""
    barrier = threading.Barrier(len(functions))
    results = [None] * len(functions)

    def run(i, fn):
        try:
            barrier.wait()
            results[i] = fn()
        except Exception as exc:  # noqa: BLE001 - the race's outcome is what is asserted
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def funded_team(n, credit):
    owner = make_user(f"owner{n}")
    team = Team.create_for(owner, f"Race {n}", slug=f"race-{n}")
    money.top_up(team, credit, reason="race credit", key=f"race-{n}")
    return Membership.objects.select_related("team", "user").get(team=team, user=owner)


@pytest.fixture(autouse=True)
def empty_queue():
    yield
    get_broker().purge_queue()


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_fifty_submissions_against_money_for_twenty(round_, settings):
    settings.FIRST_TOPUP_BONUS_MICROS = 0
    membership = funded_team(round_, 20 * 40_000)
    results = run_at_once([lambda: start_fibo(membership, PARAMS) for _ in range(50)])
    accepted = [r for r in results if isinstance(r, Job)]
    refused = [r for r in results if isinstance(r, money.InsufficientFunds)]
    assert (len(accepted), len(refused)) == (20, 30), [r for r in results if not isinstance(r, (Job, money.InsufficientFunds))]
    wallet = Wallet.objects.get(team=membership.team)
    assert (wallet.balance, wallet.held, wallet.available) == (800_000, 800_000, 0)

    Job.objects.filter(team=membership.team).update(submission="accepted")
    run_at_once([lambda job=job: apply_status(job.pk, "COMPLETED") for job in accepted])
    wallet.refresh_from_db()
    assert (wallet.balance, wallet.held) == (0, 0)
    assert not Entry.objects.filter(balance_after__lt=0).exists()
    assert verify() == []


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_duplicate_webhooks_and_polls_for_one_job_book_one_capture(round_, settings):
    settings.FIRST_TOPUP_BONUS_MICROS = 0
    membership = funded_team(round_, 1_000_000)
    job = start_fibo(membership, PARAMS)
    Job.objects.filter(pk=job.pk).update(submission="accepted", request_id=f"race_{round_}",
                                         webhook_token_hash=hash_token("tok"))
    body = json.dumps({"request_id": f"race_{round_}", "status": "COMPLETED"})

    def webhook():
        return Client(HTTP_HOST="127.0.0.1").post(f"/hooks/pixazo/{job.code}/tok/", body,
                                                  content_type="application/json").status_code

    def poll(status):
        return apply_status(job.pk, status)

    calls = [webhook] * 10 + [lambda: poll("COMPLETED")] * 8 + [lambda: poll("PROCESSING")] * 2
    results = run_at_once(calls)
    assert results[:10] == [200] * 10
    assert sum(1 for r in results[10:18] if r is True) == 1, "exactly one COMPLETED won"
    assert Entry.objects.filter(job=job, kind="capture").count() == 1
    assert Entry.objects.filter(job=job, kind="release").count() == 0
    delivery = WebhookDelivery.objects.get(job=job)
    assert delivery.duplicates == 9
    wallet = Wallet.objects.get(team=membership.team)
    assert (wallet.balance, wallet.held) == (960_000, 0)
    assert verify() == []


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_a_top_up_racing_submissions_adds_up(round_, settings):
    settings.FIRST_TOPUP_BONUS_MICROS = 0
    membership = funded_team(round_, 10 * 40_000)
    calls = [lambda: start_fibo(membership, PARAMS) for _ in range(30)]
    calls.insert(15, lambda: money.top_up(membership.team, 400_000, reason="mid-race", key=f"mid-{round_}"))
    results = run_at_once(calls)
    accepted = sum(isinstance(r, Job) for r in results)
    assert 10 <= accepted <= 20
    assert all(isinstance(r, (Job, money.InsufficientFunds)) for i, r in enumerate(results) if i != 15)
    wallet = Wallet.objects.get(team=membership.team)
    assert wallet.balance == 800_000 and wallet.held == accepted * 40_000 and wallet.available >= 0
    assert verify() == []


def test_concurrent_members_never_overdraw_a_shared_wallet(settings):
    settings.FIRST_TOPUP_BONUS_MICROS = 0
    owner = funded_team(99, 5 * 40_000)
    members = [owner]
    for i in range(4):
        user = make_user(f"teammate{i}")
        members.append(Membership.objects.create(team=owner.team, user=user, role=Role.MEMBER))
    results = run_at_once([lambda m=m: start_fibo(m, PARAMS) for m in members for _ in range(6)])
    assert sum(isinstance(r, Job) for r in results) == 5
    assert Wallet.objects.get(team=owner.team).available == 0
    assert verify() == []
