"""Contract topic names and their creation with the configs the contract requires.

Faust creates only its own internal topics; the source, DLQ and output topics are ours.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from billstream.kafka_security import aiokafka_options
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
    admin = AIOKafkaAdminClient(**aiokafka_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name=spec.name,
                num_partitions=settings.billstream_topic_partitions,
                replication_factor=settings.billstream_topic_replication,
                topic_configs=spec.configs,
            )
            for spec in specs
            if spec.name not in existing
        ]
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
        print(spec.name, spec.configs)
    return 0
