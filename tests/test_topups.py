"""Top-ups by staff: the admin action, the command, the idempotency key and the
first top-up bonus."""

import re

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from studio.accounts.models import Team
from studio.billing import money
from studio.billing.models import Entry, TopUp, Wallet
from tests.conftest import login, make_user


@pytest.fixture
def fresh(db):
    return Team.create_for(make_user("fiona"), "Fresh", slug="fresh")


def balance(team):
    return Wallet.objects.get(team=team).balance


def test_the_first_top_up_earns_the_bonus_as_its_own_entry(fresh, staff):
    topup = money.top_up(fresh, 10_000_000, actor=staff, reason="invoice 1", key="k1")
    assert balance(fresh) == 15_000_000
    kinds = list(Entry.objects.filter(team=fresh).order_by("id").values_list("kind", "balance_delta", "topup", "actor"))
    assert kinds == [("topup", 10_000_000, topup.pk, staff.pk), ("bonus", 5_000_000, topup.pk, staff.pk)]


def test_later_top_ups_earn_no_bonus(fresh):
    money.top_up(fresh, 1_000_000, reason="first", key="k1")
    money.top_up(fresh, 1_000_000, reason="second", key="k2")
    assert balance(fresh) == 7_000_000
    assert Entry.objects.filter(team=fresh, kind="bonus").count() == 1


@override_settings(FIRST_TOPUP_BONUS_MICROS=0)
def test_the_bonus_can_be_switched_off(fresh):
    money.top_up(fresh, 1_000_000, reason="first", key="k1")
    assert balance(fresh) == 1_000_000


def test_the_same_top_up_submitted_twice_is_booked_once(fresh):
    assert money.top_up(fresh, 2_000_000, reason="invoice 9", key="inv-9")
    assert money.top_up(fresh, 2_000_000, reason="invoice 9", key="inv-9") is None
    assert TopUp.objects.filter(team=fresh).count() == 1
    assert balance(fresh) == 7_000_000


@pytest.mark.parametrize("amount, reason", [(0, "x"), (-5, "x"), (1_000, "   ")])
def test_a_bad_top_up_books_nothing(fresh, amount, reason):
    with pytest.raises(ValueError):
        money.top_up(fresh, amount, reason=reason, key="bad")
    assert not Entry.objects.filter(team=fresh).exists()


def test_the_command_tops_up_with_actor_and_reason(fresh, staff, capsys):
    call_command("topup", "fresh", "12.50", "--reason", "bank transfer 42", "--by", staff.username, "--key", "bt-42")
    call_command("topup", "fresh", "12.50", "--reason", "bank transfer 42", "--by", staff.username, "--key", "bt-42")
    out = capsys.readouterr().out
    assert "booked; balance $17.50" in out and "already booked" in out
    topup = TopUp.objects.get()
    assert (topup.amount, topup.actor, topup.reason) == (12_500_000, staff, "bank transfer 42")


@pytest.mark.parametrize("args, message", [
    (["nope", "5", "--reason", "x"], "no team with slug 'nope'"),
    (["fresh", "five", "--reason", "x"], "AMOUNT must be a dollar amount"),
    (["fresh", "-5", "--reason", "x"], "AMOUNT must be positive"),
    (["fresh", "0.0000001", "--reason", "x"], "at most six decimals"),
    (["fresh", "5", "--reason", " "], "--reason must say why"),
    (["fresh", "5", "--reason", "x", "--by", "fiona"], "--by must name a staff user"),
])
def test_the_command_refuses_bad_input_and_books_nothing(fresh, args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("topup", *args)
    assert not Entry.objects.exists()


def test_staff_top_up_through_the_admin_action(fresh, staff):
    client = login(staff)
    response = client.post("/admin/accounts/team/", {"action": "top_up", "_selected_action": [fresh.pk]})
    assert response.status_code == 302 and response["Location"] == f"/admin/accounts/team/{fresh.pk}/topup/"
    form = client.get(response["Location"]).content.decode()
    key = re.search(r'name="idempotency_key" value="([^"]+)"', form).group(1)
    data = {"amount": "20", "reason": "card payment 7", "idempotency_key": key}
    assert client.post(f"/admin/accounts/team/{fresh.pk}/topup/", data).status_code == 302
    assert client.post(f"/admin/accounts/team/{fresh.pk}/topup/", data).status_code == 302  # double submit
    assert balance(fresh) == 25_000_000
    topup = TopUp.objects.get()
    assert (topup.actor, topup.reason) == (staff, "card payment 7")


def test_the_admin_top_up_form_rejects_bad_amounts(fresh, staff):
    response = login(staff).post(f"/admin/accounts/team/{fresh.pk}/topup/",
                                 {"amount": "-1", "reason": "x", "idempotency_key": "k"})
    assert response.status_code == 200 and "errorlist" in response.content.decode()
    assert not TopUp.objects.exists()


def test_members_cannot_reach_the_admin_top_up(fresh, owner):
    response = login(owner).get(f"/admin/accounts/team/{fresh.pk}/topup/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_admin_cannot_edit_or_delete_ledger_entries(team, staff):
    entry = Entry.objects.filter(team=team).first()
    client = login(staff)
    assert client.get("/admin/billing/entry/add/").status_code == 403
    assert client.post(f"/admin/billing/entry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get(f"/admin/billing/entry/{entry.pk}/change/").status_code == 200  # view only
    assert client.post(f"/admin/billing/entry/{entry.pk}/change/", {"memo": "x"}).status_code == 403
    assert Entry.objects.get(pk=entry.pk).memo == entry.memo
