"""The drift audit's subscription listing resumes after the last page it listed, against
stripe-mock (which validates every request; the pages are this test's objects)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import stripe

from billstream.drift.listing import MAX_RESUME_SECONDS, Listing, list_remaining
from billstream.stripe_calls import StripeCallFailed
from billstream.stripe_pages import Backoff
from tests.support import factories as f
from tests.support.settings import SettingsFactory
from tests.support.stripe_api import PagedSubscriptions, RecordingClient, client_for

ONCE = Backoff(attempts=1)  # a 429 interrupts the listing at once


def objects(count: int) -> list[dict[str, Any]]:
    return [f.subscription(sub_id=f"sub_{i}", customer=f"cus_{i}") for i in range(count)]


def cursors(transport: RecordingClient) -> list[str | None]:
    return [s.query.get("starting_after", [None])[0] for s in transport.sent]


@pytest.fixture
def client_and_pages(
    make_settings: SettingsFactory, stripe_mock: str
) -> tuple[stripe.StripeClient, RecordingClient, PagedSubscriptions]:
    pages = PagedSubscriptions(objects(7), rate_limited_at=2)
    transport = RecordingClient(rewrite=pages)
    settings = make_settings(stripe_api_key="sk_test_listing", stripe_api_base=stripe_mock)
    return client_for(settings, transport), transport, pages


def test_a_listing_interrupted_by_stripe_resumes_from_its_checkpoint_file(
    client_and_pages: tuple[stripe.StripeClient, RecordingClient, PagedSubscriptions],
    tmp_path: Path,
) -> None:
    client, transport, pages = client_and_pages
    path = tmp_path / "drift.json"
    with pytest.raises(StripeCallFailed, match="rate_limited"):
        list_remaining(client, Listing(path), page_size=2, backoff=ONCE)

    resumed = Listing(path)  # a new process: only the files remain
    assert resumed.resumed
    assert (resumed.position.listed, resumed.position.cursor) == (4, "sub_3")
    assert list_remaining(client, resumed, page_size=2, backoff=ONCE) == 2
    assert [s["id"] for s in resumed.subscriptions()] == [f"sub_{i}" for i in range(7)]
    assert cursors(transport) == [None, "sub_1", "sub_3", "sub_3", "sub_5"]  # the 429 retried
    assert pages.pages == 4  # no page listed twice

    resumed.finish()
    assert not Listing(path).resumed  # the next audit lists afresh


def test_the_periodic_audit_keeps_its_position_in_memory(
    client_and_pages: tuple[stripe.StripeClient, RecordingClient, PagedSubscriptions],
) -> None:
    client, _transport, pages = client_and_pages
    listing = Listing()
    with pytest.raises(StripeCallFailed, match="rate_limited"):
        list_remaining(client, listing, page_size=2, backoff=ONCE)
    assert list_remaining(client, listing, page_size=2, backoff=ONCE) == 2
    assert [s["id"] for s in listing.subscriptions()] == [f"sub_{i}" for i in range(7)]
    assert pages.pages == 4
    assert list_remaining(client, listing, page_size=2) == 0  # complete until finished
    listing.finish()
    assert list(listing.subscriptions()) == []


def test_a_page_spooled_after_the_last_saved_position_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "drift.json"
    listing = Listing(path)
    listing.add_page(objects(2), has_more=True)
    with path.with_suffix(".jsonl").open("ab") as spool:  # a crash between spool and checkpoint
        spool.write(b'{"id": "sub_torn"')
    again = Listing(path)
    assert [s["id"] for s in again.subscriptions()] == ["sub_0", "sub_1"]
    again.add_page(objects(3)[2:], has_more=False)
    assert [s["id"] for s in Listing(path).subscriptions()] == ["sub_0", "sub_1", "sub_2"]


def test_a_listing_older_than_a_day_is_not_resumed(tmp_path: Path) -> None:
    path = tmp_path / "drift.json"
    listing = Listing(path, clock=lambda: 1_000.0)
    listing.add_page(objects(2), has_more=True)
    assert Listing(path, clock=lambda: 1_000.0 + MAX_RESUME_SECONDS - 1).resumed
    stale = Listing(path, clock=lambda: 1_000.0 + MAX_RESUME_SECONDS + 1)
    assert not stale.resumed
    assert stale.position.started == 1_000 + MAX_RESUME_SECONDS + 1
    assert list(stale.subscriptions()) == []


def test_a_checkpoint_whose_objects_are_gone_is_not_resumed(tmp_path: Path) -> None:
    path = tmp_path / "drift.json"
    Listing(path).add_page(objects(2), has_more=True)
    path.with_suffix(".jsonl").unlink()
    again = Listing(path)
    assert not again.resumed
    assert list(again.subscriptions()) == []


def test_a_file_that_is_not_a_checkpoint_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "drift.json"
    path.write_text('{"topic": "stripe.events"}')
    with pytest.raises(ValueError, match="not a drift listing"):
        Listing(path)
