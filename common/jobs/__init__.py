"""Jobs: chat, chapter and ingest jobs, their queue, events, lifecycle and watchdog."""
