"""How many times `bookchat dev` brings a dead process back before it calls it a crash loop."""

from __future__ import annotations

import time
from collections import deque

# More deaths than this within the window is not a blip: `bookchat dev` stops instead.
RESTARTS_ALLOWED = 3
RESTART_WINDOW = 60.0


class RestartBudget:
    """Counts a process's deaths over a sliding window; refuses once they come too fast."""

    def __init__(self, allowed: int = RESTARTS_ALLOWED, window: float = RESTART_WINDOW) -> None:
        self.allowed = allowed
        self.window = window
        self.deaths: deque[float] = deque()

    def spend(self) -> bool:
        """Record a death; whether a restart is still allowed."""
        now = time.monotonic()
        self.deaths.append(now)
        while self.deaths and self.deaths[0] < now - self.window:
            self.deaths.popleft()
        return len(self.deaths) <= self.allowed

    def __str__(self) -> str:
        return f"{len(self.deaths)} times within {self.window:.0f}s"
