"""The bot's in-memory state, free of PTB: "More" buttons, the per-chat question limit, the allowlist.

Everything takes a ``clock`` (monotonic seconds) so tests can move time without sleeping.
"""

from __future__ import annotations

import re
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from quotebot.bot.telegram.formatting import MAX_CALLBACK_DATA_BYTES
from quotebot.retrieval.answer import Answer

Clock = Callable[[], float]

# "More" states kept at once; past this the oldest go first, whatever their age.
MAX_MORE_STATES = 10_000
# Chats whose recent questions are remembered for the rate limit before idle ones are dropped.
MAX_TRACKED_CHATS = 10_000
RATE_WINDOW_SECONDS = 60.0

# callback_data of a "More" button: "more:<state id>:<quotes shown>". Telegram allows 64 bytes
# and the state itself stays here, so the data only needs a short id (48 random bits).
MORE_PREFIX = "more"
_STATE_ID_BYTES = 6
MORE_PATTERN = re.compile(rf"^{MORE_PREFIX}:([A-Za-z0-9_-]{{1,16}}):(\d{{1,3}})$")


def more_data(state_id: str, shown: int) -> str:
    data = f"{MORE_PREFIX}:{state_id}:{shown}"
    if len(data.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
        raise ValueError(f"callback data {data!r} is longer than {MAX_CALLBACK_DATA_BYTES} bytes")
    return data


def parse_more_data(data: str | None) -> tuple[str, int] | None:
    match = MORE_PATTERN.match(data or "")
    return (match.group(1), int(match.group(2))) if match else None


@dataclass
class MoreState:
    """An answer whose remaining quotes a "More" button shows (see formatting.plan_more)."""

    answer: Answer
    shown: int  # quotes shown so far
    start: int  # first quote in the message that carries the button
    can_grow: bool  # that message holds quotes[start:shown] whole, so it can be edited to hold one more
    expires: float = 0.0
    # The message that carries the button: a press is honoured only there (a button's data
    # could be replayed from another chat, whose message must not get this chat's answer).
    chat_id: int | None = None
    message_id: int | None = None

    def belongs_to(self, chat_id: int | None, message_id: int | None) -> bool:
        return chat_id is not None and chat_id == self.chat_id and message_id == self.message_id

    @property
    def finished(self) -> bool:
        return self.shown >= len(self.answer.quotes)


class MoreStore:
    """``MoreState``s under short random ids that expire ``ttl`` seconds after the answer."""

    def __init__(self, ttl: float, *, max_entries: int = MAX_MORE_STATES, clock: Clock = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._states: OrderedDict[str, MoreState] = OrderedDict()

    def put(self, state: MoreState) -> str:
        self._drop_expired()
        state_id = secrets.token_urlsafe(_STATE_ID_BYTES)
        while state_id in self._states:
            state_id = secrets.token_urlsafe(_STATE_ID_BYTES)
        state.expires = self.clock() + self.ttl
        self._states[state_id] = state
        while len(self._states) > self.max_entries:
            self._states.popitem(last=False)
        return state_id

    def get(self, state_id: str) -> MoreState | None:
        state = self._states.get(state_id)
        if state is None or state.expires <= self.clock():
            self._states.pop(state_id, None)
            return None
        return state

    def __len__(self) -> int:
        return len(self._states)

    def _drop_expired(self) -> None:
        # Insertion order is expiry order (one ttl for all), so expired states are at the front.
        now = self.clock()
        while self._states and next(iter(self._states.values())).expires <= now:
            self._states.popitem(last=False)


@dataclass(frozen=True)
class Admission:
    allowed: bool
    wait_seconds: float = 0.0
    warn: bool = False  # tell the user once per window, not on every refused question


class QuestionLimiter:
    """At most ``per_minute`` questions per chat in any 60-second window (0: no limit)."""

    def __init__(self, per_minute: int, *, clock: Clock = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._asked: dict[int, deque[float]] = {}
        self._warned: dict[int, float] = {}

    def admit(self, chat_id: int) -> Admission:
        if self.per_minute <= 0:
            return Admission(True)
        now = self.clock()
        asked = self._recent(chat_id, now)
        if len(asked) < self.per_minute:
            asked.append(now)
            return Admission(True)
        wait = asked[0] + RATE_WINDOW_SECONDS - now
        warn = self._warned.get(chat_id, float("-inf")) + RATE_WINDOW_SECONDS <= now
        if warn:
            self._warned[chat_id] = now
        return Admission(False, wait_seconds=wait, warn=warn)

    def _recent(self, chat_id: int, now: float) -> deque[float]:
        if chat_id not in self._asked and len(self._asked) >= MAX_TRACKED_CHATS:
            self._forget_idle(now)
        asked = self._asked.setdefault(chat_id, deque())
        while asked and asked[0] + RATE_WINDOW_SECONDS <= now:
            asked.popleft()
        return asked

    def _forget_idle(self, now: float) -> None:
        idle = [chat for chat, asked in self._asked.items() if not asked or asked[-1] + RATE_WINDOW_SECONDS <= now]
        for chat in idle:
            self._asked.pop(chat, None)
            self._warned.pop(chat, None)


class RefusalGate:
    """Whether a chat the bot refuses is told so now: once per ``window`` seconds, then silence.

    Without it, every message from a stranger costs an outgoing message, and 300 of them
    queue ahead of the answers to allowed chats behind Telegram's rate limit.
    """

    def __init__(self, window: float, *, max_chats: int = MAX_TRACKED_CHATS, clock: Clock = time.monotonic) -> None:
        self.window = window
        self.max_chats = max_chats
        self.clock = clock
        self._told: OrderedDict[int, float] = OrderedDict()  # chat -> when it was last told, oldest first

    def first_in_window(self, chat_id: int) -> bool:
        now = self.clock()
        told = self._told.get(chat_id)
        if told is not None and told + self.window > now:
            return False
        self._told.pop(chat_id, None)
        self._told[chat_id] = now
        while len(self._told) > self.max_chats:
            self._told.popitem(last=False)
        return True


@dataclass(frozen=True)
class Allowlist:
    """Chats and users the bot serves; both empty means everyone."""

    chat_ids: frozenset[int] = field(default_factory=frozenset)
    user_ids: frozenset[int] = field(default_factory=frozenset)

    @classmethod
    def of(cls, chat_ids: Iterable[int], user_ids: Iterable[int]) -> Allowlist:
        return cls(frozenset(chat_ids), frozenset(user_ids))

    @property
    def open(self) -> bool:
        return not self.chat_ids and not self.user_ids

    def allows(self, chat_id: int | None, user_id: int | None) -> bool:
        return self.open or chat_id in self.chat_ids or user_id in self.user_ids
