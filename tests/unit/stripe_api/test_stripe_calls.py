"""The Stripe call discipline: the token bucket's rate on a fake clock, retries and Retry-After
against a local fault server (real HTTP through stripe-python), real 404s from stripe-mock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import stripe
from aiohttp import web

from billstream.settings import Settings
from billstream.stripe_calls import (
    RateLimiter,
    RetryPolicy,
    StripeCallFailed,
    StripeCalls,
    classify,
)
from billstream.stripe_client import make_stripe_client
from tests.support.settings import SettingsFactory


@dataclass
class FakeClock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_bucket_holds_the_sustained_rate_after_its_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(20, clock=clock)
    starts = []
    for _ in range(100):
        limiter.acquire(clock.sleep)
        starts.append(clock.now)
    assert starts[:20] == [0.0] * 20  # one second's worth banked
    assert starts[-1] == pytest.approx(80 / 20)  # then 20 a second
    for second in range(1, 5):  # never more than 20 calls start within any later second
        assert sum(1 for t in starts if second - 1 < t <= second) <= 20


def test_concurrent_reservations_queue_in_order() -> None:
    clock = FakeClock()
    limiter = RateLimiter(4, burst=1, clock=clock)
    waits = [limiter.reserve() for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.25, 0.5, 0.75])
    clock.now = 10.0  # idle: the bucket refills to its burst, not beyond
    assert [limiter.reserve(), limiter.reserve()] == pytest.approx([0.0, 0.25])


@dataclass
class Faults:
    """Answers queued per request, then 200 with a customer object."""

    queue: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    seen: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.seen += 1
        if self.queue:
            status, headers = self.queue.pop(0)
            body = {"error": {"type": "api_error", "message": f"fault {status}"}}
            return web.json_response(body, status=status, headers=headers)
        return web.json_response({"id": "cus_1", "object": "customer"})


@pytest.fixture
async def faults(make_settings: SettingsFactory) -> AsyncIterator[tuple[Faults, Settings]]:
    state = Faults()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", state.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    settings = make_settings(
        stripe_api_key="sk_test_123", stripe_api_base=f"http://127.0.0.1:{port}"
    )
    yield state, settings
    await runner.cleanup()


def _calls(policy: RetryPolicy, slept: list[float]) -> StripeCalls:
    return StripeCalls(RateLimiter(1000), policy, sleep=slept.append)


def _retrieve(settings: Settings) -> Callable[[], stripe.Customer]:
    client = make_stripe_client(settings, max_network_retries=0)
    return lambda: client.v1.customers.retrieve("cus_1")


async def test_a_429_waits_what_retry_after_says_then_succeeds(
    faults: tuple[Faults, Settings],
) -> None:
    state, settings = faults
    state.queue = [(429, {"Retry-After": "3"}), (429, {"Retry-After": "7"})]
    slept: list[float] = []
    customer = await asyncio.to_thread(_calls(RetryPolicy(), slept).call, _retrieve(settings))
    assert customer.id == "cus_1"
    assert slept == [3.0, 7.0]
    assert state.seen == 3


async def test_5xx_are_retried_with_growing_pauses_then_fail_typed(
    faults: tuple[Faults, Settings],
) -> None:
    state, settings = faults
    state.queue = [(500, {})] * 10
    slept: list[float] = []
    policy = RetryPolicy(attempts=4, base=1.0, cap=30.0)
    with pytest.raises(StripeCallFailed) as failed:
        await asyncio.to_thread(_calls(policy, slept).call, _retrieve(settings))
    assert failed.value.reason == "api_error"
    assert failed.value.attempts == 4
    assert isinstance(failed.value.error, stripe.APIError)
    assert state.seen == 4  # stripe-python retried nothing behind our back
    for attempt, pause in enumerate(slept):  # jittered between half and all of base * 2**n
        assert 0.5 * 2**attempt <= pause <= 2**attempt


async def test_a_404_is_not_retried(faults: tuple[Faults, Settings]) -> None:
    state, settings = faults
    state.queue = [(404, {})]
    with pytest.raises(StripeCallFailed) as failed:
        await asyncio.to_thread(_calls(RetryPolicy(), []).call, _retrieve(settings))
    assert failed.value.reason == "not_found"
    assert state.seen == 1


async def test_the_async_helper_retries_on_the_loop(faults: tuple[Faults, Settings]) -> None:
    state, settings = faults
    state.queue = [(503, {}), (502, {})]
    calls = StripeCalls(RateLimiter(1000), RetryPolicy(attempts=3, base=0.001, cap=0.01))
    customer = await calls.call_async(_retrieve(settings))
    assert customer.id == "cus_1"
    assert state.seen == 3


async def test_an_interactive_policy_passes_a_429_on(faults: tuple[Faults, Settings]) -> None:
    state, settings = faults
    state.queue = [(429, {"Retry-After": "2"})]
    policy = RetryPolicy(attempts=3, retry_rate_limited=False)
    with pytest.raises(StripeCallFailed) as failed:
        await asyncio.to_thread(_calls(policy, []).call, _retrieve(settings))
    assert failed.value.reason == "rate_limited"
    assert state.seen == 1


async def test_unreachable_stripe_is_a_connection_failure(
    make_settings: SettingsFactory, closed_port_url: str
) -> None:
    settings = make_settings(stripe_api_key="sk_test_123", stripe_api_base=closed_port_url)
    policy = RetryPolicy(attempts=2, base=0.001, cap=0.01)
    with pytest.raises(StripeCallFailed) as failed:
        await asyncio.to_thread(_calls(policy, []).call, _retrieve(settings))
    assert failed.value.reason == "connection"


def test_stripe_mock_answers_an_unknown_path_with_a_typed_not_found(
    make_settings: SettingsFactory, stripe_mock: str
) -> None:
    settings = make_settings(stripe_api_key="sk_test_123", stripe_api_base=stripe_mock)
    client = make_stripe_client(settings, max_network_retries=0)
    calls = _calls(RetryPolicy(), [])
    with pytest.raises(StripeCallFailed) as failed:
        calls.call(lambda: client.raw_request("get", "/v1/no_such_things/x_1"))
    assert failed.value.reason == "not_found"
    found = calls.call(lambda: client.v1.subscriptions.retrieve("sub_123"))
    assert found.object == "subscription"


def test_authentication_is_final_and_bounded() -> None:
    assert classify(stripe.AuthenticationError("bad key", http_status=401)) == (
        "authentication",
        False,
    )
    invalid = stripe.InvalidRequestError("x", "id", http_status=400)  # type: ignore[no-untyped-call]
    assert classify(invalid) == (
        "invalid_request",
        False,
    )
