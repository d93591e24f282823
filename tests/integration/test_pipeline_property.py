"""The end-to-end property: every webhook answered `200 queued` is served or dead-lettered.

Hypothesis drives the real pipeline (ingest, worker and api as child processes, the real broker)
with events that are valid JSON but extreme in every field the contract reads or carries:
integers at and beyond 64 bits, strings at and beyond every length limit, unicode, nulls where
Stripe allows them, bodies up to the size limit. For each event answered `200 queued`, the api
ends up serving its customer or the DLQ holds it with a reason; and a well-formed event sent
right after it, on the same partition, is served (the api keeps going). Nothing may reach the
api that it has to quarantine: the worker refuses it first. `make fuzz` runs many more examples.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka import Consumer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from billstream.processors.config import ReducerConfig
from billstream.processors.parsing import InvalidEvent
from billstream.processors.steps import apply_record
from billstream.routing import routing_key
from billstream.settings import Settings
from billstream.stripe_signing import sign_payload
from tests.integration.live_stack import LiveStack
from tests.support import factories as f
from tests.support.children import TEST_API_TOKEN, bearer, free_port

SECRET = "whsec_property_secret"
MAX_BODY = 1_048_576
FUZZING = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"
EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", 3000 if FUZZING else 200))
SETTLE_TIMEOUT = 60.0  # seconds for one event to be served or dead-lettered

# Values at and beyond the edges the contract knows (billstream.limits), and plain ones.
EDGE_INTEGERS = [0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 10**30]
EDGE_INTEGERS += [-(2**63), -(2**63) - 1]
integers = st.one_of(st.sampled_from(EDGE_INTEGERS), st.integers(), st.just(1_767_225_600))
numbers = st.one_of(integers, st.floats(allow_nan=False, allow_infinity=False))
EDGE_LENGTHS = [0, 1, 40, 254, 255, 256, 499, 500, 501, 2000]
unicode_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=600)
edge_text = st.builds(
    lambda n, char: char * n, st.sampled_from(EDGE_LENGTHS), st.sampled_from(["x", "é", "😀"])
)
texts = st.one_of(unicode_text, edge_text, st.sampled_from(["active", "month", "pro_monthly"]))
id_chars = st.sampled_from("abcXYZ019_-é中/%?.")
SIZES = [0, 10_000, 1_000_100, MAX_BODY - 1, MAX_BODY, MAX_BODY + 1]

PATHS = {  # where the contract reads or carries a value: (path in the event, values)
    "created": (("created",), st.one_of(integers, st.none())),
    "type": (("type",), st.one_of(texts, st.sampled_from(["customer.subscription.updated"]))),
    "status": (("data", "object", "status"), st.one_of(texts, st.none())),
    "period_end": (("data", "object", "current_period_end"), st.one_of(numbers, st.none())),
    "cancel": (("data", "object", "cancel_at_period_end"), st.one_of(st.booleans(), st.none())),
    "pending_plan": (("data", "object", "metadata", "pending_plan"), st.one_of(texts, st.none())),
    "subscription": (("data", "object", "subscription"), st.one_of(texts, st.none())),
    "attempt": (("data", "object", "attempt_count"), st.one_of(integers, st.none())),
    "amount": (("data", "object", "amount_due"), st.one_of(numbers, st.none())),
    "account": (("account",), st.one_of(texts, st.none())),
}


@dataclass
class DeadLetters:
    """Every record of the DLQ topic, read by a background consumer: event id -> reason."""

    bootstrap: str
    topic: str
    reasons: dict[str, str] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"property-dlq-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "fetch.message.max.bytes": 2 * MAX_BODY,
            }
        )
        consumer.subscribe([self.topic])
        try:
            while not self.stopping.is_set():
                message = consumer.poll(0.2)
                if message is None or message.error():
                    continue
                headers = dict(message.headers() or [])
                event_id, reason = headers.get("stripe-event-id", b""), headers.get("error", b"")
                assert isinstance(event_id, bytes)
                assert isinstance(reason, bytes)
                self.reasons[event_id.decode(errors="replace")] = reason.decode(errors="replace")
        finally:
            consumer.close()


@dataclass
class Pipeline:
    stack: LiveStack
    dead: DeadLetters
    outcomes: Counter[str] = field(default_factory=Counter)
    canaries: int = 0
    unchanged: list[str] = field(default_factory=list)  # ids of events that changed no state

    @property
    def settings(self) -> Settings:
        return self.stack.settings

    @property
    def config(self) -> ReducerConfig:
        return ReducerConfig.from_settings(self.settings)

    def post(self, body: bytes) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.settings.ingest_port}/webhooks/stripe"
        headers = {"Stripe-Signature": sign_payload(body, SECRET)}
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.load(response)["status"]
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)["status"]

    def served(self, customer: str) -> dict[str, Any] | None:
        segment = urllib.parse.quote(customer, safe="")
        url = f"http://127.0.0.1:{self.settings.api_port}/accounts/{segment}"
        request = urllib.request.Request(url, headers=bearer(self.settings))
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                account: dict[str, Any] = json.load(response)
                return account
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise AssertionError(
                f"GET /accounts/{segment}: {error.code} {error.read()!r}"
            ) from None

    def settle(self, event_id: str, customer: str, expected: str) -> None:
        """Wait until the event is served, dead-lettered or (`no_change`) passed, as expected."""
        follower = self.same_partition_customer(customer)
        follower_id, follower_body = canary(follower)
        assert self.post(follower_body) == (200, "queued")
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while time.monotonic() < deadline:
            reason = self.dead.reasons.get(event_id)
            account = self.served(customer)
            if reason is not None:
                assert f"dlq:{reason}" == expected, (event_id, reason, expected)
            if account is not None and account["updated_by_event"] == event_id:
                assert expected == "served", (event_id, account, expected)
            follower_account = self.served(follower)
            if follower_account is not None and follower_account["updated_by_event"] == follower_id:
                # The api got past the event: its outcome is final by now.
                actual = (
                    f"dlq:{reason}"
                    if reason is not None
                    else "served"
                    if account is not None and account["updated_by_event"] == event_id
                    else "no_change"
                )
                if actual == expected:
                    return
            time.sleep(0.05)
        for name in ("ingest", "worker", "api"):
            self.stack.children[name].check_running()
        raise AssertionError(f"{event_id} for {customer!r}: not {expected} in {SETTLE_TIMEOUT} s")

    def same_partition_customer(self, key: str) -> str:
        """A fresh, well-formed customer id whose records share `key`'s partition."""
        partitions = list(range(self.settings.billstream_topic_partitions))
        partitioner = DefaultPartitioner()
        wanted = partitioner(key.encode(), partitions, partitions)
        while True:
            self.canaries += 1
            candidate = f"cus_canary_{self.canaries}"
            if partitioner(candidate.encode(), partitions, partitions) == wanted:
                return candidate


@pytest.fixture(scope="module")
def pipeline(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    unique = uuid.uuid4().hex[:10]
    workdir: Path = tmp_path_factory.mktemp("property")
    stack_settings = Settings(
        _env_file=None,
        kafka_bootstrap_servers=kafka_bootstrap,
        billstream_topic_prefix=f"t{unique}.",
        billstream_app_id=f"billstream-property-{unique}",
        stripe_webhook_secrets=SECRET,
        api_tokens=TEST_API_TOKEN,
        billing_plan_map=f.PLAN_MAP,
        ingest_port=free_port(),
        worker_web_port=free_port(),
        api_port=free_port(),
        database_url=f"sqlite:///{workdir}/read-model.db",
        worker_data_dir=str(workdir / "worker"),
    )
    stack = LiveStack(stack_settings, workdir, with_prometheus=False)
    dead = DeadLetters(kafka_bootstrap, stack_settings.topic("stripe.events.dlq"))
    reader = threading.Thread(target=dead.run, name="dlq-reader", daemon=True)
    try:
        import asyncio

        asyncio.run(stack.start())
        reader.start()
        yield Pipeline(stack, dead)
    finally:
        dead.stopping.set()
        with contextlib.suppress(RuntimeError):
            reader.join(10)
        stack.stop()


def put(event: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    target = event
    for part in path[:-1]:
        if not isinstance(target.get(part), dict):
            target[part] = {}
        target = target[part]
    target[path[-1]] = value


@st.composite
def extreme_events(draw: st.DrawFn) -> dict[str, Any]:
    """A Stripe-shaped event, then extreme values in some of the fields the contract uses."""
    serial = uuid.uuid4().hex[:12]
    base_id = draw(st.text(id_chars, max_size=300))
    customer = draw(st.sampled_from([f"cus_{serial}", f"cus_{serial}_{base_id}"]))
    event_id = draw(st.sampled_from([f"evt_{serial}", f"evt_{serial}_{base_id}"]))
    kind = draw(st.sampled_from(["subscription", "invoice", "deleted"]))
    if kind == "subscription":
        event = f.subscription_event(
            draw(
                st.sampled_from(["customer.subscription.created", "customer.subscription.updated"])
            ),
            created=1_767_225_600,
            event_id=event_id,
            customer=customer,
            sub_id=draw(st.sampled_from([f"sub_{serial}", f"sub_{serial}_{base_id}"])),
            prices=[
                draw(st.sampled_from([f.pro_monthly(), f.business_yearly(), f.unknown_price()]))
            ],
            current_period_end=1_769_904_000,
            pending_plan=draw(st.one_of(st.none(), st.just("FREE"), texts)),
        )
    elif kind == "invoice":
        event = f.invoice_event(
            draw(
                st.sampled_from(
                    ["invoice.payment_failed", "invoice.paid", "invoice.payment_action_required"]
                )
            ),
            created=1_767_225_600,
            event_id=event_id,
            customer=customer,
            invoice_id=f"in_{serial}",
        )
    else:
        event = f.customer_event(
            "customer.deleted", created=1_767_225_600, event_id=event_id, customer=customer
        )
    for name in draw(st.lists(st.sampled_from(sorted(PATHS)), max_size=4, unique=True)):
        path, values = PATHS[name]
        put(event, path, draw(values))
    size = draw(st.sampled_from(SIZES))
    if size:
        bare = len(render(event))
        put(event, ("data", "object", "metadata", "pad"), "")
        put(event, ("data", "object", "metadata", "pad"), "p" * max(0, size - bare - 20))
    return event


def render(event: dict[str, Any]) -> bytes:
    """As a sender may: any integer written out, unicode unescaped."""
    return json.dumps(event, ensure_ascii=False).encode()


def expected_outcome(raw: bytes, config: ReducerConfig) -> str:
    """What the pure reducer says the worker must do with `raw`: the pipeline must agree."""
    try:
        applied = apply_record(None, raw, config)
    except InvalidEvent as error:
        return f"dlq:{error.reason}"
    except Exception:
        return "dlq:reducer_error"
    return "served" if applied.output is not None else "no_change"


def canary(customer: str) -> tuple[str, bytes]:
    event_id = f"evt_canary_{uuid.uuid4().hex[:12]}"
    event = f.subscription_event(
        "customer.subscription.created",
        created=1_767_225_600,
        event_id=event_id,
        customer=customer,
        sub_id=f"sub_{customer}",
        prices=[f.pro_monthly()],
    )
    return event_id, render(event)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    # No shrinking: each failing try of a stuck pipeline waits SETTLE_TIMEOUT; the first
    # failing example is reported as generated.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(event=extreme_events())
def test_every_queued_webhook_is_served_or_dead_lettered(
    pipeline: Pipeline, event: dict[str, Any]
) -> None:
    body = render(event)
    status, answer = pipeline.post(body)
    assert (status, answer) in {
        (200, "queued"), (200, "ignored"), (400, "invalid_payload"), (413, "too_large")
    }, (status, answer)  # fmt: skip
    if len(body) > MAX_BODY:
        assert (status, answer) == (413, "too_large")
    pipeline.outcomes[f"{status} {answer}"] += 1
    if answer != "queued":
        return
    expected = expected_outcome(body, pipeline.config)
    pipeline.settle(str(event["id"]), routing_key(event), expected)
    pipeline.outcomes[expected] += 1
    if expected == "no_change":
        pipeline.unchanged.append(str(event["id"]))


def test_nothing_reached_the_api_that_it_had_to_quarantine(pipeline: Pipeline) -> None:
    """Runs after the property (file order): the worker refused every value the api cannot store."""
    assert sum(pipeline.outcomes.values()) > 0, "the property test ran first"
    url = f"http://127.0.0.1:{pipeline.settings.api_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        metrics = response.read().decode()
    for result in ("malformed", "rejected"):
        line = f'billstream_api_state_messages_total{{result="{result}"}} 0.0'
        assert line in metrics, (result, [m for m in metrics.splitlines() if result in m])
    wrongly_dead = [
        event_id for event_id in pipeline.unchanged if event_id in pipeline.dead.reasons
    ]
    assert wrongly_dead == []
    print("outcomes:", dict(pipeline.outcomes))  # the note's figures (pytest -s)
