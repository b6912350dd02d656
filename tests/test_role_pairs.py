"""Trust inside a team, pair by pair: every action one member takes on another (read from
studio.accounts.roles' table, so a new action without a case here fails) is tried by
each role on each role, and on oneself, through the real page. What the table allows
happens; what it refuses is a 403 that says why, and nothing in the database changes.

The team has two people of each role (owner1, owner2, admin1, …): the actor is always
`<role>1`, the target another member (`<role>2`) or the actor themselves. Everyone starts
with a $50.00 monthly cap, so clearing one is raising a limit."""

import datetime

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from django.utils.html import escape

from studio.accounts.models import Invitation, Membership, Team, hash_token
from studio.accounts.roles import ON_OTHERS, ON_SELF, Action, Role, may_act, refusal
from studio.activity.models import Event
from studio.api.models import APIKey
from tests.conftest import login, make_user

CAP = 50_000_000  # $50.00
ROLES = (Role.OWNER, Role.ADMIN, Role.MEMBER, Role.VIEWER)


def new_role(target):
    """A role change any manager may grant, so that only changing the target's role decides."""
    return Role.MEMBER if target.role == Role.VIEWER else Role.VIEWER


def nothing(team, subject):
    return None


def their_key(team, target):
    return APIKey.issue(team, target.user, "their script")[0]  # as the operator would


def an_invitation(team, role):
    """Made straight in the database: no page may invite anyone as an owner."""
    return Invitation.objects.create(team=team, role=role, token_hash=hash_token(f"token-{role}"),
                                     expires_at=timezone.now() + datetime.timedelta(days=7))


def change_role(client, target, _):
    return client.post(f"/team/members/{target.user.username}/role/", {"role": new_role(target)})


def remove(client, target, _):
    return client.post(f"/team/members/{target.user.username}/remove/")


def clear_cap(client, target, _):
    return client.post(f"/team/members/{target.user.username}/cap/", {"monthly_cap": ""})


def issue_key(client, target, _):
    return client.post("/team/api-keys/new/", {"name": "script", "member": target.user.username})


def revoke_key(client, target, key):
    return client.post(f"/team/api-keys/{key.code}/revoke/")


def transfer(client, target, _):
    return client.post("/team/transfer/", {"username": target.user.username})


def invite(client, role, _):
    return client.post("/team/invitations/", {"role": role, "days": "7", "email": ""})


def revoke_invitation(client, role, invitation):
    return client.post(f"/team/invitations/{invitation.code}/revoke/")


def reload(membership):
    return Membership.objects.filter(pk=membership.pk).first()


# route name → (the action it asks the table about, what the case needs first, the
# request, whether what it asks for happened)
ROUTES = {
    "change_role": (Action.CHANGE_ROLE, nothing, change_role, lambda target, _: reload(target).role == new_role(target)),
    "remove_member": (Action.REMOVE, nothing, remove, lambda target, _: reload(target) is None),
    "set_cap": (Action.SET_CAP, nothing, clear_cap, lambda target, _: reload(target).monthly_cap is None),
    "api_key_create": (Action.ISSUE_KEY, nothing, issue_key,
                       lambda target, _: APIKey.objects.filter(member=target.user).exists()),
    "api_key_revoke": (Action.REVOKE_KEY, their_key, revoke_key,
                       lambda _, key: APIKey.objects.get(pk=key.pk).revoked_at is not None),
    "transfer_ownership": (Action.TRANSFER, nothing, transfer, lambda target, _: reload(target).role == Role.OWNER),
    "invite": (Action.GRANT, nothing, invite, lambda role, _: Invitation.objects.filter(role=role).exists()),
    "revoke_invitation": (Action.GRANT, an_invitation, revoke_invitation,
                          lambda _, invitation: Invitation.objects.get(pk=invitation.pk).revoked_at is not None),
}

# The team pages' other writes and pages, which act on no member.
NOT_ON_A_MEMBER = {
    "team": "the page",
    "api_keys": "the list of keys",
    "set_threshold": "a setting of the team's wallet (owners only)",
    "set_two_factor": "a setting of the whole team (owners only), tests/test_mfa.py",
    "leave_team": "leaving: anyone but the last owner, tests/test_teams.py",
    "delete_team": "closing the whole team (owners only)",
}


# Some pages are for a role before any member is named (the API keys and invitations for
# owners and admins, a transfer for owners): they refuse the others with these words.
PAGES_ASK_FIRST = {
    Role.ADMIN: ["Only the team's owners can do this."],
    Role.MEMBER: ["Only the team's owners and admins can do this.", "Only the team's owners can do this."],
    Role.VIEWER: ["Only the team's owners and admins can do this.", "Only the team's owners can do this."],
}


def cases():
    """(route, actor's role, target's role, on oneself) for every pair, from the table."""
    for route, (action, *_) in ROUTES.items():
        for actor in ROLES:
            for target in ROLES:
                yield route, actor, target, False
            if action != Action.GRANT:  # a role given, not a person: there is no "self"
                yield route, actor, actor, True


def case_id(case):
    route, actor, target, on_self = case
    return f"{route}:{actor}-on-{'self' if on_self else target}"


@pytest.fixture
def team(db):
    users = {(role, n): make_user(f"{role}{n}") for role in ROLES for n in (1, 2)}
    team = Team.create_for(users[Role.OWNER, 1], "Acme", slug="acme")
    for (role, n), user in users.items():
        if (role, n) != (Role.OWNER, 1):
            Membership.objects.create(team=team, user=user, role=role)
    team.memberships.update(monthly_cap=CAP)
    return team


def state(team):
    """Everything a refused action must leave as it was."""
    return (
        sorted(Membership.objects.filter(team=team).values_list("user__username", "role", "monthly_cap")),
        sorted(Invitation.objects.filter(team=team).values_list("role", "revoked_at")),
        sorted(APIKey.objects.filter(team=team).values_list("member__username", "revoked_at")),
        Event.objects.filter(team=team).count(),
    )


@pytest.mark.parametrize("case", list(cases()), ids=case_id)
def test_each_role_acts_on_each_role_as_the_table_says(case, team):
    route, actor_role, target_role, on_self = case
    action, prepare, request, happened = ROUTES[route]
    actor = team.memberships.select_related("user").get(user__username=f"{actor_role}1")
    target = actor if on_self else team.memberships.select_related("user").get(user__username=f"{target_role}2")
    subject = target_role if action == Action.GRANT else target
    prepared = prepare(team, subject)
    before = state(team)
    response = request(login(actor.user), subject, prepared)
    if may_act(actor_role, target_role, action, on_self=on_self):
        assert response.status_code in (200, 302), f"{case_id(case)} → {response.status_code}"
        assert happened(subject, prepared), f"{case_id(case)}: allowed, but it did not happen"
        return
    assert response.status_code == 403, f"{case_id(case)} → {response.status_code}, refused by the table"
    assert state(team) == before, f"{case_id(case)}: refused, but something changed"
    page = response.content.decode()
    reason = escape(refusal(actor_role, target_role, action, on_self=on_self))
    assert reason in page or any(escape(words) in page for words in PAGES_ASK_FIRST.get(actor_role, ())), page


def test_the_table_covers_every_action_the_team_pages_expose():
    assert set(team_routes()) == set(ROUTES) | set(NOT_ON_A_MEMBER), "a team page without a role-pair case"
    assert {action for action, *_ in ROUTES.values()} == set(Action) == set(ON_OTHERS)
    assert set(ON_SELF) <= set(Action)


def team_routes(resolver=None, prefix=""):
    """The names of the routes under /team/."""
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver) and not pattern.namespace:
            yield from team_routes(pattern, route)
        elif isinstance(pattern, URLPattern) and route.startswith("team/"):
            yield pattern.name
