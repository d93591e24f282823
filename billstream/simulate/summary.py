"""The end-of-run summary: what was sent, what ingest answered, which stories happened, and what
the state should now be. Rendered as text for people and as JSON for tests and reports.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from billstream.simulate.expected import ExpectedState
from billstream.simulate.sender import SendReport

# Story tags grouped the way the dashboards group them: (line label, [(label, tag), ...]).
STORY_LINES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("sign-ups", (("paid", "signup_paid"), ("trial", "signup_trial"),
                  ("unknown price", "signup_unknown_price"),
                  ("trials converted", "trial_converted"), ("trials cancelled", "trial_canceled"))),
    ("plan changes", (("upgrades", "upgrade"), ("downgrades now", "downgrade_immediate"),
                      ("downgrades scheduled", "downgrade_scheduled"),
                      ("downgrades at period end", "downgrade_applied"),
                      ("downgrades by schedule", "downgrade_scheduled_by_schedule"),
                      ("applied by schedule", "downgrade_applied_by_schedule"),
                      ("withdrawn", "downgrade_withdrawn"),
                      ("upgrades unpaid, expired", "pending_update_expired"),
                      ("month->year", "interval_month_to_year"),
                      ("year->month", "interval_year_to_month"))),
    ("cancellations", (("scheduled", "cancel_scheduled"), ("reverted", "cancel_reverted"),
                       ("at period end", "canceled_at_period_end"), ("immediate", "canceled_now"),
                       ("paused", "paused"), ("resumed", "resumed"),
                       ("customers deleted", "customer_deleted"))),
    ("renewals", (("paid", "renewed"),)),
    ("dunning", (("entered", "dunning_entered"), ("recovered after 1", "dunning_recovered_1"),
                 ("after 2", "dunning_recovered_2"), ("after 3", "dunning_recovered_3"),
                 ("paid in parts", "paid_in_parts"),
                 ("lost", "dunning_lost"))),
    ("SCA", (("entered", "sca_entered"), ("completed", "sca_completed"),
             ("abandoned", "sca_abandoned"))),
    ("entitlements", (("updated", "entitlements_updated"),
                      ("over ten, fetched by the resolver", "entitlements_has_more"))),
)  # fmt: skip


def summarize(
    report: SendReport,
    expected: ExpectedState,
    seed: int,
    start: int,
    api_version: str | None = None,
) -> dict[str, Any]:
    """Plain data: counts only, never a payload or a secret."""
    outcomes = report.outcomes
    kinds = Counter(o.delivery.kind for o in outcomes)
    stories = Counter(
        o.delivery.tag
        for o in outcomes
        if o.status == "queued" and o.delivery.kind == "event" and o.delivery.tag
    )
    summary: dict[str, Any] = {
        "seed": seed,
        "start": start,
        "api_version": api_version,
        "elapsed_seconds": round(report.elapsed, 1),
        "sent": len(outcomes),
        "stopped_early": report.stopped_early,
        "deliveries": dict(sorted(kinds.items())),
        "out_of_order": sum(o.delivery.out_of_order for o in outcomes),
        "responses": dict(sorted(report.counts().items())),
        "retried": dict(sorted(report.retried_statuses.items())),
        "stories": dict(sorted(stories.items())),
    }
    summary["expected"] = {
        "customers": len(expected.accounts),
        "plan": expected.count("plan"),
        "payment_state": expected.count("payment_state"),
        "subscription_status": expected.count("subscription_status"),
        "pending_plan": expected.count("pending_plan"),  # metadata or a schedule's next phase
        "deleted": expected.count("deleted").get("True", 0),
        "invalid_events": expected.invalid_events,
    }
    return summary


def render(summary: dict[str, Any]) -> str:
    """The summary as a few lines of text."""
    rate = summary["sent"] / summary["elapsed_seconds"] if summary["elapsed_seconds"] else 0.0
    lines = [
        f"billstream simulate: seed {summary['seed']} "
        f"(same traffic again: --seed {summary['seed']} --start {summary['start']}"
        + (f" --api-version {summary['api_version']})" if summary.get("api_version") else ")"),
        f"sent {summary['sent']} deliveries in {summary['elapsed_seconds']} s ({rate:.1f}/s): "
        + _pairs(summary["deliveries"])
        + f", {summary['out_of_order']} out of order",
        "ingest answered: " + _pairs(summary["responses"]),
    ]
    if summary["retried"]:
        lines.append("retried after: " + _pairs(summary["retried"]))
    if summary["stopped_early"]:
        lines.append("stopped at --duration before --rate x --duration deliveries: ingest is slow")
    stories = summary["stories"]
    lines.append("stories (events ingest queued):")
    for label, items in STORY_LINES:
        lines.append(f"  {label}: " + ", ".join(f"{name} {stories.get(t, 0)}" for name, t in items))
    expected = summary["expected"]
    lines += [
        f"expected state ({expected['customers']} customers, {expected['deleted']} deleted):",
        "  plan: " + _pairs(expected["plan"]),
        "  payment_state: " + _pairs(expected["payment_state"]),
        "  subscription_status: " + _pairs(expected["subscription_status"]),
        "  pending_plan: " + _pairs(expected["pending_plan"]),
    ]
    if expected["invalid_events"]:
        lines.append(f"  events the reducer rejects (DLQ): {expected['invalid_events']}")
    return "\n".join(lines)


def _pairs(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items()) or "none"
