"""`billstream ingest` serves on uvloop, with the collector tuned for many requests alive."""

from __future__ import annotations

import gc
import inspect
from collections.abc import Iterator

import pytest
import uvloop
from aiohttp import web

from billstream.ingest import main


def test_ingest_serves_on_uvloop() -> None:
    loop = main.new_event_loop()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
    assert inspect.signature(main.serve).parameters["loop_factory"].default is main.new_event_loop


@pytest.fixture
def thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_ingest_collects_young_objects_rarely_while_serving(
    thresholds: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, int, int]] = []

    async def serving(app: web.Application, port: int, **_: object) -> None:
        seen.append(gc.get_threshold())

    monkeypatch.setattr(main, "serve_until_stopped", serving)
    main.serve(web.Application(), 0, "127.0.0.1")
    assert seen == [main.GC_THRESHOLDS]
    assert main.GC_THRESHOLDS[0] > 700  # rarer young collections than Python's default
