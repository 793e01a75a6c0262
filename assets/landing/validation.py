"""Row checks shared by the survey and HR exports: every rejected row is kept with its reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from assets.landing.exports import ExportRows, raw_json

TRUE_VALUES = {"true", "t", "yes", "y", "1"}
FALSE_VALUES = {"false", "f", "no", "n", "0"}


class RowError(ValueError):
    """A row that cannot be loaded; the message is the quarantine reason, 'category: detail'."""


@dataclass
class Checked:
    """Accepted rows and quarantined ones (source_line, reason, raw_row as JSON)."""

    accepted: list[dict] = field(default_factory=list)
    quarantined: list[dict] = field(default_factory=list)

    def reject(self, line: int, row: dict | str, reason: str) -> None:
        raw = row if isinstance(row, str) else raw_json(row)
        self.quarantined.append({"source_line": line, "reason": reason, "raw_row": raw})

    def reasons(self) -> dict[str, int]:
        """Quarantined rows counted by reason category (the text before the first colon)."""
        return dict(Counter(q["reason"].split(":")[0] for q in self.quarantined))


def start(export: ExportRows) -> Checked:
    checked = Checked()
    for line, raw, reason in export.rejected:
        checked.reject(line, raw, reason)
    return checked


def parse_timestamp(value: str, column: str, now: datetime) -> datetime:
    """An ISO-8601 date or date-time as naive UTC; offsets are converted, dates in the future
    (after ``now``, the load time) are refused."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise RowError(f"bad date: {column} {text!r} is not an ISO date (YYYY-MM-DD[ HH:MM:SS])") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    if parsed > now.astimezone(UTC).replace(tzinfo=None):
        raise RowError(f"future date: {column} {text} is after the load time {now:%Y-%m-%d %H:%M} UTC")
    return parsed


def parse_flag(value: str, column: str) -> bool:
    text = value.strip().lower()
    if text in TRUE_VALUES:
        return True
    if text in FALSE_VALUES:
        return False
    raise RowError(f"bad flag: {column} {value!r} is not true/false")


def supersede_duplicates(checked: Checked, rows: list[tuple[int, dict, dict]], key, order, what: str) -> None:
    """Keep one row per ``key`` (the greatest by ``order``, later lines winning ties) among
    ``rows`` of (line, raw row, parsed row); quarantine the others, naming the line kept."""
    kept: dict = {}
    for line, raw, parsed in rows:
        k = key(parsed)
        if k not in kept or (order(parsed), line) >= (order(kept[k][2]), kept[k][0]):
            kept[k] = (line, raw, parsed)
    for line, raw, parsed in rows:
        winner = kept[key(parsed)]
        if winner[0] == line:
            checked.accepted.append(parsed)
        else:
            checked.reject(line, raw, f"duplicate: {what} {key(parsed)} also on line {winner[0]}, which is kept")
