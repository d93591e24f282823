"""The api's background work: migrate, ensure the topic, consume; each step retried, never fatal.

While a step fails the process keeps serving (reads answer 503, /readyz is false) and logs why,
so a full disk, an unwritable var/ or a broker outage is visible and heals without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from billstream.api.consumer import StateConsumer
from billstream.api.store import Store
from billstream.settings import Settings
from billstream.topics import contract_topics, ensure_topics

MAX_BACKOFF_SECONDS = 30.0
CleanupContext = Callable[[web.Application], AsyncIterator[None]]

log = logging.getLogger(__name__)


async def retry(what: str, step: Callable[[], Awaitable[None]]) -> None:
    """Run `step` until it succeeds, logging each failure with what it was for."""
    delay = 0.5
    while True:
        try:
            await step()
            return
        except Exception as error:
            log.error("%s failed: %s; retrying in %.1f s", what, str(error).splitlines()[0], delay)
        await asyncio.sleep(delay)
        delay = min(MAX_BACKOFF_SECONDS, delay * 2)


async def keep_consuming(settings: Settings, store: Store, consumer: StateConsumer) -> None:
    loop = asyncio.get_running_loop()

    async def migrate() -> None:
        await loop.run_in_executor(consumer.executor, store.migrate)
        log.info("read model ready at %s", store.display_url)

    await retry(f"migrating the read model at {store.display_url}", migrate)
    specs = [spec for spec in contract_topics(settings) if spec.name == consumer.topic]
    await retry(f"creating topic {consumer.topic}", lambda: ensure_topics(settings, specs))
    while True:
        await retry(f"starting the consumer of {consumer.topic}", consumer.start)
        log.info("consuming %s as group %s", consumer.topic, consumer.group_id)
        try:
            await consumer.run()
        except Exception:
            log.exception("the consumer of %s stopped; restarting it", consumer.topic)
        await consumer.stop()
        await asyncio.sleep(1.0)


def read_model_service(settings: Settings, store: Store, consumer: StateConsumer) -> CleanupContext:
    """An aiohttp cleanup context running `keep_consuming` for the app's lifetime."""

    async def context(_: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(keep_consuming(settings, store, consumer))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await consumer.stop()
        store.close()

    return context
