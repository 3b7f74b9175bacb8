"""ISO weeks in the digest's time zone: parsing `2026-W47`, the last complete week, day bounds."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


class WeekFormatError(ValueError):
    """A --week value that is not an ISO week such as 2026-W47."""


@dataclass(frozen=True)
class Week:
    """Monday 00:00 to the next Monday 00:00, local time in `timezone` (DST-aware)."""

    year: int
    number: int
    timezone: str

    @classmethod
    def parse(cls, text: str, timezone: str) -> Week:
        match = _WEEK.match(text.strip())
        if not match:
            raise WeekFormatError(f"{text!r} is not an ISO week; write it like 2026-W47")
        year, number = int(match.group(1)), int(match.group(2))
        try:
            date.fromisocalendar(year, number, 1)
        except ValueError:
            raise WeekFormatError(f"{text!r}: {year} has no week {number}") from None
        return cls(year, number, timezone)

    @classmethod
    def containing(cls, day: date, timezone: str) -> Week:
        year, number, _ = day.isocalendar()
        return cls(year, number, timezone)

    @classmethod
    def last_complete(cls, now: datetime, timezone: str) -> Week:
        """The most recent ISO week that has ended, as seen in `timezone`."""
        today = now.astimezone(ZoneInfo(timezone)).date()
        return cls.containing(today - timedelta(days=7), timezone)

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.number:02d}"

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.number, 1)

    @property
    def days(self) -> list[date]:
        return [self.monday + timedelta(days=offset) for offset in range(7)]

    def previous(self) -> Week:
        return Week.containing(self.monday - timedelta(days=7), self.timezone)

    def midnight_utc(self, day: date) -> datetime:
        """Local midnight of `day`, in UTC: what the database compares against."""
        return datetime.combine(day, time(0), tzinfo=ZoneInfo(self.timezone)).astimezone(UTC)

    @property
    def start(self) -> datetime:
        return self.midnight_utc(self.monday)

    @property
    def end(self) -> datetime:
        return self.midnight_utc(self.monday + timedelta(days=7))

    def day_bounds(self, days_before: int = 0) -> list[datetime]:
        """UTC instants of each local midnight from `days_before` days before Monday to the end."""
        first = self.monday - timedelta(days=days_before)
        return [self.midnight_utc(first + timedelta(days=n)) for n in range(days_before + 8)]

    def describe(self) -> str:
        """`2026-W47 (Mon 16 Nov – Sun 22 Nov 2026, Europe/Berlin)`."""
        first, last = self.days[0], self.days[-1]
        return f"{self.label} ({first:%a %d %b} – {last:%a %d %b %Y}, {self.timezone})"
