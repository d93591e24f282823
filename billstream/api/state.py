"""The `billing.account-state` message: parsed strictly, so bad input is skipped, not stored."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from billstream.limits import (
    FEATURE_KEY_MAX_CHARS,
    FEATURES_MAX,
    ID_MAX_CHARS,
    INT64_MAX,
    INT64_MIN,
    METADATA_VALUE_MAX_CHARS,
    TEXT_MAX_CHARS,
)
from billstream.routing import account_key, split_account_key

# The contract's limits (billstream.limits), the columns' widths, and no NUL (PostgreSQL text
# cannot hold it). The worker refuses such values already; anything else is quarantined.
NO_NUL = r"^[^\x00]*$"
Text = Annotated[str, Field(max_length=TEXT_MAX_CHARS, pattern=NO_NUL)]
IdText = Annotated[str, Field(max_length=ID_MAX_CHARS, pattern=NO_NUL)]
MetadataText = Annotated[str, Field(max_length=METADATA_VALUE_MAX_CHARS, pattern=NO_NUL)]
Id = Annotated[str, Field(min_length=1, max_length=ID_MAX_CHARS, pattern=r"^[^\x00-\x1f\x7f]*$")]
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
# A feature's lookup key: a query value (GET /accounts?feature=), so no control characters.
FeatureKey = Annotated[
    str, Field(min_length=1, max_length=FEATURE_KEY_MAX_CHARS, pattern=r"^[^\x00-\x1f\x7f]*$")
]
AccountId = Annotated[str, Field(pattern=r"^acct_[A-Za-z0-9]{1,240}$")]
PaymentState = Literal["ok", "past_due", "requires_action"]
PAYMENT_STATES: tuple[str, ...] = ("ok", "past_due", "requires_action")


class MalformedMessage(ValueError):
    """The record is not an account state; the consumer logs, counts and skips it."""


class AccountStateMessage(BaseModel):
    """One account-state value; unknown extra fields are ignored (forward compatible)."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    customer_id: Id
    plan: Annotated[str, Field(min_length=1, max_length=TEXT_MAX_CHARS, pattern=NO_NUL)]
    interval: Text | None = None
    subscription_id: IdText | None = None
    subscription_status: Text | None = None
    payment_state: PaymentState
    cancel_at_period_end: bool = False
    pending_plan: MetadataText | None = None
    current_period_end: Int64 | None = None
    deleted: bool = False
    version: Annotated[int, Field(ge=0, le=2**62)]
    updated_by_event: IdText | None = None
    # Added by the worker for the transitions table; older messages lack it.
    updated_by_event_type: Text | None = None
    updated_at: Int64 | None = None
    # Sorted entitlement lookup keys; older messages lack it (no entitlements known).
    features: Annotated[list[FeatureKey], Field(max_length=FEATURES_MAX)] = []
    # The connected account (Stripe Connect); absent for the platform's own customers.
    stripe_account: AccountId | None = None

    @property
    def key(self) -> str:
        """The account key (routing.account_key): `cus_…`, or `acct_…/cus_…` if connected."""
        return account_key(self.customer_id, self.stripe_account)

    def row(self) -> dict[str, Any]:
        """The `accounts` row: keyed by the account key, so platform rows are as before."""
        return {**self.model_dump(), "customer_id": self.key}


Message = TypeVar("Message", bound=BaseModel)


def validated(model: type[Message], value: bytes) -> Message:
    """`value` parsed as `model`; MalformedMessage naming the first field that is wrong."""
    try:
        return model.model_validate_json(value)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "value"
        raise MalformedMessage(f"{where}: {first['msg']}") from None


def decode(key: bytes | None, value: bytes | None) -> AccountStateMessage | None:
    """The state in a record, None for a tombstone; raises MalformedMessage otherwise."""
    if value is None:
        return None
    state = validated(AccountStateMessage, value)
    if key is not None and key != state.key.encode():
        raise MalformedMessage(f"key {key[:64]!r} is not the value's [stripe_account/]customer_id")
    return state


# The API body of an account: exactly the message's fields, in the contract's order (DESIGN.md).
# The api cannot import the worker's schema; tests/unit/test_account_state_contract.py holds
# this, the table, the OpenAPI schema and the docs to the worker's AccountState.
ACCOUNT_FIELDS: tuple[str, ...] = tuple(AccountStateMessage.model_fields)
# The fields whose change a transition records: all but the key and the stamps of a change.
STAMPS = ("version", "updated_by_event", "updated_by_event_type", "updated_at")
KEY_FIELDS = ("customer_id", "stripe_account")
TRACKED_FIELDS = tuple(name for name in ACCOUNT_FIELDS if name not in (*KEY_FIELDS, *STAMPS))


def served(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as the API serves it: the customer id without its account prefix."""
    _, customer = split_account_key(row["customer_id"])
    return {**row, "customer_id": customer}
