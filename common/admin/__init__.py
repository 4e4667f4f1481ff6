"""The operator's tools: find, retry or cancel any job; reprocessing, audit, queue overview."""
