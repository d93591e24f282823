"""`billstream worker`: create the contract topics, then run the Faust worker until stopped.

SIGTERM/SIGINT stop it gracefully (offsets committed after the producer is flushed); a crash
or SIGKILL loses nothing either: processing is at-least-once and the state is idempotent
(docs/processing-guarantees.md).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging

import faust
import uvloop
from aiohttp import web
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from billstream.kafka_security import describe
from billstream.processors.worker import build_worker
from billstream.settings import Settings
from billstream.topics import ensure_topics
from billstream.web import add_probe_routes

MAX_RETRY_SECONDS = 30.0

log = logging.getLogger(__name__)

# Python's defaults but a full collection at most every 100 second-generation ones, not 10.
GC_THRESHOLDS = (700, 10, 100)


def tune_gc() -> None:
    """Keep the collector off the per-record path.

    Each record allocates ~100 short-lived objects (the parsed event), so collections run
    often, and every full one walked everything the worker ever built (Faust, aiokafka, the
    state cache): 6-7 % of its time on a backlog (bench/worker.py, gc callbacks). Objects that
    exist once the worker is built are frozen out of collection and full collections are rarer:
    ~2.7 %. The state holds no reference cycles, so little waits for the rarer collections.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def ensure_topics_patiently(settings: Settings) -> None:
    """Create the topics, retrying while Kafka is unreachable or refuses us (bad credentials).

    A wrong password or a broker outage at start-up is then a log line per attempt, backing
    off, instead of a crash loop; aiokafka's own line before it names the cause. Meanwhile
    the worker's port answers `/healthz` 200 and `/readyz` 503, as once Faust serves it.
    """
    try:
        await ensure_topics(settings)
        return
    except KafkaError:
        pass
    probes = web.Application()
    add_probe_routes(probes, CollectorRegistry(), ready=lambda: False)
    runner = web.AppRunner(probes, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.worker_web_host, settings.worker_web_port).start()
        await _retry_topics(settings)
    finally:
        await runner.cleanup()  # Faust's web server takes the port over


async def _retry_topics(settings: Settings) -> None:
    delay = 1.0
    while True:
        try:
            await ensure_topics(settings)
            return
        except KafkaError as error:
            log.error(
                "kafka at %s (%s) not usable: %s; retrying in %.0f s",
                settings.kafka_bootstrap_servers,
                describe(settings),
                error,
                delay,
            )
        await asyncio.sleep(delay)
        delay = min(MAX_RETRY_SECONDS, delay * 2)


def run(settings: Settings, args: argparse.Namespace) -> int:
    # uvloop for the main loop and for the loop of Faust's consumer thread.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(ensure_topics_patiently(settings))
    worker = build_worker(settings)
    tune_gc()
    faust_worker = faust.Worker(
        worker.app,
        loop=loop,
        loglevel=settings.log_level,
        override_logging=False,  # keep configure_logging's handler and LOG_FORMAT
        redirect_stdouts=False,
        quiet=True,
    )
    faust_worker.execute_from_commandline()  # exits the process when the worker stops
    return 0
