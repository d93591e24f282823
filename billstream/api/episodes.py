"""The `billing.invoice-episodes` message: one dunning or SCA episode, parsed strictly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from billstream.api.state import AccountId, Id, IdText, MalformedMessage, Text, validated
from billstream.limits import CALENDAR_SECONDS_MAX, CALENDAR_SECONDS_MIN, INT32_MAX
from billstream.routing import account_key

EpisodeKind = Literal["dunning", "sca"]
EpisodeState = Literal["open", "recovered", "completed", "lost"]
KINDS: tuple[str, ...] = ("dunning", "sca")
# A time filed under its UTC month and week: one a calendar date exists for (billstream.limits).
CalendarSeconds = Annotated[int, Field(ge=CALENDAR_SECONDS_MIN, le=CALENDAR_SECONDS_MAX)]


class EpisodeMessage(BaseModel):
    """One episode record (processors/episodes.py); unknown extra fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    invoice_id: Id
    kind: EpisodeKind
    customer_id: Id
    subscription_id: IdText | None = None
    state: EpisodeState
    opened_at: CalendarSeconds
    closed_at: CalendarSeconds | None = None
    attempts: Annotated[int, Field(ge=0, le=INT32_MAX)] = 0
    decline_code: Text | None = None
    plan: Text | None = None
    version: Annotated[int, Field(ge=0, le=2**62)]
    stripe_account: AccountId | None = None  # Connect: the connected account

    def row(self) -> dict[str, Any]:
        """The `invoice_episodes` row, with the cohorts it belongs to (UTC)."""
        opened = datetime.fromtimestamp(self.opened_at, UTC)
        monday = (opened - timedelta(days=opened.weekday())).date()
        return {
            **self.model_dump(),
            "opened_month": opened.strftime("%Y-%m"),
            "opened_week": monday.isoformat(),
        }


def decode_episode(key: bytes | None, value: bytes | None) -> EpisodeMessage | None:
    """The episode in a record, None for a tombstone; raises MalformedMessage otherwise."""
    if value is None:
        return None
    episode = validated(EpisodeMessage, value)
    expected = account_key(f"{episode.invoice_id}:{episode.kind}", episode.stripe_account)
    if key is not None and key != expected.encode():
        raise MalformedMessage(f"key {key[:64]!r} is not the value's invoice_id:kind")
    return episode
