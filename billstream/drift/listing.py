"""The drift audit's subscription listing, resumable: an interrupted audit continues after the
last page it listed instead of listing every subscription again.

The position (`starting_after` cursor, count, and when the audit began) advances after each
page. With a path (the one-off `billstream drift`) the pages are appended to `<path>.jsonl` and
the position saved atomically to `<path>` after each page, so a crash or Ctrl-C resumes on the
next run; without one (the periodic audit) both live in memory, so a cycle that failed half way
resumes on the next cycle. A listing is consumed by `finish()` once its audit completed.

The synthetic events' `created` is the time the listing began, never later than the moment any
page was listed: an object listed before a newer real event can never override it (the reducer
ignores an event older than the last applied one of the same subscription), however long the
listing was interrupted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import orjson
import stripe

from billstream import stripe_pages
from billstream.drift.audit import encode
from billstream.stripe_pages import Backoff

DEFAULT_DIR = Path("var") / "drift"
PAGE_SIZE = 100
# A listing older than this is not resumed: its objects are too old to be worth comparing.
MAX_RESUME_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Position:
    """How far a listing got: `cursor` is the last listed subscription (None: no page yet)."""

    started: int
    cursor: str | None = None
    listed: int = 0
    pages: int = 0
    spooled: int = 0  # bytes of `<path>.jsonl` holding the `listed` subscriptions
    complete: bool = False


def default_path(topic: str) -> Path:
    return DEFAULT_DIR / f"{topic}.json"


def account_path(path: Path, stripe_account: str | None) -> Path:
    """A connected account's listing beside the platform's: `<topic>.acct_A.json`."""
    if stripe_account is None:
        return path
    return path.with_name(f"{path.stem}.{stripe_account}{path.suffix}")


def discard(path: Path) -> None:
    """Remove a saved listing (`--fresh`): its position and its objects."""
    path.with_suffix(".jsonl").unlink(missing_ok=True)
    path.unlink(missing_ok=True)


class Listing:
    """The subscriptions one audit compares, listed page by page and kept until `finish()`."""

    def __init__(
        self,
        path: Path | None = None,
        clock: Callable[[], float] = time.time,
        max_age: float = MAX_RESUME_SECONDS,
    ) -> None:
        self.path = path
        self._clock = clock
        self._max_age = max_age
        self._memory: list[dict[str, Any]] = []
        self.position = Position(started=int(clock()))
        self.resumed = False
        saved = self._saved()
        if saved is None:
            self.restart()  # also removes what a listing too old to resume left
        else:
            self.position, self.resumed = saved, True

    @property
    def _spool(self) -> Path:
        assert self.path is not None
        return self.path.with_suffix(".jsonl")

    def _saved(self) -> Position | None:
        """The saved position, when there is one young enough to resume."""
        if self.path is None:
            return None
        try:
            data = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except orjson.JSONDecodeError as error:
            raise ValueError(
                f"checkpoint {self.path} is not valid JSON ({error}); delete it or use --fresh"
            ) from None
        try:
            position = Position(**data)
        except TypeError:
            raise ValueError(
                f"checkpoint {self.path} is not a drift listing; use --fresh"
            ) from None
        if self._clock() - position.started > self._max_age:
            return None
        spooled = self._spool.stat().st_size if self._spool.exists() else 0
        if spooled < position.spooled:
            return None  # the objects are gone: list again
        with self._spool.open("ab") as spool:  # drop a page appended after the last save
            spool.truncate(position.spooled)
        return position

    def restart(self) -> None:
        """Forget what was listed: the next page is the first."""
        self._memory.clear()
        if self.path is not None:
            discard(self.path)
        self.position = Position(started=int(self._clock()))
        self.resumed = False

    def restart_if_old(self) -> None:
        """Restart a listing kept longer than `max_age` (the periodic audit's memory)."""
        if self._clock() - self.position.started > self._max_age:
            self.restart()

    def add_page(self, items: list[dict[str, Any]], has_more: bool) -> None:
        """Keep one listed page and advance past it (durably first, with a path)."""
        cursor = str(items[-1]["id"]) if items else self.position.cursor
        spooled = self.position.spooled
        if self.path is None:
            self._memory.extend(items)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lines = b"".join(encode(item) + b"\n" for item in items)
            with self._spool.open("ab") as spool:
                spool.write(lines)
                spool.flush()
                os.fsync(spool.fileno())
            spooled += len(lines)
        self.position = replace(
            self.position,
            cursor=cursor,
            listed=self.position.listed + len(items),
            pages=self.position.pages + 1,
            spooled=spooled,
            complete=not has_more or not items,
        )
        if self.path is not None:
            temporary = self.path.with_suffix(".tmp")
            temporary.write_bytes(orjson.dumps(asdict(self.position)))
            os.replace(temporary, self.path)

    def subscriptions(self) -> Iterator[dict[str, Any]]:
        """Every subscription listed so far, in listing order."""
        if self.path is None:
            yield from self._memory
            return
        if not self._spool.exists():
            return
        with self._spool.open("rb") as spool:
            for line in spool:
                yield orjson.loads(line)

    def finish(self) -> None:
        """The audit of this listing completed: the next audit lists afresh."""
        self.restart()


def list_remaining(
    client: stripe.StripeClient,
    listing: Listing,
    page_size: int = PAGE_SIZE,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_page: Callable[[int], object] = lambda n: None,
    stripe_account: str | None = None,
) -> int:
    """List the pages `listing` does not have yet (any status); returns how many were fetched.

    `stripe_account`: a connected account's subscriptions."""
    listing.restart_if_old()
    fetched = 0
    while not listing.position.complete:
        params: dict[str, Any] = {"status": "all", "limit": page_size}
        if listing.position.cursor is not None:
            params["starting_after"] = listing.position.cursor
        list_call = stripe_pages.in_account(client.v1.subscriptions.list, stripe_account)
        page = stripe_pages.fetch_page(list_call, params, backoff, sleep)
        items = [item.to_dict() for item in page.data]
        listing.add_page(items, bool(page.has_more))
        fetched += 1
        on_page(len(items))
    return fetched


def list_schedules(
    client: stripe.StripeClient,
    page_size: int = PAGE_SIZE,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
    stripe_account: str | None = None,
) -> list[dict[str, Any]]:
    """Every subscription schedule (any status: an ended one clears the pending plan it gave).

    Not checkpointed: an account has far fewer schedules than subscriptions.
    """
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": page_size}
    while True:
        list_call = stripe_pages.in_account(client.v1.subscription_schedules.list, stripe_account)
        page = stripe_pages.fetch_page(list_call, params, backoff, sleep)
        items = [item.to_dict() for item in page.data]
        found.extend(items)
        if not page.has_more or not items:
            return found
        params["starting_after"] = items[-1]["id"]
