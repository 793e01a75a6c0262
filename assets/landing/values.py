"""Cell values as survey and HR tools write them: answers as numbers ("4", "4.0") or choice
text ("Agree", "4 - Agree"), true/false words, and dates in whatever pattern a tool uses,
found once per file over all its date columns (``DatePattern.find``) so a whole file is read
one way, and never guessed when two patterns read it differently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import NamedTuple
from zoneinfo import ZoneInfo

from assets.landing.tables import EXCEL_EPOCH, header_text
from assets.landing.validation import RowError

TRUE_WORDS = ("true", "t", "yes", "y", "1", "x")
FALSE_WORDS = ("false", "f", "no", "n", "0", "")

# Agreement labels as survey tools write them; the mapping file's answer_labels add others.
# Qualtrics' 5-point agreement scale says "Somewhat" where others say nothing.
AGREEMENT_LABELS: dict[int, dict[str, int]] = {
    5: {"strongly disagree": 1, "disagree": 2, "somewhat disagree": 2, "neither agree nor disagree": 3, "neutral": 3,
        "agree": 4, "somewhat agree": 4, "strongly agree": 5},
    7: {"strongly disagree": 1, "disagree": 2, "somewhat disagree": 3, "slightly disagree": 3,
        "neither agree nor disagree": 4, "neutral": 4, "somewhat agree": 5, "slightly agree": 5, "agree": 6,
        "strongly agree": 7},
}
# A number, whole or not (a non-whole one is refused, never cut to its integer part), and
# optionally the label a tool writes after it ("4 - Agree", "4. Agree", "4) Agree"): the label
# starts with a non-digit, so "4.5" is the number 4.5, not 4 followed by a label.
_NUMBER = re.compile(r"(\d+(?:\.\d*)?)(?:\s*[-=:.)]\s*(\D.*))?")


def parse_answer(value: str, item_no: int, scale_points: int, labels: dict[str, int | None]) -> int | None:
    """The answer in a cell (None: not answered): a label of ``labels`` (compared without
    case; a label may stand for a number, such as a tool's recode 0 for 1, or for no answer:
    None), else a whole number, "4.0" or "4 - Agree". A number that is not whole (4.5) is not
    an answer on the scale, and a number its label contradicts ("1 - Strongly agree": the label
    is 5 or 7 on either scale, never 1) is not trusted: both are refused, never rounded or
    guessed. Whether the answer is on the file's 1..K scale is the file's question, not the
    row's (``survey.read_survey_file``): a 0-10 export is not loaded in part."""
    text = value.strip()
    if not text:
        return None
    number = _NUMBER.fullmatch(text)
    if header_text(text) in labels:
        answer = labels[header_text(text)]
        if answer is None:
            return None
    elif number:
        digits, label = number.groups()
        if float(digits) != int(float(digits)):
            raise RowError(f"not a whole number: item {item_no} answer {text!r} is not one of the scale's answers "
                           f"1..{scale_points} (an average or a slider's value is no answer to an item; export "
                           f"the answers as whole numbers or choice text)")
        answer = labels.get(str(int(float(digits))), int(float(digits)))  # a tool's recode ("0": 1) applies
        if answer is None:
            return None
        if label is not None:
            meant = _label_values(header_text(label), labels)
            if meant and answer not in meant:
                raise RowError(f"contradictory answer: item {item_no} answer {text!r}: the number {answer} and the "
                               f"label {label.strip()!r} ({' or '.join(str(v) for v in sorted(meant))} on a 5- or "
                               f"7-point scale) disagree, so neither is trusted; correct the export, or map the whole "
                               f"text under survey.answer_labels in the mapping file")
    else:
        raise RowError(f"unknown answer: item {item_no} answer {text!r} is neither a number nor an answer label "
                       f"(add it to survey.answer_labels in the mapping file)")
    return answer


def _label_values(label: str, labels: dict[str, int | None]) -> set[int]:
    """The numbers an answer label may stand for: its value among ``labels`` (the file's scale
    and the mapping's labels) and on either agreement scale. "4 - Agree" is 4 on five points
    (on seven, Agree is 6): a 5-point export read on the 7-point setting, which the scale
    check warns about, not a contradiction. Empty for a label nobody knows."""
    values = {labels.get(label), *(scale.get(label) for scale in AGREEMENT_LABELS.values())}
    return {v for v in values if v is not None}


def parse_flag(value: str, column: str, true_words: tuple[str, ...], false_words: tuple[str, ...]) -> bool:
    text = value.strip().lower()
    if text in true_words:
        return True
    if text in false_words:
        return False
    raise RowError(f"bad flag: {column} {value!r} is not one of the true words ({', '.join(true_words)}) "
                   f"or false words ({', '.join(w for w in false_words if w)})")


# Patterns tried in order when the mapping file names none. One pattern reads all of a
# file's dates (every date column together), so 03/04/2024 is read the same way throughout
# it; when two patterns read every date and disagree (all days 12 or less), the file is not
# guessed (``AmbiguousDates``). So every month-first slash pattern has its day-first twin
# (the same with %d/%m): without it a UK or Indian export dated on days 1-12 would be read
# month first, silently. Month-first comes first, so a file both read alike (01/01/2024) and
# an unambiguous file read as before. Year-first (2024/01/18) is never year-day-month, and
# dotted dates (18.01.2024) are day first wherever they are written: these have no twin.
DATE_PATTERNS = (
    "iso",
    "%Y/%m/%d %I:%M:%S %p",   # Google Forms CSV download: 2024/01/18 1:56:43 PM GMT+1
    "%Y/%m/%d %H:%M:%S",
    "%m/%d/%Y %I:%M:%S %p",   # SurveyMonkey, US locale
    "%m/%d/%Y %I:%M %p",      # Excel, US locale: 3/31/2025 11:45 PM
    "%m/%d/%Y %H:%M:%S",      # Google Sheets, Microsoft Forms (en-US)
    "%m/%d/%Y %H:%M",
    "%m/%d/%y %H:%M:%S",
    "%m/%d/%y %H:%M",
    "%d/%m/%Y %I:%M:%S %p",   # SurveyMonkey, Excel: UK, India
    "%d/%m/%Y %I:%M %p",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%y %H:%M:%S",
    "%d/%m/%y %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%d-%b-%Y",               # Workday: 18-Jan-2024
    "%b %d, %Y",
)
# Time-zone abbreviations a tool may append (Google Forms writes the form's zone: "EST",
# "PDT", or "GMT+1" where it has no abbreviation), as offsets in minutes. Only abbreviations
# that name one zone; CST is North America's Central time, as Google writes it. Others (IST,
# BST, AST name several) are not guessed: their dates are quarantined, and a date_format with
# the abbreviation as literal text plus the mapping's time_zone reads them.
ZONE_ABBREVIATIONS = {
    "EST": -300, "EDT": -240, "CST": -360, "CDT": -300, "MST": -420, "MDT": -360, "PST": -480, "PDT": -420,
    "AKST": -540, "AKDT": -480, "HST": -600, "WET": 0, "WEST": 60, "CET": 60, "CEST": 120, "EET": 120,
    "EEST": 180, "MSK": 180, "JST": 540, "KST": 540, "HKT": 480, "SGT": 480, "AWST": 480, "ACST": 570,
    "ACDT": 630, "AEST": 600, "AEDT": 660, "NZST": 720, "NZDT": 780,
}
_ZONE_SUFFIX = re.compile(r"\s*(?:(?:GMT|UTC)(?:([+-])(\d{1,2})(?::?(\d{2}))?)?|Z|("
                          + "|".join(ZONE_ABBREVIATIONS) + r"))$")
# An all-zero date is how some tools (BambooHR: 0000-00-00) write an empty one. The same
# regular expression serves Python and DuckDB (RE2: no back references).
ZERO_DATE = r"0{1,4}[-/.]0{1,2}[-/.]0{1,4}(?:[ T]0{1,2}:00(?::00)?)?"
_ZERO_DATE = re.compile(ZERO_DATE)
# The end of time: SAP SuccessFactors, SAP HCM and other HR systems (and Excel's "no end"
# placeholder) write 9999-12-31 as the end date of a record still open, an active employee's
# "valid to". A termination date in this year, read by the file's date pattern whatever it is
# (12/31/9999, 31.12.9999, 31-Dec-9999, a workbook's date cell), is no termination, as an
# empty cell or 0000-00-00 is (hr._typed_sql): no real date lies so far ahead. Later years
# too: 9999-12-31T23:30:00-01:00 is a UTC date in 10000.
OPEN_END_YEAR = 9999
# Oracle's end of time (Oracle HCM and E-Business Suite end an open record on 31-DEC-4712): the
# same open end, that one day only.
ORACLE_END_OF_TIME = date(4712, 12, 31)
# The one ISO rule, for the Python 'iso' reading and the HR loader's DuckDB SQL alike (RE2
# syntax): YYYY-MM-DD, optionally a time (space or T) HH:MM[:SS[.fraction]] and then an
# offset (Z, UTC, GMT, +HH[:MM], -HHMM), read as that instant in UTC. Groups: the date, the
# time, the offset. Compact 20240105 is not ISO here (it looks like an id); neither is a
# zone name (2024-01-05 10:00 EST): set a date_format with time_zone for those.
ISO_DATE = (r"(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)"
            r"(Z| ?UTC| ?GMT|[+-](?:[01]\d|2[0-3])(?::?[0-5]\d)?)?)?")
_ISO_DATE = re.compile(ISO_DATE)
# strptime directives of a time of day: a pattern without them reads dates alone.
_TIME_DIRECTIVES = ("%H", "%I", "%M", "%S", "%p", "%X", "%c")


def workbook_datetime(value: date | float) -> datetime:
    """A workbook's typed cell (``Records.typed_cells``: a date cell, or a number from 1970's
    serial date on) as the naive moment it stands for: a date at midnight, a number as Excel's
    serial date (EXCEL_EPOCH)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    return EXCEL_EPOCH + timedelta(milliseconds=round(value * 86_400_000))


# Examples of disagreeing readings an ambiguity message shows.
AMBIGUOUS_EXAMPLES = 3


class AmbiguousDates(ValueError):
    """More than one date pattern reads every date of a file and they give different dates;
    the message names the file, columns, examples, readings and the mapping key to set."""


def is_empty_date(text: str) -> bool:
    """An empty cell or an all-zero date (0000-00-00): no date."""
    text = text.strip()
    return not text or bool(_ZERO_DATE.fullmatch(text))


def _split_zone(text: str) -> tuple[str, int | None]:
    """('2024/01/18 1:56:43 PM', +60) from '2024/01/18 1:56:43 PM GMT+1', -300 from '... EST'
    (offset in minutes)."""
    match = _ZONE_SUFFIX.search(text)
    if not match or match.start() == 0:
        return text, None
    sign, hours, minutes, abbreviation = match.groups()
    if abbreviation:
        return text[: match.start()], ZONE_ABBREVIATIONS[abbreviation]
    offset = 0 if hours is None else (int(hours) * 60 + int(minutes or 0)) * (-1 if sign == "-" else 1)
    return text[: match.start()], offset


def iso_offset_minutes(zone: str | None) -> int:
    """The offset of an ISO_DATE offset group in minutes: 60 for '+01:00', '+0100' or '+01';
    0 for Z, UTC, GMT or none."""
    zone = (zone or "").strip()
    if not zone or zone[0] not in "+-":
        return 0
    digits = zone[1:].replace(":", "")
    return (int(digits[:2]) * 60 + int(digits[2:] or 0)) * (-1 if zone[0] == "-" else 1)


def _read_iso(text: str) -> datetime:
    """A value of ISO_DATE (naive without an offset), else ValueError."""
    match = _ISO_DATE.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not YYYY-MM-DD[ HH:MM[:SS]][offset]")
    day, time, zone = match.groups()
    parsed = datetime.fromisoformat(f"{day} {time}" if time else day)
    return parsed.replace(tzinfo=timezone(timedelta(minutes=iso_offset_minutes(zone)))) if zone else parsed


def _states_time(pattern: str, text: str) -> bool:
    """Whether ``text``, read by ``pattern``, states a time of day (2025-04-01 09:00, 4/1/2025
    9:00 AM) rather than a date alone (2025-04-01, 01.04.2025)."""
    if pattern == "iso":
        return _ISO_DATE.fullmatch(text.strip()).group(2) is not None
    return any(directive in pattern for directive in _TIME_DIRECTIVES)


def _parse_with(pattern: str, text: str) -> datetime:
    if pattern == "iso":
        return _read_iso(text.strip())
    body, offset = _split_zone(text.strip())
    parsed = datetime.strptime(body, pattern)
    if offset is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone(timedelta(minutes=offset)))
    return parsed


def _readings(pattern: str, values: list[str], allowed_failures: int) -> dict[str, datetime] | None:
    """Each value ``pattern`` reads, with its reading; None once more than
    ``allowed_failures`` values fail (the pattern cannot win)."""
    read, failures = {}, 0
    for value in values:
        try:
            read[value] = _parse_with(pattern, value)
        except ValueError:
            failures += 1
            if failures > allowed_failures:
                return None
    return read


def _shown(pattern: str) -> str:
    return "iso (YYYY-MM-DD[ HH:MM[:SS]][Z|+HH:MM])" if pattern == "iso" else pattern


def _reading_text(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d}" if (moment.hour, moment.minute, moment.second) == (0, 0, 0) else \
        f"{moment:%Y-%m-%d %H:%M:%S}"


def _order(pattern: str) -> str:
    """'month first' or 'day first' for a numeric pattern, else 'read'."""
    if "%m" in pattern and "%d" in pattern:
        return "month first" if pattern.index("%m") < pattern.index("%d") else "day first"
    return "read"


class Reading(NamedTuple):
    """A date as read: the moment as naive UTC (``utc``), and the calendar day it was written on
    (``day``: a time of day's date in the file's time zone, a date alone itself)."""

    utc: datetime
    day: date


@dataclass(frozen=True)
class DatePattern:
    """How a file's dates read: a strptime pattern (or ``iso``), the time zone of times of
    day written without an offset (a date alone is that calendar day), and (found, not
    configured) how many of the file's distinct date values it read (``read`` of ``total``)
    and the mapping section to set it in."""

    # The ISO rule (not a field), for the HR loader's SQL.
    ISO_DATE = ISO_DATE

    pattern: str
    time_zone: str = "UTC"
    configured: bool = False
    read: int = 0
    total: int = 0
    section: str = "survey"

    @classmethod
    def find(cls, values: list[str], time_zone: str = "UTC", pattern: str | None = None, *, file: str = "",
             columns: tuple[str, ...] = (), section: str = "survey") -> DatePattern:
        """The configured ``pattern``, else the pattern of DATE_PATTERNS that reads every
        non-empty value of ``values`` (all date columns of the file together: a day above 12
        in one column settles the others), else the one that reads most (the rest are
        quarantined). Raises ``AmbiguousDates`` when several patterns read as many values and
        read them as different dates: a UK 05/02/2025 is not guessed to be 2 May."""
        if pattern:
            return cls(pattern, time_zone, configured=True, section=section)
        sample = list(dict.fromkeys(v.strip() for v in values if v and not is_empty_date(v)))
        best: list[tuple[str, dict[str, datetime]]] = []
        for candidate in DATE_PATTERNS:
            # A candidate that fails more values than the best so far cannot win: stop early.
            allowed = len(sample) - len(best[0][1]) if best else len(sample)
            read = _readings(candidate, sample, allowed)
            if read is None:
                continue
            if best and len(read) == len(best[0][1]):
                best.append((candidate, read))
            elif not best or len(read) > len(best[0][1]):
                best = [(candidate, read)]
        if not best or not best[0][1]:
            return cls(DATE_PATTERNS[0], time_zone, total=len(sample), section=section)
        (chosen, chosen_read), others = best[0], best[1:]
        disagreeing = [(other, read) for other, read in others
                       if any(read[v] != chosen_read[v] for v in read.keys() & chosen_read.keys())]
        if disagreeing:
            raise AmbiguousDates(cls._ambiguity(file, columns, section, [best[0], *disagreeing], len(sample)))
        return cls(chosen, time_zone, read=len(chosen_read), total=len(sample), section=section)

    @staticmethod
    def _ambiguity(file: str, columns: tuple[str, ...], section: str,
                   readings: list[tuple[str, dict[str, datetime]]], total: int) -> str:
        (_, first_read), rest = readings[0], readings[1:]
        examples = [v for v in first_read if any(v in read and read[v] != first_read[v] for _, read in rest)]
        shown = "; ".join(f"{v!r} is " + " or ".join(f"{_reading_text(read[v])} ({pattern})"
                                                   for pattern, read in readings if v in read)
                          for v in examples[:AMBIGUOUS_EXAMPLES])
        patterns = " and ".join(repr(pattern) for pattern, _ in readings)
        # Values only some readings read (a day above 12 one way): if there are any, the values
        # contradict each other (they tie on count); if none, no value settles it.
        only = [(pattern, [v for v in read if any(v not in other for _, other in readings if other is not read)])
                for pattern, read in readings]
        only = [(pattern, values) for pattern, values in only if values]
        if only:
            why = ("The values contradict each other (" + "; ".join(
                f"{', '.join(repr(v) for v in values[:AMBIGUOUS_EXAMPLES])} only {_order(pattern)} ({pattern})"
                for pattern, values in only) + "), so the file is in no one pattern and nothing is guessed "
                   "(the values the pattern set does not read are quarantined)")
        else:
            why = "No value of the file settles it (no day above 12), so nothing is guessed"
        return (f"{file}: the dates of {', '.join(repr(c) for c in columns) or 'its date column'} can be read by "
                f"{patterns} ({len(first_read)} of the {total} distinct values), which give different dates: "
                f"{shown}. {why}: set date_format under {section}: in export_mapping.yml (for every {section} "
                f"export), or in a files: entry matching {file!r} (for this file only: other exports keep theirs), "
                f"to the pattern this export is in: "
                f"{' or '.join(repr(pattern) for pattern, _ in readings)}")

    def mismatch(self) -> str:
        """Why a value the pattern does not read is refused, after 'bad date: column value'."""
        tried = ", ".join(_shown(p) for p in DATE_PATTERNS)
        where = (f"date_format under {self.section}: in export_mapping.yml (or in a files: entry matching the file, "
                 f"which sets it for that file only)")
        if self.configured:
            return f"is not in the date_format {self.pattern} set in the mapping file (correct {where})"
        if not self.read:
            return f"is in none of the date patterns tried ({tried}); set {where} to the pattern of this export"
        return (f"is not in the date pattern {_shown(self.pattern)} that reads {self.read} of the file's "
                f"{self.total} distinct date values (patterns tried: {tried}); set {where} if another pattern is "
                f"right")

    def parse(self, value: str, column: str, now: datetime) -> datetime:
        """``value`` as naive UTC; dates after ``now`` (the load time) are refused."""
        return self.reading(value, column, now).utc

    def reading(self, value: str, column: str, now: datetime) -> Reading:
        """``value`` as naive UTC and as the calendar day it was written on (``Reading``);
        dates after ``now`` (the load time) are refused."""
        text = value.strip()
        try:
            parsed = _parse_with(self.pattern, text)
        except ValueError:
            raise RowError(f"bad date: {column} {text!r} {self.mismatch()}") from None
        return self._moment(parsed, _states_time(self.pattern, text), text, column, now)

    def cell_reading(self, value: object, column: str, now: datetime) -> Reading:
        """A workbook's typed cell as naive UTC and its calendar day: a date cell is a date
        already (no text pattern, configured or found, applies to it), a number is Excel's
        serial date (EXCEL_EPOCH). A date cell (the workbook reader gives a cell at midnight as
        its date) and a whole serial number are calendar days; a time of day is in
        ``time_zone`` as text dates' are; dates after ``now`` are refused."""
        states_time = isinstance(value, datetime) or (isinstance(value, float) and not value.is_integer())
        return self._moment(workbook_datetime(value), states_time, str(value), column, now)

    def _moment(self, parsed: datetime, states_time: bool, text: str, column: str, now: datetime) -> Reading:
        # A date without a time of day is that calendar day (00:00 UTC), as HR dates and
        # submitted_at_value are: the zone of a time it does not state would move 1 April in
        # Berlin to 31 March 22:00 UTC, into the previous wave. Naive, it would be read in the
        # host's zone (Python's astimezone), shifting it on a laptop outside UTC.
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=ZoneInfo(self.time_zone) if states_time else UTC)
        # The day, for the survey wave: a time of day's date in the time zone (so 1 April 00:30
        # in Berlin is 1 April, as the date 1 April alone is, though it is 31 March in UTC); a
        # time with its own offset is taken to the time zone too; a date alone is itself.
        day = parsed.astimezone(ZoneInfo(self.time_zone)).date() if states_time else parsed.date()
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        if parsed > now.astimezone(UTC).replace(tzinfo=None):
            raise RowError(f"future date: {column} {text} is after the load time {now:%Y-%m-%d %H:%M} UTC")
        return Reading(parsed, day)
