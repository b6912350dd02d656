"""Email, always sent from the queue.

A request or a money transaction only queues an email, with its transaction (like a
job's submit task, through jobs.queue.enqueue: in the same transaction with the ORM
broker, on commit with Redis), so the email exists if and only if what it tells of
committed. The worker sends it. A slow or dead mail server therefore changes nothing for
the person submitting: the request answers as fast as ever, and the money and the job
commit without it.

Messages are rendered when they are queued: the task takes plain strings, reads nothing
from the database and sends the same email however often it runs. The queue delivers at
least once, so a worker that dies between the server's acceptance and the task's end
can send an email twice; nothing here touches money.

A failed send (server down, refused, or silent past EMAIL_TIMEOUT) is logged and offered
again by a one-off django-q2 schedule after 1, 5, 15 and 60 minutes. After the fifth
attempt (some 80 minutes of outage) it is logged as an error naming the subject and the
recipients, and dropped: a low-balance warning still shows as the wallet's banner, an
invitation's link was shown to its inviter, and a gateway alert is also a critical line
in the worker's log. Bodies are never logged and never saved with the task's result (an
invitation's link is a secret): they stay in the queue, or in a retry's schedule, only
until sent.
"""

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError
from django.utils import timezone
from django_q.tasks import schedule

from jobs.queue import enqueue

logger = logging.getLogger(__name__)

TASK = "studio.mail.send_email"
# Seconds before the second, third, fourth and fifth attempts; then the email is dropped.
RETRY_AFTER = (60, 5 * 60, 15 * 60, 60 * 60)
# Results are not kept: they would keep the body (see the module's docstring).
Q_OPTIONS = {"save": False}


def queue_email(subject, body, recipients, from_email=None):
    """Queue one email with the caller's transaction (see the module's docstring)."""
    recipients = list(recipients)
    if recipients:
        enqueue(TASK, subject, body, recipients, from_email or settings.DEFAULT_FROM_EMAIL,
                key=uuid.uuid4().hex, q_options=Q_OPTIONS)


def queue_mail_admins(subject, body):
    """Django's mail_admins, from the queue: to STAFF_ALERT_EMAILS, from SERVER_EMAIL."""
    queue_email(settings.EMAIL_SUBJECT_PREFIX + subject, body, [address for _, address in settings.ADMINS],
                settings.SERVER_EMAIL)


def send_email(subject, body, recipients, from_email, *, key, attempt=1):
    """The task. `key` names this email, so that a retry is scheduled once however often
    a failed attempt runs."""
    try:
        EmailMessage(subject, body, from_email, recipients).send()
    except OSError as exc:  # smtplib's errors and socket timeouts are all OSErrors
        return _retry_later(subject, body, recipients, from_email, key, attempt, exc)
    logger.info("email %r sent to %s", subject, ", ".join(recipients))
    return "sent"


def _retry_later(subject, body, recipients, from_email, key, attempt, exc):
    to = ", ".join(recipients)
    if attempt > len(RETRY_AFTER):
        logger.error("email %r to %s not sent after %d attempts, given up: %s", subject, to, attempt, exc)
        return "given up"
    # django-q2 acknowledges a failed task (ack_failures) and its Redis broker never
    # redelivers one, so the next attempt is a one-off schedule: in the database with
    # either broker, and no worker waits meanwhile.
    delay = RETRY_AFTER[attempt - 1]
    logger.warning("email %r to %s not sent (attempt %d): %s; trying again in %d s", subject, to, attempt, exc, delay)
    try:
        schedule(TASK, subject, body, recipients, from_email, key=key, attempt=attempt + 1, q_options=Q_OPTIONS,
                 name=f"email {key} attempt {attempt + 1}", next_run=timezone.now() + timedelta(seconds=delay))
    except IntegrityError:  # this attempt ran before and scheduled the next already
        pass
    return "failed"
