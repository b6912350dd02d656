import sys

from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "studio.ops"
    label = "ops"
    verbose_name = "Operations"

    def ready(self):
        from django.core import checks

        from studio.ops.checks import shared_cache_in_production

        checks.register(shared_cache_in_production, checks.Tags.caches)
        self.follow_request_ids()
        self.count_events()

    def follow_request_ids(self):
        """studio/ops/requestid.py: from a request into the tasks it queues."""
        from django.core.signals import request_finished
        from django_q import signals

        from studio.ops import requestid

        request_finished.connect(requestid.clear)
        signals.pre_enqueue.connect(requestid.stamp_task)
        signals.pre_execute.connect(requestid.adopt_task)  # in the worker process
        signals.post_execute.connect(requestid.adopt_task)  # in the monitor, before it logs the result
        signals.post_execute_in_worker.connect(requestid.forget_task)

    def count_events(self):
        """studio/ops/metrics.py. The worker starts here (no django-q2 signal marks a
        cluster's start): it prepares the multiprocess directory, as gunicorn's master
        does for the web, and serves its own /metrics when WORKER_METRICS_PORT is set."""
        from django.conf import settings
        from django.core import checks

        from studio.ops import metrics, multiproc

        checks.register(metrics.counted_per_process)
        if sys.argv[1:2] == ["qcluster"]:
            multiproc.prepare()
            if settings.WORKER_METRICS_PORT:
                metrics.serve_worker_metrics(settings.WORKER_METRICS_PORT)
