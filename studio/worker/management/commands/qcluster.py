"""`manage.py qcluster`: django-q2's own command, with a stop that ends in bounded time.

django-q2 1.11.1 (django_q/cluster.py) stops on SIGTERM or SIGINT to the cluster's main
process: the sentinel stops its pusher, then waits for each worker to finish the task it
is running and every task already fetched from the broker, however long they take (a
poller loop runs 50 s; a stalled gateway POST 15 s, then its retries). A platform stopping
the worker for a deploy or a scale-down kills it anyway after its own grace period
(Docker: 10 s; Heroku, Kubernetes: 30 s).

Here the cluster gets Q_STOP_SECONDS. The stop flag (studio/worker/stopping.py) goes up in
every process of the cluster, so loops and retries end at their next safe point; what is
still running at the deadline is killed, exactly as a crash would kill it, which every
task is built to survive: a submit in flight stays "submitting" for its webhook or the
sweeper, and nothing is paid twice. A SIGTERM sent to the whole process group (Heroku,
honcho) also reaches django-q2's sentinel and workers, which keep SIGTERM's default
action and end at once: the same crash, sooner.
"""

import contextlib
import logging
import os
import threading

import psutil
from django.conf import settings
from django_q.cluster import Cluster
from django_q.management.commands import qcluster

from studio.worker import stopping
from studio.worker.heartbeat import Heartbeat

logger = logging.getLogger(__name__)


class Command(qcluster.Command):
    help = "Starts the django-q2 cluster; SIGTERM or SIGINT stops it within Q_STOP_SECONDS."

    def handle(self, *args, **options):
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        stopping.arm()  # before the cluster forks, so that every process shares the flag
        cluster = BoundedCluster()
        cluster.start()
        if options.get("run_once"):
            cluster.stop()


class BoundedCluster(Cluster):
    stop_started = False
    heartbeat = None

    def start(self):
        """Start, then say so in the database until stopped (studio/worker/heartbeat.py)."""
        pid = super().start()
        if not self.stop_started:  # a signal during the start stops it before it runs
            self.heartbeat = Heartbeat()
            self.heartbeat.start()
        return pid

    def stop(self):
        """Called from the signal handler (and by --run-once); a second signal while the
        cluster stops changes nothing, the deadline stands."""
        if self.stop_started or not self.sentinel.is_alive():
            return False
        self.stop_started = True
        logger.info("Q Cluster %s stopping; running tasks have %s s", self.name, settings.Q_STOP_SECONDS)
        stopping.request()
        # django-q2's Event is set from a thread of its own: its set() waits for the
        # sentinel asleep on it to wake, and a sentinel the same SIGTERM already killed
        # (sent to the whole group) never will.
        threading.Thread(target=self.stop_event.set, daemon=True).start()
        self.sentinel.join(settings.Q_STOP_SECONDS)
        if self.sentinel.is_alive():
            killed = kill_descendants()
            logger.warning("Q Cluster %s: %d processes still busy after %s s were killed; their tasks are left "
                           "as after a crash, for the sweeper", self.name, killed, settings.Q_STOP_SECONDS)
            self.sentinel.join()
        logger.info("Q Cluster %s has stopped.", self.name)
        if self.heartbeat:
            self.heartbeat.stop()
        self.start_event = self.stop_event = None
        return True


def kill_descendants():
    """SIGKILL every process under this one: the sentinel, its workers, pusher and monitor
    (listed before any of them dies, while they are still its descendants). Returns how
    many there were."""
    processes = psutil.Process().children(recursive=True)
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    return len(processes)
