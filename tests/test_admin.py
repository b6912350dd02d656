"""What staff may do in the admin to rows the studio writes itself: look at the ledger,
the event log, jobs and webhook deliveries, never add, change or delete them; take a
comment down; revoke an invitation or a share link. Nothing of the kind is ever added in
the admin."""

import pytest

from devtools.emulator.images import render_fibo
from jobs.actions import start_fibo
from jobs.models import WebhookDelivery
from studio.accounts.models import Invitation, Role
from studio.activity.models import Comment, Event, record
from studio.billing.models import Entry, TopUp
from studio.gallery.models import Gallery, ShareLink
from studio.library.models import Asset
from tests.conftest import login

PARAMS = {"prompt": "a lighthouse", "aspect_ratio": "1:1", "steps_num": 30, "guidance_scale": "7.5"}
SHOWN_ONLY = ["billing/wallet", "billing/entry", "billing/topup", "activity/event", "jobs/job",
              "jobs/webhookdelivery"]
NEVER_ADDED = [*SHOWN_ONLY, "activity/comment", "accounts/invitation", "gallery/sharelink"]


@pytest.fixture
def rows(team, owner, membership):
    """One row of each kind."""
    job = start_fibo(membership, PARAMS)
    asset = Asset.from_bytes(render_fibo("x", 1, "1:1"), team=team, role="output", job=job)
    asset.save()
    gallery = Gallery.objects.create(team=team, title="Shared", created_by=owner)
    return {
        "billing/wallet": team.wallet, "billing/entry": Entry.objects.filter(team=team).first(),
        "billing/topup": TopUp.objects.get(team=team), "jobs/job": job,
        "jobs/webhookdelivery": WebhookDelivery.objects.create(job=job, status="PROCESSING", payload={}),
        "activity/event": record(team, owner, Event.Verb.SHARED, "a link"),
        "activity/comment": Comment.objects.create(asset=asset, author=owner, body="lovely"),
        "accounts/invitation": team.invite(owner, Role.MEMBER)[0],
        "gallery/sharelink": ShareLink.create(gallery, owner)[0],
    }


def count(rows):
    return {name: type(row).objects.count() for name, row in rows.items()}


@pytest.mark.parametrize("name", NEVER_ADDED)
def test_staff_never_add_what_the_studio_writes(name, staff, rows):
    before = count(rows)
    client = login(staff)
    assert client.get(f"/admin/{name}/add/").status_code == 403
    assert client.post(f"/admin/{name}/add/", {}).status_code == 403
    assert count(rows) == before


@pytest.mark.parametrize("name", SHOWN_ONLY)
def test_staff_look_at_the_ledger_events_and_jobs_but_never_change_or_delete_them(name, staff, rows):
    row, before = rows[name], count(rows)
    client = login(staff)
    page = client.get(f"/admin/{name}/{row.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert client.post(f"/admin/{name}/{row.pk}/change/", {}).status_code == 403
    assert client.post(f"/admin/{name}/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert count(rows) == before


def test_a_job_cannot_be_rewritten_in_the_admin(staff, rows):
    job = rows["jobs/job"]
    response = login(staff).post(f"/admin/jobs/job/{job.pk}/change/", {"status": "COMPLETED", "price": "1"})
    assert response.status_code == 403
    job.refresh_from_db()
    assert (job.status, job.price) == ("QUEUED", 40_000)


def test_staff_take_a_comment_down_but_never_rewrite_it(staff, rows):
    comment = rows["activity/comment"]
    client = login(staff)
    assert client.post(f"/admin/activity/comment/{comment.pk}/change/", {"body": "edited"}).status_code == 403
    assert Comment.objects.get(pk=comment.pk).body == "lovely"
    assert client.post(f"/admin/activity/comment/{comment.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Comment.objects.filter(pk=comment.pk).exists()


def test_staff_revoke_an_invitation(staff, rows):
    invitation = rows["accounts/invitation"]
    response = login(staff).post("/admin/accounts/invitation/", {
        "action": "revoke", "_selected_action": [invitation.pk]})
    assert response.status_code == 302
    assert Invitation.objects.get(pk=invitation.pk).revoked_at is not None


def test_staff_change_a_share_link(staff, rows):
    link = rows["gallery/sharelink"]
    page = login(staff).get(f"/admin/gallery/sharelink/{link.pk}/change/")
    assert page.status_code == 200 and 'name="revoked_at_0"' in page.content.decode()


def test_members_reach_none_of_it(member, rows):
    client = login(member)
    for name, row in rows.items():
        response = client.get(f"/admin/{name}/{row.pk}/change/")
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), name
