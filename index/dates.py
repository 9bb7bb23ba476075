"""Publication dates as ISO 8601, whatever form a record, a page or a feed gives them in.

Records say ``2018-12-20``, ``26-FEB-1987 15:01:01.79`` or ``Thu, 20 Dec 2018 10:00:00 GMT``;
the index keeps one form, so dates sort as strings and filters compare them:
``YYYY-MM-DD`` for a day, ``YYYY-MM-DDTHH:MM:SS[+HH:MM]`` for a moment.
"""

from __future__ import annotations

import datetime as dt
import re

from quotebot.index.lazyre import lazy

_DATE_ONLY = lazy(r"^\d{4}-\d{2}-\d{2}$")
# Relative forms the chat accepts: /since 7d, /since 2w.
_RELATIVE = lazy(r"^(\d{1,4})\s*([dw])$", re.IGNORECASE)
# A lone number is no date ("2018" would become today's day in 2018).
_JUST_DIGITS = lazy(r"^\d{1,8}$")


def normalize_date(value: object) -> str | None:
    """``value`` as ISO 8601, or None when it is empty or names no date."""
    if value is None:
        return None
    text = str(value).strip()
    if not text or _JUST_DIGITS.match(text):
        return None
    parsed = parse_date(text)
    if parsed is None:
        return None
    if isinstance(parsed, dt.datetime):
        if parsed.tzinfo is None and parsed.time() == dt.time(0):
            return parsed.date().isoformat()
        return parsed.isoformat(timespec="seconds")
    return parsed.isoformat()


def parse_date(text: str) -> dt.date | dt.datetime | None:
    """A date (day only) or a datetime from ISO 8601, RFC 2822 or anything dateutil reads."""
    if _DATE_ONLY.match(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    import email.utils  # here: the email package is ~10 ms of a one-shot `quotebot ask`, which reads no dates

    try:
        return email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        pass
    try:
        from dateutil import parser as dateutil_parser

        return dateutil_parser.parse(text)
    except (ValueError, OverflowError, TypeError):
        return None


def date_key(iso: str | None, *, end_of_day: bool = False) -> float | None:
    """Seconds since the epoch (UTC) of an ISO date, for comparing; a naive time counts as UTC.

    A day alone stands for its first second, or with ``end_of_day`` its last, so a filter
    ``until 2024-05-07`` keeps articles of the whole of that day.
    """
    if not iso:
        return None
    parsed = parse_date(iso)
    if parsed is None:
        return None
    if not isinstance(parsed, dt.datetime):
        moment = dt.datetime.combine(parsed, dt.time.max if end_of_day else dt.time.min)
        return moment.replace(tzinfo=dt.timezone.utc).timestamp()
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.timestamp()


def user_date(text: str, *, today: dt.date | None = None) -> str:
    """What a user typed after /since or --since: an ISO date, another date form, or ``7d``/``2w``
    (that many days or weeks ago). ``ValueError`` with a hint when it is none of these."""
    text = text.strip()
    relative = _RELATIVE.match(text)
    if relative:
        days = int(relative.group(1)) * (7 if relative.group(2).lower() == "w" else 1)
        return ((today or dt.date.today()) - dt.timedelta(days=days)).isoformat()
    normalized = normalize_date(text)
    if normalized is None:
        raise ValueError(f"not a date: {text!r} (use YYYY-MM-DD, e.g. 2024-05-01, or 7d for a week ago)")
    return normalized
