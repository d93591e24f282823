"""`billstream worker`: create the contract topics, then run the Faust worker until stopped.

SIGTERM/SIGINT stop it gracefully (offsets committed after the producer is flushed); a crash
or SIGKILL loses nothing either: processing is at-least-once and the state is idempotent
(docs/processing-guarantees.md).
"""

from __future__ import annotations

import argparse
import asyncio
import gc

import faust
import uvloop

from billstream.processors.worker import build_worker
from billstream.settings import Settings
from billstream.topics import ensure_topics

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


def run(settings: Settings, args: argparse.Namespace) -> int:
    # uvloop for the main loop and for the loop of Faust's consumer thread.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(ensure_topics(settings))
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
