"""The worker's stop flag: raised in every process of a `qcluster` when it is asked to
stop, so that long tasks (the poller loop, the sweeper, retries that sleep) end at a safe
point instead of running on until the stop deadline kills them.

The flag is one byte of shared memory, made by the `qcluster` command before django-q2
forks its sentinel, which forks the workers: every process of the cluster sees it. It is
deliberately not a multiprocessing Event: an Event's set() waits for every process
asleep on it to wake, and one that was killed in its sleep (a timed-out worker, a
SIGTERM to the whole group) never does, which would hang the stop itself. Sleeps look
at the flag ten times a second instead. Anywhere else (the web process, a test calling a
task) there is no flag and no stop is ever requested.
"""

import multiprocessing
import time

POLL_SECONDS = 0.1

_flag = None


def arm():
    """Make the flag; the `qcluster` command calls this before the cluster forks."""
    global _flag
    _flag = multiprocessing.get_context("fork").RawValue("b", 0)


def request():
    if _flag is not None:
        _flag.value = 1


def requested():
    return _flag is not None and _flag.value == 1


def wait(seconds):
    """Sleep up to `seconds`, waking soon after a stop is requested; True if one was."""
    deadline = time.monotonic() + seconds
    while not requested():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(remaining, POLL_SECONDS))
    return True
