"""Contract topic names and their creation with the configs the contract requires.

Faust creates only its own internal topics; the source, DLQ and output topics are ours.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from billstream.settings import Settings

STRIPE_EVENTS = "stripe.events"
STRIPE_EVENTS_DLQ = "stripe.events.dlq"
ACCOUNT_STATE = "billing.account-state"

WEEK_MS = 7 * 24 * 3600 * 1000

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    configs: dict[str, str] = field(default_factory=dict)


def min_insync_replicas(replication: int) -> int:
    """Copies a write needs before acks=all acknowledges it: two whenever there are two.

    So with replication >= 2 an acknowledged webhook survives losing any one broker; with 3 the
    topic also stays writable while one broker is down. Replication 2 trades that availability
    for the second copy (one broker down means 503s); replication 1 has nothing to wait for.
    """
    return min(2, replication)


def replication_configs(replication: int) -> dict[str, str]:
    """Topic configs that follow the replication factor (for ours and Faust's changelogs)."""
    return {"min.insync.replicas": str(min_insync_replicas(replication))}


def new_topic(settings: Settings, spec: TopicSpec) -> NewTopic:
    """The create request for `spec`: partitions, replication and min ISR from `settings`."""
    replication = settings.billstream_topic_replication
    return NewTopic(
        name=spec.name,
        num_partitions=settings.billstream_topic_partitions,
        replication_factor=replication,
        topic_configs=replication_configs(replication) | spec.configs,
    )


def contract_topics(settings: Settings) -> list[TopicSpec]:
    """The topics billstream owns, with physical names (prefix applied)."""
    retention = str(max(WEEK_MS, settings.dedup_retention_seconds * 1000))
    return [
        # Retained for replay (rebuild/verify) at least as long as de-duplication remembers.
        TopicSpec(settings.topic(STRIPE_EVENTS), {"retention.ms": retention}),
        TopicSpec(settings.topic(STRIPE_EVENTS_DLQ), {"retention.ms": str(4 * WEEK_MS)}),
        TopicSpec(
            settings.topic(ACCOUNT_STATE),
            {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"},
        ),
    ]


async def ensure_topics(settings: Settings, specs: list[TopicSpec] | None = None) -> None:
    """Create missing topics; existing ones are left as they are (idempotent)."""
    specs = specs if specs is not None else contract_topics(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [new_topic(settings, spec) for spec in specs if spec.name not in existing]
        if not missing:
            return
        # Another process may create a topic between our list and create.
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(missing)
        log.info("created topics %s", [topic.name for topic in missing])
    finally:
        await admin.close()


def run(settings: Settings, args: object) -> int:
    """`billstream topics`: create the contract topics (idempotent)."""
    import asyncio

    asyncio.run(ensure_topics(settings))
    for spec in contract_topics(settings):
        topic = new_topic(settings, spec)
        print(topic.name, f"replication={topic.replication_factor}", topic.topic_configs)
    return 0
