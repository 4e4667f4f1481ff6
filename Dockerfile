FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 VAR_DIR=/data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY cli ./cli
COPY common ./common
COPY web ./web
COPY workers ./workers
COPY bench ./bench
COPY examples ./examples
RUN pip install . && useradd --create-home bookchat && mkdir -p /data && chown bookchat /data
USER bookchat
EXPOSE 8000
CMD ["bookchat", "web", "--host", "0.0.0.0"]
