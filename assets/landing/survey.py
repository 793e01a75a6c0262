"""Survey exports in long form: one row per response and answered item, scored.

Each file is read with its preset (found from the file or named in the mapping file): the
header rows give each column's role (response id, date, team) and its item, matched by
text (or a mapping alias) inside the header, whatever the tool wrapped around it ("stem -
statement", "Question [row]"). Rows a tool marks as previews, tests, spam or unfinished are
dropped and counted. Every other row either loads or is quarantined with all its errors.

Every item set of assets/landing/item_sets.py is looked for: psychological safety must be
there, the other scales (accountability, Clark's stages) are loaded when the file has them.
Each response counts in a wave, a calendar quarter: its file's ``wave`` setting (a campaign
open across a quarter end), else the quarter of the day it was submitted on in the file's time
zone; a file straddling a quarter end as one campaign does, without the setting, warns.
Across files, a response seen twice keeps its latest submission. Answers are checked
against 1..K, K the file's own scale (5 or 7: a files: entry, survey:, or the default): one
answer outside it stops the file (a 0-10 export, or a 7-point one on the 5-point setting,
is not loaded in part), and
reverse-keyed items are scored K + 1 - answer, unless the tool already reversed them
(mapping ``already_reversed``). A keying check then holds back, per scale, a
wave whose alpha or a reverse-keyed item's correlation with the rest is significantly below 0
at the wave's number of responses (naming the items): a scale scored the wrong way round would
otherwise load green and invert every result. One below 0 that chance can explain (as often
in a small wave) only warns. Other waves and scales load. Respondent-level output; it only ever goes to the
``restricted`` schema.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
from scipy import stats

from assets.landing.item_sets import DEFAULT_SCALE_POINTS, ITEM_SETS, PSYCHOLOGICAL_SAFETY, SCALE_POINTS, ItemSet
from assets.landing.mapping import Settings, wave_quarter
from assets.landing.presets import SURVEY_PRESETS, SurveyPreset, detect_survey_preset
from assets.landing.snapshot import take_snapshot
from assets.landing.tables import Records, header_text, read_records
from assets.landing.team_map import identifier_key
from assets.landing.validation import Checked, RowError, supersede_duplicates
from assets.landing.values import AGREEMENT_LABELS, AmbiguousDates, DatePattern, parse_answer
from assets.models.psychometrics import MIN_RESPONDENTS, cronbach_alpha

# Kept for the synthetic generator and tests: (text, reverse-keyed) of Edmondson's items.
EDMONDSON_ITEMS: tuple[tuple[str, bool], ...] = tuple((i.text, i.reverse_keyed) for i in PSYCHOLOGICAL_SAFETY.items)
# A 7-point export where nobody ever answered 6 or 7 is more likely a mis-set 5-point one.
MIN_RESPONSES_FOR_SCALE_CHECK = 20
# The keying check needs this many complete responses in a wave to say anything.
MIN_RESPONSES_FOR_KEYING_CHECK = 10
# One-sided significance level of the keying check: a wave is held back only when its alpha, or a
# reverse-keyed item's correlation with the rest, is below 0 by more than chance explains at this
# level. In a wave of 10 to 40 responses a correctly keyed item's correlation falls below 0 by
# chance now and then; an export whose tool already reversed the items gives clearly negative ones.
KEYING_CHECK_LEVEL = 0.05
# A campaign open across a quarter end (24 March to 7 April): a file's responses of one quarter
# that all lie this close to its boundary with the next (or previous) quarter, and are fewer than
# that quarter's, are taken for the campaign's tail, and the load warns (straddle_warnings).
CAMPAIGN_TAIL_DAYS = 14


def response_count(count: int) -> int | str:
    """A number of survey responses of one file, or of a file's wave, as the run's log and the
    asset's metadata show it: below MIN_RESPONDENTS, "fewer than 5". A tool that exports one
    file per team (a form per team) makes a file's count its team's respondent count, which the
    disclosure rule hides below MIN_RESPONDENTS, and analysts read the log and the metadata."""
    return count if count >= MIN_RESPONDENTS else f"fewer than {MIN_RESPONDENTS}"


class SurveyExportError(ValueError):
    """The file cannot be read as a survey export; the message lists everything found wrong."""


@dataclass(frozen=True)
class KeyingFailure:
    """A scale's items in one wave do not hang together the way their keying says: alpha or a
    reverse-keyed item's correlation with the rest below 0. When ``significant`` (below 0 by more
    than chance explains at KEYING_CHECK_LEVEL) that scale's answers of that wave are held back
    (the previous load of them stays); otherwise they load and the finding only warns."""

    item_set: ItemSet
    wave: str  # e.g. 2025-Q1
    responses: int  # complete responses the check read
    alpha: float
    negative: tuple[tuple[int, float], ...]  # reverse-keyed items correlating negatively: (item, r)

    @property
    def alpha_p(self) -> float:
        """One-sided p of an alpha this far below 0 from correctly keyed items, by Feldt's F
        test: 1 / (1 - alpha) against F(n - 1, (n - 1)(k - 1)); 1 for alpha >= 0."""
        n, k = self.responses, len(self.item_set.items)
        return float(stats.f.cdf(1 / (1 - self.alpha), n - 1, (n - 1) * (k - 1))) if self.alpha < 0 else 1.0

    def correlation_p(self, r: float) -> float:
        """One-sided p of an item-rest correlation this far below 0 from a correctly keyed item,
        by Fisher's z: atanh(r) * sqrt(n - 3) against the normal (r = -1 gives 0)."""
        with np.errstate(divide="ignore"):
            return float(stats.norm.cdf(np.arctanh(r) * np.sqrt(self.responses - 3)))

    @property
    def significant(self) -> bool:
        """Held back: alpha or an item's correlation below 0 by more than chance explains."""
        return (self.alpha_p < KEYING_CHECK_LEVEL
                or any(self.correlation_p(r) < KEYING_CHECK_LEVEL for _, r in self.negative))

    @property
    def quarter_start(self) -> date:
        return wave_quarter(self.wave)

    @property
    def message(self) -> str:
        items = "; ".join(f"item {n} ({self.item_set.item(n).text!r}, r = {r:.2f} with the rest, "
                          f"p = {self.correlation_p(r):.3f})" for n, r in self.negative)
        evidence = (f"{self.item_set.name} in wave {self.wave}: alpha {self.alpha:.2f}"
                    + (f" (p = {self.alpha_p:.3f})" if self.alpha < 0 else "")
                    + (f", reverse-keyed items correlating negatively with the rest: {items}" if items else ""))
        chance = (f"p is the one-sided chance of a value this far below 0 in {self.responses} complete responses "
                  "of correctly keyed items")
        if self.significant:
            return (f"keying check failed for {evidence}. {chance}; below {KEYING_CHECK_LEVEL}, as here, the survey "
                    f"tool has most likely already reverse-scored the items. That wave's {self.item_set.name} "
                    "answers are not loaded (its previous load stays). If the tool did reverse-score these items, "
                    f"list them under survey.item_sets.{self.item_set.key}.already_reversed in export_mapping.yml")
        return (f"keying check doubtful for {evidence}. {chance}; none is below {KEYING_CHECK_LEVEL}, so chance can "
                "explain it (as often in a small wave) and the answers are loaded. Only if the survey tool's "
                "settings show that it reverse-scored these items, list them under "
                f"survey.item_sets.{self.item_set.key}.already_reversed in export_mapping.yml: listing items it "
                "did not reverse would turn correctly keyed answers round")


@dataclass
class SurveyFile:
    """One export read: candidate responses (file, row, raw row, parsed), rows quarantined,
    the scales (item set keys) it measures, and what a data engineer needs to know about it."""

    name: str
    preset: str
    diagnosis: dict
    candidates: list[tuple[str, int, dict, dict]] = field(default_factory=list)
    checked: Checked = field(default_factory=Checked)
    dropped: Counter = field(default_factory=Counter)
    ignored_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data_rows: int = 0
    scales: list[str] = field(default_factory=list)
    # The file's scale (5 or 7): its answers are checked against it and scored on it.
    scale_points: int = DEFAULT_SCALE_POINTS
    # The wave its files: entry pins every response to (first day of the quarter), or None.
    wave: date | None = None

    @property
    def waves(self) -> list[str]:
        """The waves its responses count in."""
        return sorted({_wave(parsed["wave_quarter"]) for *_, parsed in self.candidates})

    @property
    def submission_quarters(self) -> list[str]:
        """The calendar quarters (UTC) its responses were submitted in: what the shrinkage check
        compares between loads, whatever wave a setting gives them."""
        return sorted({_wave(parsed["submitted_at"]) for *_, parsed in self.candidates})


def redated_responses(file: SurveyFile, loaded_ids: list[str]) -> str | None:
    """Why ``file`` must not load when every response it shares with its last load
    (``loaded_ids``: the ids its responses were loaded under) now has another id, or None. A
    tool that numbers each survey from 1 has its responses named by number and submission time
    (read_survey_file): a changed time_zone or date_format moves every time, so every response
    would look new, and the survey waves already frozen would count each a second time."""
    if not SURVEY_PRESETS[file.preset].ids_restart_per_survey or not loaded_ids:
        return None
    earlier = {loaded.rpartition("@")[0]: loaded for loaded in loaded_ids}
    now = {parsed["response_id"].rpartition("@")[0]: parsed["response_id"] for *_, parsed in file.candidates}
    shared = earlier.keys() & now.keys()
    if not shared or any(earlier[number] == now[number] for number in shared):
        return None
    return (f"{file.name}: all {response_count(len(shared))} responses it held when last loaded now have other submission times "
            f"(its survey numbers responses from 1, so they are told apart by number and time): the file's "
            f"time_zone or date_format in export_mapping.yml changed since. Loaded so, each would count again, in "
            f"the survey waves already frozen too. Restore the previous setting for this file (a files: entry "
            f"matching {file.name!r}) and give the new one to exports landed from now on.")


def _wave(day: date) -> str:
    """The name of the wave (calendar quarter) of ``day``: 2025-Q1."""
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _quarters_apart(first: date, second: date) -> int:
    """How many calendar quarters ``second`` is after ``first`` (negative: before)."""
    return (second.year - first.year) * 4 + (second.month - 1) // 3 - (first.month - 1) // 3


def item_texts(item_set: ItemSet, aliases: dict[int, tuple[str, ...]]) -> dict[str, int]:
    """Every text that names an item (its own and the mapping's aliases) -> item number."""
    texts = {header_text(item.text): item.number for item in item_set.items}
    for number, wordings in aliases.items():
        texts.update({header_text(text): number for text in wordings})
    return texts


def all_item_texts(settings: Settings) -> dict[str, tuple[str, int]]:
    """Every text that names an item of any item set -> (item set key, item number). A text
    naming two items (an alias given to two of them) stops the load: it names the entries."""
    texts: dict[str, tuple[str, int]] = {}
    for item_set in ITEM_SETS.values():
        for text, number in item_texts(item_set, settings.aliases.get(item_set.key, {})).items():
            other = texts.setdefault(text, (item_set.key, number))
            if other != (item_set.key, number):
                raise SurveyExportError(f"the text {text!r} names both {other[0]} item {other[1]} and "
                                        f"{item_set.key} item {number}: give one of them another wording in "
                                        "export_mapping.yml")
    return texts


def item_parts(text: str) -> list[str]:
    """The parts of a header that may hold an item's text: the whole header, each of its lines
    (a note under the statement: "...\n(optional)"), the statement after a matrix stem ("stem -
    statement", "stem: statement", "stem.statement") and a grid row ("Question [row]")."""
    parts = [text, *(line for line in text.splitlines() if line.strip())]
    if text.endswith("]") and "[" in text:
        parts.append(text[text.rindex("[") + 1:-1])
    for separator in (" - ", " – ", ": ", "-", "."):
        if separator in text:
            parts.extend((text.rsplit(separator, 1)[1], text.split(separator, 1)[1]))
    return [header_text(part) for part in parts]


def _column_headers(records: Records, preset: SurveyPreset) -> tuple[list[list[str]], list[str]]:
    """Per column: its header cells (for roles) and the text naming its question (for items)."""
    header_rows = [records.row(i) for i in range(min(preset.header_rows, records.frame.height))]
    cells = [[row[c] for row in header_rows] for c in range(records.width)]
    if preset.name == "qualtrics" or preset.name == "qualtrics_legacy":
        questions = [row[1] if len(row) > 1 else row[0] for row in cells]
    elif preset.stem_row_forward_filled:
        questions, stem = [], ""
        for top, below in (row[:2] for row in cells):
            stem = top or stem
            questions.append(f"{stem} - {below}" if below and below.lower() not in ("response", "open-ended response")
                             else stem)
    else:
        questions = [row[0] for row in cells]
    return cells, questions


def _find_role(cells: list[list[str]], names: tuple[str, ...], configured: str | None,
               in_place: int | None = None) -> int | None:
    """The column of a role: the one the mapping names, else the first a preset's name heads,
    else the preset's fixed column for it (``in_place``: a header in the form's language)."""
    wanted = [header_text(configured)] if configured else list(names)
    for name in wanted:
        for column, header in enumerate(cells):
            if name in (header_text(cell) for cell in header):
                return column
    return in_place if not configured and in_place is not None and in_place < len(cells) else None


def read_survey_file(records: Records, name: str, settings: Settings, survey_groups: dict[str, str],
                     now: datetime, default_scale_points: int) -> SurveyFile:
    """Check every row of one survey export; raise ``SurveyExportError`` listing everything
    that stops the file from being read (preset, columns, items), found in one pass."""
    is_xlsx = records.diagnosis.get("format") == "xlsx"
    first_rows = [records.row(i) for i in range(min(3, records.frame.height))]
    preset_name = settings.preset if settings.preset != "auto" else detect_survey_preset(first_rows, is_xlsx)
    diagnosis = dict(records.diagnosis)
    if preset_name is None:
        raise SurveyExportError(
            f"{name}: not a survey export this pipeline recognises ({_describe(diagnosis)}; "
            f"{_first_row_shape(first_rows)}). Name its preset in export_mapping.yml (survey.preset or a files entry)")
    preset = SURVEY_PRESETS[preset_name]
    scale_points = settings.scale_points or default_scale_points
    if scale_points not in SCALE_POINTS:
        raise SurveyExportError(f"survey scale points must be {' or '.join(map(str, SCALE_POINTS))}, not {scale_points}")
    diagnosis.update(preset=preset_name, header_rows=str(preset.header_rows), scale_points=scale_points)
    if settings.wave is not None:
        diagnosis["wave_setting"] = _wave(settings.wave)
    cells, questions = _column_headers(records, preset)
    problems: list[str] = []
    in_place = dict(preset.columns_in_place)
    roles = {role: _find_role(cells, getattr(preset, role), settings.columns.get(role), in_place.get(role))
             for role in ("response_id", "submitted_at", "team")}
    if roles["team"] is None and "team" in settings.columns:
        problems.append(f"survey.columns.team is {settings.columns['team']!r}, which the header does not have")
    elif roles["team"] is None:
        problems.append("no team column (name it in survey.columns.team; values are the team map's survey_groups)")
    if roles["response_id"] is None and not preset.id_from_content:
        problems.append(f"no response id column (looked for {settings.columns.get('response_id') or preset.response_id};"
                        " name it in survey.columns.response_id)")
    if roles["submitted_at"] is None and settings.submitted_at_value is None:
        problems.append(_no_date_column(preset, cells, records))
    texts = all_item_texts(settings)
    items: dict[int, tuple[str, int]] = {}
    ignored: list[str] = []
    for column, question in enumerate(questions):
        item = next((texts[part] for part in item_parts(question) if part in texts), None)
        if item is None:
            if column not in roles.values():
                ignored.append(question or f"column {column + 1}")
        elif item in items.values():
            problems.append(f"{ITEM_SETS[item[0]].name} item {item[1]} appears in two columns (second: {question!r})")
        else:
            items[column] = item
    scales = []
    for item_set in ITEM_SETS.values():
        found = {number for key, number in items.values() if key == item_set.key}
        missing = [item for item in item_set.items if item.number not in found]
        if found or item_set.required:
            scales.append(item_set.key)
        if missing and (found or item_set.required):
            problems.append(f"{item_set.name} item columns not found: " + "; ".join(repr(i.text) for i in missing)
                            + " (add other wordings as aliases in export_mapping.yml"
                            + (")" if item_set.required else f"; {len(found)} of its {len(item_set.items)} items "
                               "were found)"))
    if problems:
        raise SurveyExportError(f"{name} ({_describe(diagnosis)}): " + "; ".join(problems)
                                + f". Columns that matched nothing: {ignored or 'none'}")
    status = (_find_role(cells, ("status", "response status"), None)
              if preset.excluded_status or preset.unfinished_status else None)
    finished = _find_role(cells, preset.finished, None) if preset.finished else None
    file = SurveyFile(name, preset_name, diagnosis, ignored_columns=ignored, notes=list(records.notes), scales=scales,
                      scale_points=scale_points, wave=settings.wave)
    for row, raw, reason in records.rejected:
        file.checked.reject(row, raw, reason, name)
    data = records.frame.slice(preset.header_rows)
    file.data_rows = data.height + len(records.rejected)
    dates, date_cells = None, {}
    if roles["submitted_at"] is not None:
        column = f"c{roles['submitted_at']}"
        time_zone = settings.time_zone or _export_time_zone(cells[roles["submitted_at"]]) or "UTC"
        # A workbook's date cells (and serial numbers) are dates already: the text pattern,
        # found or configured (date_format, meant for text dates), is for the other values.
        data_rows = set(data["row"])
        date_cells = {row: cell for row, cell in records.typed_cells.get(roles["submitted_at"], {}).items()
                      if row in data_rows}
        texts = [text for row, text in zip(data["row"], data[column].fill_null("")) if row not in date_cells]
        try:
            dates = DatePattern.find(texts, time_zone, settings.date_format,
                                     file=name, columns=(cells[roles["submitted_at"]][0].strip(),))
        except AmbiguousDates as error:
            raise SurveyExportError(str(error)) from None
        diagnosis.update(date_pattern=dates.pattern, time_zone=time_zone)
        if date_cells:
            kinds = Counter("Excel serial numbers" if isinstance(cell, (int, float)) else "date cells"
                            for cell in date_cells.values())
            # One date cell per response: counted as responses are.
            diagnosis["date_cells"] = ", ".join(f"{response_count(n)} {kind}" for kind, n in sorted(kinds.items()))
    labels = {**AGREEMENT_LABELS[scale_points], **dict.fromkeys(preset.unanswered), **settings.answer_labels}
    already = {(key, number) for key, numbers in settings.already_reversed.items() for number in numbers}
    used = {column: header_text(cells[column][0]) or questions[column] for column in
            [c for c in roles.values() if c is not None] + list(items)}
    seen_content: Counter = Counter()
    answered: Counter = Counter()  # every answer of the file (answer -> how often), on the scale or not
    for values in data.iter_rows():
        row, values = values[0], [v or "" for v in values[1:]]
        if not any(v.strip() for v in values):
            continue
        if status is not None and values[status].strip().lower() in preset.excluded_status:
            file.dropped["preview, test or spam"] += 1
            continue
        if (finished is not None and values[finished].strip().lower() in ("0", "false")
                or status is not None and values[status].strip().lower() in preset.unfinished_status):
            file.dropped["unfinished"] += 1
            continue
        raw = {label: values[column] for column, label in used.items()}
        errors: list[str] = []
        parsed = _response(values, date_cells.get(row), roles, items, dates, settings, survey_groups, now,
                           scale_points, labels, already, errors, answered)
        if errors:
            file.checked.reject(row, raw, "; ".join(errors), name)
            continue
        if parsed["response_id"] is None:
            content = "|".join(values[c] for c in sorted(used))
            seen_content[content] += 1
            digest = hashlib.sha256(f"{content}#{seen_content[content]}".encode()).hexdigest()[:16]
            parsed["response_id"] = f"{preset_name}:{digest}"
        elif preset.ids_restart_per_survey:
            # The tool numbers responses 1, 2, ... per survey (a form, a LimeSurvey survey): a
            # wave's survey starts again at 1. With its submission time the number names one
            # response of one survey, and a later download of the same survey repeats it.
            parsed["response_id"] = f"{parsed['response_id']}@{parsed['submitted_at']:%Y-%m-%dT%H:%M:%S}"
        parsed.update(source_file=name, source_line=row, scale_points=scale_points)
        file.candidates.append((name, row, raw, parsed))
    if any(not 1 <= answer <= scale_points for answer in answered):
        raise SurveyExportError(_off_scale_message(name, answered, scale_points))
    if settings.wave is not None and (far := _far_from_wave(file)):
        raise SurveyExportError(far)
    return file


def _far_from_wave(file: SurveyFile) -> str | None:
    """Why a file's wave setting cannot be meant for it, or None: some of its responses were
    submitted more than a quarter away from that wave, or in the quarters on both sides of it.
    One campaign crosses one quarter end at most; a file spanning more is a cumulative export (or
    the entry matches the wrong file), and its waves would be merged into one."""
    # Each response's quarters from the wave (negative: before) and its own quarter.
    placed = [(_quarters_apart(file.wave, parsed["submitted_on"]), _wave(parsed["submitted_on"]))
              for *_, parsed in file.candidates]
    apart = Counter(step for step, _ in placed)
    # Both neighbours: the side with fewer responses is the one no campaign of this wave explains.
    both_sides = {min((-1, 1), key=lambda side: (apart[side], side))} if apart[-1] and apart[1] else set()
    far = Counter(wave for step, wave in placed if abs(step) > 1 or step in both_sides)
    if not far:
        return None
    return (f"{file.name}: its files: entry in export_mapping.yml sets wave: {_wave(file.wave)}, so every response "
            f"of it would count in that wave, but {response_count(sum(far.values()))} of its "
            f"{response_count(len(file.candidates))} responses were "
            + ("submitted more than a quarter away, or in the quarter on one side of it while others are in the "
               "quarter on the other side (" if both_sides else "submitted more than a quarter away (")
            + ", ".join(f"{response_count(n)} in {wave}" for wave, n in sorted(far.items()))
            + "): one campaign's export crosses one quarter end at most. If the file holds several campaigns (a "
            "cumulative export), remove wave from the entry that matches it; else correct the wave or the entry's "
            "match")


def _off_scale_message(name: str, answered: Counter, scale_points: int) -> str:
    """Why a file with answers outside its 1..K scale is not loaded, and what to set. Its rows
    are not quarantined one by one: the rest would load as if on the K-point scale (a 0-10
    export's 3..7 read as a 7-point scale's, its 8..10 quarantined)."""
    outside = sorted(answer for answer in answered if not 1 <= answer <= scale_points)
    low, high = min(answered), max(answered)
    message = (f"{name}: answers outside the {scale_points}-point scale it is read on (1..{scale_points}): "
               + ", ".join(f"{answer} ({answered[answer]} {'answer' if answered[answer] == 1 else 'answers'})"
                           for answer in outside)
               + f"; its answers run from {low} to {high}, so it is not a {scale_points}-point export and none of "
               "it is loaded. ")
    if low >= 1 and high <= max(SCALE_POINTS):
        fits = min(k for k in SCALE_POINTS if k >= high)
        message += (f"If it is a {fits}-point export, set scale_points: {fits} in a files: entry matching {name!r} "
                    f"in export_mapping.yml (or survey.scale_points, or PSAFE_SURVEY_SCALE_POINTS, if every export "
                    f"is {fits}-point). ")
    else:
        message += ("Only 5- and 7-point scales, answered 1..5 or 1..7, are read: a 0-10 scale (Typeform's Opinion "
                    "Scale, Peakon) is neither, and its answers are not rescaled; load surveys asked on a 5- or "
                    "7-point scale, and leave this export out (a files: entry matching it with kind: ignore). ")
    return message + (f"If a number is the tool's code for no answer (a \"Don't know\" choice numbered after the "
                      f"scale), map it to null under survey.answer_labels in export_mapping.yml ({{\"{high}\": null}}); "
                      "if the tool numbers a 5- or 7-point scale from 0, map each code there ({\"0\": 1, \"1\": 2, "
                      "...}); a mistyped answer is corrected in the export")


def _no_date_column(preset: SurveyPreset, cells: list[list[str]], records: Records) -> str:
    """Why a file has no date column, and what to set. A preset for exports without dates
    (Culture Amp's, which any workbook no other preset knows falls back to) says so only when
    no column holds dates: with date cells it is another tool's workbook."""
    if not preset.needs_date_from_mapping:
        return f"no date column (looked for {preset.submitted_at}; name it in survey.columns.submitted_at)"
    dated = [cells[column][0] for column, typed in sorted(records.typed_cells.items())
             if any(isinstance(value, date) for value in typed.values())]
    if not dated:
        return ("no date column: this export has no response dates, give the survey date as submitted_at_value in "
                "export_mapping.yml")
    return (f"no date column the {preset.name} preset reads (its exports have no dates), but "
            f"{', '.join(repr(header) for header in dated)} hold dates: this is another tool's workbook. Name its "
            "preset in export_mapping.yml (survey: or a files: entry matching the file): preset: microsoft_forms for "
            "a Microsoft Forms workbook (ID, start and completion time first, in the form's language), else preset: "
            "generic with survey.columns naming its response_id and submitted_at columns")


def _export_time_zone(header_cells: list[str]) -> str | None:
    """The time zone a Qualtrics export states for a date column in its ImportId row, e.g.
    {"ImportId":"recordedDate","timeZone":"America/Denver"}."""
    for cell in header_cells:
        if cell.startswith("{"):
            try:
                zone = json.loads(cell).get("timeZone")
            except (ValueError, AttributeError):
                continue
            if isinstance(zone, str) and zone:
                try:
                    ZoneInfo(zone)
                    return zone
                except (ZoneInfoNotFoundError, ValueError):
                    return None
    return None


def _response(values, date_cell, roles, items, dates, settings, survey_groups, now, scale_points, labels, already,
              errors, answered) -> dict:
    """One response's fields; every problem goes to ``errors`` (all of them, not the first),
    every answer to ``answered`` (on the scale or not: the file is checked against its scale
    as a whole). ``date_cell``: the workbook's typed cell of the submission date, if it is one."""
    def attempt(function, *args):
        try:
            return function(*args)
        except RowError as error:
            errors.append(str(error))
            return None

    response_id = None
    if roles["response_id"] is not None:
        response_id = values[roles["response_id"]].strip()
        if not response_id:
            errors.append("missing id: response id is empty")
    if roles["submitted_at"] is not None:
        reading = (attempt(dates.cell_reading, date_cell, "submitted_at", now) if date_cell is not None else
                   attempt(dates.reading, values[roles["submitted_at"]], "submitted_at", now))
        submitted_at, submitted_on = reading or (None, None)
    else:
        submitted_at = datetime.combine(settings.submitted_at_value, datetime.min.time())
        submitted_on = settings.submitted_at_value
    group = values[roles["team"]].strip()
    canonical = survey_groups.get(identifier_key(group))
    if canonical is None:
        errors.append(f"unknown team: survey group {group!r} is not in the team map's survey_groups")
    answers: dict[tuple[str, int], int] = {}
    for column, item in items.items():
        answer = attempt(parse_answer, values[column], item[1], scale_points, labels)
        if answer is not None:
            answered[answer] += 1
            answers[item] = scale_points + 1 - answer if item in already else answer
    if not answers and not errors:
        errors.append("no answers: none of the survey's items was answered")
    # The wave: the file's (its files: entry's wave), else the quarter of the day the response
    # was submitted on where it was written (a time's date in the file's time zone, a date alone
    # itself), so that 1 April 00:30 in Berlin and the date 1 April fall in the same wave.
    wave = settings.wave or (submitted_on and _quarter_start(submitted_on))
    return {"response_id": response_id, "survey_group": canonical, "submitted_at": submitted_at,
            "submitted_on": submitted_on, "wave_quarter": wave, "answers": answers}


# A cell a response holds rather than a header: a number, a date or a time.
_VALUE_CELL = re.compile(r"[\d\s:./+-]+")


def _first_row_shape(first_rows: list) -> str:
    """What the first row of an unrecognised export looks like, without its values: when the
    header line is missing, it is a respondent's answers, which must not reach the run's log."""
    if not first_rows:
        return "no rows"
    filled = [str(cell).strip() for cell in first_rows[0] if str(cell).strip()]
    values = sum(bool(_VALUE_CELL.fullmatch(cell)) for cell in filled)
    looks_like_data = filled and 2 * values >= len(filled)
    return (f"its first row has {len(filled)} filled cells, {values} of them numbers or dates"
            + (": a response rather than a header row, as in an export without its header line" if looks_like_data
               else ""))


def _describe(diagnosis: dict) -> str:
    return ", ".join(f"{key} {value}" for key, value in diagnosis.items())


@dataclass
class SurveyLoad:
    """Long answers of every file, quarantined rows, the scales measured, the waves and scales
    the keying check held back, and what each file held."""

    checked: Checked
    files: list[SurveyFile]
    identical_copies: int = 0
    partial_responses: int = 0
    warnings: list[str] = field(default_factory=list)
    keying_failures: list[KeyingFailure] = field(default_factory=list)  # significant: held back
    keying_doubts: list[KeyingFailure] = field(default_factory=list)  # chance can explain: loaded

    @property
    def responses(self) -> int:
        return len({row["response_id"] for row in self.checked.accepted})

    @property
    def scales(self) -> list[str]:
        """The item sets any file measures, in the order of ITEM_SETS."""
        measured = {key for file in self.files for key in file.scales}
        return [key for key in ITEM_SETS if key in measured]


def combine_survey_files(files: list[SurveyFile]) -> SurveyLoad:
    """One response per id across files (the latest submission), each scored on its file's
    scale; a scale's wave that fails the keying check is held back (``keying_failures``), the
    rest is loaded."""
    checked = Checked()
    for file in files:
        checked.quarantined.extend(file.checked.quarantined)
    responses = Checked()
    # The same response in two files (a cumulative export beside a wave's, overlapping API
    # exports) is one response: identical copies in another file merge (counted); a row
    # repeated within one file, or a changed resubmission, is superseded below (quarantined).
    # Files whose wave is set come first: a response in a cumulative export and in a campaign's
    # export keeps the campaign's copy, which says its wave.
    candidates, first_file = [], {}
    for candidate in (c for file in sorted(files, key=lambda f: f.wave is None) for c in file.candidates):
        parsed = candidate[3]
        identity = (parsed["response_id"], parsed["submitted_at"], parsed["survey_group"],
                    tuple(sorted(parsed["answers"].items())))
        if first_file.setdefault(identity, candidate[0]) == candidate[0]:
            candidates.append(candidate)
    supersede_duplicates(responses, candidates, key=lambda r: r["response_id"], order=lambda r: r["submitted_at"],
                         what="response_id")
    checked.quarantined.extend(responses.quarantined)
    load = SurveyLoad(checked, files, identical_copies=sum(len(f.candidates) for f in files) - len(candidates))
    rows = []
    for response in responses.accepted:
        answers = response["answers"]
        safety_answered = sum(key == PSYCHOLOGICAL_SAFETY.key for key, _ in answers)
        load.partial_responses += safety_answered < len(PSYCHOLOGICAL_SAFETY.items)
        for (key, item_no), answer in sorted(answers.items()):
            reverse = ITEM_SETS[key].item(item_no).reverse_keyed
            rows.append({
                "response_id": response["response_id"], "survey_group": response["survey_group"],
                "submitted_at": response["submitted_at"], "source_line": response["source_line"],
                "item_set": key, "item_no": item_no, "answer": answer,
                "score": response["scale_points"] + 1 - answer if reverse else answer,
                "scale_points": response["scale_points"], "source_file": response["source_file"],
                "wave_quarter": response["wave_quarter"],
            })
    findings = keying_failures(rows)
    load.keying_failures = [f for f in findings if f.significant]
    load.keying_doubts = [f for f in findings if not f.significant]
    held_back = {(f.item_set.key, f.wave) for f in load.keying_failures}
    checked.accepted.extend(r for r in rows if (r["item_set"], _wave(r["wave_quarter"])) not in held_back)
    load.warnings.extend(scale_warnings(files))
    load.warnings.extend(straddle_warnings(files))
    load.warnings.extend(f.message for f in findings)
    return load


def scale_warnings(files: list[SurveyFile]) -> list[str]:
    """Per file, a 5-point export read on the 7-point scale: its numbers never pass 5, and its
    labels, read as the 7-point scale's (Strongly disagree 1, Disagree 2, Neutral 4, Agree 6,
    Strongly agree 7), give five answers with gaps. Per file, because the files beside it (a
    7-point wave) would hide it. And files on different scales: each is scored on its own, but
    the survey figures compare answers on one scale, so they stop until the scales agree."""
    warnings = []
    for file in files:
        answered = sorted({answer for *_, parsed in file.candidates for answer in parsed["answers"].values()})
        responses = len({parsed["response_id"] for *_, parsed in file.candidates})
        if (file.scale_points == 7 and responses >= MIN_RESPONSES_FOR_SCALE_CHECK
                and (answered[-1] <= 5 or len(answered) <= 5)):
            warnings.append(f"{file.name}: only the answers {', '.join(map(str, answered))} occur on the 7-point "
                            "scale: if this export uses a 5-point scale (numbers 1..5, or its labels), set "
                            f"scale_points: 5 in a files: entry matching {file.name!r} in export_mapping.yml (or "
                            "PSAFE_SURVEY_SCALE_POINTS, or survey.scale_points, to 5 if every export is 5-point)")
    scales = {file.name: file.scale_points for file in files if file.candidates}
    if len(set(scales.values())) > 1:
        warnings.append("survey exports on different scales, each scored on its own: "
                        + ", ".join(f"{name} {k}-point" for name, k in scales.items())
                        + "; the survey figures (survey_waves) compare answers on one scale and stop until every "
                          "loaded export is on the same scale")
    return warnings


def straddle_warnings(files: list[SurveyFile]) -> list[str]:
    """Per file without a wave setting, each quarter end its responses straddle the way one
    campaign open across it does: the responses of one side all within CAMPAIGN_TAIL_DAYS of
    the quarter end and fewer than the other side's (a campaign open 24 March to 7 April, its
    April stragglers). Each quarter is its own wave, so the tail would be the team's wave of its
    quarter alone, a self-selected few. A survey open all the time (a pulse survey) has no such
    tail and is not named."""
    warnings = []
    for file in (f for f in files if f.wave is None):
        days: dict[date, list[date]] = {}
        for parsed in {parsed["response_id"]: parsed for *_, parsed in file.candidates}.values():
            days.setdefault(parsed["wave_quarter"], []).append(parsed["submitted_on"])
        for before, after in zip(sorted(days), sorted(days)[1:]):
            if _quarters_apart(before, after) != 1:
                continue
            end, window = after, timedelta(days=CAMPAIGN_TAIL_DAYS)
            if len(days[after]) < len(days[before]) and max(days[after]) < end + window:
                wave, tail = before, after
            elif len(days[before]) < len(days[after]) and min(days[before]) >= end - window:
                wave, tail = after, before
            else:
                continue
            shown = {quarter: response_count(len(days[quarter])) for quarter in (before, after)}
            warnings.append(
                f"{file.name}: its responses straddle the end of {_wave(before)} as one campaign open across it "
                f"would: {shown[before]} in {_wave(before)} and {shown[after]} in {_wave(after)}, the "
                f"{shown[tail]} of {_wave(tail)} all within {CAMPAIGN_TAIL_DAYS} days of {end:%d %B %Y}. Each "
                f"quarter is its own wave, so those {shown[tail]} would stand for their teams in {_wave(tail)} "
                f"alone. If the file is one campaign, set wave: {_wave(wave)} in a files: entry matching "
                f"{file.name!r} in export_mapping.yml: all its responses then count in {_wave(wave)}")
    return warnings


def keying_failures(answers: list[dict]) -> list[KeyingFailure]:
    """Per scale and wave: Cronbach's alpha of the scored items and each reverse-keyed item's
    correlation with the sum of the others (complete responses, at least
    MIN_RESPONSES_FOR_KEYING_CHECK). A finding is alpha < 0 or a reverse-keyed item correlating
    negatively; it is ``significant`` (held back) when one of them is below 0 by more than chance
    explains at KEYING_CHECK_LEVEL (KeyingFailure.alpha_p, correlation_p)."""
    if not answers:
        return []
    frame = pd.DataFrame(answers)
    frame["wave"] = frame["wave_quarter"].map(_wave)
    failures = []
    for (key, wave), rows in frame.groupby(["item_set", "wave"]):
        item_set = ITEM_SETS[key]
        wide = rows.pivot_table(index="response_id", columns="item_no", values="score").dropna()
        n = len(wide)
        if n < MIN_RESPONSES_FOR_KEYING_CHECK or wide.shape[1] < len(item_set.items):
            continue
        alpha = cronbach_alpha(wide.to_numpy())
        negative = []
        for number in item_set.reverse_keyed:
            rest = wide.drop(columns=number).sum(axis=1)
            r = np.corrcoef(wide[number], rest)[0, 1] if wide[number].std() > 0 and rest.std() > 0 else np.nan
            if r < 0:
                negative.append((number, float(r)))
        if alpha < 0 or negative:
            failures.append(KeyingFailure(item_set, wave, n, alpha, tuple(negative)))
    return failures


def read_survey_exports(paths: list[Path], survey_groups: set[str] | dict[str, str], now: datetime,
                        scale_points: int = 7, settings: Settings | None = None, encoding: str = "auto") -> SurveyLoad:
    """Read and combine survey export files outside Dagster (tests, benchmarks, notebooks),
    exactly as the landing asset does."""
    groups = survey_groups if isinstance(survey_groups, dict) else {identifier_key(g): g for g in survey_groups}
    files = []
    with tempfile.TemporaryDirectory(prefix="psafe-survey-") as workdir:
        for path in paths:
            records = read_records(take_snapshot(path, Path(workdir), encoding), (settings or Settings()).sheet)
            files.append(read_survey_file(records, path.name, settings or Settings(), groups, now, scale_points))
    return combine_survey_files(files)
