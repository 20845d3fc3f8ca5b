"""Counting what a fleet did: requests and their latency per kind, errors with their reasons.

Shared by the CLI, the demo and the benchmark, so all report the same figures the same way.
Thread-safe: every device thread records into one instance.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)  # "DeviceLock:Acknowledged"
    events: Counter[str] = field(default_factory=Counter)  # pushes, sessions, wipes...
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def request(self, kind: str, seconds: float) -> None:
        with self._lock:
            self.latencies.setdefault(kind, []).append(seconds)

    def error(self, reason: str) -> None:
        with self._lock:
            self.errors[reason] += 1

    def answer(self, request_type: str, status: str) -> None:
        with self._lock:
            self.answers[f"{request_type}:{status}"] += 1

    def event(self, name: str, count: int = 1) -> None:
        with self._lock:
            self.events[name] += count

    def count(self, *kinds: str) -> int:
        with self._lock:
            return sum(len(self.latencies.get(kind, ())) for kind in kinds)

    def summary(self, *kinds: str) -> dict[str, float]:
        """Count, p50, p99 and max (milliseconds) over the given kinds (all when none)."""
        with self._lock:
            chosen = kinds or tuple(self.latencies)
            values = sorted(v for k in chosen for v in self.latencies.get(k, ()))
        return {
            "count": len(values),
            "p50_ms": round(percentile(values, 0.50) * 1000, 2),
            "p99_ms": round(percentile(values, 0.99) * 1000, 2),
            "max_ms": round((values[-1] if values else 0.0) * 1000, 2),
        }

    def total_errors(self) -> int:
        with self._lock:
            return sum(self.errors.values())


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self) -> Timer:
        self.started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.seconds = time.perf_counter() - self.started
