"""When the team can next answer in a market: business hours, business days and public holidays.

A draft only says "today" or "tomorrow morning" when it is true in the customer's market; otherwise
it names the day. Public holidays come from the `holidays` package for the market's country.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import cache
from zoneinfo import ZoneInfo

import holidays
from babel.dates import format_date, format_skeleton

from config.schema import WEEKDAYS, Market, parse_time_range

# Promise "today" only with at least this much of the working day left.
MIN_TIME_LEFT = timedelta(hours=1)
MORNING_ENDS = time(12, 0)
LOOKAHEAD_DAYS = 30


class Promise(StrEnum):
    TODAY = "today"
    TOMORROW = "tomorrow"  # "tomorrow morning": only when the team opens before noon
    LATER = "later"  # a named day


@dataclass(frozen=True)
class NextContact:
    promise: Promise
    day: date
    local_now: datetime


@cache
def _holidays(country: str, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(country, years=[year, year + 1])


def is_business_day(market: Market, day: date) -> bool:
    return WEEKDAYS[day.weekday()] in market.business_days and day not in _holidays(
        market.country, day.year
    )


def holiday_name(market: Market, day: date) -> str | None:
    return _holidays(market.country, day.year).get(day)


def next_contact(market: Market, now: datetime) -> NextContact:
    """The soonest the team can answer, as the promise a draft may make."""
    local = now.astimezone(ZoneInfo(market.timezone))
    start, end = parse_time_range(market.business_hours)
    closing = datetime.combine(local.date(), end, tzinfo=local.tzinfo)
    if is_business_day(market, local.date()) and local + MIN_TIME_LEFT <= closing:
        return NextContact(Promise.TODAY, local.date(), local)
    for offset in range(1, LOOKAHEAD_DAYS + 1):
        day = local.date() + timedelta(days=offset)
        if is_business_day(market, day):
            soon = offset == 1 and start < MORNING_ENDS
            return NextContact(Promise.TOMORROW if soon else Promise.LATER, day, local)
    raise ValueError(
        f"market {market.code}: no business day in the next {LOOKAHEAD_DAYS} days;"
        " check business_days in the config"
    )


def day_words(day: date, locale: str) -> dict[str, str]:
    """The weekday and the date as the locale writes them ("Montag", "28. Dezember")."""
    babel_locale = locale.replace("-", "_")
    return {
        "weekday": format_date(day, "EEEE", locale=babel_locale),
        "date": format_skeleton("MMMMd", day, locale=babel_locale),
    }
