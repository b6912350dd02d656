"""Polling without webhooks spreads across worker clusters: poller loops claim batches of
due jobs, so two loops never poll a job at once and both make progress; each cluster
runs one loop at a time, a loop with more due than a batch asks for another, and a burst
of submits starts one loop, not one each."""

import itertools
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from jobs import tasks
from jobs.actions import start_fibo
from jobs.gateway import PixazoClient
from jobs.models import Job, Lease
from studio.billing.verify import verify

PARAMS = {"prompt": "a lighthouse at dusk", "aspect_ratio": "1:1", "seed": 7, "steps_num": 30, "guidance_scale": "7.5"}


def due_jobs(membership, count):
    """`count` jobs accepted by the gateway and due for a poll now."""
    jobs = [start_fibo(membership, PARAMS) for _ in range(count)]
    for job in jobs:
        assert tasks.submit_job(job.pk) == "accepted"
    Job.objects.filter(pk__in=[j.pk for j in jobs]).update(next_poll_at=timezone.now())
    return jobs


@dataclass
class Turn:
    poller: str
    started: float
    ended: float
    jobs: frozenset


def poller(name, turns, deadline):
    """A poller loop's polling, on this thread's own database connection, until every
    job is finished; each call of poll_due is recorded as a turn."""
    try:
        with PixazoClient() as client:
            while time.monotonic() < deadline and Job.objects.in_flight().exists():
                started = time.monotonic()
                polled = tasks.poll_due(client, deadline)
                turns.append(Turn(name, started, time.monotonic(), frozenset(j.pk for j in polled)))
                if not polled:
                    time.sleep(0.1)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_two_poller_loops_share_the_due_jobs_and_never_poll_one_at_once(membership, team, emulator):
    emulator.configure(delay=3)  # each job is polled in flight, then again when it is done
    jobs = due_jobs(membership, 2 * tasks.POLL_BATCH)
    # Slow answers: the first batch takes a while, long enough for the other loop to claim.
    emulator.faults(status=["hang:0.1"] * 2 * tasks.POLL_BATCH)
    turns, deadline = [], time.monotonic() + 60
    threads = [threading.Thread(target=poller, args=(name, turns, deadline)) for name in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    finished = Job.objects.filter(pk__in=[j.pk for j in jobs])
    assert {(j.status, j.money, j.outputs_fetched) for j in finished} == {("COMPLETED", "charged", True)}
    for name in ("one", "two"):
        assert any(turn.jobs for turn in turns if turn.poller == name), f"loop {name} polled nothing"
    for a, b in itertools.combinations(turns, 2):
        if a.poller != b.poller and a.started < b.ended and b.started < a.ended:
            assert not a.jobs & b.jobs, f"polled by both loops at once: {sorted(a.jobs & b.jobs)}"
    assert verify() == []


def test_a_claim_pushes_the_jobs_on_and_unused_claims_go_back(membership, emulator):
    jobs = due_jobs(membership, 3)
    first, second = tasks.claim_due(limit=2), tasks.claim_due(limit=2)
    assert (len(first), len(second)) == (2, 1) and {j.pk for j in first + second} == {j.pk for j in jobs}
    assert tasks.claim_due() == [], "nothing left due"
    later = timezone.now() + timedelta(seconds=tasks.POLL_CLAIM_SECONDS - 5)
    assert all(j.next_poll_at > later for j in Job.objects.all())
    Job.objects.update(next_poll_at=timezone.now())
    with PixazoClient() as client:
        assert tasks.poll_due(client, deadline=time.monotonic() - 1) == [], "past its deadline: polls nothing"
    assert len(Job.objects.due_for_poll()) == 3, "and gives its claims back"


def test_a_cluster_runs_one_poller_loop_at_a_time(db):
    tasks.acquire_lease(tasks.cluster_poller_lease(), "a loop of this cluster", tasks.POLLER_LEASE_SECONDS)
    assert tasks.poll_in_flight(max_seconds=1) == "this cluster is polling already"
    Lease.objects.all().delete()
    assert tasks.poll_in_flight(max_seconds=1) == "done"
    assert not Lease.objects.filter(name__startswith=tasks.POLLER_LEASE).exists(), "its lease went with it"


def test_a_burst_of_kicks_starts_one_loop_and_none_while_one_runs(db, monkeypatch):
    queued = []
    monkeypatch.setattr(tasks, "async_task", lambda name, *args: queued.append(name))
    for _ in range(5):
        tasks.kick_poller()
    assert queued == ["jobs.tasks.poll_in_flight"]
    Lease.objects.update(expires_at=timezone.now())  # the spacing has passed
    tasks.acquire_lease(f"{tasks.POLLER_LEASE}:another-cluster", "its loop", tasks.POLLER_LEASE_SECONDS)
    tasks.kick_poller()
    assert len(queued) == 1, "a loop runs somewhere"
    Lease.objects.update(expires_at=timezone.now())  # that loop died: its lease lapsed
    tasks.kick_poller()
    assert len(queued) == 2


def test_a_loop_with_more_due_than_a_batch_asks_for_another(membership, emulator, monkeypatch):
    queued = []
    monkeypatch.setattr(tasks, "async_task", lambda name, *args: queued.append(name))
    emulator.configure(delay=60)  # still in flight when the loop ends
    due_jobs(membership, tasks.POLL_BATCH + 1)
    Lease.objects.all().delete()  # the submits kicked a loop: the spacing has passed since
    queued.clear()
    assert tasks.poll_in_flight(max_seconds=2) == "done"
    # One more loop asked for (the full batch), and the hand-over: jobs are still in flight.
    assert queued == ["jobs.tasks.poll_in_flight", "jobs.tasks.poll_in_flight"]
    assert not Job.objects.filter(poll_failures__gt=0).exists()
