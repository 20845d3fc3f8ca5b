"""Prometheus metrics: a small registry of collectors, evaluated at scrape time.

Why collectors and not in-process counters: gunicorn runs several worker processes, and a
counter kept in one of them is a fraction of the truth. Everything here is read from the
database when scraped, so every worker answers the same. Other features add their own:

    runtime(app).metrics.register("mdm_push_certificate_days_left", "gauge",
                                  "Days until the APNs certificate expires", lambda: [({}, 42)])
"""

from mdmserver.metrics.registry import MetricsRegistry, Sample

__all__ = ["MetricsRegistry", "Sample"]
