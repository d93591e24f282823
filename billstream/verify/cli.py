"""`billstream rebuild` and `billstream verify`: replay stripe.events, compare with what is served.

`rebuild` writes the rebuilt account states (JSON lines, and optionally a fresh topic);
`verify` prints every difference with billing.account-state (and the API with --api-url) and
exits 1 when there is any. Run it once the worker has caught up (consumer lag 0).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from billstream.kafka_security import aiokafka_options
from billstream.processors.config import ReducerConfig
from billstream.settings import Settings
from billstream.topics import ACCOUNT_STATE, STRIPE_EVENTS, TopicSpec, ensure_topics
from billstream.verify.diff import Difference, diff_accounts
from billstream.verify.readers import (
    SourceError,
    TopicRead,
    api_accounts,
    latest_per_key,
    read_topic,
)
from billstream.verify.rebuild import Rebuild, rebuild

DEFAULT_OUTPUT = Path("var") / "rebuild" / "account-state.jsonl"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-url",
        help="also compare with GET /accounts of this API (verify), as the first of API_TOKENS",
    )
    parser.add_argument(
        "--output", type=Path, default=None, help=f"rebuild: JSON lines file ({DEFAULT_OUTPUT})"
    )
    parser.add_argument(
        "--output-topic",
        default=None,
        help="rebuild: also publish the states to this compacted topic (topic prefix applied)",
    )
    parser.add_argument(
        "--idle-timeout", type=float, default=30.0, help="seconds without records before failing"
    )


async def _rebuild(settings: Settings, idle_timeout: float) -> tuple[Rebuild, TopicRead]:
    read = TopicRead(settings.topic(STRIPE_EVENTS))
    records = read_topic(settings, read.topic, read, idle_timeout)
    return await rebuild(records, ReducerConfig.from_settings(settings)), read


async def _publish(settings: Settings, topic: str, accounts: dict[str, Any]) -> None:
    await ensure_topics(settings, [TopicSpec(topic, {"cleanup.policy": "compact"})])
    producer = AIOKafkaProducer(**aiokafka_options(settings), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, key=customer.encode(), value=orjson.dumps(account))
            for customer, account in accounts.items()
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _write_jsonl(path: Path, accounts: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for account in accounts.values():
            out.write(orjson.dumps(account) + b"\n")


async def _served(settings: Settings, api_url: str | None) -> list[tuple[str, dict[str, Any]]]:
    topic = settings.topic(ACCOUNT_STATE)
    sources = [(topic, (await latest_per_key(settings, topic))[0])]
    if api_url:
        # The api's own setting names the token: the first of API_TOKENS (the newest, by habit).
        tokens = settings.api_token_values()
        sources.append((api_url, await api_accounts(api_url, tokens[0] if tokens else None)))
    return sources


async def execute(settings: Settings, args: argparse.Namespace) -> int:
    """The whole command in the running loop (tests call this; `run` wraps it)."""
    result, read = await _rebuild(settings, args.idle_timeout)
    accounts = result.accounts()
    print(
        f"billstream {args.command}: {read.records} events from {read.topic} → "
        f"{len(accounts)} accounts ({result.dead_lettered} skipped as the worker dead-letters)"
    )
    for partition, start in sorted(read.truncated.items()):
        print(
            f"billstream {args.command}: warning: partition {partition} starts at offset {start}: "
            "retention removed older events, so its customers may differ for that reason alone",
            file=sys.stderr,
        )
    if args.command == "rebuild":
        output = args.output or DEFAULT_OUTPUT
        _write_jsonl(output, accounts)
        print(f"billstream rebuild: wrote {output}")
        if args.output_topic:
            await _publish(settings, settings.topic(args.output_topic), accounts)
            print(f"billstream rebuild: published to {settings.topic(args.output_topic)}")
        return 0
    differences: list[Difference] = []
    for source, served in await _served(settings, args.api_url):
        found = diff_accounts(source, accounts, served)
        differences.extend(found)
        print(f"billstream verify: {source}: {len(served)} accounts, {len(found)} differences")
    for difference in differences:
        print(difference)
    return 1 if differences else 0


def run(settings: Settings, args: argparse.Namespace) -> int:
    try:
        return asyncio.run(execute(settings, args))
    except SourceError as error:
        print(f"billstream {args.command}: {error}", file=sys.stderr)
        return 2
    except KafkaError as error:
        print(
            f"billstream {args.command}: Kafka at {settings.kafka_bootstrap_servers}: {error!r}",
            file=sys.stderr,
        )
        return 2
