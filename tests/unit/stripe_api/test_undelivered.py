"""Periodic undelivered recovery starts where `backfill --undelivered` (or its last run) stopped."""

from __future__ import annotations

from pathlib import Path

from billstream.backfill import checkpoint as checkpoints
from billstream.backfill.checkpoint import Checkpoint
from billstream.backfill.since import EVENTS_RETENTION_SECONDS
from billstream.backfill.undelivered import default_path, starting_point
from billstream.topics import STRIPE_EVENTS
from tests.support.settings import SettingsFactory

NOW = 1_800_000_000


def test_it_shares_the_one_off_commands_checkpoint(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    name = default_path(settings).name
    assert name == f"{settings.topic(STRIPE_EVENTS)}.undelivered.json"


def test_without_a_checkpoint_it_starts_at_stripes_retention(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    start = starting_point(make_settings(), tmp_path / "none.json", NOW)
    assert start.created == NOW - EVENTS_RETENTION_SECONDS
    assert start.published == 0


def test_it_continues_a_checkpoint_of_its_topic_and_allowlist_only(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings()
    topic, types = settings.topic(STRIPE_EVENTS), settings.stripe_webhook_allowed_events
    path = tmp_path / "undelivered.json"
    saved = Checkpoint.fresh(topic, NOW - 86400, types).advance("evt_1", NOW - 60)
    checkpoints.save(path, saved)
    assert starting_point(settings, path, NOW) == saved
    narrower = make_settings(stripe_webhook_allowed_events="invoice.*")
    assert starting_point(narrower, path, NOW).created == NOW - EVENTS_RETENTION_SECONDS
