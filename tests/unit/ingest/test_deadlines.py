"""One timer bounds every in-flight publish: pending futures fail, settled ones are left alone."""

from __future__ import annotations

import asyncio

import pytest

from billstream.ingest.deadlines import Deadlines
from billstream.ingest.publisher import PublishError


async def test_pending_futures_fail_and_settled_ones_are_untouched() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(0.05)
    acknowledged, failed, pending = (loop.create_future() for _ in range(3))
    for future in (acknowledged, failed, pending):
        deadlines.watch(future)
    acknowledged.set_result(None)
    failed.set_exception(PublishError("broker said no"))
    with pytest.raises(PublishError, match=r"not acknowledged within 0\.05 s"):
        await pending
    assert acknowledged.result() is None
    with pytest.raises(PublishError, match="broker said no"):
        failed.result()
