"""
WSGI config for studio project.

It exposes the WSGI callable as a module-level variable named ``application``.

For more information on this file, see
https://docs.djangoproject.com/en/5.2/howto/deployment/wsgi/
"""

import os

from django.core.wsgi import get_wsgi_application

from studio.ops.checks import refuse_to_serve_on_errors

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'studio.settings')

application = get_wsgi_application()

# gunicorn runs no system checks: refuse to serve what `manage.py check` refuses (e.g. a
# per-process cache in production, studio/ops/checks.py). Each web process checks once.
refuse_to_serve_on_errors()
