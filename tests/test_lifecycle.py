"""The job's state machine: forward only, duplicates ignored, money settled exactly once."""

import pytest

from jobs.actions import start_fibo
from jobs.models import Job, Status
from jobs.transitions import apply_status, fail_before_gateway
from studio.billing.models import Entry, Wallet

PARAMS = {"prompt": "a lighthouse", "aspect_ratio": "1:1", "steps_num": 30, "guidance_scale": "7.5"}


@pytest.fixture
def job(membership):
    job = start_fibo(membership, PARAMS)
    Job.objects.filter(pk=job.pk).update(submission=Job.Submission.ACCEPTED, request_id="bria-fibo-bbq-preview_1")
    return job


def reload(job):
    return Job.objects.get(pk=job.pk)


def wallet(job):
    return Wallet.objects.get(team=job.team_id)


def test_it_moves_queued_to_processing_without_money(job):
    assert apply_status(job.pk, Status.PROCESSING)
    job = reload(job)
    assert job.status == "PROCESSING" and job.money == "held" and job.completed_at is None
    assert wallet(job).held == 40_000


@pytest.mark.parametrize("first", [Status.QUEUED, Status.PROCESSING])
@pytest.mark.parametrize("final, money_state, balance", [
    (Status.COMPLETED, "charged", 960_000),
    (Status.FAILED, "charged", 960_000),
    (Status.ERROR, "released", 1_000_000),
])
def test_each_terminal_status_has_its_money_effect(job, first, final, money_state, balance):
    apply_status(job.pk, first)
    assert apply_status(job.pk, final, error="" if final == Status.COMPLETED else "boom")
    job = reload(job)
    assert job.status == final and job.money == money_state and job.completed_at
    w = wallet(job)
    assert (w.balance, w.held) == (balance, 0)
    assert Entry.objects.filter(job=job).exclude(kind="hold").count() == 1


def test_a_duplicate_terminal_status_books_nothing_more(job):
    assert apply_status(job.pk, Status.COMPLETED)
    assert not apply_status(job.pk, Status.COMPLETED)
    assert not apply_status(job.pk, Status.FAILED)
    assert not apply_status(job.pk, Status.ERROR)
    assert Entry.objects.filter(job=job, kind="capture").count() == 1
    assert Entry.objects.filter(job=job, kind="release").count() == 0
    assert reload(job).status == "COMPLETED"


def test_a_late_event_never_moves_the_job_backwards(job):
    apply_status(job.pk, Status.COMPLETED)
    assert not apply_status(job.pk, Status.PROCESSING)
    assert not apply_status(job.pk, Status.QUEUED)
    assert reload(job).status == "COMPLETED"


def test_processing_twice_is_ignored(job):
    assert apply_status(job.pk, Status.PROCESSING)
    assert not apply_status(job.pk, Status.PROCESSING)


def test_a_job_the_gateway_never_took_is_not_charged_even_if_failed(membership):
    job = start_fibo(membership, PARAMS)
    assert fail_before_gateway(job.pk, Status.FAILED, "The gateway refused this job: Bad Request (400)")
    job = reload(job)
    assert job.status == "FAILED" and job.money == "released" and job.submission == "rejected"
    assert wallet(job).balance == 1_000_000 and wallet(job).held == 0


def test_unknown_status_is_refused(job):
    with pytest.raises(ValueError):
        apply_status(job.pk, "DONE")
    assert reload(job).status == "QUEUED"
