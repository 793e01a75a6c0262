"""The survey tool's export: Edmondson's seven items matched by their text, answers checked
against the 1..K scale, reverse-scored items turned round (K + 1 - answer), bad rows kept
with their reason. Respondent-level output; it only ever goes to the ``restricted`` schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from assets.landing.exports import ExportRows
from assets.landing.validation import Checked, RowError, parse_timestamp, start, supersede_duplicates

# Edmondson (1999) team psychological safety; True marks the negatively worded items.
EDMONDSON_ITEMS: tuple[tuple[str, bool], ...] = (
    ("If you make a mistake on this team, it is often held against you", True),
    ("Members of this team are able to bring up problems and tough issues", False),
    ("People on this team sometimes reject others for being different", True),
    ("It is safe to take a risk on this team", False),
    ("It is difficult to ask other members of this team for help", True),
    ("No one on this team would deliberately act in a way that undermines my efforts", False),
    ("Working with members of this team, my unique skills and talents are valued and utilized", False),
)
ID_COLUMNS = ("response_id", "submitted_at", "team")
SCALE_POINTS = (5, 7)
# A 7-point export where nobody ever answered 6 or 7 is more likely a mis-set 5-point one.
MIN_RESPONSES_FOR_SCALE_CHECK = 20


def normalised(text: str) -> str:
    """Item text as compared: case, spacing, curly quotes and trailing punctuation ignored."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u00a0", " ")
    return re.sub(r"\s+", " ", text).strip().rstrip(".?!:;").strip().lower()


@dataclass
class SurveyLoad:
    """Long answers (one row per response and answered item), quarantined rows, and what a
    data engineer needs to know about the file."""

    checked: Checked
    encoding: str
    ignored_columns: list[str]
    partial_responses: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def responses(self) -> int:
        return len({row["response_id"] for row in self.checked.accepted})


def match_columns(header: list[str]) -> tuple[dict[str, int], dict[str, str], list[str]]:
    """Map each export column to an item number (by text) or an id column; raise naming what
    is missing. Returns (item column -> item_no, id column name -> export column, ignored)."""
    by_text = {normalised(text): number for number, (text, _) in enumerate(EDMONDSON_ITEMS, start=1)}
    items: dict[str, int] = {}
    ids: dict[str, str] = {}
    ignored: list[str] = []
    for column in header:
        key = normalised(column)
        if key in by_text:
            if by_text[key] in items.values():
                raise ValueError(f"survey export: item {by_text[key]} appears in two columns (second: {column!r})")
            items[column] = by_text[key]
        elif key in ID_COLUMNS:
            ids[key] = column
        else:
            ignored.append(column)
    missing_items = [text for number, (text, _) in enumerate(EDMONDSON_ITEMS, start=1) if number not in items.values()]
    missing_ids = [name for name in ID_COLUMNS if name not in ids]
    if missing_items or missing_ids:
        raise ValueError(
            "survey export: columns not found: "
            + "; ".join([*(repr(t) for t in missing_items), *missing_ids])
            + f". Columns that matched nothing: {ignored or 'none'}"
        )
    return items, ids, ignored


def parse_survey(export: ExportRows, scale_points: int, survey_groups: set[str], now: datetime) -> SurveyLoad:
    """Check every row of a survey export and return its answers in long form, scored."""
    if scale_points not in SCALE_POINTS:
        raise ValueError(f"survey_scale_points must be 5 or 7, not {scale_points}")
    items, ids, ignored = match_columns(export.header)
    reversed_items = {number for number, (_, reverse) in enumerate(EDMONDSON_ITEMS, start=1) if reverse}
    checked = start(export)
    candidates: list[tuple[int, dict, dict]] = []
    for line, row in zip(export.lines, export.rows):
        try:
            candidates.append((line, row, {**_response(row, items, ids, scale_points, survey_groups, now),
                                           "source_line": line}))
        except RowError as error:
            checked.reject(line, row, str(error))
    responses = Checked()
    supersede_duplicates(responses, candidates, key=lambda r: r["response_id"], order=lambda r: r["submitted_at"],
                         what="response_id")
    checked.quarantined.extend(responses.quarantined)
    load = SurveyLoad(checked, export.encoding, ignored)
    for response in responses.accepted:
        answers = response.pop("answers")
        load.partial_responses += len(answers) < len(EDMONDSON_ITEMS)
        for item_no, answer in answers.items():
            score = scale_points + 1 - answer if item_no in reversed_items else answer
            checked.accepted.append({**response, "item_no": item_no, "answer": answer, "score": score,
                                     "scale_points": scale_points})
    top = max((row["answer"] for row in checked.accepted), default=0)
    if scale_points == 7 and load.responses >= MIN_RESPONSES_FOR_SCALE_CHECK and top <= 5:
        load.warnings.append("every answer is within 1..5: if this export uses a 5-point scale, set the "
                             "landing resource's survey_scale_points to 5")
    return load


def _response(row, items, ids, scale_points, survey_groups, now) -> dict:
    response_id = row[ids["response_id"]].strip()
    if not response_id:
        raise RowError("missing id: response_id is empty")
    submitted_at = parse_timestamp(row[ids["submitted_at"]], "submitted_at", now)
    group = row[ids["team"]].strip()
    if group not in survey_groups:
        raise RowError(f"unknown team: survey group {group!r} is not in the team map's survey_groups")
    answers: dict[int, int] = {}
    for column, item_no in items.items():
        value = row[column].strip()
        if not value:
            continue
        if not re.fullmatch(r"\d+", value) or not 1 <= int(value) <= scale_points:
            raise RowError(f"out of range: item {item_no} answer {value!r} is not a whole number in 1..{scale_points}")
        answers[item_no] = int(value)
    if not answers:
        raise RowError("no answers: none of the seven items was answered")
    return {"response_id": response_id, "survey_group": group, "submitted_at": submitted_at, "answers": answers}
