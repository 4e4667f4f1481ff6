"""Where the CPU goes while a benchmark runs: seconds per process group, from /proc via psutil.

A submit offered at `rate` a second on `cores` cores has `1000 * cores / rate` ms of CPU to spend
on everything it causes (web, worker, database, Redis, the load generator itself). Measuring
each group's share says which one would have to shrink for a rate to fit.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import psutil

# Processes found by name rather than by pid: the shared servers a stack talks to.
NAMED_GROUPS = {"postgres": "postgresql", "redis-server": "redis"}


def _tree(pid: int) -> set[int]:
    try:
        root = psutil.Process(pid)
        return {pid, *(child.pid for child in root.children(recursive=True))}
    except psutil.NoSuchProcess:
        return set()


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


@dataclass
class CpuMeter:
    """Snapshots of CPU seconds by group; `roots` maps a group to the pids whose trees it owns."""

    roots: Mapping[str, Iterable[int]]
    _start: dict[int, tuple[str, float]] = field(default_factory=dict)
    _machine_start: float = 0.0

    def _groups(self) -> dict[int, str]:
        owner: dict[int, str] = {os.getpid(): "load generator"}
        for group, pids in self.roots.items():
            for pid in pids:
                owner.update(dict.fromkeys(_tree(pid), group))
        return owner

    def _snapshot(self) -> dict[int, tuple[str, float]]:
        owner = self._groups()
        seen: dict[int, tuple[str, float]] = {}
        for process in psutil.process_iter(["name"]):
            group = owner.get(process.pid) or NAMED_GROUPS.get(process.info["name"] or "", "other")
            try:
                seen[process.pid] = (group, _cpu_seconds(process))
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return seen

    def start(self) -> None:
        """Take the first snapshot."""
        self._start = self._snapshot()
        self._machine_start = _machine_busy_seconds()

    def stop(self) -> dict[str, float]:
        """CPU seconds used by each group since `start`, plus the machine's busy total."""
        used: dict[str, float] = {}
        for pid, (group, seconds) in self._snapshot().items():
            before = self._start.get(pid, (group, 0.0))[1]
            used[group] = used.get(group, 0.0) + max(0.0, seconds - before)
        used["machine (busy)"] = _machine_busy_seconds() - self._machine_start
        return used


def _machine_busy_seconds() -> float:
    times = psutil.cpu_times()
    return float(times.user + times.nice + times.system + times.irq + times.softirq)


def per_submit_ms(used: Mapping[str, float], submits: int) -> dict[str, float]:
    """Each group's CPU milliseconds per submit."""
    return {group: round(seconds * 1000 / max(submits, 1), 2) for group, seconds in used.items()}


def budget_ms(rate: float, cores: int | None = None) -> float:
    """CPU milliseconds the machine has for each submit offered at `rate` a second."""
    return round(1000 * (cores or psutil.cpu_count() or 1) / rate, 2)
