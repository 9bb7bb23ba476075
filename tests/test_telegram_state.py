"""The bot's in-memory state: "More" ids and expiry, the per-chat question limit, the allowlist."""

from __future__ import annotations

from quotebot.bot.telegram.state import (
    MAX_CALLBACK_DATA_BYTES,
    Allowlist,
    MoreState,
    MoreStore,
    QuestionLimiter,
    more_data,
    parse_more_data,
)
from quotebot.retrieval.answer import Answer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def state() -> MoreState:
    return MoreState(Answer(question="q", answered=False, confidence=0.0), shown=1, start=0, can_grow=True)


def test_more_ids_are_short_and_round_trip() -> None:
    store = MoreStore(60)
    state_id = store.put(state())
    data = more_data(state_id, 20)
    assert len(data.encode()) <= MAX_CALLBACK_DATA_BYTES
    assert parse_more_data(data) == (state_id, 20)
    assert parse_more_data("more:x:1:2") is None and parse_more_data(None) is None


def test_more_states_expire() -> None:
    clock = Clock()
    store = MoreStore(60, clock=clock)
    old = store.put(state())
    clock.now = 30
    young = store.put(state())
    clock.now = 61
    assert store.get(old) is None and store.get(young) is not None
    clock.now = 100
    store.put(state())  # putting drops what has expired
    assert len(store) == 1


def test_more_store_is_bounded() -> None:
    store = MoreStore(60, max_entries=3)
    ids = [store.put(state()) for _ in range(5)]
    assert len(store) == 3 and store.get(ids[0]) is None and store.get(ids[-1]) is not None


def test_question_limit_is_per_chat_and_slides() -> None:
    clock = Clock()
    limiter = QuestionLimiter(2, clock=clock)
    assert limiter.admit(1).allowed and limiter.admit(1).allowed
    clock.now = 10
    refused = limiter.admit(1)
    assert not refused.allowed and refused.warn and refused.wait_seconds == 50
    assert not limiter.admit(1).warn, "warned once per window"
    assert limiter.admit(2).allowed
    clock.now = 60
    assert limiter.admit(1).allowed


def test_no_question_limit() -> None:
    limiter = QuestionLimiter(0)
    assert all(limiter.admit(1).allowed for _ in range(1000))


def test_allowlist() -> None:
    assert Allowlist().allows(1, 2)
    allowlist = Allowlist.of([-100], [7])
    assert allowlist.allows(-100, 1) and allowlist.allows(5, 7)
    assert not allowlist.allows(5, 6) and not allowlist.allows(5, None)
