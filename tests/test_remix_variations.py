"""Remix (the form prefilled with a result's parameters and seed) and variations (the
same prompt with N new seeds, held together)."""

import pytest

from jobs.actions import start_fibo
from jobs.models import Job
from studio.accounts.models import Membership
from studio.billing.models import Wallet
from tests.conftest import login

PARAMS = {"prompt": "a lighthouse at dusk", "aspect_ratio": "16:9", "seed": 5555, "steps_num": 42,
          "guidance_scale": "6.5"}


@pytest.fixture
def source(membership):
    return start_fibo(membership, PARAMS)


def test_remix_fills_the_form_with_the_parameters_and_seed(member, source):
    html = login(member).get(f"/studio/?remix={source.code}").content.decode()
    assert "a lighthouse at dusk</textarea>" in html
    assert 'value="16:9" selected' in html
    assert 'name="seed" value="5555"' in html and 'name="steps_num" value="42"' in html
    assert 'name="guidance_scale" value="6.5"' in html


def test_remixing_another_teams_job_is_404(outsider, source):
    assert login(outsider).get(f"/studio/?remix={source.code}").status_code == 404


def test_a_garbled_remix_code_is_ignored(member, source):
    assert login(member).get("/studio/?remix=nonsense").status_code == 200


def test_variations_hold_n_new_seeds_together(member, team, source):
    client = login(member)
    response = client.post(f"/jobs/{source.code}/variations/", {"count": "4"})
    assert response.status_code == 302
    variations = Job.objects.exclude(pk=source.pk)
    assert variations.count() == 4
    assert {j.params["prompt"] for j in variations} == {"a lighthouse at dusk"}
    assert {j.params["steps_num"] for j in variations} == {42}
    seeds = [j.params["seed"] for j in variations]
    assert len(set(seeds)) == 4 and 5555 not in seeds
    assert Wallet.objects.get(team=team).held == 5 * 40_000
    assert "4 variations started for $0.16." in client.get("/studio/").content.decode()


@pytest.mark.parametrize("count", ["0", "9", "x", ""])
def test_a_bad_count_changes_nothing(member, source, count):
    login(member).post(f"/jobs/{source.code}/variations/", {"count": count})
    assert Job.objects.count() == 1


def test_variations_beyond_the_balance_create_none_and_say_the_total(member, team, membership, source):
    for _ in range(21):
        start_fibo(membership, PARAMS)  # $0.88 held of $1.00: $0.12 left
    client = login(member)
    client.post(f"/jobs/{source.code}/variations/", {"count": "4"})
    assert Job.objects.count() == 22
    assert "This costs $0.16 but the team wallet has only $0.12 available." in client.get("/studio/").content.decode()


def test_variations_over_the_cap_create_none(member, team, source):
    Membership.objects.filter(team=team, user=member).update(monthly_cap=100_000)  # $0.10; $0.04 spent
    client = login(member)
    client.post(f"/jobs/{source.code}/variations/", {"count": "2"})
    assert Job.objects.count() == 1
    assert "This costs $0.08, over your monthly spend cap of $0.10: $0.06 is left this month." in \
        client.get("/studio/").content.decode()


def test_viewers_and_outsiders_cannot_make_variations(viewer, outsider, source):
    assert login(viewer).post(f"/jobs/{source.code}/variations/", {"count": "1"}).status_code == 403
    assert login(outsider).post(f"/jobs/{source.code}/variations/", {"count": "1"}).status_code == 404
    assert Job.objects.count() == 1
