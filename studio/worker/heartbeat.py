"""A running worker cluster says so in the database, where a process on any machine sharing
it can see: a lease named after the cluster (its host and `qcluster` process), renewed
every BEAT_SECONDS by a thread of the `qcluster` command and deleted when the cluster
stops. One that dies without stopping (SIGKILL, a lost machine) leaves a lease that
lapses within LASTS_SECONDS; on its own host it is known dead at once (its process is
gone).

django-q2 keeps cluster statistics too, but in the cache, which `make run` keeps per
process: only the database is shared by every setup. `manage.py chaos` reads these
leases, since another cluster on its database would take the run's tasks.
"""

import hashlib
import logging
import os
import socket
import threading
from datetime import timedelta

import psutil
from django.db import DatabaseError, connection
from django.utils import timezone

from jobs.models import Lease

logger = logging.getLogger(__name__)

PREFIX = "worker-cluster:"
BEAT_SECONDS = 5
LASTS_SECONDS = 20


class Heartbeat:
    """This process's cluster, announced from start() until stop()."""

    def __init__(self):
        self.holder = f"{socket.gethostname()}:{os.getpid()}"[-64:]
        self.name = PREFIX + hashlib.sha256(self.holder.encode()).hexdigest()[:32]
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat_until_stopped, name="cluster-heartbeat", daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stopped.set()
        self._thread.join(BEAT_SECONDS)
        self._write(lambda: Lease.objects.filter(name=self.name, holder=self.holder).delete())

    def _beat_until_stopped(self):
        while not self._stopped.is_set():
            self._write(self.beat)
            self._stopped.wait(BEAT_SECONDS)

    def beat(self):
        Lease.objects.update_or_create(name=self.name, defaults={
            "holder": self.holder, "expires_at": timezone.now() + timedelta(seconds=LASTS_SECONDS)})

    def _write(self, change):
        """One write on a connection of its own, closed after it: a database that is down
        for a while costs a warning per beat, and the next beat reconnects."""
        try:
            change()
        except DatabaseError as exc:
            logger.warning("worker cluster %s: heartbeat not written (%s)", self.holder, type(exc).__name__)
        finally:
            connection.close()


def live_clusters(now=None):
    """The clusters alive on this database ("host:pid"), by their leases."""
    now = now or timezone.now()
    holders = Lease.objects.filter(name__startswith=PREFIX, expires_at__gt=now).values_list("holder", flat=True)
    return sorted(holder for holder in holders if not _gone_from_this_host(holder))


def _gone_from_this_host(holder):
    host, _, pid = holder.rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and not psutil.pid_exists(int(pid))
