"""The price list, member spend caps, the low-balance warning and the append-only
ledger."""

from datetime import timedelta

import pytest
from django.core import mail
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from jobs.actions import start_fibo
from jobs.models import Job
from jobs.transitions import apply_status
from studio.accounts.models import Membership
from studio.billing import money
from studio.billing.models import Entry, Price
from tests.conftest import login
from tests.smtp import run_queued_email

PARAMS = {"prompt": "a lighthouse", "aspect_ratio": "1:1", "steps_num": 30, "guidance_scale": "7.5"}
HX = {"HTTP_HX_REQUEST": "true"}


def settle(job, status):
    Job.objects.filter(pk=job.pk).update(submission="accepted", request_id=f"r-{job.pk}")
    apply_status(job.pk, status)


# -- prices -------------------------------------------------------------------------


def test_the_default_prices_are_on_the_list(db):
    assert money.price_of("fibo") == 40_000 and money.price_of("rmbg") == 18_000
    assert Price.objects.count() == 2


def test_a_new_price_applies_from_its_effective_date(membership, staff):
    Price.objects.create(model="fibo", amount=50_000, effective_from=timezone.now() + timedelta(days=1))
    assert money.price_of("fibo") == 40_000
    Price.objects.create(model="fibo", amount=45_000, effective_from=timezone.now() - timedelta(seconds=1))
    assert money.price_of("fibo") == 45_000
    assert money.price_of("fibo", at=timezone.now() + timedelta(days=2)) == 50_000


def test_a_jobs_price_is_frozen_when_its_hold_is_placed(membership):
    job = start_fibo(membership, PARAMS)
    Price.objects.create(model="fibo", amount=99_000, effective_from=timezone.now() - timedelta(seconds=1))
    settle(job, "COMPLETED")
    job.refresh_from_db()
    assert job.price == 40_000
    assert Entry.objects.get(job=job, kind="capture").balance_delta == -40_000
    assert start_fibo(membership, PARAMS).price == 99_000


def test_staff_can_change_only_future_prices(staff):
    past = Price.objects.get(model="fibo")
    future = Price.objects.create(model="rmbg", amount=20_000, effective_from=timezone.now() + timedelta(days=3))
    client = login(staff)
    assert client.post(f"/admin/billing/price/{past.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"/admin/billing/price/{future.pk}/delete/", {"post": "yes"}).status_code == 302
    response = client.post("/admin/billing/price/add/", {"model": "fibo", "amount": "42000",
                                                         "effective_from_0": "2030-01-01", "effective_from_1": "00:00:00"})
    assert response.status_code == 302
    assert Price.objects.get(amount=42_000).created_by == staff


def test_a_price_must_be_positive(staff):
    response = login(staff).post("/admin/billing/price/add/", {"model": "fibo", "amount": "0",
                                                               "effective_from_0": "2030-01-01", "effective_from_1": "00:00"})
    assert response.status_code == 200 and not Price.objects.filter(amount=0).exists()


# -- caps ---------------------------------------------------------------------------


def set_cap(team, user, micros):
    Membership.objects.filter(team=team, user=user).update(monthly_cap=micros)


def test_a_submission_over_the_cap_is_refused_with_the_cap_and_whats_left(membership, team, member):
    set_cap(team, member, 100_000)  # $0.10: two images, then $0.02 left
    start_fibo(membership, PARAMS)
    start_fibo(membership, PARAMS)
    with pytest.raises(money.CapExceeded) as exc:
        start_fibo(membership, PARAMS)
    assert str(exc.value) == ("This costs $0.04, over your monthly spend cap of $0.10: $0.02 is left this month.")
    assert Job.objects.count() == 2


def test_the_form_shows_the_cap_message(member, team):
    set_cap(team, member, 10_000)
    html = login(member).post("/studio/fibo/", {**PARAMS, "seed": ""}, **HX).content.decode()
    assert "over your monthly spend cap of $0.01: $0.01 is left this month." in html
    assert not Job.objects.exists()


def test_released_jobs_do_not_count_against_the_cap(membership, team, member):
    set_cap(team, member, 40_000)
    settle(start_fibo(membership, PARAMS), "ERROR")
    assert start_fibo(membership, PARAMS)


def test_last_months_spend_does_not_count(membership, team, member):
    set_cap(team, member, 40_000)
    job = start_fibo(membership, PARAMS)
    Job.objects.filter(pk=job.pk).update(created_at=money.month_start() - timedelta(seconds=1))
    assert start_fibo(membership, PARAMS)


def test_a_cap_is_per_member(membership, team, member, owner):
    set_cap(team, member, 0)
    owner_membership = Membership.objects.get(team=team, user=owner)
    assert start_fibo(owner_membership, PARAMS)
    with pytest.raises(money.CapExceeded):
        start_fibo(membership, PARAMS)


def test_owners_and_admins_set_caps_on_the_team_page(team, owner, member):
    client = login(owner)
    assert client.post(f"/team/members/{member.username}/cap/", {"monthly_cap": "2.5"}).status_code == 302
    assert Membership.objects.get(team=team, user=member).monthly_cap == 2_500_000
    assert client.post(f"/team/members/{member.username}/cap/", {"monthly_cap": ""}).status_code == 302
    assert Membership.objects.get(team=team, user=member).monthly_cap is None
    page = client.get("/team/").content.decode()
    assert member.username in page and "Spent this month" in page


@pytest.mark.parametrize("value", ["-1", "abc", "1.0000001"])
def test_a_bad_cap_is_refused_and_changes_nothing(team, owner, member, value):
    response = login(owner).post(f"/team/members/{member.username}/cap/", {"monthly_cap": value})
    assert response.status_code == 400 and 'role="alert"' in response.content.decode()
    assert Membership.objects.get(team=team, user=member).monthly_cap is None


def test_members_and_viewers_cannot_set_caps(team, member, viewer):
    for user in (member, viewer):
        assert login(user).post(f"/team/members/{member.username}/cap/", {"monthly_cap": "1"}).status_code == 403
    assert Membership.objects.get(team=team, user=member).monthly_cap is None


def test_another_teams_member_is_404(team, owner, outsider):
    assert login(owner).post(f"/team/members/{outsider.username}/cap/", {"monthly_cap": "1"}).status_code == 404
    assert login(outsider).post("/team/members/mark/cap/", {"monthly_cap": "1"}).status_code == 404


# -- low balance --------------------------------------------------------------------


def test_owners_get_one_email_each_time_the_balance_crosses_the_threshold(
        membership, team, owner, empty_queue, django_capture_on_commit_callbacks):
    team.low_balance_threshold = 950_000
    team.save()
    with_commit = django_capture_on_commit_callbacks
    with with_commit(execute=True):
        start_fibo(membership, PARAMS)  # $1.00 → $0.96 available: still above
    assert run_queued_email() == []
    with with_commit(execute=True):
        start_fibo(membership, PARAMS)  # → $0.92: crosses
        start_fibo(membership, PARAMS)  # → $0.88: already below, no second email
    assert mail.outbox == []  # queued, not sent by the submission
    assert run_queued_email() == ["sent"]
    [message] = mail.outbox
    assert message.to == [owner.email] and "$0.92 available" in message.body
    assert message.subject == "Bria Studio: Acme is below $0.95"
    with with_commit(execute=True):
        money.top_up(team, 1_000_000, reason="refill", key="refill")
        start_fibo(membership, PARAMS)
    assert run_queued_email() == []
    with with_commit(execute=True):
        for _ in range(24):
            start_fibo(membership, PARAMS)  # back down through it
    assert run_queued_email() == ["sent"] and len(mail.outbox) == 2


def test_a_submission_that_is_rolled_back_queues_no_email(membership, team, empty_queue):
    team.low_balance_threshold = 990_000
    team.save()
    with pytest.raises(RuntimeError), transaction.atomic():
        start_fibo(membership, PARAMS)  # crosses the threshold, then the transaction fails
        raise RuntimeError
    assert run_queued_email() == [] and mail.outbox == []


def test_the_banner_shows_below_the_threshold(team, member):
    team.low_balance_threshold = 2_000_000
    team.save()
    html = login(member).get("/studio/").content.decode()
    assert "wallet is low: $1.00 available, below the $2.00 warning level" in html
    assert "Ask an owner to top it up." in html


def test_only_owners_set_the_threshold(team, owner, member):
    assert login(member).post("/team/threshold/", {"low_balance_threshold": "5"}).status_code == 403
    assert login(owner).post("/team/threshold/", {"low_balance_threshold": "5"}).status_code == 302
    team.refresh_from_db()
    assert team.low_balance_threshold == 5_000_000


# -- append-only --------------------------------------------------------------------


def test_the_ledger_refuses_bulk_updates_and_deletes(team):
    with pytest.raises(ValueError):
        Entry.objects.filter(team=team).update(memo="x")
    with pytest.raises(ValueError):
        Entry.objects.filter(team=team).delete()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the database trigger is PostgreSQL's")
def test_postgresql_refuses_raw_updates_and_deletes(team):
    for sql in ("UPDATE billing_entry SET memo = 'x'", "DELETE FROM billing_entry"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql)
    assert Entry.objects.filter(team=team).count() == 1
