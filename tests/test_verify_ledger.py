"""verify_ledger finds every kind of drift, names it, and exits non-zero."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from jobs.actions import start_fibo
from jobs.models import Job
from jobs.transitions import apply_status
from studio.billing.models import Entry, Wallet

PARAMS = {"prompt": "a lighthouse", "aspect_ratio": "1:1", "steps_num": 30, "guidance_scale": "7.5"}


@pytest.fixture
def books(membership):
    """A team with a charged, a released and an in-flight job."""
    done, errored, running = (start_fibo(membership, PARAMS) for _ in range(3))
    Job.objects.filter(pk__in=[done.pk, errored.pk]).update(submission="accepted")
    apply_status(done.pk, "COMPLETED")
    apply_status(errored.pk, "ERROR")
    return done, errored, running


def verify(capsys):
    try:
        call_command("verify_ledger")
    except CommandError as exc:
        return str(exc), capsys.readouterr().err
    return "OK", capsys.readouterr().out


def raw(sql, params=()):
    """Drift can only come from outside the studio's code, so the tests make it the
    same way: behind the ORM's back. (On PostgreSQL the ledger's trigger forbids
    UPDATE, so ledger drift is made by inserting instead.)"""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_clean_books_pass(books, capsys):
    result, out = verify(capsys)
    assert result == "OK" and "ledger OK" in out


def test_a_wallet_that_disagrees_with_its_ledger_is_named(books, capsys, team):
    raw("UPDATE billing_wallet SET balance = balance + 1 WHERE team_id = %s", [team.pk])
    result, err = verify(capsys)
    assert result == "1 drift(s) found"
    assert "DRIFT team acme: wallet says balance $0.960001 held $0.04, ledger says balance $0.96 held $0.04" in err


def test_a_terminal_job_without_its_money_effect_is_named(books, capsys):
    done, _, running = books
    raw("UPDATE jobs_job SET status = 'COMPLETED' WHERE id = %s", [running.pk])
    result, err = verify(capsys)
    assert f"job {running.code} (COMPLETED, pending): 0 captures, 0 releases, marked held; policy wants a release" in err
    assert f"job {running.code} is COMPLETED with $0.04 still held" in err


def test_a_second_booking_is_named(books, capsys, team):
    done = books[0]
    wallet = Wallet.objects.get(team=team)
    raw("""INSERT INTO billing_entry (team_id, kind, job_id, balance_delta, held_delta, balance_after, held_after,
           idempotency_key, memo, created_at, model) VALUES (%s, 'capture', %s, -40000, 0, %s, %s, 'forged', '', %s, 'fibo')""",
        [team.pk, done.pk, wallet.balance - 40_000, wallet.held, "2026-11-24 00:00:00+00:00"])
    result, err = verify(capsys)
    assert f"job {done.code} (COMPLETED, accepted): 2 captures" in err
    assert "team acme: wallet says balance $0.96" in err  # the wallet never saw the forged row


def test_a_negative_balance_is_named(books, capsys, team):
    raw("UPDATE billing_wallet SET balance = 0, held = 0 WHERE team_id = %s", [team.pk])
    raw("""INSERT INTO billing_entry (team_id, kind, balance_delta, held_delta, balance_after, held_after,
           idempotency_key, memo, created_at, model) VALUES (%s, 'adjustment', -2000000, 0, -1040000, 40000, 'neg', '', %s, '')""",
        [team.pk, "2026-11-24 00:00:00+00:00"])
    result, err = verify(capsys)
    assert "leaves the wallet overdrawn" in err


def test_a_broken_balance_chain_is_named(books, capsys, team):
    raw("""INSERT INTO billing_entry (team_id, kind, balance_delta, held_delta, balance_after, held_after,
           idempotency_key, memo, created_at, model) VALUES (%s, 'adjustment', 0, 0, 123, 40000, 'chain', '', %s, '')""",
        [team.pk, "2026-11-24 00:00:00+00:00"])
    result, err = verify(capsys)
    assert "says balance/held after 123/40000, its predecessor implies 960000/40000" in err


def test_a_top_up_without_its_entry_is_named(team, capsys):
    raw("""INSERT INTO billing_topup (code, team_id, amount, reason, idempotency_key, created_at)
           VALUES ('6f1c2d3e4b5a49788796a5b4c3d2e1f0', %s, 5000000, 'ghost', 'ghost', %s)""",
        [team.pk, "2026-11-24 00:00:00+00:00"])
    result, err = verify(capsys)
    assert "top-up 6f1c2d3e-4b5a-4978-8796-a5b4c3d2e1f0 of $5.00: booked 0 times for $0.00" in err


def test_entries_hold_team_member_and_model(books):
    done = books[0]
    capture = Entry.objects.get(job=done, kind="capture")
    assert (capture.member_id, capture.model, capture.team_id) == (done.created_by_id, "fibo", done.team_id)
