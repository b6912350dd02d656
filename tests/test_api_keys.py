"""Team API keys: issued by owners and admins (or the command), shown once, stored
hashed, revocable, acting as a named member."""

import re

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command

from studio.accounts.models import Membership, Role, Team
from studio.accounts.roles import Refused
from studio.activity.models import Event
from studio.api.models import APIKey, hash_key
from studio.api.ratelimit import RateLimited, _redis
from tests.conftest import login, make_user


def test_an_owner_issues_a_key_shown_once_and_stored_hashed(owner, member, team):
    client = login(owner)
    response = client.post("/team/api-keys/new/", {"name": "catalogue script", "member": "mark"})
    html = response.content.decode()
    raw = re.search(r'id="new-key" class="mono" type="text" readonly value="([^"]+)"', html).group(1)
    assert response["Cache-Control"] == "no-store"
    key = APIKey.objects.get()
    assert (key.name, key.member, key.team, key.created_by) == ("catalogue script", member, team, owner)
    assert key.key_hash == hash_key(raw) and raw not in (key.key_hash, key.prefix)
    assert len(raw) >= 40 and raw.startswith("bria_")
    assert raw not in client.get("/team/api-keys/").content.decode(), "never shown again"
    assert APIKey.authenticate(raw) == key
    assert Event.objects.filter(verb="api_key_created", actor=owner).exists()


def test_a_revoked_or_wrong_key_does_not_authenticate(owner, team):
    key, raw = APIKey.issue(team, owner, "x", created_by=owner)
    assert APIKey.authenticate(raw[:-1] + ("A" if raw[-1] != "A" else "B")) is None
    assert APIKey.authenticate("") is None and APIKey.authenticate("not-a-key") is None
    assert login(owner).post(f"/team/api-keys/{key.code}/revoke/").status_code == 302
    assert APIKey.authenticate(raw) is None
    assert Event.objects.filter(verb="api_key_revoked").count() == 1


def test_the_last_use_is_recorded(owner, team):
    key, _ = APIKey.issue(team, owner, "x")
    key.touch()
    key.refresh_from_db()
    assert key.last_used_at is not None
    assert "never" not in login(owner).get("/team/api-keys/").content.decode().split("x</td>")[1][:300]


@pytest.mark.parametrize("data, message", [
    ({"name": "", "member": "mark"}, "This field is required."),
    ({"name": "x", "member": "oscar"}, "Select a valid choice."),
])
def test_bad_input_issues_nothing(owner, member, outsider, data, message):
    response = login(owner).post("/team/api-keys/new/", data)
    assert response.status_code == 400 and message in response.content.decode()
    assert not APIKey.objects.exists()


def test_members_and_viewers_cannot_manage_keys(owner, member, viewer, team):
    key, _ = APIKey.issue(team, owner, "x")
    for user in (member, viewer):
        client = login(user)
        assert client.get("/team/api-keys/").status_code == 403
        assert client.post("/team/api-keys/new/", {"name": "y", "member": "mark"}).status_code == 403
        assert client.post(f"/team/api-keys/{key.code}/revoke/").status_code == 403
    assert APIKey.objects.count() == 1 and APIKey.objects.get().revoked_at is None


def test_another_teams_key_is_404(owner, outsider, team):
    key, raw = APIKey.issue(team, owner, "x")
    assert login(outsider).post(f"/team/api-keys/{key.code}/revoke/").status_code == 404
    assert APIKey.authenticate(raw) == key


def test_the_command_prints_the_key_as_its_last_line(team, owner, member, capsys):
    call_command("create_api_key", "acme", "--name", "ci", "--member", "mark")
    raw = capsys.readouterr().out.strip().splitlines()[-1]
    key = APIKey.authenticate(raw)
    assert (key.name, key.member) == ("ci", member)
    call_command("create_api_key", "acme")
    assert APIKey.authenticate(capsys.readouterr().out.strip().splitlines()[-1]).member == owner


@pytest.mark.parametrize("args, message", [(["nope"], "no team with slug 'nope'"),
                                           (["acme", "--member", "oscar"], "'oscar' is not a member of acme")])
def test_the_command_refuses_bad_input(team, outsider, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_api_key", *args)
    assert not APIKey.objects.exists()


def test_a_key_comes_with_its_team_member_and_membership_in_one_statement(owner, member, team,
                                                                           django_assert_num_queries):
    key, raw = APIKey.issue(team, member, "x")
    key.touch()
    with django_assert_num_queries(1):
        found = APIKey.authenticate(raw)
        membership = found.membership()
        assert (membership.team, membership.user, found.team.name, found.member.username) == (
            team, member, team.name, member.username)
    expected = [APIKey.objects.get(pk=key.pk), Team.objects.get(pk=team.pk), User.objects.get(pk=member.pk),
                Membership.objects.get(team=team, user=member)]
    for loaded, reference in zip([found, found.team, found.member, membership], expected, strict=True):
        for field in type(reference)._meta.concrete_fields:
            value, want = getattr(loaded, field.attname), getattr(reference, field.attname)
            assert (value, type(value)) == (want, type(want)), field  # UUIDs, aware datetimes, on every database


def test_a_key_whose_member_left_the_team_has_no_membership(owner, member, team):
    key, raw = APIKey.issue(team, member, "x")
    Membership.objects.filter(team=team, user=member).delete()
    found = APIKey.authenticate(raw)
    assert found == key and found.membership() is None
    with pytest.raises(PermissionDenied, match="no longer in the team"):
        found.open_request()


def test_the_rate_counter_expires_with_its_window(owner, team, settings, rate_clock):
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    key, _ = APIKey.issue(team, owner, "x")
    for _ in range(3):
        key.open_request()
    with pytest.raises(RateLimited) as exc:
        key.open_request()
    assert exc.value.retry_after == 30  # the rest of the minute, on the stopped clock
    counters = _counter_names(key)
    assert counters, "the counter is in the cache"
    if _redis() is not None:
        assert all(0 < _redis().ttl(name) <= 120 for name in counters)


def _counter_names(key):
    client = _redis()
    if client is None:
        return [name for name in cache._cache if f"api-rate:{key.code}:" in name]
    return [name.decode() for name in client.scan_iter(f"*api-rate:{key.code}:*")]


# Who may make and revoke a key: a key acts as its member, so it is an action on them
# (studio.accounts.roles; every pair is in tests/test_role_pairs.py).

@pytest.fixture
def admin(team):
    user = make_user("adam")
    Membership.objects.create(team=team, user=user, role=Role.ADMIN, monthly_cap=10_000)  # $0.01
    return user


def test_an_admin_cannot_make_a_key_acting_as_an_owner_to_escape_their_cap(owner, admin, team):
    response = login(admin).post("/team/api-keys/new/", {"name": "escape", "member": "olivia"})
    assert response.status_code == 403
    assert "Only the team&#x27;s owners can make an API key acting as an owner." in response.content.decode()
    Membership.objects.create(team=team, user=make_user("alex"), role=Role.ADMIN)
    assert login(admin).post("/team/api-keys/new/", {"name": "escape", "member": "alex"}).status_code == 403
    assert not APIKey.objects.exists() and not Event.objects.filter(verb="api_key_created").exists()


def test_an_admin_makes_keys_acting_as_themselves_members_and_viewers(admin, member, viewer, team):
    client = login(admin)
    for username in ("adam", "mark", "vera"):
        assert client.post("/team/api-keys/new/", {"name": "k", "member": username}).status_code == 200
    assert sorted(APIKey.objects.values_list("member__username", flat=True)) == ["adam", "mark", "vera"]
    menu = client.get("/team/api-keys/").context["form"]["member"].field.widget.choices
    assert [value for value, _ in menu] == ["", "adam", "mark", "vera"]  # not olivia


def test_the_model_refuses_a_key_the_actor_may_not_make(owner, admin, team):
    with pytest.raises(Refused, match="Only the team's owners can make an API key acting as an owner"):
        APIKey.issue(team, owner, "escape", created_by=admin)
    assert not APIKey.objects.exists() and not Event.objects.filter(verb="api_key_created").exists()


def test_an_admin_cannot_revoke_a_key_acting_as_an_owner(owner, admin, member, team):
    owners, _ = APIKey.issue(team, owner, "owner's script", created_by=owner)
    members, _ = APIKey.issue(team, member, "mark's script", created_by=owner)
    client = login(admin)
    page = client.get("/team/api-keys/").content.decode()
    assert f"/team/api-keys/{members.code}/revoke/" in page and f"/team/api-keys/{owners.code}/revoke/" not in page
    response = client.post(f"/team/api-keys/{owners.code}/revoke/")
    assert response.status_code == 403 and "revoke an API key acting as an owner" in response.content.decode()
    owners.refresh_from_db()
    assert owners.revoked_at is None and not Event.objects.filter(verb="api_key_revoked").exists()


def test_a_key_whose_member_left_is_any_managers_to_revoke(admin, team):
    alex = make_user("alex")
    Membership.objects.create(team=team, user=alex, role=Role.ADMIN)
    key, _ = APIKey.issue(team, alex, "alex's script", created_by=alex)
    team.leave(alex)
    assert login(admin).post(f"/team/api-keys/{key.code}/revoke/").status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
