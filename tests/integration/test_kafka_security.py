"""billstream against a broker that demands SASL_SSL with SCRAM and enforces ACLs.

One secure broker serves the whole session (secure_broker.py): its CA, certificate and SCRAM
users are made at start-up, and each test grants its own users ACLs on its own topic prefix.
Services run as child processes configured only by KAFKA_SECURITY_PROTOCOL and friends.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka.errors import KafkaError
from confluent_kafka.admin import AclOperation, ResourceType

from billstream.ingest.app import WEBHOOK_PATH
from billstream.ingest.kafka_publisher import KafkaPublisher
from billstream.ingest.publisher import Record
from billstream.settings import Settings
from billstream.stripe_signing import sign_payload
from billstream.topics import STRIPE_EVENTS, STRIPE_EVENTS_DLQ, ensure_topics
from billstream.verify.readers import TopicRead, read_topic
from tests.integration.live_stack import Child, eventually, get_json, service_env
from tests.support import factories as f
from tests.support.children import bearer, free_port
from tests.support.secure_broker import (
    MTLS_CLIENT,
    SUPER_USER,
    SecureBroker,
    start_secure_broker,
)
from tests.support.settings import SettingsFactory

PIPELINE, READER, DLQ_WRITER = "billstream", "reader", "dlq-writer"
SECRET = "whsec_test_secret"  # make_settings' webhook secret
WRONG_PASSWORD = "wrong-password-0123456789"
CAUSE = "Authentication failed during authentication due to invalid credentials"


@pytest.fixture(scope="session")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    broker = start_secure_broker(
        tmp_path_factory.mktemp("secure-broker"), (PIPELINE, READER, DLQ_WRITER)
    )
    print(f"\nsecure broker (SASL_SSL, SCRAM, ACLs) ready in {broker.started_in:.1f} s")
    try:
        yield broker
    finally:
        broker.broker.remove()


def secure_settings(
    broker: SecureBroker, make: SettingsFactory, tmp_path: Path, user: str, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "billing_plan_map": f.PLAN_MAP,
        "database_url": f"sqlite:///{tmp_path / 'api.db'}",
        "worker_data_dir": str(tmp_path / "worker"),
        "ingest_port": free_port(),
        "worker_web_port": free_port(),
        "api_port": free_port(),
    }
    return make(**(broker.security(user) | values | overrides))


def grant_pipeline(broker: SecureBroker, settings: Settings) -> None:
    """What billstream needs: its topics (and Faust's changelogs) and its consumer groups."""
    app_id = settings.billstream_app_id
    for prefix in (settings.billstream_topic_prefix, app_id):
        broker.allow(PIPELINE, ResourceType.TOPIC, prefix, AclOperation.ALL)
    broker.allow(PIPELINE, ResourceType.GROUP, app_id, AclOperation.ALL)


class Services:
    """billstream services as child processes with `settings` as their environment."""

    def __init__(self, settings: Settings, workdir: Path) -> None:
        self.settings = settings
        self.workdir = workdir
        self.children: dict[str, Child] = {}

    def start(self, *names: str) -> None:
        env = service_env(self.settings) | {"LOG_FORMAT": "text"}
        for name in names:
            argv = [sys.executable, "-m", "billstream.cli", name]
            self.children[name] = Child(name, argv, self.workdir / f"{name}.log", env)
            self.children[name].start()

    def url(self, name: str, path: str) -> str:
        port = {
            "ingest": self.settings.ingest_port,
            "worker": self.settings.worker_web_port,
            "api": self.settings.api_port,
        }[name]
        return f"http://127.0.0.1:{port}{path}"

    async def status(self, name: str, path: str) -> int:
        self.children[name].check_running()
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(self.url(name, path)) as response,
        ):
            return response.status

    async def wait_ready(self, *names: str, timeout: float = 120) -> None:
        for name in names:

            async def ready(name: str = name) -> bool:
                return await self.status(name, "/readyz") == 200

            await eventually(ready, f"{name} ready", timeout)

    def log_lines(self, name: str) -> list[str]:
        text = self.children[name].log_path.read_text(errors="replace")
        return [line for line in text.splitlines() if line.strip()]

    def stop(self) -> None:
        for child in reversed(list(self.children.values())):
            child.stop()


@pytest.fixture
def services_for(tmp_path: Path) -> Iterator[Any]:
    started: list[Services] = []

    def factory(settings: Settings) -> Services:
        services = Services(settings, tmp_path)
        started.append(services)
        return services

    yield factory
    for services in started:
        services.stop()


async def post_webhook(settings: Settings, body: bytes) -> tuple[int, str]:
    url = f"http://127.0.0.1:{settings.ingest_port}{WEBHOOK_PATH}"
    headers = {"Content-Type": "application/json", "Stripe-Signature": sign_payload(body, SECRET)}
    timeout = aiohttp.ClientTimeout(total=30)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        answer: dict[str, str] = await response.json()
        return response.status, answer["status"]


def subscription_body(customer: str) -> bytes:
    event = f.subscription_event(
        "customer.subscription.created",
        created=int(time.time()),
        customer=customer,
        sub_id=f"sub_{customer}",
        prices=[f.pro_monthly()],
    )
    return json.dumps(event).encode()


async def test_whole_pipeline_over_sasl_ssl_with_scram(
    secure_broker: SecureBroker,
    make_settings: SettingsFactory,
    tmp_path: Path,
    unique_id: str,
    services_for: Any,
) -> None:
    settings = secure_settings(secure_broker, make_settings, tmp_path, PIPELINE)
    grant_pipeline(secure_broker, settings)
    await ensure_topics(settings)  # aiokafka's admin client, as the pipeline user
    services: Services = services_for(settings)
    services.start("ingest", "worker", "api")
    await services.wait_ready("ingest", "worker", "api")

    customer = f"cus_{unique_id}"
    assert await post_webhook(settings, subscription_body(customer)) == (200, "queued")

    async def served() -> bool:
        url = services.url("api", f"/accounts/{customer}")
        account = await get_json(url, headers=bearer(settings))
        return bool(account.get("plan") == "PRO")

    await eventually(served, "the api serves the account the webhook created", 60)
    password = secure_broker.passwords[PIPELINE]
    for name in services.children:
        assert not any(password in line for line in services.log_lines(name)), name


async def test_a_wrong_password_is_named_in_one_line_and_readyz_is_503(
    secure_broker: SecureBroker,
    make_settings: SettingsFactory,
    tmp_path: Path,
    services_for: Any,
) -> None:
    """Each service keeps running, unready, and says why; ingest answers webhooks 503."""
    settings = secure_settings(
        secure_broker, make_settings, tmp_path, PIPELINE, kafka_sasl_password=WRONG_PASSWORD
    )
    grant_pipeline(secure_broker, settings)
    services: Services = services_for(settings)
    names = ("ingest", "api", "worker")
    services.start(*names)
    for name in names:

        async def cause_logged(name: str = name) -> bool:
            services.children[name].check_running()
            return any(CAUSE in line for line in services.log_lines(name))

        async def alive(name: str = name) -> bool:
            return await services.status(name, "/healthz") == 200

        await eventually(cause_logged, f"{name} logs why it cannot connect", 60)
        await eventually(alive, f"{name} serves /healthz", 60)
    status, body = await post_webhook(settings, subscription_body("cus_wrong_password"))
    assert (status, body) == (503, "unavailable")
    for _ in range(5):  # they stay up and unready: no crash loop, no pretending
        for name in names:
            services.children[name].check_running()
            assert await services.status(name, "/readyz") == 503, name
        await asyncio.sleep(1)
    for name in names:
        lines = services.log_lines(name)
        assert not any(WRONG_PASSWORD in line for line in lines), name
        causes = [line for line in lines if CAUSE in line]
        print(f"\n{name}: {len(causes)} line(s) name the cause, first: {causes[0]}")


@pytest.mark.parametrize("user", [READER, DLQ_WRITER])
async def test_no_write_permission_on_stripe_events_gets_503(
    secure_broker: SecureBroker,
    make_settings: SettingsFactory,
    tmp_path: Path,
    unique_id: str,
    services_for: Any,
    user: str,
) -> None:
    """A read-only user, and one that may write only the DLQ: webhooks get 503, never 200."""
    settings = secure_settings(secure_broker, make_settings, tmp_path, user)
    admin = make_settings(**secure_broker.security(SUPER_USER))
    await ensure_topics(admin)
    prefix = settings.billstream_topic_prefix
    secure_broker.allow(user, ResourceType.TOPIC, prefix, AclOperation.READ, AclOperation.DESCRIBE)
    if user == DLQ_WRITER:
        dlq = settings.topic(STRIPE_EVENTS_DLQ)
        secure_broker.allow(user, ResourceType.TOPIC, dlq, AclOperation.WRITE)
    services: Services = services_for(settings)
    services.start("ingest")
    await eventually(
        lambda: _is(services.status("ingest", "/healthz"), 200), "ingest serves /healthz", 60
    )
    answers = set()
    for attempt in range(10):
        answers.add(await post_webhook(settings, subscription_body(f"cus_{unique_id}_{attempt}")))
        await asyncio.sleep(0.5)
    assert answers == {(503, "unavailable")}, answers


async def _is(status: Any, expected: int) -> bool:
    return bool(await status == expected)


async def test_mutual_tls_with_a_client_certificate_for_librdkafka_and_aiokafka(
    secure_broker: SecureBroker, make_settings: SettingsFactory, unique_id: str
) -> None:
    """The SSL listener wants a certificate: ingest's publisher writes, verify's reader reads."""
    settings = make_settings(**secure_broker.mtls_security())
    for resource in (ResourceType.TOPIC, ResourceType.GROUP):
        prefix = settings.billstream_topic_prefix
        secure_broker.allow(f"CN={MTLS_CLIENT}", resource, prefix, AclOperation.ALL)
    without_certificate = make_settings(**secure_broker.mtls_security(certificate=False))
    with pytest.raises(KafkaError):
        await ensure_topics(without_certificate)

    await ensure_topics(settings)  # aiokafka admin
    publisher = KafkaPublisher(settings)  # librdkafka producer, aiokafka probe
    await publisher.start()
    try:
        await eventually(_true(lambda: publisher.ready), "publisher connected over mTLS", 30)
        topic = settings.topic(STRIPE_EVENTS)
        await publisher.publish(Record(topic, unique_id.encode(), b"{}", []))
    finally:
        await publisher.stop()
    read = TopicRead(topic)
    keys = [record.key async for record in read_topic(settings, topic, read)]  # aiokafka
    assert keys == [unique_id.encode()]


def _true(check: Any) -> Any:
    async def holds() -> bool:
        return bool(check())

    return holds
