"""The cash-out's metrics, recorded through the workflow's meter (not again on replay).

- `payouts_cashout_stages` (counter; stage, method, currency): cash-outs entering a stage;
- `payouts_paid_micros` / `payouts_fees_micros` (counters; method, currency);
- `payouts_review_wait_seconds` (histogram; method): from AWAITING_REVIEW to a decision.
"""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from payouts.domain.cashout import CashoutInput, Stage


def stage_entered(inp: CashoutInput, stage: Stage) -> None:
    q = inp.quote
    tags = {"method": q.method.value, "currency": q.currency}
    meter = workflow.metric_meter()
    meter.create_counter("payouts_cashout_stages", "cash-outs entering a stage").add(
        1, {"stage": stage.value, **tags}
    )
    if stage is Stage.PAID:
        meter.create_counter("payouts_paid_micros", "net paid, micro-units").add(q.net, tags)
        meter.create_counter("payouts_fees_micros", "fees charged, micro-units").add(q.fee, tags)


def review_waited(inp: CashoutInput, seconds: float) -> None:
    workflow.metric_meter().create_histogram_float(
        "payouts_review_wait_seconds", "from AWAITING_REVIEW to a decision", "s"
    ).record(seconds, {"method": inp.quote.method.value})
