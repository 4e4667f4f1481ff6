"""bookchat's Celery workers: answer chat jobs and ingest textbooks."""
