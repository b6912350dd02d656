"""prometheus-client's multiprocess directory (PROMETHEUS_MULTIPROC_DIR): every process
on a machine, web and worker, keeps its counts in files of its own there, named after
its pid, and /metrics adds them up (studio/ops/metrics.py). Nothing here imports Django:
the gunicorn master (studio/ops/gunicorn.py) calls it before the application loads."""

import os
from pathlib import Path

from prometheus_client import multiprocess


def directory():
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def prepare():
    """Create the directory, and remove the files of processes that are gone (a web
    process or worker that stopped, or was recycled): left there they would be read at
    every scrape, forever. Their counts leave the totals with them, which Prometheus
    takes as a counter reset. The files of live processes, those of the other process
    type on this machine included, stay. Called as the web and the worker start."""
    path = directory()
    if not path:
        return
    os.makedirs(path, exist_ok=True)
    for file in Path(path).glob("*.db"):
        pid = file.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            file.unlink(missing_ok=True)


def mark_dead(pid):
    """A process stopped: its live gauges no longer count (its counters still do)."""
    if directory():
        multiprocess.mark_process_dead(pid)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process has that pid: not ours to judge
        return True
    return True
