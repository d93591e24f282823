"""Contract topic names and their creation with the configs the contract requires.

Faust creates only its own internal topics; the source, DLQ and output topics are ours.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from billstream.kafka_security import aiokafka_options
from billstream.limits import record_bytes
from billstream.settings import Settings

STRIPE_EVENTS = "stripe.events"
STRIPE_EVENTS_DLQ = "stripe.events.dlq"
# Thin event notifications, and the worker's refetch requests, for the resolver.
STRIPE_THIN_EVENTS = "stripe.thin-events"
ACCOUNT_STATE = "billing.account-state"
INVOICE_EPISODES = "billing.invoice-episodes"

WEEK_MS = 7 * 24 * 3600 * 1000

log = logging.getLogger(__name__)


MAX_MESSAGE_BYTES = "max.message.bytes"


class TopicConfigError(Exception):
    """An existing topic carries smaller records than the settings need; the message is one line."""

    def __init__(self, topic: str, accepts: int, needs: int) -> None:
        super().__init__(
            f"topic {topic} accepts records up to {accepts} bytes ({MAX_MESSAGE_BYTES}) but "
            f"STRIPE_WEBHOOK_MAX_BODY needs {needs}: raise the topic's {MAX_MESSAGE_BYTES} or "
            "lower STRIPE_WEBHOOK_MAX_BODY"
        )
        self.topic = topic
        self.accepts = accepts
        self.needs = needs


class MissingTopic(LookupError):
    """The topic does not exist (yet): a reader started before `billstream topics` ran."""


async def partition_numbers(settings: Settings, topic: str) -> list[int]:
    """The partition numbers of `topic`, from the admin client: a consumer without a
    subscription has no metadata of it. MissingTopic when it does not exist."""
    admin = AIOKafkaAdminClient(**aiokafka_options(settings))
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = sorted(int(p["partition"]) for p in described["partitions"])
    if described["error_code"] or not partitions:
        raise MissingTopic(f"topic {topic} does not exist")
    return partitions


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
    # Webhook bodies up to STRIPE_WEBHOOK_MAX_BODY travel whole: into stripe.events and, if
    # poison, on to the DLQ (the broker's default limit is about 1 MB).
    records = str(record_bytes(settings.stripe_webhook_max_body))
    return [
        # Retained for replay (rebuild/verify) at least as long as de-duplication remembers.
        TopicSpec(
            settings.topic(STRIPE_EVENTS),
            {"retention.ms": retention, MAX_MESSAGE_BYTES: records},
        ),
        # Same configs as stripe.events: a DLQ replay sends a thin record back here whole.
        TopicSpec(
            settings.topic(STRIPE_THIN_EVENTS),
            {"retention.ms": retention, MAX_MESSAGE_BYTES: records},
        ),
        TopicSpec(
            settings.topic(STRIPE_EVENTS_DLQ),
            {"retention.ms": str(4 * WEEK_MS), MAX_MESSAGE_BYTES: records},
        ),
        TopicSpec(
            settings.topic(ACCOUNT_STATE),
            {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"},
        ),
        # Every episode's latest record, kept for good: the cohorts are built from it.
        TopicSpec(
            settings.topic(INVOICE_EPISODES),
            {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"},
        ),
    ]


async def ensure_topics(settings: Settings, specs: list[TopicSpec] | None = None) -> None:
    """Create missing topics; check that existing ones carry records as large as configured.

    Existing topics are not altered (an operator's cluster may not allow it): one whose
    `max.message.bytes` is below what a spec asks raises TopicConfigError naming both numbers.
    """
    specs = specs if specs is not None else contract_topics(settings)
    admin = AIOKafkaAdminClient(**aiokafka_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [new_topic(settings, spec) for spec in specs if spec.name not in existing]
        if missing:
            # Another process may create a topic between our list and create.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
            log.info("created topics %s", [topic.name for topic in missing])
        await _check_record_sizes(admin, specs)
    finally:
        await admin.close()


async def topic_max_message_bytes(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """`max.message.bytes` of each topic as the broker applies it (own value or the default)."""
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    found: dict[str, int] = {}
    for response in await admin.describe_configs(resources):
        for _error, _message, _type, name, entries in response.resources:
            for entry in entries:
                if entry[0] == MAX_MESSAGE_BYTES and entry[1] is not None:
                    found[name] = int(entry[1])
    return found


async def _check_record_sizes(admin: AIOKafkaAdminClient, specs: list[TopicSpec]) -> None:
    wanted = {
        s.name: int(s.configs[MAX_MESSAGE_BYTES]) for s in specs if MAX_MESSAGE_BYTES in s.configs
    }
    if not wanted:
        return
    actual = await topic_max_message_bytes(admin, list(wanted))
    for name, needed in wanted.items():
        if name in actual and actual[name] < needed:
            raise TopicConfigError(name, actual[name], needed)


def run(settings: Settings, args: object) -> int:
    """`billstream topics`: create the contract topics (idempotent)."""
    import asyncio

    asyncio.run(ensure_topics(settings))  # TopicConfigError: one line and status 2 (cli.py)
    for spec in contract_topics(settings):
        topic = new_topic(settings, spec)
        print(topic.name, f"replication={topic.replication_factor}", topic.topic_configs)
    return 0
