# syntax=docker/dockerfile:1
# The service image: the consumer (`python -m consumer run`, the default) and the producer
# (`python -m producer ...`) with the model bundle baked in. No torch: training stays outside.
#
#   docker build -t sentiment-stream .                  (needs models/sentiment-bilstm/)
#   docker build --build-arg BUNDLE_DIR=runs/release/bundle -t sentiment-stream .

ARG PYTHON_VERSION=3.11

# ---- build: install the project and its runtime dependencies into a virtualenv -------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, so code changes do not reinstall them: a stub package with the real
# pyproject.toml resolves and installs every runtime dependency (no extras, so no torch).
COPY pyproject.toml README.md ./
RUN mkdir -p common && touch common/__init__.py \
    && pip install . \
    && pip uninstall -y sentiment-stream
# Only the runtime packages; training, exporter and devstack stay out of the image.
COPY common common
COPY schemas schemas
COPY textclean textclean
COPY inference inference
COPY consumer consumer
COPY producer producer
RUN pip install --no-deps . \
    && python -c "import consumer.app, producer.__main__" \
    && ! python -c "import torch" 2>/dev/null

# ---- runtime: the virtualenv, the model bundle, an unprivileged user ----------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ARG BUNDLE_DIR=models/sentiment-bilstm
LABEL org.opencontainers.image.title="sentiment-stream" \
      org.opencontainers.image.description="Streaming sentiment consumer and replay producer" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 sentiment \
    && useradd --system --uid 10001 --gid sentiment --home-dir /app --shell /usr/sbin/nologin sentiment
COPY --from=build /opt/venv /opt/venv
COPY --chown=root:root ${BUNDLE_DIR} /app/models/sentiment-bilstm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SENTIMENT_BUNDLE_PATH=/app/models/sentiment-bilstm \
    SENTIMENT_HTTP_HOST=0.0.0.0 \
    SENTIMENT_HTTP_PORT=8000 \
    SENTIMENT_LOG_FORMAT=json
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# /healthz: the process answers. Compose and Kubernetes use /readyz for readiness.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# SIGTERM finishes the current batch and leaves the group (SENTIMENT_SHUTDOWN_TIMEOUT_SECONDS).
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m"]
CMD ["consumer", "run"]
