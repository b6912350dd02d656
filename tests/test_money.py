"""The wallet: holds, captures, releases and top-ups, booked once each, never overdrawn."""

import pytest
from django.db import IntegrityError, transaction

from jobs.actions import start_fibo
from jobs.models import Job
from studio.billing import money
from studio.billing.models import Entry, Wallet, dollars_to_micros, format_micros

PARAMS = {"prompt": "a lighthouse", "aspect_ratio": "1:1", "steps_num": 30, "guidance_scale": "7.5"}


def wallet(team):
    return Wallet.objects.get(team=team)


def test_format_micros_is_exact():
    assert format_micros(58_000) == "$0.058"
    assert format_micros(40_000) == "$0.04"
    assert format_micros(18_000) == "$0.018"
    assert format_micros(10_000_000) == "$10.00"
    assert format_micros(-18_000) == "$-0.018"


def test_dollars_to_micros_refuses_fractions_of_a_micro():
    assert dollars_to_micros("0.058") == 58_000
    with pytest.raises(ValueError):
        dollars_to_micros("0.0000001")


def test_a_job_holds_its_price(membership, team):
    job = start_fibo(membership, PARAMS)
    w = wallet(team)
    assert (w.balance, w.held, w.available) == (1_000_000, 40_000, 960_000)
    assert job.price == 40_000 and job.money == Job.Money.HELD
    hold = Entry.objects.get(job=job)
    assert (hold.kind, hold.balance_delta, hold.held_delta, hold.held_after, hold.actor) == (
        "hold", 0, 40_000, 40_000, membership.user)


def test_capture_charges_the_hold_once(membership, team):
    job = start_fibo(membership, PARAMS)
    assert money.capture(job) is not None
    assert money.capture(job) is None
    assert money.release(job) is None, "a captured job cannot also be released"
    w = wallet(team)
    assert (w.balance, w.held) == (960_000, 0)


def test_release_returns_the_hold_once(membership, team):
    job = start_fibo(membership, PARAMS)
    assert money.release(job) is not None
    assert money.release(job) is None
    assert money.capture(job) is None
    w = wallet(team)
    assert (w.balance, w.held) == (1_000_000, 0)


def test_insufficient_balance_creates_nothing(membership, team):
    # The wallet holds $1.00: exactly 25 images.
    for _ in range(25):
        start_fibo(membership, PARAMS)
    with pytest.raises(money.InsufficientFunds) as exc:
        start_fibo(membership, PARAMS)
    assert "$0.04" in str(exc.value) and "$0.00" in str(exc.value)
    assert Job.objects.count() == 25
    assert Entry.objects.filter(kind="hold").count() == 25
    assert wallet(team).available == 0


def test_top_up_with_the_same_key_books_once(team):
    assert money.top_up(team, 5_000_000, reason="invoice 7", key="inv-7") is not None
    assert money.top_up(team, 5_000_000, reason="invoice 7", key="inv-7") is None
    assert wallet(team).balance == 6_000_000


def test_top_up_refuses_non_positive_amounts(team):
    with pytest.raises(ValueError):
        money.top_up(team, 0, reason="nothing", key="zero")
    assert wallet(team).balance == 1_000_000


def test_ledger_entries_are_append_only(team):
    entry = Entry.objects.get(team=team)
    entry.memo = "changed"
    with pytest.raises(ValueError):
        entry.save()
    with pytest.raises(ValueError):
        entry.delete()


def test_the_database_refuses_an_overdraft(team):
    with pytest.raises(IntegrityError), transaction.atomic():
        Wallet.objects.filter(team=team).update(held=2_000_000)


def test_wallet_totals_equal_the_ledger(membership, team):
    jobs = [start_fibo(membership, PARAMS) for _ in range(3)]
    money.capture(jobs[0])
    money.release(jobs[1])
    w = wallet(team)
    entries = Entry.objects.filter(team=team)
    assert w.balance == sum(e.balance_delta for e in entries)
    assert w.held == sum(e.held_delta for e in entries)
    assert (w.balance, w.held) == (960_000, 40_000)
