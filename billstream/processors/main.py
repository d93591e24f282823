"""`billstream worker`: create the contract topics, then run the Faust worker until stopped.

SIGTERM/SIGINT stop it gracefully (offsets committed after the producer is flushed); a crash
or SIGKILL loses nothing either: processing is at-least-once and the state is idempotent
(docs/processing-guarantees.md).
"""

from __future__ import annotations

import argparse
import asyncio

import faust
import uvloop

from billstream.processors.worker import build_worker
from billstream.settings import Settings
from billstream.topics import ensure_topics


def run(settings: Settings, args: argparse.Namespace) -> int:
    # uvloop for the main loop and for the loop of Faust's consumer thread.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(ensure_topics(settings))
    worker = build_worker(settings)
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
