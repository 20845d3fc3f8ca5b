"""The registry and the Prometheus text exposition format (version 0.0.4)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from mdmserver.logs import get_logger

log = get_logger("metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Sample = tuple[Mapping[str, str], float]
Collect = Callable[[], Iterable[Sample]]
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_TYPES = ("counter", "gauge")


@dataclass(frozen=True)
class _Metric:
    name: str
    type: str
    help: str
    collect: Collect


class MetricsRegistry:
    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def register(self, name: str, type_: str, help_: str, collect: Collect) -> None:
        """Add a metric whose samples ``collect()`` returns at each scrape (label dict, value).

        Counters' names end in ``_total``. Registering a name twice is a bug and raises.
        """
        if not _NAME.fullmatch(name) or type_ not in _TYPES:
            raise ValueError(f"bad metric {name!r} of type {type_!r}")
        if type_ == "counter" and not name.endswith("_total"):
            raise ValueError(f"counter {name!r} must end in _total")
        if name in self._metrics:
            raise ValueError(f"metric {name!r} is already registered")
        self._metrics[name] = _Metric(name, type_, help_, collect)

    def names(self) -> list[str]:
        return sorted(self._metrics)

    def render(self) -> str:
        lines: list[str] = []
        for metric in self._metrics.values():
            try:
                samples = list(metric.collect())
            except Exception:
                # One broken collector must not hide every other metric.
                log.exception("metric_collect_failed", extra={"fields": {"metric": metric.name}})
                continue
            lines.append(f"# HELP {metric.name} {_escape_help(metric.help)}")
            lines.append(f"# TYPE {metric.name} {metric.type}")
            for labels, value in samples:
                lines.append(f"{metric.name}{_labels(labels)} {_number(value)}")
        return "\n".join(lines) + "\n"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    parts = []
    for key, value in sorted(labels.items()):
        escaped = str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        parts.append(f'{key}="{escaped}"')
    return "{" + ",".join(parts) + "}"


def _number(value: float) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
