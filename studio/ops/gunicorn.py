"""gunicorn's settings hooks for the web process:

    gunicorn -c python:studio.ops.gunicorn studio.wsgi --bind … --workers …

With PROMETHEUS_MULTIPROC_DIR set, the master prepares the directory before it starts
its workers and marks each worker that exits as dead (studio/ops/multiproc.py), so
/metrics stays right across the processes of the machine. Nothing here imports Django.
"""

from studio.ops import multiproc


def on_starting(server):
    multiproc.prepare()


def child_exit(server, worker):
    multiproc.mark_dead(worker.pid)
