"""A tiny Prometheus registry (counters, gauges, fixed-bucket histograms) and the polyhead_* families."""
from __future__ import annotations

import threading
from typing import Any, Optional, Sequence

from .. import __version__
from .settings import BATCH_BUCKETS, LATENCY_BUCKETS


class Metrics:
    """A tiny Prometheus registry: labelled counters, gauges and fixed-bucket histograms.

    Written here rather than with prometheus_client to keep the serve extra at two packages;
    render() emits the text exposition format (version 0.0.4) that Prometheus scrapes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._meta: dict[str, tuple[str, str, tuple, bool]] = {}  # name -> (type, help, buckets, labelled)
        self._values: dict[str, dict[tuple, Any]] = {}

    def register(self, name: str, kind: str, help_: str, buckets: Sequence[float] = (), labelled: bool = False) -> None:
        """Declare a metric family (counter, gauge or histogram)."""
        self._meta[name] = (kind, help_, tuple(buckets), labelled)
        self._values[name] = {}

    def inc(self, name: str, labels: Optional[dict[str, str]] = None, value: float = 1.0) -> None:
        """Add to a counter (or gauge)."""
        key = _label_key(labels)
        with self._lock:
            series = self._values[name]
            series[key] = series.get(key, 0.0) + value

    def set(self, name: str, value: float, labels: Optional[dict[str, str]] = None) -> None:
        """Set a gauge."""
        with self._lock:
            self._values[name][_label_key(labels)] = float(value)

    def observe(self, name: str, value: float, labels: Optional[dict[str, str]] = None) -> None:
        """Record one observation in a histogram."""
        buckets = self._meta[name][2]
        key = _label_key(labels)
        with self._lock:
            series = self._values[name]
            h = series.get(key)
            if h is None:
                h = series[key] = {"counts": [0] * len(buckets), "sum": 0.0, "count": 0}
            for i, upper in enumerate(buckets):
                if value <= upper:
                    h["counts"][i] += 1
                    break
            h["sum"] += value
            h["count"] += 1

    def render(self) -> str:
        """The text exposition of every metric."""
        lines: list[str] = []
        with self._lock:
            for name, (kind, help_, buckets, labelled) in self._meta.items():
                lines.append(f"# HELP {name} {help_}")
                lines.append(f"# TYPE {name} {kind}")
                series = self._values[name]
                if kind == "histogram":
                    # An unlabelled histogram shows zeros before its first observation, so
                    # dashboards and tests see the family from the start.
                    if not series and not labelled:
                        series = {(): {"counts": [0] * len(buckets), "sum": 0.0, "count": 0}}
                    for key, h in sorted(series.items()):
                        cumulative = 0
                        for upper, n in zip(buckets, h["counts"]):
                            cumulative += n
                            lines.append(f"{name}_bucket{_labels_text(key, ('le', _num(upper)))} {cumulative}")
                        lines.append(f"{name}_bucket{_labels_text(key, ('le', '+Inf'))} {h['count']}")
                        lines.append(f"{name}_sum{_labels_text(key)} {_num(h['sum'])}")
                        lines.append(f"{name}_count{_labels_text(key)} {h['count']}")
                else:
                    for key, value in sorted(series.items()):
                        lines.append(f"{name}{_labels_text(key)} {_num(value)}")
        return "\n".join(lines) + "\n"


def _label_key(labels: Optional[dict[str, str]]) -> tuple:
    return tuple(sorted((labels or {}).items()))


def _labels_text(key: tuple, extra: Optional[tuple[str, str]] = None) -> str:
    pairs = list(key) + ([extra] if extra else [])
    if not pairs:
        return ""
    esc = lambda v: str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")  # noqa: E731
    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in pairs) + "}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def build_metrics(model_name: str, backend: str) -> Metrics:
    """The registry with every polyhead_* family declared."""
    m = Metrics()
    m.register("polyhead_requests_total", "counter", "HTTP requests answered, by path, method and status code.")
    m.register("polyhead_request_duration_seconds", "histogram", "Time from request start to the end of the response, by path.", LATENCY_BUCKETS, labelled=True)
    m.register("polyhead_requests_in_flight", "gauge", "HTTP requests being handled now.")
    m.register("polyhead_texts_total", "counter", "Texts processed, by endpoint.")
    m.register("polyhead_batch_texts", "histogram", "Texts per model call (one micro-batch).", BATCH_BUCKETS)
    m.register("polyhead_batch_requests", "histogram", "Requests merged into one model call (one micro-batch).", BATCH_BUCKETS)
    m.register("polyhead_batch_duration_seconds", "histogram", "Time spent in the model per micro-batch.", LATENCY_BUCKETS)
    m.register("polyhead_queue_wait_seconds", "histogram", "Time a request waited before its micro-batch started.", LATENCY_BUCKETS)
    m.register("polyhead_rejected_total", "counter", "Requests refused by load shedding, by reason (queue_full, expected_wait, deadline).")
    m.register("polyhead_queue_texts", "gauge", "Texts waiting for the model now.")
    m.register("polyhead_info", "gauge", "Constant 1, labelled with the served model, backend and polyhead version.")
    m.set("polyhead_info", 1, {"model": model_name, "backend": backend, "version": __version__})
    m.set("polyhead_requests_in_flight", 0)
    return m
