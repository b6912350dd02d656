"""Who may act on whom inside a team: one table, asked by every view and model method
that changes a member (their role, their cap, their membership, an API key acting as
them, ownership). The views ask first, to answer 403 with refusal()'s words; the models
ask again under the team's lock. (The create_api_key command is the operator's, outside
the team's roles.)

The rule, read off the table below:

- Owners act on anyone, except that an owner's role and membership change only by their
  own hand (they hand over ownership, or leave) and nobody is made an owner except by
  that transfer.
- Admins act on members and viewers only: never on owners, never on another admin.
- Members and viewers act on nobody.
- On oneself, only what raises no limit: an owner may cap their own spend; owners and
  admins may make (and revoke) API keys acting as themselves, which can do nothing they
  cannot. An admin may not touch their own cap (the owners set it), and nobody changes
  their own role or removes themselves (leaving is its own action, open to everyone
  but a team's last owner).

GRANT is the one action whose target is a role rather than a person: the role given by
an invitation or a role change (and taken back when an invitation is revoked). A role
change asks twice: may the actor change this member's role, and may they grant the new one.
"""

from django.core.exceptions import PermissionDenied
from django.db import models


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    MEMBER = "member", "Member"
    ADMIN = "admin", "Admin"
    OWNER = "owner", "Owner"


class Action(models.TextChoices):
    """What one member does to another; the label, with the target's role, says it."""

    CHANGE_ROLE = "change_role", "change the role of {target}"
    GRANT = "grant", "make someone {target}"
    REMOVE = "remove", "remove {target}"
    SET_CAP = "set_cap", "set the spend cap of {target}"
    ISSUE_KEY = "issue_key", "make an API key acting as {target}"
    REVOKE_KEY = "revoke_key", "revoke an API key acting as {target}"
    TRANSFER = "transfer", "hand ownership to {target}"


EVERYONE = frozenset(Role)
BELOW_OWNER = frozenset({Role.ADMIN, Role.MEMBER, Role.VIEWER})
BELOW_ADMIN = frozenset({Role.MEMBER, Role.VIEWER})

# action → actor's role → the roles of the (other) members they may take it on.
ON_OTHERS = {
    Action.CHANGE_ROLE: {Role.OWNER: BELOW_OWNER, Role.ADMIN: BELOW_ADMIN},
    Action.GRANT: {Role.OWNER: BELOW_OWNER, Role.ADMIN: BELOW_ADMIN},
    Action.REMOVE: {Role.OWNER: BELOW_OWNER, Role.ADMIN: BELOW_ADMIN},
    Action.SET_CAP: {Role.OWNER: EVERYONE, Role.ADMIN: BELOW_ADMIN},
    Action.ISSUE_KEY: {Role.OWNER: EVERYONE, Role.ADMIN: BELOW_ADMIN},
    Action.REVOKE_KEY: {Role.OWNER: EVERYONE, Role.ADMIN: BELOW_ADMIN},
    Action.TRANSFER: {Role.OWNER: BELOW_OWNER},
}

# action → the roles that may take it on themselves.
ON_SELF = {
    Action.SET_CAP: frozenset({Role.OWNER}),
    Action.ISSUE_KEY: frozenset({Role.OWNER, Role.ADMIN}),
    Action.REVOKE_KEY: frozenset({Role.OWNER, Role.ADMIN}),
}

# Why nobody at all may take an action on a target of this role, or on themselves.
NOBODY = {
    (Action.CHANGE_ROLE, Role.OWNER): "An owner's role changes only when they hand over ownership.",
    (Action.GRANT, Role.OWNER): "Ownership moves only by transfer: nobody is made an owner otherwise.",
    (Action.REMOVE, Role.OWNER): "An owner is never removed: they hand over ownership, or leave.",
    (Action.TRANSFER, Role.OWNER): "They own the team already.",
}
ON_ONESELF = {
    Action.CHANGE_ROLE: "Nobody changes their own role: an owner hands over ownership, anyone else asks an owner.",
    Action.REMOVE: "To go, leave the team instead.",
    Action.SET_CAP: "Nobody but an owner sets their own spend cap: ask an owner.",
    Action.ISSUE_KEY: "Only the team's owners and admins make API keys.",
    Action.REVOKE_KEY: "Only the team's owners and admins revoke API keys.",
    Action.TRANSFER: "You own the team already.",
}


def may_act(actor_role, target_role, action, *, on_self=False):
    """May a member of `actor_role` take `action` on a member of `target_role` (for
    GRANT: give `target_role`)? `on_self` when the target is the actor."""
    if on_self:
        return actor_role in ON_SELF.get(action, ())
    return target_role in ON_OTHERS[action].get(actor_role, ())


def refusal(actor_role, target_role, action, *, on_self=False):
    """The 403's message when may_act says no: who may, or why nobody does."""
    if on_self:
        return ON_ONESELF[action]
    may = [role for role in (Role.OWNER, Role.ADMIN) if target_role in ON_OTHERS[action].get(role, ())]
    if not may:
        return NOBODY[action, target_role]
    who = " and ".join(f"{role.label.lower()}s" for role in may)
    return f"Only the team's {who} can {Action(action).label.format(target=with_article(target_role))}."


def with_article(role):
    label = Role(role).label.lower()
    return f"an {label}" if label[0] in "aeiou" else f"a {label}"


class Refused(PermissionDenied):
    """A role that may not take this action on this member: a 403, with refusal()'s words."""


def require(actor, target, action):
    """`actor` (a membership) may take `action` on `target` (a membership, or for GRANT
    the role given), else Refused."""
    target_role, on_self = (target, False) if action == Action.GRANT else (target.role, target.pk == actor.pk)
    if not may_act(actor.role, target_role, action, on_self=on_self):
        raise Refused(refusal(actor.role, target_role, action, on_self=on_self))
