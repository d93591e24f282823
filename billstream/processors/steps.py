"""One record through the reducer: previous table value + raw bytes → new value and output.

Synchronous and free of Faust, so the agent stays a thin loop and this core is unit-tested
directly. Table values and the published account state are orjson bytes.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import orjson

from billstream.limits import LimitExceeded, check_account, check_episode
from billstream.processors import effects as fx
from billstream.processors.config import ReducerConfig
from billstream.processors.episodes import current_episodes, episode_key
from billstream.processors.parsing import InvalidEvent, parse_event
from billstream.processors.reducer import apply
from billstream.routing import account_key
from billstream.tables.codec import decode_customer, encode_customer
from billstream.tables.state import CustomerState

# Decoded aggregates of recently active customers: a customer's events come in bursts.
STATE_CACHE_SIZE = 20_000


class Applied(NamedTuple):
    """What the agent must do for one record."""

    value: bytes | None  # table value to write; None for a duplicate of a customer never stored
    output: bytes | None  # account-state JSON to publish; None when there is nothing to publish
    effects: list[fx.Effect]
    state: CustomerState | None  # the aggregate `value` encodes
    episodes: list[tuple[bytes, bytes]] = []  # billing.invoice-episodes records (key, value)


class StateCache:
    """Skips decoding a table value this worker encoded itself (LRU, checked by content).

    Safe because `apply` never mutates the state it is given (it folds into a clone), and a
    cached state is used only while the table still holds exactly the bytes it came from.
    """

    def __init__(self, size: int = STATE_CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[bytes, tuple[bytes, CustomerState]] = OrderedDict()

    def load(self, key: bytes, value: bytes | None) -> CustomerState | None:
        if value is None:
            return None
        hit = self._items.get(key)
        if hit is not None and (hit[0] is value or hit[0] == value):
            self._items.move_to_end(key)
            return hit[1]
        return decode_customer(value)

    def keep(self, key: bytes, applied: Applied) -> None:
        if applied.value is None or applied.state is None:
            return
        self._items[key] = (applied.value, applied.state)
        self._items.move_to_end(key)
        if len(self._items) > self.size:
            self._items.popitem(last=False)


def apply_record(
    previous: bytes | None,
    raw: bytes,
    config: ReducerConfig,
    state: CustomerState | None = None,
) -> Applied:
    """Parse and fold one record (`state`: `previous` decoded, if known); InvalidEvent if poison.

    Poison includes an event whose account state the contract cannot carry (billstream.limits):
    it is refused here, before anything is stored, so it never reaches billing.account-state.
    """
    event = parse_event(raw)
    if state is None:
        state = decode_customer(previous)
    new, effects = apply(state, event, config)
    if new is state:
        # A duplicate (Stripe retry, or a replay after a crash). The crash may have come after
        # the local write but before the changelog record or the output was sent: write the
        # unchanged value again (re-sends the changelog record, which a durable store may be
        # ahead of) and re-emit the current view (downstream keeps the highest `version`).
        # Its episodes too: the crash may have lost their records as well.
        view = state.account_view() if state is not None else None
        output = None if view is None else orjson.dumps(view)
        again = (
            []
            if state is None
            else [_episode_record(e, state.stripe_account) for e in current_episodes(state)]
        )
        return Applied(previous, output, effects, state, again)
    output = None
    episodes = []
    for effect in effects:
        if isinstance(effect, fx.AccountChanged):
            try:
                check_account(effect.account)
            except LimitExceeded as error:
                raise InvalidEvent(error.reason, error.field) from None
            output = orjson.dumps(effect.account)
        elif isinstance(effect, fx.EpisodeChanged):
            try:
                check_episode(effect.episode)
            except LimitExceeded as error:
                raise InvalidEvent(error.reason, error.field) from None
            episodes.append(_episode_record(effect.episode, new.stripe_account))
    return Applied(encode_customer(new), output, effects, new, episodes)


def _episode_record(episode: dict[str, object], account: str | None) -> tuple[bytes, bytes]:
    """The billing.invoice-episodes record; a connected account's is keyed and marked by it."""
    key = episode_key(str(episode["invoice_id"]), str(episode["kind"]))
    if account is None:
        return key.encode(), orjson.dumps(episode)
    value = {**episode, "stripe_account": account}
    return account_key(key, account).encode(), orjson.dumps(value)
