"""Topic create requests: replication and min ISR follow BILLSTREAM_TOPIC_REPLICATION."""

from __future__ import annotations

import pytest

from billstream.topics import (
    ACCOUNT_STATE,
    INVOICE_EPISODES,
    STRIPE_EVENTS,
    STRIPE_EVENTS_DLQ,
    STRIPE_THIN_EVENTS,
    TopicSpec,
    contract_topics,
    min_insync_replicas,
    new_topic,
)
from tests.support.settings import SettingsFactory


@pytest.mark.parametrize(("replication", "min_isr"), [(1, 1), (2, 2), (3, 2), (5, 2)])
def test_an_acknowledged_write_is_on_two_brokers_whenever_there_are_two(
    replication: int, min_isr: int
) -> None:
    assert min_insync_replicas(replication) == min_isr


def test_replication_3_creates_every_contract_topic_with_3_replicas_and_min_isr_2(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(billstream_topic_replication=3, billstream_topic_partitions=6)

    topics = {spec.name: new_topic(settings, spec) for spec in contract_topics(settings)}

    assert set(topics) == {
        settings.topic(name)
        for name in (
            STRIPE_EVENTS,
            STRIPE_THIN_EVENTS,
            STRIPE_EVENTS_DLQ,
            ACCOUNT_STATE,
            INVOICE_EPISODES,
        )
    }
    for topic in topics.values():
        assert (topic.num_partitions, topic.replication_factor) == (6, 3)
        assert topic.topic_configs["min.insync.replicas"] == "2"
    # The contract's own configs are kept beside it.
    assert topics[settings.topic(ACCOUNT_STATE)].topic_configs["cleanup.policy"] == "compact"
    assert topics[settings.topic(INVOICE_EPISODES)].topic_configs["cleanup.policy"] == "compact"
    assert "retention.ms" in topics[settings.topic(STRIPE_EVENTS)].topic_configs


def test_the_default_single_broker_setup_needs_one_copy(make_settings: SettingsFactory) -> None:
    topic = new_topic(make_settings(), TopicSpec("x", {"cleanup.policy": "compact"}))

    assert topic.replication_factor == 1
    assert topic.topic_configs == {"min.insync.replicas": "1", "cleanup.policy": "compact"}


def test_a_spec_may_set_its_own_min_isr(make_settings: SettingsFactory) -> None:
    settings = make_settings(billstream_topic_replication=3)
    topic = new_topic(settings, TopicSpec("x", {"min.insync.replicas": "3"}))

    assert topic.topic_configs["min.insync.replicas"] == "3"
