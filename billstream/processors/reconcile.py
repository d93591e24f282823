"""Deferred downgrades applied before the period ends: a worker timer over its own partitions.

Each worker reads only the customer-state table partitions it holds (READ ONLY; timers never
write tables), so no account is reconciled by two workers in steady state; during a rebalance
the Idempotency-Key makes a second attempt a replay.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import stripe
from prometheus_client import Counter

from billstream.processors.config import ReducerConfig
from billstream.processors.downgrade import (
    Downgrade,
    DowngradeError,
    PriceResolver,
    apply_downgrade,
)
from billstream.processors.schedules import SCHEDULE, pending_plan_source
from billstream.processors.statuses import LIVE
from billstream.settings import Settings
from billstream.stripe_calls import Call, StripeCallFailed, StripeCalls, direct, shared_limiter
from billstream.stripe_client import describe_stripe_error, make_stripe_client
from billstream.tables.codec import decode_state
from billstream.tables.state import CustomerState

__all__ = [
    "Downgrade",
    "RunReport",
    "due_downgrades",
    "local_account_views",
    "reconcile_once",
    "register_reconcile_timer",
]

log = logging.getLogger(__name__)

# Table values are orjson with no spaces: a state without this text has no pending plan at all,
# so most customers are skipped without decoding.
PENDING_MARKER = b'"pending_plan":"'


class ReconcileMetrics(Protocol):
    reconcile_runs: Counter
    reconcile_errors: Counter
    downgrades_applied: Counter


@dataclass
class RunReport:
    """What one run did, for logs and tests."""

    due: int = 0
    applied: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def due_downgrades(
    accounts: Iterable[Mapping[str, Any]], now: int, lookahead: int, limit: int
) -> list[Downgrade]:
    """Live accounts whose pending plan is due (period ends by `now + lookahead`), soonest first."""
    due = []
    for account in accounts:
        pending, subscription = account.get("pending_plan"), account.get("subscription_id")
        period_end = account.get("current_period_end")
        if not pending or not subscription or period_end is None or account.get("deleted"):
            continue
        if account.get("subscription_status") not in LIVE:
            continue
        if pending == account.get("plan") or period_end > now + lookahead:
            continue
        due.append(
            Downgrade(
                customer_id=str(account["customer_id"]),
                subscription_id=str(subscription),
                plan=account.get("plan"),
                pending_plan=str(pending),
                period_end=int(period_end),
                interval=account.get("interval"),
                stripe_account=account.get("stripe_account"),
            )
        )
    return heapq.nsmallest(limit, due, key=lambda d: (d.period_end, d.customer_id))


def local_account_views(table: Any) -> Iterator[dict[str, Any]]:
    """Account views of the table's local partitions with a pending plan reconcile must apply.

    A pending plan from a subscription schedule is left out: Stripe applies the schedule's next
    phase itself, and a second switch by reconcile would fight it (docs/state.md).
    """
    for value in table.values():
        if not value or PENDING_MARKER not in value:
            continue
        data = decode_state(value)
        if data is None:
            continue
        state = CustomerState.from_dict(data)
        if pending_plan_source(state) == SCHEDULE:
            continue
        view = state.account_view()
        if view is not None:
            yield view


async def reconcile_once(
    client: stripe.StripeClient,
    accounts: Iterable[Mapping[str, Any]],
    config: ReducerConfig,
    metrics: ReconcileMetrics,
    *,
    now: int,
    lookahead: int,
    limit: int,
    call: Call = direct,
) -> RunReport:
    """Apply every due downgrade; one account's failure is counted and the batch goes on."""
    metrics.reconcile_runs.inc()
    due = due_downgrades(accounts, now, lookahead, limit)
    report = RunReport(due=len(due))
    resolver = PriceResolver(client, config, call)
    for downgrade in due:
        try:
            await asyncio.to_thread(apply_downgrade, client, resolver, downgrade, config, call)
        except (stripe.StripeError, StripeCallFailed, DowngradeError) as error:
            message = (
                describe_stripe_error(error)
                if isinstance(error, stripe.StripeError)
                else str(error)
            )
            _failed(report, metrics, downgrade, message)
        except Exception as error:  # a bug for one account must not starve the others
            log.exception("reconcile: unexpected error for %s", downgrade.customer_id)
            _failed(report, metrics, downgrade, repr(error))
        else:
            metrics.downgrades_applied.inc()
            report.applied.append(downgrade.customer_id)
            log.info(
                "reconcile: %s %s → %s applied (period end %s)",
                downgrade.customer_id,
                downgrade.plan,
                downgrade.pending_plan,
                downgrade.period_end,
            )
    return report


def _failed(report: RunReport, metrics: ReconcileMetrics, due: Downgrade, message: str) -> None:
    metrics.reconcile_errors.inc()
    report.errors[due.customer_id] = message
    log.warning(
        "reconcile: %s (%s) not downgraded: %s", due.customer_id, due.subscription_id, message
    )


def register_reconcile_timer(
    app: Any,
    settings: Settings,
    table: Any,
    metrics: ReconcileMetrics,
    *,
    client: stripe.StripeClient | None = None,
) -> Callable[[], Awaitable[RunReport]] | None:
    """Add the timer to the Faust app when RECONCILE_CRON_ENABLED; returns one run, for tests."""
    if not settings.reconcile_cron_enabled:
        return None
    # No key: fail at start, not later. Retries are stripe_calls', not stripe-python's.
    stripe_client = client or make_stripe_client(settings, max_network_retries=0)
    config = ReducerConfig.from_settings(settings)
    calls = StripeCalls(shared_limiter(settings.stripe_api_rate))

    async def reconcile_deferred_downgrades() -> RunReport:
        # One synchronous pass: nothing else touches the table while it is being read.
        accounts = list(local_account_views(table))
        return await reconcile_once(
            stripe_client,
            accounts,
            config,
            metrics,
            now=int(time.time()),
            lookahead=settings.reconcile_cron_lookahead_seconds,
            limit=settings.reconcile_cron_batch_limit,
            call=calls.call,
        )

    async def timer() -> None:
        await reconcile_deferred_downgrades()

    app.timer(
        interval=float(settings.reconcile_cron_interval_seconds),
        on_leader=False,
        name="reconcile_deferred_downgrades",
    )(timer)
    return reconcile_deferred_downgrades
