"""Prometheus metrics: the Temporal SDK's own (task latencies, slots, polls, ...) and ours,
recorded from the workflow and served on one endpoint per worker process.

Ours (workflow metrics are not recorded again on replay):
- `payouts_cashout_stages` (counter; stage, method, currency): cash-outs entering a stage;
- `payouts_paid_micros` / `payouts_fees_micros` (counters; method, currency): net amounts
  paid and fees charged, in micro-units;
- `payouts_review_wait_seconds` (histogram; method): from AWAITING_REVIEW to a decision.
"""

from __future__ import annotations

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig


def runtime(port: int, host: str = "127.0.0.1") -> Runtime | None:
    """A Temporal runtime exporting metrics at http://host:port/metrics (None when port 0)."""
    if not port:
        return None
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=f"{host}:{port}", durations_as_seconds=True)
        )
    )
