"""Hostile input at the ingress: every case gets its contract answer in bounded time, and the
real ingest process (a child on a free port, publishing to the real broker) keeps serving.

Statuses are DESIGN.md's ("Ingest"); requests aiohttp refuses before the handler runs (broken
HTTP) get its plain 400/405. Slow clients are cut off after INGEST_READ_TIMEOUT: a body that
never completes gets `408 timeout`, a head that never completes a closed connection. After each
case a genuinely signed event is still `200 queued`.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from uuid import uuid4

import aiohttp
import pytest

from billstream.settings import Settings
from billstream.stripe_signing import compute_signature, sign_payload, signature_header
from tests.integration.ingest_support import SECRET, stripe_event
from tests.integration.live_stack import Child, eventually, get_json, service_env
from tests.integration.raw_http import chunked, exchange, request_head
from tests.support.children import free_port

READ_TIMEOUT = 1.0  # INGEST_READ_TIMEOUT for this server: slow clients are cut off after it
MAX_BODY = 65_536  # STRIPE_WEBHOOK_MAX_BODY
SLACK = 4.0  # generous upper bound on everything else; not a timing measurement
CUT_OFF = READ_TIMEOUT + SLACK
JSON = ("Content-Type", "application/json")
FORM = ("Content-Type", "application/x-www-form-urlencoded")
TE_CHUNKED = ("Transfer-Encoding", "chunked")


@dataclass(frozen=True)
class Ingest:
    port: int
    child: Child


@pytest.fixture(scope="module")
def ingest(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingest]:
    """`billstream ingest` as a child process: the real server, settings and Kafka publisher."""
    unique = uuid4().hex[:10]
    port = free_port()
    env = {
        **service_env_for(kafka_bootstrap, unique, port),
        "INGEST_READ_TIMEOUT": str(READ_TIMEOUT),
        "STRIPE_WEBHOOK_MAX_BODY": str(MAX_BODY),
        "LOG_LEVEL": "DEBUG",
    }
    log = tmp_path_factory.mktemp("ingest") / "ingest.log"
    argv = [sys.executable, "-m", "billstream.cli", "ingest", "--host", "127.0.0.1"]
    child = Child("ingest", argv, log, env)
    child.start()
    try:
        asyncio.run(wait_ready(child, port))
        yield Ingest(port, child)
    finally:
        child.stop()


def service_env_for(bootstrap: str, unique: str, port: int) -> dict[str, str]:
    settings = Settings(
        _env_file=None,
        kafka_bootstrap_servers=bootstrap,
        billstream_topic_prefix=f"t{unique}.",
        billstream_app_id=f"billstream-test-{unique}",
        stripe_webhook_secrets=SECRET,
        ingest_port=port,
    )
    return service_env(settings)


async def get_text(url: str) -> str:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
        return await response.text()


async def wait_ready(child: Child, port: int) -> None:
    async def ready() -> bool:
        child.check_running()
        answer = await get_json(f"http://127.0.0.1:{port}/readyz")
        return bool(answer["status"] == "ready")

    await eventually(ready, "ingest ready", 60)


def signed(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> list[bytes]:
    """A complete, genuinely signed POST of `body`."""
    headers = [JSON, ("Stripe-Signature", sign_payload(body, secret, timestamp))]
    return [request_head([*headers, ("Content-Length", str(len(body)))]) + body]


def event_body() -> bytes:
    return stripe_event(f"evt_{time.monotonic_ns()}", "cus_hostile")


def with_headers(*headers: tuple[str, str], body: bytes | None = None) -> list[bytes]:
    body = event_body() if body is None else body
    return [request_head([JSON, *headers, ("Content-Length", str(len(body)))]) + body]


def gzip_bomb() -> list[bytes]:
    """50 MB of JSON-ish zeros gzipped to ~50 KB; only the decompressed size counts."""
    bomb = gzip.compress(b'{"id":"' + b"0" * 50_000_000, compresslevel=9)
    head = [JSON, ("Content-Encoding", "gzip"), ("Stripe-Signature", "t=1,v1=00")]
    return [request_head([*head, ("Content-Length", str(len(bomb)))]) + bomb]


def nested(depth: int) -> bytes:
    inner = "[" * depth + "]" * depth
    return f'{{"id":"evt_deep","type":"invoice.paid","data":{{"object":{{"x":{inner}}}}}}}'.encode()


def big_number() -> bytes:
    digits = "9" * 60_000
    return (
        f'{{"id":"e","type":"invoice.paid","data":{{"object":{{"customer":{digits}}}}}}}'.encode()
    )


def trickle(data: bytes) -> list[bytes]:
    """`data` one byte at a time: far slower than any real client, never silent for long."""
    return [data[i : i + 1] for i in range(len(data))]


def now() -> int:
    return int(time.time())


def two_signatures() -> list[bytes]:
    body = event_body()
    header = ("Stripe-Signature", sign_payload(body, SECRET))
    return with_headers(header, header, body=body)


def many_v1_entries() -> list[bytes]:
    body = event_body()
    entries = ["ab" * 32] * 110 + [compute_signature(body, "whsec_other", now())]
    return with_headers(("Stripe-Signature", signature_header(now(), *entries)), body=body)


def short_content_length() -> list[bytes]:
    """Declares fewer bytes than sent: the rest is a broken request, which aiohttp refuses."""
    body = event_body()
    head = request_head([JSON, ("Stripe-Signature", sign_payload(body, SECRET))])
    head = head.replace(b"\r\n\r\n", f"\r\nContent-Length: {len(body) // 2}\r\n\r\n".encode())
    return [head + body]


def long_content_length() -> list[bytes]:
    """Declares more bytes than it ever sends (within the limit), then waits."""
    body = event_body()
    head = [JSON, ("Stripe-Signature", sign_payload(body, SECRET))]
    return [request_head([*head, ("Content-Length", str(len(body) + 100))]) + body]


def chunked_over_limit() -> list[bytes]:
    head = request_head([JSON, ("Stripe-Signature", "t=1,v1=00"), ("Transfer-Encoding", "chunked")])
    return [head, *chunked(*[b"x" * 16_384] * 6)]


def chunked_trickle() -> list[bytes]:
    head = request_head([JSON, ("Stripe-Signature", "t=1,v1=00"), ("Transfer-Encoding", "chunked")])
    return [head, *chunked(*[b"{"] * 100)]


def plain_text() -> list[bytes]:
    """Content-Type is not part of the contract: the signature over the raw bytes is."""
    body = event_body()
    head = [("Content-Type", "text/plain"), ("Stripe-Signature", sign_payload(body, SECRET))]
    return [request_head([*head, ("Content-Length", str(len(body)))]) + body]


def trickled_body() -> list[bytes]:
    head = request_head([JSON, ("Stripe-Signature", "t=1,v1=00"), ("Content-Length", "200")])
    return [head, *trickle(b"0" * 200)]


def partial_head() -> list[bytes]:
    head = request_head([JSON, ("Stripe-Signature", "t=1,v1=00"), ("Content-Length", "2")])
    return [head[:40], *trickle(head[40:-4])]


@dataclass(frozen=True)
class Case:
    name: str
    parts: Callable[[], list[bytes]]  # built when the case runs: signatures are fresh
    status: int | None  # None: the server closes the connection without answering
    reason: str | None  # the contract's body `status`; None for aiohttp's own plain answers
    pause: float = 0.0  # between parts: > 0 for slow clients
    within: float = SLACK


def unsigned(*headers: tuple[str, str]) -> Callable[[], list[bytes]]:
    return lambda: with_headers(*headers)


def raw(
    head: list[tuple[str, str]], body: bytes = b"", method: str = "POST"
) -> Callable[[], list[bytes]]:
    return lambda: [request_head(head, method=method) + body]


INVALID = (400, "invalid_signature")
CASES = [
    # Signatures
    Case("no signature header", unsigned(), *INVALID),
    Case("empty signature", unsigned(("Stripe-Signature", "")), *INVALID),
    Case("garbled signature", unsigned(("Stripe-Signature", "t=abc,v1=zz=,,=v0")), *INVALID),
    Case("non-ASCII in the signature", unsigned(("Stripe-Signature", "t=1,v1=\xff\xe9")), *INVALID),
    Case("two genuine signature headers", two_signatures, *INVALID),
    Case("replayed an hour later", lambda: signed(event_body(), timestamp=now() - 3600), *INVALID),
    Case("signed an hour ahead", lambda: signed(event_body(), timestamp=now() + 3600), *INVALID),
    Case("another endpoint's secret", lambda: signed(event_body(), "whsec_elsewhere"), *INVALID),
    Case(
        "signature of another body",
        lambda: with_headers(("Stripe-Signature", sign_payload(b"{}", SECRET))),
        *INVALID,
    ),
    Case("111 v1 entries, none genuine", many_v1_entries, *INVALID),
    # Heads and framing: aiohttp refuses them before the handler
    Case("a 100 KB header line", unsigned(("X-Junk", "a" * 100_000)), 400, None),
    Case("200 headers", unsigned(*[(f"X-H{i}", "v") for i in range(200)]), 400, None),
    Case("garbage request line", lambda: [b"\x16\x03\x01\x02\x00\r\n\r\n"], 400, None),
    Case("GET on the webhook path", raw([], method="GET"), 405, None),
    Case("Content-Length and chunked (smuggling)", unsigned(TE_CHUNKED), 400, None),
    Case("non-numeric Content-Length", raw([JSON, ("Content-Length", "12abc")], b"{}"), 400, None),
    Case("Content-Length shorter than the body", short_content_length, 400, None),
    # Slow clients: cut off after the read timeout
    Case("connection sending nothing", list, None, None, within=CUT_OFF),
    Case("head trickled (slowloris)", partial_head, None, None, 0.2, CUT_OFF),
    Case("body trickled (slowloris)", trickled_body, 408, "timeout", 0.2, CUT_OFF),
    Case("chunked body trickled", chunked_trickle, 408, "timeout", 0.2, CUT_OFF),
    Case("Content-Length longer than the body", long_content_length, 408, "timeout", 0, CUT_OFF),
    # Size
    Case(
        "declared Content-Length over the limit",
        raw([JSON, ("Content-Length", str(10**12))], b"{"),
        413,
        "too_large",
    ),
    Case("chunked body over the limit", chunked_over_limit, 413, "too_large"),
    Case("gzip bomb", gzip_bomb, 413, "too_large"),
    # Content
    Case("signed event as text/plain", plain_text, 200, "queued"),
    Case("form-encoded, unsigned", raw([FORM, ("Content-Length", "7")], b"a=1&b=2"), *INVALID),
    Case(
        "non-UTF-8, genuinely signed",
        lambda: signed(b'{"id":"\xff\xfe"}'),
        400,
        "invalid_payload",
    ),
    Case(
        "Content-Encoding gzip on a body that is not gzip",
        lambda: with_headers(
            ("Content-Encoding", "gzip"),
            ("Stripe-Signature", sign_payload(b"not gzip", SECRET)),
            body=b"not gzip",
        ),
        400,
        "invalid_payload",
    ),
    Case("empty body, genuinely signed", lambda: signed(b""), 400, "invalid_payload"),
    Case("JSON array, genuinely signed", lambda: signed(b"[1]"), 400, "invalid_payload"),
    Case(
        "20 000-deep nesting, genuinely signed",
        lambda: signed(nested(20_000)),
        400,
        "invalid_payload",
    ),
    Case(
        "60 000-digit customer, genuinely signed",
        lambda: signed(big_number()),
        400,
        "invalid_payload",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_hostile_input_gets_its_answer_in_bounded_time(ingest: Ingest, case: Case) -> None:
    answer = await exchange(ingest.port, case.parts(), pause=case.pause)

    assert (answer.status, answer.reason) == (case.status, case.reason), answer.body[:200]
    assert answer.seconds < case.within
    still = await exchange(ingest.port, signed(event_body()))
    assert (still.status, still.reason) == (200, "queued")
    ingest.child.check_running()


async def test_after_the_catalogue_ingest_serves_and_logged_no_error(ingest: Ingest) -> None:
    answer = await exchange(ingest.port, signed(event_body()))
    assert (answer.status, answer.reason) == (200, "queued")
    metrics = await get_text(f"http://127.0.0.1:{ingest.port}/metrics")
    assert 'stripe_webhook_rejected_total{endpoint="snapshot",reason="timeout"} 3.0' in metrics
    records = [json.loads(line) for line in ingest.child.log_path.read_text().splitlines()]
    assert [r for r in records if r["level"] in ("error", "critical")] == []
    refused = [r for r in records if r["msg"].startswith("refused a malformed HTTP request")]
    assert len(refused) >= 6  # aiohttp's 400s: one DEBUG line each, without the request's bytes
    assert all("exc" not in r for r in refused)
