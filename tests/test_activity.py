"""A team's activity as its members see it: the feed (newest first, live, "load more", a
fixed number of queries), the audit log (owners of the team and staff, filters, CSV,
append-only), comments on results (who may read, write and delete them), and what other
teams and anonymous visitors get."""

import csv
import datetime
import functools
import html as html_
import io
import re
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.test import Client

from devtools.emulator.images import render_fibo
from jobs.actions import start_fibo
from studio.accounts.models import Membership, Role, Team
from studio.activity.models import AUDITED, Comment, Event, record
from studio.billing import money
from studio.library.models import Asset
from tests.conftest import login, make_user

HX = {"HTTP_HX_REQUEST": "true"}
GENERATED = Event.Verb.GENERATED



@pytest.fixture
def admin(team):
    user = make_user("ada")
    Membership.objects.create(team=team, user=user, role=Role.ADMIN)
    return user


@pytest.fixture
def other(outsider):
    return Team.objects.get(slug="other")


def at(text):
    return datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.UTC)


def event(team, actor, verb=GENERATED, summary="", when=None, **data):
    """An event as the code records it; `when` backdates it."""
    if when is None:
        return record(team, actor, verb, summary, **data)
    with mock.patch("django.utils.timezone.now", return_value=when):
        return record(team, actor, verb, summary, **data)


@functools.cache
def png():
    return render_fibo("x", 3, "1:1")


def image(team, user, job=None):
    asset = Asset.from_bytes(png(), team=team, role="output" if job else "input", job=job, created_by=user)
    asset.save()
    return asset


@pytest.fixture
def asset(team, member):
    return image(team, member)


def comment(asset, author, body="Lovely light."):
    return Comment.post(asset, author, body)


def feed_lines(response):
    """The feed's lines as text, whitespace squeezed, top to bottom."""
    html = response.content.decode()
    items = re.findall(r'<li class="feed-item[^"]*">(.*?)</li>', html, re.DOTALL)
    return [" ".join(html_.unescape(re.sub(r"<[^>]+>", " ", item)).split()) for item in items]


def csv_rows(response):
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


# The feed.

def test_the_feed_shows_events_newest_first_with_their_actors(owner, member, team):
    event(team, member, GENERATED, "“a red balloon”")
    event(team, owner, Event.Verb.CAP_CHANGED, "mark: $5.00")
    response = login(member).get("/activity/")
    assert response.status_code == 200
    lines = feed_lines(response)
    assert lines[0].startswith("olivia changed a spend cap mark: $5.00 ·")
    assert lines[1].startswith("mark generated an image “a red balloon” ·")
    # The fixture's top-up was booked by the studio itself (no actor).
    assert lines[2].startswith("studio topped up the wallet $1.00: test credit ·")
    assert len(lines) == 3


def test_a_viewer_reads_the_feed(viewer, member, team):
    event(team, member, GENERATED, "“a red balloon”")
    response = login(viewer).get("/activity/")
    assert response.status_code == 200
    assert "a red balloon" in response.content.decode()


def test_a_real_job_appears_in_the_feed_linked_to_it(membership, member):
    job = start_fibo(membership, {"prompt": "a paper boat", "aspect_ratio": "1:1"})
    response = login(member).get("/activity/")
    assert feed_lines(response)[0].startswith("mark generated an image “a paper boat” ·")
    assert f'<a href="/jobs/{job.code}/">generated an image</a>' in response.content.decode()


def test_a_real_top_up_appears_in_the_feed_and_the_audit_log(owner, team, settings):
    settings.FIRST_TOPUP_BONUS_MICROS = 0
    money.top_up(team, 1_000_000, reason="x", key="k")
    client = login(owner)
    assert feed_lines(client.get("/activity/"))[0].startswith("studio topped up the wallet $1.00: x ·")
    audit = client.get("/audit/").content.decode()
    assert "$1.00: x" in audit
    assert "topup:" in audit


def test_the_page_polls_every_5_seconds_from_its_newest_event(member, team):
    newest = event(team, member)
    html = login(member).get("/activity/").content.decode()
    assert f'hx-get="/activity/?after={newest.pk}" hx-trigger="every 5s"' in html


def test_the_live_poll_returns_only_newer_events(member, owner, team):
    seen = event(team, member, GENERATED, "“seen already”")
    event(team, owner, Event.Verb.CAP_CHANGED, "mark: $2.00")
    newest = event(team, member, GENERATED, "“brand new”")
    response = login(member).get(f"/activity/?after={seen.pk}", **HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "seen already" not in html and "<html" not in html
    # Prepended newest first, and the poller comes back with the new cursor.
    lines = feed_lines(response)
    assert len(lines) == 2
    assert lines[0].startswith("mark generated an image “brand new”")
    assert lines[1].startswith("olivia changed a spend cap")
    assert 'hx-swap-oob="afterbegin:#feed"' in html
    assert f'hx-get="/activity/?after={newest.pk}"' in html


def test_the_live_poll_answers_204_when_nothing_is_new(member, team):
    newest = event(team, member)
    response = login(member).get(f"/activity/?after={newest.pk}", **HX)
    assert response.status_code == 204
    assert response.content == b""


def test_the_live_poll_never_brings_another_teams_events(outsider, other, team, member):
    event(team, member, GENERATED, "“acme secret”")
    response = login(outsider).get("/activity/?after=0", **HX)
    html = response.content.decode()
    assert "acme secret" not in html
    assert "test credit" not in html  # acme's top-up


def test_bad_cursors_are_a_400(member):
    client = login(member)
    assert client.get("/activity/?after=soon").status_code == 400
    assert client.get("/activity/?before=-3").status_code == 400


def test_load_more_brings_the_next_page(member, team):
    events = [event(team, member, GENERATED, f"“prompt {n}”") for n in range(55)]
    client = login(member)
    first = client.get("/activity/")
    lines = feed_lines(first)
    assert len(lines) == 50
    assert "“prompt 54”" in lines[0] and "“prompt 5”" in lines[49]
    oldest_shown = events[5].pk
    link = f'href="/activity/?before={oldest_shown}" hx-get="/activity/?before={oldest_shown}"'
    assert link in first.content.decode()

    more = client.get(f"/activity/?before={oldest_shown}", **HX)
    html = more.content.decode()
    assert "<html" not in html and "feed-poll" not in html
    # The last five prompts, then the fixture's top-up; nothing older, so no more link.
    assert [line.split(" ·")[0] for line in feed_lines(more)] == [
        *(f"mark generated an image “prompt {n}”" for n in range(4, -1, -1)),
        "studio topped up the wallet $1.00: test credit",
    ]
    assert "Load more" not in html


def test_load_more_works_as_a_plain_link(member, team):
    events = [event(team, member) for _ in range(51)]
    response = login(member).get(f"/activity/?before={events[3].pk}")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html
    assert len(feed_lines(response)) == 4  # three events and the top-up
    assert "feed-poll" not in html  # an older page does not follow the team live
    assert 'href="/activity/">← Back to the newest' in html


@pytest.mark.parametrize("count", [3, 120])
def test_the_feed_runs_a_fixed_number_of_queries(member, owner, team, count, django_assert_num_queries):
    for n in range(count):
        event(team, member if n % 2 else owner, GENERATED, f"“{n}”", job="7d4a6a5e-9d7a-4a8e-8c1e-2a1d3e4f5a6b")
    client = login(member)
    # session, user, membership (with team and wallet), the events with their actors
    with django_assert_num_queries(4):
        assert client.get("/activity/").status_code == 200
    last_pk = Event.objects.filter(team=team).order_by("-pk").first().pk
    with django_assert_num_queries(4):
        assert client.get(f"/activity/?before={last_pk}", **HX).status_code == 200


def test_an_outsider_sees_only_their_own_teams_feed(outsider, other, member, team):
    event(team, member, GENERATED, "“acme secret”")
    event(other, outsider, GENERATED, "“oscar's own”")
    response = login(outsider).get("/activity/")
    lines = feed_lines(response)
    assert len(lines) == 1 and "oscar's own" in lines[0]
    assert "acme secret" not in response.content.decode()


def test_the_feed_answers_only_get(member):
    assert login(member).post("/activity/").status_code == 405


# The audit log.

def test_an_owner_reads_the_audited_events_of_their_team(owner, member, team):
    event(team, member, GENERATED, "“not audited”", job="7d4a6a5e-9d7a-4a8e-8c1e-2a1d3e4f5a6b")
    event(team, owner, Event.Verb.CAP_CHANGED, "mark: $5.00", member="mark", cap=5_000_000)
    response = login(owner).get("/audit/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "not audited" not in html
    assert "changed a spend cap" in html and "mark: $5.00" in html
    assert '<span class="audit-key">cap:</span> $5.00' in html
    assert '<span class="audit-key">member:</span> mark' in html
    assert "olivia" in html


@pytest.mark.parametrize("who", ["admin", "member", "viewer"])
def test_admins_members_and_viewers_are_refused_the_audit_log(request, who):
    user = request.getfixturevalue(who)
    client = login(user)
    assert client.get("/audit/").status_code == 403
    assert client.get("/audit/?format=csv").status_code == 403


def test_an_owner_of_another_team_reads_only_their_own(outsider, other, team):
    event(other, outsider, Event.Verb.THRESHOLD_CHANGED, "$3.00")
    html = login(outsider).get("/audit/?team=acme").content.decode()
    assert "$3.00" in html
    assert "test credit" not in html  # acme's top-up, whatever the team filter says


def test_staff_see_every_team_and_filter_by_team(staff, outsider, other, team):
    event(other, outsider, Event.Verb.THRESHOLD_CHANGED, "$3.00")
    client = login(staff)
    html = client.get("/audit/").content.decode()
    assert "test credit" in html and "$3.00" in html
    assert '<option value="acme">' in html and '<option value="other">' in html
    only_other = client.get("/audit/?team=other").content.decode()
    assert "$3.00" in only_other and "test credit" not in only_other


def test_staff_without_a_team_may_read_it(staff, team):
    assert not Membership.objects.filter(user=staff).exists()
    assert login(staff).get("/audit/").status_code == 200


def test_the_audit_log_filters_by_verb(owner, team):
    event(team, owner, Event.Verb.SHARED, "a link to “Spring”")
    response = login(owner).get("/audit/?verb=shared")
    html = response.content.decode()
    assert "a link to “Spring”" in html and "test credit" not in html


def test_the_audit_log_filters_by_dates(owner, team):
    event(team, owner, Event.Verb.SHARED, "in April", when=at("2026-04-30T23:59:00"))
    event(team, owner, Event.Verb.SHARED, "on May 1st", when=at("2026-05-01T00:00:00"))
    event(team, owner, Event.Verb.SHARED, "on May 2nd", when=at("2026-05-02T23:59:59"))
    event(team, owner, Event.Verb.SHARED, "on May 3rd", when=at("2026-05-03T00:00:00"))
    html = login(owner).get("/audit/?date_from=2026-05-01&date_to=2026-05-02").content.decode()
    assert "on May 1st" in html and "on May 2nd" in html  # "To" is included
    assert "in April" not in html and "on May 3rd" not in html


def test_a_bad_filter_is_a_400_with_its_message(owner, team):
    client = login(owner)
    response = client.get("/audit/?date_from=2026-05-03&date_to=2026-05-01")
    assert response.status_code == 400
    assert "The “From” date is after the “To” date." in response.content.decode()
    assert client.get("/audit/?verb=generated").status_code == 400  # not an audited verb
    assert client.get("/audit/?format=csv&date_from=May").status_code == 400


def test_the_csv_lists_the_filtered_entries(owner, member, team):
    event(team, owner, Event.Verb.CAP_CHANGED, "=HYPERLINK(1)", member="mark", cap=None)
    event(team, member, GENERATED, "“not audited”")
    event(team, owner, Event.Verb.SHARED, "a link", when=at("2020-01-01T10:00:00"))
    response = login(owner).get("/audit/?format=csv&date_from=2026-01-01")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = csv_rows(response)
    assert rows[0] == ["created_at", "team", "actor", "verb", "summary", "data"]
    assert [row[1:5] for row in rows[1:]] == [
        ["acme", "olivia", "cap_changed", "'=HYPERLINK(1)"],  # a spreadsheet must not run it
        ["acme", "", "topped_up", "$1.00: test credit"],
    ]
    assert rows[1][5] == '{"cap": "no cap", "member": "mark"}'


def test_caps_and_thresholds_read_in_dollars_in_the_audit_log_and_its_csv(owner, member, team):
    client = login(owner)
    client.post("/team/members/mark/cap/", {"monthly_cap": "50"})
    client.post("/team/members/mark/cap/", {"monthly_cap": ""})
    client.post("/team/threshold/", {"low_balance_threshold": "0.058"})
    client.post("/team/threshold/", {"low_balance_threshold": ""})
    html = client.get("/audit/").content.decode()
    pairs = re.findall(r'<span class="audit-key">(cap|threshold):</span> ([^<]*)</span>', html)
    assert pairs == [("threshold", "no warning"), ("threshold", "$0.058"), ("cap", "no cap"), ("cap", "$50.00")]
    assert "50000000" not in html and "58000" not in html
    rows = csv_rows(client.get("/audit/?format=csv&verb=cap_changed"))
    assert [(row[4], row[5]) for row in rows[1:]] == [
        ("mark: no cap", '{"cap": "no cap", "member": "mark"}'),
        ("mark: $50.00", '{"cap": "$50.00", "member": "mark"}'),
    ]
    assert Event.objects.filter(verb="cap_changed").order_by("pk").first().data["cap"] == 50_000_000  # kept exact


def test_staff_download_every_teams_csv(staff, outsider, other, team):
    event(other, outsider, Event.Verb.THRESHOLD_CHANGED, "$3.00")
    rows = csv_rows(login(staff).get("/audit/?format=csv"))
    assert sorted(row[1] for row in rows[1:]) == ["acme", "other"]


@pytest.mark.parametrize("count", [3, 120])
def test_the_audit_log_runs_a_fixed_number_of_queries(owner, member, team, count, django_assert_num_queries):
    for n in range(count):
        event(team, owner if n % 2 else member, Event.Verb.SHARED, f"link {n}")
    client = login(owner)
    # session, user, membership, the count, the page of events with their actors
    with django_assert_num_queries(5):
        assert client.get("/audit/").status_code == 200


def test_the_audit_log_is_for_logged_in_users(team):
    response = Client().get("/audit/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_events_can_be_neither_changed_nor_deleted(owner, team):
    entry = event(team, owner, Event.Verb.SHARED, "a link")
    entry.summary = "something else"
    with pytest.raises(ValueError):
        entry.save()
    with pytest.raises(ValueError):
        entry.delete()
    with pytest.raises(ValueError):
        Event.objects.filter(pk=entry.pk).update(summary="something else")
    with pytest.raises(ValueError):
        Event.objects.filter(pk=entry.pk).delete()
    entry.refresh_from_db()
    assert entry.summary == "a link"


def test_a_deleted_account_leaves_its_events_in_place(member, team):
    entry = event(team, member, GENERATED, "“still here”")
    User.objects.filter(pk=member.pk).delete()
    entry.refresh_from_db()
    assert entry.actor is None and entry.summary == "“still here”"


def test_the_admin_shows_events_read_only(staff, owner, team):
    entry = event(team, owner, Event.Verb.SHARED, "a link")
    client = login(staff)
    assert client.get("/admin/activity/event/").status_code == 200
    page = client.get(f"/admin/activity/event/{entry.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert client.get("/admin/activity/event/add/").status_code == 403
    assert client.get(f"/admin/activity/event/{entry.pk}/delete/").status_code == 403


def test_every_audited_verb_is_an_event_verb():
    assert AUDITED <= set(Event.Verb)
    assert Event.Verb.GENERATED not in AUDITED and Event.Verb.COMMENTED not in AUDITED


# Comments on results.

def test_members_read_the_comments_oldest_first(viewer, owner, member, asset):
    comment(asset, member, "First!")
    comment(asset, owner, "Second, and\non two lines.")
    response = login(viewer).get(f"/library/{asset.code}/comments/", **HX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert html.index("First!") < html.index("Second, and<br>on two lines.")
    assert "mark" in html and "olivia" in html


def test_the_image_page_loads_its_comments(member, asset):
    html = login(member).get(f"/library/{asset.code}/").content.decode()
    url = f"/library/{asset.code}/comments/"
    assert f'hx-get="{url}" hx-trigger="load"' in html
    assert f'<a href="{url}">' in html  # and a plain link for browsers without htmx


def test_a_plain_get_is_a_page_of_comments(member, asset):
    comment(asset, member, "Nice.")
    response = login(member).get(f"/library/{asset.code}/comments/")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html and "Nice." in html
    assert f'href="/library/{asset.code}/">← Back to the image' in html


def test_a_member_comments_with_htmx(member, asset):
    response = login(member).post(f"/library/{asset.code}/comments/", {"body": "  Love the colours.  "}, **HX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert "Love the colours." in html
    saved = Comment.objects.get()
    assert (saved.asset, saved.author, saved.body) == (asset, member, "Love the colours.")


def test_a_plain_comment_goes_back_to_the_image(member, asset):
    response = login(member).post(f"/library/{asset.code}/comments/", {"body": "Love it."})
    assert response.status_code == 302
    assert response["Location"] == f"/library/{asset.code}/#comments"
    assert Comment.objects.get().body == "Love it."


def test_a_comment_records_an_event(membership, member, team):
    job = start_fibo(membership, {"prompt": "a red balloon", "aspect_ratio": "1:1"})
    result = image(team, member, job=job)
    login(member).post(f"/library/{result.code}/comments/", {"body": "Love it."}, **HX)
    recorded = Event.objects.get(verb=Event.Verb.COMMENTED)
    saved = Comment.objects.get()
    assert (recorded.team, recorded.actor, recorded.summary) == (team, member, "“a red balloon”")
    assert recorded.data == {"asset": str(result.code), "comment": str(saved.code)}
    line = feed_lines(login(member).get("/activity/"))[0]
    assert line.startswith("mark commented on a result “a red balloon” ·")


@pytest.mark.parametrize("body, message", [
    ("", "Write something first."),
    ("   ", "Write something first."),
    ("x" * 2001, "Keep it to 2000 characters (this one has 2001)."),
])
def test_an_empty_or_overlong_comment_is_refused_next_to_the_field(member, asset, body, message):
    client = login(member)
    response = client.post(f"/library/{asset.code}/comments/", {"body": body}, **HX)
    assert response.status_code == 200  # htmx swaps only 2xx: the message is in the partial
    assert f'<p class="error" id="body-error">{message}</p>' in response.content.decode()
    plain = client.post(f"/library/{asset.code}/comments/", {"body": body})
    assert plain.status_code == 400 and message in plain.content.decode()
    assert not Comment.objects.exists()
    assert not Event.objects.filter(verb=Event.Verb.COMMENTED).exists()


def test_a_comment_of_2000_characters_is_fine(member, asset):
    login(member).post(f"/library/{asset.code}/comments/", {"body": "x" * 2000}, **HX)
    assert len(Comment.objects.get().body) == 2000


def test_a_viewer_reads_but_cannot_comment(viewer, member, asset):
    comment(asset, member, "Nice.")
    client = login(viewer)
    html = client.get(f"/library/{asset.code}/comments/", **HX).content.decode()
    assert "Nice." in html and 'name="body"' not in html and "Delete" not in html
    assert client.post(f"/library/{asset.code}/comments/", {"body": "Me too"}, **HX).status_code == 403
    assert Comment.objects.count() == 1


@pytest.mark.parametrize("who", ["member", "admin", "owner"])
def test_members_admins_and_owners_may_comment(request, asset, who):
    user = request.getfixturevalue(who)
    response = login(user).post(f"/library/{asset.code}/comments/", {"body": f"from {who}"}, **HX)
    assert response.status_code == 200 and f"from {who}" in response.content.decode()


def test_authors_delete_their_own_comments(member, asset):
    mine = comment(asset, member, "Oops.")
    client = login(member)
    assert "Delete" in client.get(f"/library/{asset.code}/comments/", **HX).content.decode()
    response = client.post(f"/comments/{mine.code}/delete/", **HX)
    assert response.status_code == 200 and "Oops." not in response.content.decode()
    assert not Comment.objects.exists()
    # The event stays (events are append-only); only the comment is gone.
    assert Event.objects.filter(verb=Event.Verb.COMMENTED).count() == 1


def test_a_plain_delete_goes_back_to_the_image(member, asset):
    mine = comment(asset, member)
    response = login(member).post(f"/comments/{mine.code}/delete/")
    assert response.status_code == 302 and response["Location"] == f"/library/{asset.code}/#comments"
    assert not Comment.objects.exists()


def test_members_cannot_delete_each_others_comments(member, owner, asset, team):
    theirs = comment(asset, owner, "Mine.")
    other_member = make_user("mia")
    Membership.objects.create(team=team, user=other_member, role=Role.MEMBER)
    mark_comment = comment(asset, member, "Mark's.")
    client = login(other_member)
    html = client.get(f"/library/{asset.code}/comments/", **HX).content.decode()
    assert "Delete" not in html
    assert client.post(f"/comments/{theirs.code}/delete/", **HX).status_code == 403
    assert client.post(f"/comments/{mark_comment.code}/delete/", **HX).status_code == 403
    assert Comment.objects.count() == 2


@pytest.mark.parametrize("who", ["admin", "owner"])
def test_owners_and_admins_delete_any_comment(request, member, asset, who):
    theirs = comment(asset, member, "Off topic.")
    response = login(request.getfixturevalue(who)).post(f"/comments/{theirs.code}/delete/", **HX)
    assert response.status_code == 200
    assert not Comment.objects.exists()


def test_deleting_needs_a_post(member, asset):
    mine = comment(asset, member)
    assert login(member).get(f"/comments/{mine.code}/delete/").status_code == 405
    assert Comment.objects.exists()


def test_another_teams_image_and_comments_are_a_404(outsider, member, asset):
    theirs = comment(asset, member, "Secret.")
    client = login(outsider)
    assert client.get(f"/library/{asset.code}/comments/").status_code == 404
    assert client.get(f"/library/{asset.code}/comments/", **HX).status_code == 404
    assert client.post(f"/library/{asset.code}/comments/", {"body": "Hi"}).status_code == 404
    assert client.post(f"/comments/{theirs.code}/delete/").status_code == 404
    assert Comment.objects.count() == 1


def test_anonymous_visitors_are_sent_to_log_in(member, asset):
    theirs = comment(asset, member)
    client = Client()
    for response in [
        client.get("/activity/"),
        client.get(f"/library/{asset.code}/comments/"),
        client.post(f"/library/{asset.code}/comments/", {"body": "Hi"}),
        client.post(f"/comments/{theirs.code}/delete/"),
    ]:
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert Comment.objects.count() == 1


@pytest.mark.parametrize("count", [2, 40])
def test_the_comments_run_a_fixed_number_of_queries(member, owner, asset, count, django_assert_num_queries):
    for n in range(count):
        comment(asset, member if n % 2 else owner, f"comment {n}")
    client = login(member)
    # session, user, membership, the image, its comments with their authors
    with django_assert_num_queries(5):
        assert client.get(f"/library/{asset.code}/comments/", **HX).status_code == 200
