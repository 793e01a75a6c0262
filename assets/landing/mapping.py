"""The mapping file: what no preset can know about your exports, in ``export_mapping.yml``
beside them in the landing folder. Every key is optional; a file without one loads with
the presets' defaults. A wrong key or value stops the load with a message naming the entry.

    survey:
      preset: auto                  # auto | qualtrics | qualtrics_legacy | google_forms | microsoft_forms
                                    # | surveymonkey | limesurvey | culture_amp | generic
      columns:                      # header text of the export's columns (any header row)
        response_id: ResponseId
        submitted_at: RecordedDate
        team: Team                  # values are the team map's survey_groups (case ignored)
      date_format: "%d/%m/%Y %H:%M" # strptime pattern; default: found from the values
      time_zone: Europe/Berlin      # of times written without an offset; default UTC; a date alone is that day
      scale_points: 7               # 5 or 7; default PSAFE_SURVEY_SCALE_POINTS (7)
      submitted_at_value: 2024-03-15  # for exports without dates (Culture Amp)
      answer_labels: {"Stimme voll zu": 7, "Stimme zu": 6}  # also a tool's recodes ("0": 1) and
                                    # codes for no answer ("-98": null); Qualtrics' -99 is one already
      item_sets:                    # assets/landing/item_sets.py: psychological_safety (required),
                                    # accountability, clark_inclusion, clark_learner, clark_contributor,
                                    # clark_challenger (optional: loaded when the export has them)
        psychological_safety:
          aliases:                  # other wordings of an item, by item number
            1: ["Wenn man in diesem Team einen Fehler macht, wird es einem oft vorgehalten"]
          already_reversed: [1, 3, 5]   # items the survey tool already reverse-scored
        clark_challenger:           # Clark's items ship as example wordings: map your instrument's
          aliases: {1: ["I feel safe to challenge the status quo on this team"]}
    hr:
      preset: auto                  # auto | bamboohr | workday | roster | snapshots
      columns: {employee_id: "Employee #", org_unit: Department, role: "Job Title",
                hire_date: "Hire Date", rehire_date: "Rehire Date", termination_date: "Termination Date",
                termination_reason: "Termination Type", critical_role: Critical,
                employment_type: "Employment Status"}
      date_format: "%m/%d/%Y"
      voluntary_reasons: [Resignation, "Voluntary"]      # termination type/reason texts
      involuntary_reasons: [Involuntary, Layoff]
      not_leaver_reasons: [Converted to EOR employee, Transfer to another entity]  # no attrition:
                                    # the employment under that id ends, no leaver is counted
      critical_roles: [Staff SRE, Principal Engineer]    # job titles that are critical roles
      counted_employment_types: [Full-Time, Part-Time]   # employees: in headcount and leavers
      excluded_employment_types: [Contractor, Intern]    # left out (counted in the file's notes); with
                                    # either list, a row of a type in neither is quarantined
      snapshots_from: 2024-01-01    # first month of the derived headcount snapshots
    true_words: [yes, ja, oui]      # added to the built-in true/false words
    false_words: [no, nein, non]
    encoding: auto                  # default PSAFE_EXPORT_ENCODING; mac_roman for an Excel for Mac
                                    # CSV (its bytes are valid Windows-1252 too: never detected)
    files:                          # settings for some files only (shell patterns on the name, case-
                                    # sensitive; an entry matching no export in the folder is warned about)
      - match: "culture_amp_*.xlsx"
        kind: survey                # survey | hr | ignore
        preset: culture_amp
        submitted_at_value: 2024-03-15
        sheet: Responses
      - match: "safety_survey_2025-03*.csv"
        wave: 2025-Q1               # a campaign's export: every response of the file counts in this
                                    # wave (a calendar quarter), its stragglers after the quarter end too
      - match: "personio_*.csv"
        kind: hr
        employee_id_scope: DE       # ids of this file are "DE:<id>": another HR system numbering
                                    # its employees from 1 as well is not merged with this one
      - match: "roster_mac.csv"
        encoding: mac_roman         # this file's encoding (as the top-level encoding, for one file)
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from assets.landing.item_sets import ITEM_SETS, SCALE_POINTS
from assets.landing.snapshot import ENCODINGS
from assets.landing.tables import header_text
from assets.landing.team_map import NULL_WORDS
from assets.yaml_files import read_yaml

MAPPING_FILE = "export_mapping.yml"
SURVEY_PRESETS = ("auto", "qualtrics", "qualtrics_legacy", "google_forms", "microsoft_forms", "surveymonkey",
                  "limesurvey", "culture_amp", "generic")
HR_PRESETS = ("auto", "bamboohr", "workday", "roster", "snapshots")
SURVEY_COLUMNS = ("response_id", "submitted_at", "team")
HR_COLUMNS = ("employee_id", "org_unit", "role", "hire_date", "rehire_date", "termination_date",
              "termination_reason", "critical_role", "snapshot_date", "voluntary", "employment_type")
KINDS = ("survey", "hr", "ignore")
REASON_LISTS = ("voluntary_reasons", "involuntary_reasons", "not_leaver_reasons")
EMPLOYMENT_TYPE_LISTS = ("counted_employment_types", "excluded_employment_types")
# A survey wave by name: its calendar quarter, 2025-Q1.
WAVE_NAME = re.compile(r"(\d{4})-Q([1-4])")


def wave_quarter(name: str) -> date | None:
    """The first day of the quarter a wave's name (2025-Q1) names, or None if it names none."""
    found = WAVE_NAME.fullmatch(name.strip().upper())
    return date(int(found.group(1)), 3 * int(found.group(2)) - 2, 1) if found else None


class MappingError(ValueError):
    """The mapping file is malformed; the message names the entry."""


@dataclass(frozen=True)
class Settings:
    """The settings one file is read with: the mapping file's sections merged with the
    entry of ``files`` that matches it, over the resource's defaults."""

    kind: str | None = None
    preset: str = "auto"
    columns: dict[str, str] = field(default_factory=dict)
    date_format: str | None = None
    # None: UTC, unless the export states its own (Qualtrics' ImportId header row does).
    time_zone: str | None = None
    scale_points: int | None = None
    submitted_at_value: date | None = None
    # The wave (first day of its calendar quarter) every response of a survey file counts in (a
    # files: entry's wave: 2025-Q1); None: each response's own quarter, by the day it was
    # submitted in the file's time zone.
    wave: date | None = None
    answer_labels: dict[str, int | None] = field(default_factory=dict)
    aliases: dict[str, dict[int, tuple[str, ...]]] = field(default_factory=dict)
    already_reversed: dict[str, tuple[int, ...]] = field(default_factory=dict)
    voluntary_reasons: tuple[str, ...] = ()
    involuntary_reasons: tuple[str, ...] = ()
    not_leaver_reasons: tuple[str, ...] = ()
    critical_roles: tuple[str, ...] = ()
    # Employment types (lower case) whose rows count as employees, and those left out
    # (contractors, interns); with either given, a row of a type in neither is quarantined.
    counted_employment_types: tuple[str, ...] = ()
    excluded_employment_types: tuple[str, ...] = ()
    snapshots_from: date | None = None
    true_words: tuple[str, ...] = ()
    false_words: tuple[str, ...] = ()
    encoding: str | None = None
    sheet: str | None = None
    # An HR file's employee id namespace (a files: entry's employee_id_scope): its ids are
    # hashed as "<scope>:<id>", apart from the same numbers in another HR system's export.
    employee_id_scope: str | None = None


@dataclass(frozen=True)
class Mapping:
    survey: dict
    hr: dict
    common: dict
    files: tuple[dict, ...]
    source: str

    def settings(self, file_name: str, kind: str | None = None) -> Settings:
        """Settings for ``file_name`` read as ``kind`` (survey, hr; None: not yet known)."""
        entry = next((f for f in self.files if fnmatch.fnmatch(file_name, f["match"])), {})
        kind = entry.get("kind", kind)
        section = self.survey if kind == "survey" else self.hr if kind == "hr" else {}
        merged = {**self.common, **section, **{k: v for k, v in entry.items() if k != "match"}}
        if kind is not None:
            merged["kind"] = kind
        item_sets = merged.pop("item_sets", {})
        settings = Settings(**{k: v for k, v in merged.items() if k in Settings.__dataclass_fields__})
        return replace(
            settings,
            aliases={key: {int(n): tuple(texts) for n, texts in (spec.get("aliases") or {}).items()}
                     for key, spec in item_sets.items()},
            already_reversed={key: tuple(spec.get("already_reversed") or ()) for key, spec in item_sets.items()},
        )

    def unmatched_entries(self, file_names: list[str]) -> list[str]:
        """A warning for each files: entry whose match names none of ``file_names`` (the landing
        folder's exports): its kind, wave, encoding or employee_id_scope applies to nothing, and
        the file it was meant for is read without it. Matching is case-sensitive (as
        ``settings`` matches), so a file the pattern matches ignoring case is named."""
        warnings = []
        for position, entry in enumerate(self.files, start=1):
            pattern = entry["match"]
            if any(fnmatch.fnmatch(name, pattern) for name in file_names):
                continue
            other_case = [name for name in file_names if fnmatch.fnmatchcase(name.lower(), pattern.lower())]
            warnings.append(
                f"{self.source}: files entry {position} (match: {pattern!r}) matches no file in the landing folder, "
                "so its settings apply to nothing"
                + (f"; {', '.join(other_case)} would match it but for upper and lower case (matching is "
                   "case-sensitive): write the pattern as the file is named" if other_case else ""))
        return warnings


def read_mapping(folder: Path) -> Mapping:
    """The landing folder's mapping file, validated (an empty mapping when there is none)."""
    path = folder / MAPPING_FILE
    if not path.is_file():
        return Mapping({}, {}, {}, (), "none")
    # As text, like the team map: a header written 0100 or a true word written on stays as the
    # user wrote it; the settings that are numbers or dates are converted where they are checked.
    document = read_yaml(path, MappingError) or {}
    if not isinstance(document, dict):
        raise MappingError(f"{path}: expected a mapping with survey/hr/files keys at the top")
    top = {"survey", "hr", "files", "true_words", "false_words", "encoding"}
    _known(document, top, f"{path}")
    survey = _section(document.get("survey") or {}, "survey", f"{path}: survey")
    if "wave" in survey:
        raise MappingError(f"{path}: survey: wave names the wave of one campaign's export: set it in a files: "
                           "entry matching that export (match: \"safety_survey_2025-03*.csv\", wave: 2025-Q1), so "
                           "that the next campaign's exports keep their own")
    hr = _section(document.get("hr") or {}, "hr", f"{path}: hr")
    common = _common(document, f"{path}")
    files = []
    for position, entry in enumerate(document.get("files") or [], start=1):
        where = f"{path}: files entry {position}"
        if not isinstance(entry, dict) or not isinstance(entry.get("match"), str):
            raise MappingError(f"{where}: every entry needs 'match', a file name or pattern like 'wave_*.csv'")
        kind = entry.get("kind")
        if kind is not None and kind not in KINDS:
            raise MappingError(f"{where} ({entry['match']}): kind {kind!r} is not one of {', '.join(KINDS)}")
        body = {k: v for k, v in entry.items()
                if k not in ("match", "kind", "sheet", "employee_id_scope", "encoding")}
        checked = _section(body, kind or "survey", where) if kind != "hr" else _section(body, "hr", where)
        if entry.get("sheet") is not None and not isinstance(entry["sheet"], str):
            raise MappingError(f"{where}: sheet must be a sheet name")
        scope = _employee_id_scope(entry, kind, where)
        if kind == "hr":
            # An entry's list replaces the hr section's list of that name only: the file is read
            # with both, where a reason or a type must be in one list too.
            _in_one_list({**hr, **checked}, f"{where} ({entry['match']}) with the hr section")
        files.append({"match": entry["match"], **({"kind": kind} if kind else {}),
                      **({"sheet": entry["sheet"]} if entry.get("sheet") else {}),
                      **({"employee_id_scope": scope} if scope else {}), **checked,
                      # One file's encoding (an Excel for Mac CSV among UTF-8 exports): a top-level
                      # mac_roman would misread every UTF-8 file's accents without a word.
                      **_common({"encoding": entry["encoding"]} if "encoding" in entry else {}, where)})
    return Mapping(survey, hr, common, tuple(files), str(path))


def _employee_id_scope(entry: dict, kind: str | None, where: str) -> str | None:
    """A files entry's employee_id_scope: a short name (DE, US) for the HR system whose ids the
    file holds, so that employee 1 of one system is not employee 1 of another."""
    if "employee_id_scope" not in entry:
        return None
    scope = entry["employee_id_scope"]
    if kind not in (None, "hr"):
        raise MappingError(f"{where}: employee_id_scope is for HR files (kind: hr), not kind {kind}")
    if not isinstance(scope, str) or not scope.strip() or ":" in scope:
        raise MappingError(f"{where}: employee_id_scope must be a short name without ':' for the HR system "
                           f"whose ids the file holds, like DE or US, not {scope!r}")
    return scope.strip()


def _known(entry: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise MappingError(f"{where}: unknown keys {unknown}; valid keys: {', '.join(sorted(allowed))}")


def _common(document: dict, where: str) -> dict:
    common = {}
    for key in ("true_words", "false_words"):
        if key in document:
            words = document[key]
            if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
                raise MappingError(f"{where}: {key} must be a list of words, e.g. {key}: [ja, oui]")
            common[key] = tuple(str(w).strip().lower() for w in words)
    if "encoding" in document:
        if document["encoding"] not in ENCODINGS:
            raise MappingError(f"{where}: encoding {document['encoding']!r} is not one of {', '.join(ENCODINGS)}")
        common["encoding"] = document["encoding"]
    return common


def _section(section: dict, kind: str, where: str) -> dict:
    if not isinstance(section, dict):
        raise MappingError(f"{where}: expected a mapping of settings")
    if kind == "survey":
        allowed = {"preset", "columns", "date_format", "time_zone", "scale_points", "submitted_at_value",
                   "answer_labels", "item_sets", "wave"}
        presets, columns = SURVEY_PRESETS, SURVEY_COLUMNS
    else:
        allowed = {"preset", "columns", "date_format", "time_zone", *REASON_LISTS, *EMPLOYMENT_TYPE_LISTS,
                   "critical_roles", "snapshots_from"}
        presets, columns = HR_PRESETS, HR_COLUMNS
    _known(section, allowed, where)
    out = dict(section)
    if "preset" in section and section["preset"] not in presets:
        raise MappingError(f"{where}: preset {section['preset']!r} is not one of {', '.join(presets)}")
    if "columns" in section:
        if not isinstance(section["columns"], dict):
            raise MappingError(f"{where}: columns must map {', '.join(columns)} to header texts")
        _known(section["columns"], set(columns), f"{where}: columns")
        out["columns"] = {k: str(v) for k, v in section["columns"].items()}
    if "time_zone" in section:
        try:
            ZoneInfo(str(section["time_zone"]))
        except (ZoneInfoNotFoundError, ValueError):
            raise MappingError(f"{where}: time_zone {section['time_zone']!r} is not an IANA time zone "
                               "like Europe/Berlin or America/New_York") from None
    if "date_format" in section and "%" not in str(section["date_format"]):
        raise MappingError(f"{where}: date_format {section['date_format']!r} is not a strptime pattern "
                           "like '%d/%m/%Y %H:%M'")
    if "scale_points" in section:
        out["scale_points"] = _whole_number(section["scale_points"])
        if out["scale_points"] not in SCALE_POINTS:
            raise MappingError(f"{where}: scale_points must be {' or '.join(map(str, SCALE_POINTS))}, "
                               f"not {section['scale_points']!r}")
    for key in ("submitted_at_value", "snapshots_from"):
        if key in section:
            out[key] = _date(section[key])
            if out[key] is None:
                raise MappingError(f"{where}: {key} must be a date like 2024-03-15, not {section[key]!r}")
    if "wave" in section:
        out["wave"] = wave_quarter(str(section["wave"]))
        if out["wave"] is None:
            raise MappingError(f"{where}: wave must be a calendar quarter like 2025-Q1, not {section['wave']!r}")
    if "answer_labels" in section:
        labels = section["answer_labels"]
        if not isinstance(labels, dict) or not all(v is None or _whole_number(v) is not None for v in labels.values()):
            raise MappingError(f"{where}: answer_labels must map answer texts to numbers, e.g. {{Agree: 6}}, "
                               "or to null for no answer")
        out["answer_labels"] = {header_text(str(k)): None if v is None else _whole_number(v) for k, v in labels.items()}
    for key in (*REASON_LISTS, *EMPLOYMENT_TYPE_LISTS, "critical_roles"):
        if key in section:
            if not isinstance(section[key], list):
                raise MappingError(f"{where}: {key} must be a list of texts")
            # A quoted "" is a value (the empty employment type, listed on purpose); YAML's null is not.
            if any(v is None for v in section[key]):
                raise MappingError(f"{where}: an empty value in {key} ({NULL_WORDS})")
            out[key] = tuple(str(v).strip().lower() for v in section[key])
    _in_one_list(out, where)
    if "item_sets" in section:
        out["item_sets"] = _item_sets(section["item_sets"], f"{where}: item_sets")
    return out


def _whole_number(text: object) -> int | None:
    """A whole number written as text (the file is read as text), or None."""
    return int(text) if isinstance(text, str) and re.fullmatch(r"[+-]?\d+", text.strip()) else None


def _date(text: object) -> date | None:
    """A date written as text, 2024-03-15, or None."""
    try:
        return date.fromisoformat(text.strip()) if isinstance(text, str) else None
    except ValueError:
        return None


def _in_one_list(section: dict, where: str) -> None:
    """A termination reason belongs to one of the reason lists, an employment type to one of
    the employment type lists: listed twice, what it means is unknown, and the load stops."""
    for lists, what in ((REASON_LISTS, "a reason"), (EMPLOYMENT_TYPE_LISTS, "an employment type")):
        for position, key in enumerate(lists):
            for other in lists[position + 1:]:
                if twice := sorted(set(section.get(key, ())) & set(section.get(other, ()))):
                    raise MappingError(f"{where}: {twice} is under both {key} and {other}; "
                                       f"{what} belongs to one")


def _item_sets(item_sets: dict, where: str) -> dict:
    if not isinstance(item_sets, dict):
        raise MappingError(f"{where}: expected item set names ({', '.join(ITEM_SETS)}) with aliases/already_reversed")
    converted = {}
    for key, spec in item_sets.items():
        if key not in ITEM_SETS:
            raise MappingError(f"{where}: unknown item set {key!r}; known: {', '.join(ITEM_SETS)}")
        if not isinstance(spec, dict):
            raise MappingError(f"{where}: {key} must have aliases and/or already_reversed")
        _known(spec, {"aliases", "already_reversed"}, f"{where}: {key}")
        numbers = {item.number for item in ITEM_SETS[key].items}
        aliases = spec.get("aliases") or {}
        if not isinstance(aliases, dict):
            raise MappingError(f"{where}: {key}: aliases must map item numbers to lists of texts")
        for number, texts in aliases.items():
            if _whole_number(number) not in numbers:
                raise MappingError(f"{where}: {key}: aliases names item {number}; items are {sorted(numbers)}")
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                raise MappingError(f"{where}: {key}: aliases of item {number} must be a list of texts")
        reversed_items = spec.get("already_reversed") or []
        if not isinstance(reversed_items, list) or any(_whole_number(n) not in numbers for n in reversed_items):
            raise MappingError(f"{where}: {key}: already_reversed must list item numbers among {sorted(numbers)}")
        converted[key] = {"aliases": {_whole_number(n): texts for n, texts in aliases.items()},
                          "already_reversed": [_whole_number(n) for n in reversed_items]}
    return converted
