"""`billstream ingest` serves on uvloop."""

from __future__ import annotations

import inspect

import uvloop

from billstream.ingest import main


def test_ingest_serves_on_uvloop() -> None:
    loop = main.new_event_loop()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
    assert inspect.signature(main.serve).parameters["loop_factory"].default is main.new_event_loop
