"""Team API keys: a script acts for a team, as one named member, with the member's role
and caps. The key is shown once; only its hash is stored. A key works only while its
team is active: closing a team revokes its keys, and the lookup refuses an archived
team's all the same."""

import hashlib
import secrets
import uuid
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection, models, transaction
from django.utils import timezone

from studio.accounts.roles import Action
from studio.activity.models import Event, record
from studio.api.ratelimit import check_rate

PREFIX = "bria_"
TOUCH_EVERY = timedelta(minutes=1)


def hash_key(raw):
    return hashlib.sha256(raw.encode()).hexdigest()


class APIKey(models.Model):
    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey("accounts.Team", models.CASCADE, related_name="api_keys")
    # The member the key acts as: jobs run through it are theirs, for caps and audit.
    member = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=80)
    key_hash = models.CharField(max_length=64, unique=True)
    # The first characters, to tell keys apart in lists (not enough to use one).
    prefix = models.CharField(max_length=16)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["team", "-created_at"])]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    @transaction.atomic
    def issue(cls, team, member, name, created_by=None):
        """A new key; returns (key, raw). The raw key cannot be recovered later. A member
        issuing it must be allowed to act as `member` (studio.accounts.roles); without
        `created_by` it is the operator's, from the command line."""
        if created_by is not None:
            team.acted_on(created_by, member, Action.ISSUE_KEY)
        raw = PREFIX + secrets.token_urlsafe(32)
        key = cls.objects.create(team=team, member=member, name=name, key_hash=hash_key(raw), prefix=raw[:12],
                                 created_by=created_by)
        record(team, created_by, Event.Verb.API_KEY_CREATED, f"“{name}” acting as {member.get_username()}",
               key=str(key.code), member=member.get_username())
        return key, raw

    @classmethod
    def authenticate(cls, raw):
        """The live key for `raw`, with its team, its member and the membership it acts
        through, or None. Looked up by hash, so no secret is compared in the database;
        the hash is then compared in constant time."""
        if not raw or not raw.startswith(PREFIX):
            return None
        key = _live_key(hash_key(raw))
        if key is None or not secrets.compare_digest(key.key_hash, hash_key(raw)):
            return None
        return key

    def membership(self):
        """The member's membership of the key's team (None once they have left it)."""
        if not hasattr(self, "_membership"):
            self._membership = self.team.memberships.select_related("team", "user").filter(user=self.member).first()
        return self._membership

    def open_request(self):
        """What both APIs do with an authenticated key before the view: count the request
        against the rate limit (RateLimited), find the membership it acts as
        (PermissionDenied once the member has left) and note the use."""
        check_rate(self)
        membership = self.membership()
        if membership is None:
            raise PermissionDenied("The key's member is no longer in the team.")
        self.touch()
        return membership

    def touch(self):
        """Note the use. Written at most once a minute (the page says "5 minutes ago"), so
        a busy script does not add a second write, on one hot row, to every request."""
        now = timezone.now()
        if self.last_used_at is None or now - self.last_used_at >= TOUCH_EVERY:
            APIKey.objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now

    @transaction.atomic
    def revoke(self, actor):
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])
            record(self.team, actor, Event.Verb.API_KEY_REVOKED, f"“{self.name}”", key=str(self.code))


# Every API request starts by finding its key, so that is one statement for the key, its
# team, its member and the membership (None once the member has left): written out here,
# because building the equivalent select_related() query costs the ORM several times
# what PostgreSQL spends answering it (see README, "Benchmark"). The column lists come
# from the models, so the statement follows their fields.
def _live_key(key_hash):
    sql, parts = _live_key_statement()
    with connection.cursor() as cursor:
        cursor.execute(sql, [key_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    objects, start = [], 0
    for model, names, converters in parts:
        values = list(row[start:start + len(names)])
        start += len(names)
        if values[0] is None:  # no membership row
            objects.append(None)
            continue
        # What the ORM does to a column's value (UUIDs and datetimes on SQLite, say).
        for i, (col, functions) in converters:
            for convert in functions:
                values[i] = convert(values[i], col, connection)
        objects.append(model.from_db(connection.alias, names, values))
    key, team, member, membership = objects
    key.team, key.member = team, member
    if membership is not None:
        membership.team, membership.user = team, member
    key._membership = membership
    return key


@cache
def _live_key_statement():
    from studio.accounts.models import Membership, Team

    user = APIKey._meta.get_field("member").related_model
    quote = connection.ops.quote_name
    parts, columns = [], []
    for model, alias in ((APIKey, "k"), (Team, "t"), (user, "u"), (Membership, "m")):
        fields = model._meta.concrete_fields
        cols = [f.get_col(alias) for f in fields]
        converters = [(i, (col, connection.ops.get_db_converters(col) + col.get_db_converters(connection)))
                      for i, col in enumerate(cols)]
        parts.append((model, [f.attname for f in fields], [c for c in converters if c[1][1]]))
        columns += [f"{alias}.{quote(f.column)}" for f in fields]

    def table(model):
        return quote(model._meta.db_table)

    def column(alias, model, name):
        return f"{alias}.{quote(model._meta.get_field(name).column)}"

    key = {name: column("k", APIKey, name) for name in ("team", "member", "key_hash", "revoked_at")}
    sql = (
        f"SELECT {', '.join(columns)} FROM {table(APIKey)} k"
        f" JOIN {table(Team)} t ON {column('t', Team, 'id')} = {key['team']}"
        f" JOIN {table(user)} u ON {column('u', user, 'id')} = {key['member']}"
        f" LEFT JOIN {table(Membership)} m"
        f" ON {column('m', Membership, 'team')} = {key['team']} AND {column('m', Membership, 'user')} = {key['member']}"
        f" WHERE {key['key_hash']} = %s AND {key['revoked_at']} IS NULL AND {column('t', Team, 'archived_at')} IS NULL"
    )
    return sql, tuple(parts)
