"""Property: one story, rendered in every supported API version's shape (or in a mix, as when
an account's default version moves mid-history), folds to one state.

A story is a sequence of subscription and invoice events of one customer, with distinct
`created` times; it is rendered by the simulator's own builders (billstream/simulate/versions.py)
with the same event ids, so even `version` and `updated_by_event` must agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from billstream.processors.reducer import ReducerConfig, apply
from billstream.simulate import catalog, events, versions
from billstream.tables.state import CustomerState

CONFIG = ReducerConfig(
    plan_map={
        **{p.lookup_key: p.plan for p in catalog.PRICES if p.lookup_key},
        **{p.id: p.plan for p in catalog.PRICES},
    }
)
SUBSCRIPTIONS = ("sub_a", "sub_b")
INVOICES = ("in_1", "in_2", "in_3")
STATUSES = ("trialing", "active", "past_due", "unpaid", "paused", "canceled", "incomplete")
SUBSCRIPTION_TYPES = ("created", "updated", "updated", "deleted", "paused", "resumed")
INVOICE_TYPES = (
    "invoice.payment_failed",
    "invoice.payment_action_required",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.voided",
    "invoice.marked_uncollectible",
    "invoice.finalized",
)
PRICES = (*catalog.PRICES, catalog.LEGACY)
# A catalog shape: what the price looks like, independently of the API version.
CATALOG_SHAPES = ("price", "no_lookup_key", "plan_only")

FAST = settings(max_examples=40, deadline=None)


@dataclass(frozen=True)
class SubStep:
    sub_id: str
    event_type: str
    status: str
    price: catalog.Price
    period_end: int
    cancel_at_period_end: bool
    pending_plan: str | None


@dataclass(frozen=True)
class InvoiceStep:
    invoice_id: str
    event_type: str
    sub_id: str | None  # None: an invoice a quote generated


Step = SubStep | InvoiceStep

sub_steps = st.builds(
    SubStep,
    st.sampled_from(SUBSCRIPTIONS),
    st.sampled_from(SUBSCRIPTION_TYPES).map(lambda t: f"customer.subscription.{t}"),
    st.sampled_from(STATUSES),
    st.sampled_from(PRICES),
    st.integers(1_000, 9_000),
    st.booleans(),
    st.sampled_from([None, "PRO", "FREE"]),
)
invoice_steps = st.builds(
    InvoiceStep,
    st.sampled_from(INVOICES),
    st.sampled_from(INVOICE_TYPES),
    st.sampled_from([*SUBSCRIPTIONS, None]),
)
stories = st.lists(st.one_of(sub_steps, invoice_steps), min_size=1, max_size=16)


def render(step: Step, index: int, version: str, catalog_shape: str = "price") -> dict[str, Any]:
    """The event Stripe would send for `step` to an endpoint of `version`."""
    created = 100 + index * 10
    if isinstance(step, SubStep):
        obj = events.subscription(
            step.sub_id,
            customer_id="cus_1",
            item_id=f"si_{step.sub_id}",
            price=step.price,
            status="canceled" if step.event_type.endswith("deleted") else step.status,
            created=100,
            current_period_start=step.period_end - 1_000,
            current_period_end=step.period_end,
            api_version=version,
            cancel_at_period_end=step.cancel_at_period_end,
            pending_plan=step.pending_plan,
        )
        item = obj["items"]["data"][0]
        if catalog_shape == "no_lookup_key":
            item["price"]["lookup_key"] = None
        elif catalog_shape == "plan_only":
            del item["price"]
        event_type = step.event_type
    else:
        obj = events.invoice(
            step.invoice_id,
            customer_id="cus_1",
            subscription_id=step.sub_id,
            quote_id=None if step.sub_id else f"qt_{step.invoice_id}",
            price=catalog.PRO_MONTHLY,
            status="paid" if "paid" in step.event_type else "open",
            billing_reason="subscription_cycle",
            created=created,
            period_start=0,
            period_end=1_000,
            amount_due=2900,
            api_version=version,
        )
        event_type = step.event_type
    return events.event(f"evt_{index}", event_type, obj, created, api_version=version)


def fold(rendered: list[dict[str, Any]]) -> CustomerState:
    state: CustomerState | None = None
    for event in rendered:
        state, _ = apply(state, event, CONFIG)
    assert state is not None
    return state


def comparable(state: CustomerState) -> tuple[object, ...]:
    return (state.account_view(), state.subscriptions, state.invoices)


@FAST
@given(stories)
def test_every_version_folds_one_story_to_one_state(story: list[Step]) -> None:
    newest = comparable(fold([render(s, i, versions.NEWEST) for i, s in enumerate(story)]))
    for version in versions.SUPPORTED[:-1]:
        assert comparable(fold([render(s, i, version) for i, s in enumerate(story)])) == newest


@FAST
@given(stories, st.data())
def test_a_mix_of_versions_folds_to_the_same_state(story: list[Step], data: st.DataObject) -> None:
    # Endpoints of several versions, or the account's default version moving mid-history.
    mixed = [
        render(s, i, data.draw(st.sampled_from(versions.SUPPORTED))) for i, s in enumerate(story)
    ]
    assert comparable(fold(mixed)) == comparable(
        fold([render(s, i, versions.NEWEST) for i, s in enumerate(story)])
    )


@FAST
@given(stories, st.sampled_from(versions.SUPPORTED), st.sampled_from(CATALOG_SHAPES))
def test_prices_with_or_without_lookup_key_or_only_a_plan_give_one_account(
    story: list[Step], version: str, catalog_shape: str
) -> None:
    # The stored price names the lookup_key when there is one, so only the account must agree.
    shaped = fold([render(s, i, version, catalog_shape) for i, s in enumerate(story)])
    plain = fold([render(s, i, version) for i, s in enumerate(story)])
    assert shaped.account_view() == plain.account_view()
