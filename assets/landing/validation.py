"""Row checks shared by the survey and HR exports: every rejected row is kept with its reason."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field


class RowError(ValueError):
    """A row that cannot be loaded; the message is the quarantine reason, 'category: detail'."""


def raw_json(row: dict) -> str:
    return json.dumps(row, ensure_ascii=False, default=str)


@dataclass
class Checked:
    """Accepted rows and quarantined ones (source_file, source_line, reason, raw_row as JSON)."""

    accepted: list[dict] = field(default_factory=list)
    quarantined: list[dict] = field(default_factory=list)

    def reject(self, line: int, row: dict | str, reason: str, source_file: str = "") -> None:
        raw = row if isinstance(row, str) else raw_json(row)
        self.quarantined.append({"source_file": source_file, "source_line": line, "reason": reason, "raw_row": raw})

    def reasons(self) -> dict[str, int]:
        """Quarantined rows counted by reason category (the text before the first colon)."""
        return dict(Counter(q["reason"].split(":")[0] for q in self.quarantined))


def supersede_duplicates(checked: Checked, rows: list[tuple[str, int, dict, dict]], key, order, what: str) -> None:
    """Keep one row per ``key`` (the greatest by ``order``, later files and lines winning
    ties) among ``rows`` of (file, line, raw row, parsed row); quarantine the others, naming
    the row kept."""
    kept: dict = {}
    for position, (source_file, line, raw, parsed) in enumerate(rows):
        k = key(parsed)
        if k not in kept or (order(parsed), position) >= (order(kept[k][3]), kept[k][0]):
            kept[k] = (position, source_file, line, parsed)
    for position, (source_file, line, raw, parsed) in enumerate(rows):
        winner = kept[key(parsed)]
        if winner[0] == position:
            checked.accepted.append(parsed)
        else:
            where = f"line {winner[2]}" if winner[1] == source_file else f"{winner[1]} line {winner[2]}"
            checked.reject(line, raw, f"duplicate: {what} {key(parsed)} also on {where}, which is kept", source_file)
