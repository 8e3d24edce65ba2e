# syntax=docker/dockerfile:1
# The drt-dispatch image: `drt serve` by default; `drt produce demo` for the simulators.
#
#   docker build -t drt-dispatch:0.1.0 .
#   docker run --rm -p 9464:9464 -e DRT_KAFKA__BOOTSTRAP_SERVERS=... \
#       -e DRT_DATABASE__DSN=postgresql://... drt-dispatch:0.1.0
#
# Configuration is by DRT_ environment variables only (deploy/README.md lists them).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /app

# Dependencies change less often than the code: install them in their own layer
# from pyproject.toml alone (all wheels: ortools, asyncpg, aiokafka, ...).
COPY pyproject.toml ./
RUN python -c "import tomllib; d = tomllib.load(open('pyproject.toml', 'rb')); \
print('\n'.join(d['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

COPY schemas ./schemas
COPY dispatcher ./dispatcher
COPY solvers ./solvers
COPY producers ./producers
RUN pip install --no-deps . \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin drt

USER 10001
# Prometheus metrics (DRT_METRICS_PORT).
EXPOSE 9464
ENTRYPOINT ["drt"]
CMD ["serve"]
