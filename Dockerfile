# Bria Studio's production image: the runtime requirements only, static files collected
# at build, run as a user without privileges. The processes are the Procfile's, word for
# word (compose.yaml runs them); tests/test_production.py runs the same commands on the
# machine itself, since no container engine runs where the tests do.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /venv
COPY requirements.txt /tmp/requirements.txt
RUN /venv/bin/pip install -r /tmp/requirements.txt

FROM python:3.11-slim-bookworm
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin studio
COPY --from=build /venv /venv
ENV PATH=/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_DEBUG=false \
    STATIC_ROOT=/app/staticfiles \
    STUDIO_VAR_DIR=/tmp/studio \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
WORKDIR /app
COPY --chown=studio:studio . /app
# Collected here, once per image. Settings refuse to load without a secret key and a
# gateway key when DEBUG is off; these two exist only for this build step.
RUN DJANGO_SECRET_KEY=build-only PIXAZO_API_KEY=build-only python manage.py collectstatic --no-input -v0 \
    && chown -R studio:studio /app/staticfiles
USER studio
EXPOSE 8000
# The Procfile's web command; compose.yaml names the worker and release commands.
CMD ["bash", "-c", "exec gunicorn -c python:studio.ops.gunicorn studio.wsgi --bind 0.0.0.0:${PORT:-8000} --workers ${WEB_CONCURRENCY:-2}"]
