# Two images from one file: `web` (the API and migrations: no worker stack) and `worker` (the
# web image plus the extra [worker]: Qdrant client, onnxruntime, the embedding model, OpenAI).
FROM python:3.11-slim AS web

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 VAR_DIR=/data
WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
COPY cli ./cli
COPY common ./common
COPY web ./web
COPY workers ./workers
COPY bench ./bench
COPY examples ./examples
# The lock as constraints: the runtime dependencies only, at the locked versions.
RUN pip install -c requirements.lock '.[postgres]' && useradd --create-home bookchat && mkdir -p /data && chown bookchat /data
USER bookchat
EXPOSE 8000
CMD ["bookchat", "web", "--host", "0.0.0.0"]

FROM web AS worker
USER root
RUN pip install -c requirements.lock '.[worker,postgres]'
USER bookchat
CMD ["bookchat", "worker"]
