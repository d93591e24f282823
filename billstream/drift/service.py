"""`billstream drift-audit`: the periodic drift audit (and heal) and undelivered-event recovery.

Its own process, one per deployment: each job lists a whole Stripe account, so one per worker
or api replica would multiply the Stripe calls by the replica count, and it compares with what
the api serves (DRIFT_API_URL), which no worker holds whole (each owns some partitions). It
writes nothing but records to `stripe.events`, so the reducer stays the only writer of state.
`/healthz`, `/readyz` (503 while the last run of a job failed) and `/metrics` on
DRIFT_AUDIT_PORT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import stripe
from aiohttp import web

from billstream.backfill.undelivered import recover_undelivered
from billstream.drift.auditor import account_listings, run_audit
from billstream.drift.metrics import RecoveryMetrics
from billstream.settings import Settings
from billstream.stripe_client import StripeNotConfigured, describe_stripe_error, make_stripe_client
from billstream.web import add_probe_routes, serve_until_stopped

log = logging.getLogger(__name__)


@dataclass
class Job:
    """A run repeated every `interval` seconds; `healthy` while its last run succeeded."""

    name: str  # a value of metrics.JOBS
    interval: float
    run: Callable[[], Awaitable[None]]
    healthy: bool = True


def _describe(error: Exception) -> str:
    if isinstance(error, stripe.StripeError):
        return describe_stripe_error(error)
    return f"{type(error).__name__}: {error}"


async def repeat(job: Job, metrics: RecoveryMetrics) -> None:
    """Run `job` now, then `interval` seconds after each run; a failure is logged and counted."""
    while True:
        try:
            await job.run()
            job.healthy = True
        except Exception as error:  # a long-running loop: no failure may end it silently
            log.warning(
                "%s failed, next run in %.0f s: %s", job.name, job.interval, _describe(error)
            )
            metrics.runs.labels(job.name, "error").inc()
            job.healthy = False
        await asyncio.sleep(job.interval)


def drift_job(
    settings: Settings, client: stripe.StripeClient, metrics: RecoveryMetrics, interval: float
) -> Job:
    # In memory: a failed cycle resumes the listings on the next one.
    listings = account_listings(settings.drift_stripe_accounts)

    async def audit() -> None:
        result = await run_audit(
            settings, client, settings.drift_api(), listings, settings.drift_heal
        )
        metrics.observe_audit(result)
        log.info(
            "drift audit: %d customers checked, %d drift, %d events healed, %d pages, %.1f s",
            result.customers,
            len(result.drifting),
            result.healed_events,
            result.pages,
            result.seconds,
        )

    return Job("drift_audit", interval, audit)


def undelivered_job(
    settings: Settings,
    client: stripe.StripeClient,
    metrics: RecoveryMetrics,
    interval: float,
    checkpoint: Path | None = None,
) -> Job:
    async def recover() -> None:
        published = await recover_undelivered(settings, client, checkpoint)
        metrics.undelivered_recovered.inc(published)
        metrics.runs.labels("undelivered_recovery", "ok").inc()
        if published:
            log.info("undelivered recovery: %d events published to stripe.events", published)

    return Job("undelivered_recovery", interval, recover)


def jobs_for(
    settings: Settings, client: stripe.StripeClient, metrics: RecoveryMetrics
) -> list[Job]:
    """The jobs the settings enable."""
    jobs = []
    if settings.drift_audit_interval_seconds is not None:
        jobs.append(drift_job(settings, client, metrics, settings.drift_audit_interval_seconds))
    if settings.undelivered_recovery_interval_seconds is not None:
        interval = settings.undelivered_recovery_interval_seconds
        jobs.append(undelivered_job(settings, client, metrics, interval))
    return jobs


def build_app(jobs: list[Job], metrics: RecoveryMetrics) -> web.Application:
    """Probes and metrics; the jobs run for the app's lifetime."""
    app = web.Application()
    add_probe_routes(app, metrics.registry, lambda: all(job.healthy for job in jobs))

    async def run_jobs(_: web.Application) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(repeat(job, metrics), name=job.name) for job in jobs]
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.cleanup_ctx.append(run_jobs)
    return app


def run(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.periodic_recovery():
        print(
            "billstream drift-audit: nothing to do: set DRIFT_AUDIT_INTERVAL_SECONDS and/or "
            "UNDELIVERED_RECOVERY_INTERVAL_SECONDS",
            file=sys.stderr,
        )
        return 2
    try:
        client = make_stripe_client(settings, max_network_retries=0)  # stripe_calls retries
    except StripeNotConfigured as error:
        print(f"billstream drift-audit: {error}", file=sys.stderr)
        return 2
    metrics = RecoveryMetrics.create()
    app = build_app(jobs_for(settings, client, metrics), metrics)
    port, host = settings.drift_audit_port, settings.drift_audit_host
    asyncio.run(serve_until_stopped(app, port, host))
    return 0
