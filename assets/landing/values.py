"""Cell values as survey and HR tools write them: answers as numbers ("4", "4.0") or choice
text ("Agree", "4 - Agree"), true/false words, and dates in whatever pattern a tool uses,
found once per column (``DatePattern.find``) so a whole file is read one way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from assets.landing.tables import header_text
from assets.landing.validation import RowError

TRUE_WORDS = ("true", "t", "yes", "y", "1", "x")
FALSE_WORDS = ("false", "f", "no", "n", "0", "")

# Agreement labels as survey tools write them; the mapping file's answer_labels add others.
AGREEMENT_LABELS: dict[int, dict[str, int]] = {
    5: {"strongly disagree": 1, "disagree": 2, "neither agree nor disagree": 3, "neutral": 3, "agree": 4,
        "strongly agree": 5},
    7: {"strongly disagree": 1, "disagree": 2, "somewhat disagree": 3, "slightly disagree": 3,
        "neither agree nor disagree": 4, "neutral": 4, "somewhat agree": 5, "slightly agree": 5, "agree": 6,
        "strongly agree": 7},
}
_NUMBER = re.compile(r"(\d+)(?:\.0*)?(?:\s*[-=:.)]\s*\S.*)?")


def parse_answer(value: str, item_no: int, scale_points: int, labels: dict[str, int]) -> int | None:
    """The 1..K answer in a cell (None: not answered): a whole number, "4.0", "4 - Agree", or
    a label of ``labels`` (compared without case)."""
    text = value.strip()
    if not text:
        return None
    number = _NUMBER.fullmatch(text)
    if number:
        answer = int(number.group(1))
    elif header_text(text) in labels:
        answer = labels[header_text(text)]
    else:
        raise RowError(f"unknown answer: item {item_no} answer {text!r} is neither a number nor an answer label "
                       f"(add it to survey.answer_labels in the mapping file)")
    if not 1 <= answer <= scale_points:
        raise RowError(f"out of range: item {item_no} answer {text!r} is not a whole number in 1..{scale_points}")
    return answer


def parse_flag(value: str, column: str, true_words: tuple[str, ...], false_words: tuple[str, ...]) -> bool:
    text = value.strip().lower()
    if text in true_words:
        return True
    if text in false_words:
        return False
    raise RowError(f"bad flag: {column} {value!r} is not one of the true words ({', '.join(true_words)}) "
                   f"or false words ({', '.join(w for w in false_words if w)})")


# Patterns tried in order when the mapping file names none; the first that reads every
# value of the column wins, so 03/04/2024 is read the same way throughout a file.
DATE_PATTERNS = (
    "iso",
    "%Y/%m/%d %I:%M:%S %p",   # Google Forms CSV download: 2024/01/18 1:56:43 PM GMT+1
    "%Y/%m/%d %H:%M:%S",
    "%m/%d/%Y %I:%M:%S %p",   # SurveyMonkey, US locale
    "%m/%d/%Y %H:%M:%S",      # Google Sheets, Microsoft Forms (en-US)
    "%m/%d/%Y %H:%M",
    "%m/%d/%y %H:%M:%S",
    "%m/%d/%y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%d-%b-%Y",               # Workday: 18-Jan-2024
    "%b %d, %Y",
)
_ZONE_SUFFIX = re.compile(r"\s*(?:(?:GMT|UTC)(?:([+-])(\d{1,2})(?::?(\d{2}))?)?|Z)$")


def _split_zone(text: str) -> tuple[str, int | None]:
    """('2024/01/18 1:56:43 PM', +60) from '2024/01/18 1:56:43 PM GMT+1' (offset in minutes)."""
    match = _ZONE_SUFFIX.search(text)
    if not match or match.start() == 0:
        return text, None
    sign, hours, minutes = match.groups()
    offset = 0 if hours is None else (int(hours) * 60 + int(minutes or 0)) * (-1 if sign == "-" else 1)
    return text[: match.start()], offset


def _parse_with(pattern: str, text: str) -> datetime:
    body, offset = _split_zone(text.strip())
    parsed = datetime.fromisoformat(body) if pattern == "iso" else datetime.strptime(body, pattern)
    if offset is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone(timedelta(minutes=offset)))
    return parsed


@dataclass(frozen=True)
class DatePattern:
    """How one column's dates read: a strptime pattern (or ``iso``), and the time zone of
    values written without an offset."""

    pattern: str
    time_zone: str = "UTC"

    @classmethod
    def find(cls, values: list[str], time_zone: str = "UTC", pattern: str | None = None) -> DatePattern:
        """The configured ``pattern``, else the first of DATE_PATTERNS that reads every
        non-empty value (else the one that reads most: the rest are quarantined)."""
        if pattern:
            return cls(pattern, time_zone)
        sample = [v.strip() for v in values if v and v.strip()]
        best, best_count = DATE_PATTERNS[0], -1
        for candidate in DATE_PATTERNS:
            count = 0
            for value in sample:
                try:
                    _parse_with(candidate, value)
                    count += 1
                except ValueError:
                    pass
            if count == len(sample):
                return cls(candidate, time_zone)
            if count > best_count:
                best, best_count = candidate, count
        return cls(best, time_zone)

    def parse(self, value: str, column: str, now: datetime) -> datetime:
        """``value`` as naive UTC; dates after ``now`` (the load time) are refused."""
        text = value.strip()
        try:
            parsed = _parse_with(self.pattern, text)
        except ValueError:
            shown = "an ISO date (YYYY-MM-DD[ HH:MM:SS])" if self.pattern == "iso" else f"in the pattern {self.pattern}"
            raise RowError(f"bad date: {column} {text!r} is not {shown} like the rest of the column "
                           f"(set date_format in the mapping file if the pattern is wrong)") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=ZoneInfo(self.time_zone))
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        if parsed > now.astimezone(UTC).replace(tzinfo=None):
            raise RowError(f"future date: {column} {text} is after the load time {now:%Y-%m-%d %H:%M} UTC")
        return parsed
