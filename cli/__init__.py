"""The `bookchat` command line: runs the processes and talks to them through the queue.

It sits above both `web` and `workers`; nothing in `common`, `web` or `workers` imports it.
"""
