"""Prices are set from now on: a moment that has passed is refused, in the admin and on
every path that saves a price, because jobs already priced at the old rate would then
seem to have been priced at the new one."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from studio.billing import money
from studio.billing.models import Price
from tests.conftest import login

PASSED = "A price can only take effect from now on, and this moment has passed"


def admin_add(client, **fields):
    return client.post("/admin/billing/price/add/", {"model": "fibo", "amount": "42000", **fields})


def split(moment):
    moment = timezone.localtime(moment)
    return {"effective_from_0": f"{moment:%Y-%m-%d}", "effective_from_1": f"{moment:%H:%M:%S}"}


def test_a_price_dated_in_the_past_is_refused_with_a_clear_message(db):
    with pytest.raises(ValidationError) as refused:
        Price.objects.create(model="fibo", amount=99_000, effective_from=timezone.now() - timedelta(hours=1))
    assert PASSED in refused.value.message_dict["effective_from"][0]
    assert not Price.objects.filter(amount=99_000).exists()
    assert money.price_of("fibo") == 40_000


def test_the_models_clean_refuses_it_too(db):
    price = Price(model="rmbg", amount=20_000, effective_from=timezone.now() - timedelta(days=30))
    with pytest.raises(ValidationError) as refused:
        price.full_clean()
    assert list(refused.value.message_dict) == ["effective_from"]


def test_a_price_for_now_takes_effect_as_it_is_saved(db):
    before = timezone.now()
    price = Price.objects.create(model="fibo", amount=45_000)
    assert before <= price.effective_from <= timezone.now()
    assert money.price_of("fibo") == 45_000


def test_a_moment_a_breath_ago_is_now_not_the_past(db):
    """The slack between a form reading the clock and the row being written."""
    price = Price.objects.create(model="fibo", amount=45_000, effective_from=timezone.now() - timedelta(seconds=1))
    assert price.effective_from > timezone.now() - timedelta(seconds=1)
    assert money.price_of("fibo") == 45_000


def test_a_future_price_waits_for_its_moment(db):
    Price.objects.create(model="fibo", amount=50_000, effective_from=timezone.now() + timedelta(days=1))
    assert money.price_of("fibo") == 40_000
    assert money.price_of("fibo", at=timezone.now() + timedelta(days=2)) == 50_000


def test_a_future_price_cannot_be_moved_into_the_past(db):
    price = Price.objects.create(model="fibo", amount=50_000, effective_from=timezone.now() + timedelta(days=1))
    price.effective_from = timezone.now() - timedelta(days=1)
    with pytest.raises(ValidationError):
        price.save()
    price.refresh_from_db()
    assert price.effective_from > timezone.now()


def test_the_admin_refuses_a_past_moment_and_says_why(staff):
    response = admin_add(login(staff), **split(timezone.now() - timedelta(days=1)))
    assert response.status_code == 200
    assert PASSED in response.content.decode()
    assert not Price.objects.filter(amount=42_000).exists()


def test_the_admin_sets_a_future_price(staff):
    response = admin_add(login(staff), **split(timezone.now() + timedelta(days=7)))
    assert response.status_code == 302
    price = Price.objects.get(amount=42_000)
    assert price.created_by == staff and price.effective_from > timezone.now() + timedelta(days=6)


def test_the_admin_takes_an_empty_moment_as_now(staff):
    before = timezone.now()
    response = admin_add(login(staff), effective_from_0="", effective_from_1="")
    assert response.status_code == 302
    assert Price.objects.get(amount=42_000).effective_from >= before
    assert money.price_of("fibo") == 42_000


def test_the_admin_form_does_not_offer_the_moment_it_was_drawn(staff):
    """That moment will have passed when the form is sent, and be refused."""
    html = login(staff).get("/admin/billing/price/add/").content.decode()
    assert 'name="effective_from_0"' in html and f'value="{timezone.localdate():%Y-%m-%d}"' not in html


def test_the_admin_cannot_move_a_future_price_into_the_past(staff):
    price = Price.objects.create(model="rmbg", amount=20_000, effective_from=timezone.now() + timedelta(days=3))
    response = login(staff).post(f"/admin/billing/price/{price.pk}/change/", {
        "model": "rmbg", "amount": "20000", **split(timezone.now() - timedelta(days=3))})
    assert response.status_code == 200 and PASSED in response.content.decode()
    price.refresh_from_db()
    assert price.effective_from > timezone.now()


def test_only_staff_reach_the_price_list(member):
    response = admin_add(login(member), **split(timezone.now() + timedelta(days=7)))
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert not Price.objects.filter(amount=42_000).exists()
