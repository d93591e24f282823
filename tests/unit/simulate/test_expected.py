"""The predicted state: the reducer fold of what ingest queued, whatever the payload shape and
despite Stripe's duplicate and out-of-order deliveries."""

from __future__ import annotations

import random

import orjson
import pytest

from billstream.settings import Settings
from billstream.simulate import events, scenarios, versions
from billstream.simulate.catalog import SIMULATOR_PLAN_MAP
from billstream.simulate.expected import ExpectedState, fold
from billstream.simulate.traffic import Delivery, Outcome, TrafficConfig, story_deliveries

SETTINGS = Settings(_env_file=None, billing_plan_map=SIMULATOR_PLAN_MAP)
START = 1_760_000_000
STATE_FIELDS = (
    "plan", "interval", "subscription_id", "subscription_status", "payment_state",
    "cancel_at_period_end", "pending_plan", "current_period_end", "deleted",
)  # fmt: skip


def queued(deliveries: list[Delivery]) -> list[Outcome]:
    return [Outcome(delivery, "queued", 1) for delivery in deliveries]


def deliveries(api_version: str, seed: int, quirks: float, stories: int = 150) -> list[Delivery]:
    config = TrafficConfig(
        seed=seed, start=START, api_version=api_version,
        duplicate_ratio=quirks, out_of_order_ratio=quirks,
    )  # fmt: skip
    found: list[Delivery] = []
    for story_seed in range(seed, seed + stories):
        story = scenarios.customer_story(random.Random(story_seed), START, api_version)
        found.extend(story_deliveries(story.planned, random.Random(story_seed), config))
    return found


def view(expected: ExpectedState) -> dict[str, tuple[object, ...]]:
    return {
        customer: tuple(account[name] for name in STATE_FIELDS)
        for customer, account in expected.accounts.items()
    }


def test_both_api_shapes_fold_to_the_same_accounts() -> None:
    basil = fold(queued(deliveries(events.BASIL_API, 1, 0.0)), SETTINGS)
    legacy = fold(queued(deliveries(events.LEGACY_API, 1, 0.0)), SETTINGS)
    assert len(basil.accounts) == 150
    assert basil.accounts == legacy.accounts
    assert set(basil.count("plan")) == {"FREE", "PRO", "BUSINESS"}
    assert basil.invalid_events == 0


@pytest.mark.parametrize("api_version", versions.SUPPORTED[:-1])
def test_every_supported_version_folds_to_the_newest_versions_accounts(api_version: str) -> None:
    # The simulated traffic of `billstream simulate --api-version V`, with Stripe's quirks.
    newest = fold(queued(deliveries(versions.NEWEST, 3, 0.2, stories=60)), SETTINGS)
    shaped = deliveries(api_version, 3, 0.2, stories=60)
    assert {orjson.loads(d.body)["api_version"] for d in shaped if d.kind != "bad_payload"} == {
        api_version
    }
    assert fold(queued(shaped), SETTINGS).accounts == newest.accounts


def test_duplicates_and_reordering_converge_to_the_in_order_state() -> None:
    in_order = fold(queued(deliveries(events.BASIL_API, 500, 0.0)), SETTINGS)
    quirky_deliveries = deliveries(events.BASIL_API, 500, 0.3)
    assert any(d.out_of_order for d in quirky_deliveries)
    assert any(d.kind == "duplicate" for d in quirky_deliveries)
    quirky = fold(queued(quirky_deliveries), SETTINGS)
    assert view(quirky) == view(in_order)


def test_only_queued_deliveries_count() -> None:
    sent = deliveries(events.BASIL_API, 7, 0.0)
    outcomes = [
        Outcome(d, "queued" if i % 2 else "invalid_signature", 1) for i, d in enumerate(sent)
    ]
    half = fold(outcomes, SETTINGS)
    everything = fold(queued(sent), SETTINGS)
    assert half.accounts != everything.accounts
