"""HR exports: an HRIS roster (BambooHR, Workday or any with the same columns) or monthly
snapshot and leaver files (the pipeline's own, or an HR tool's monthly headcount export with
one row per employee per month: ``_snapshot_tables``), checked and derived in DuckDB so a
200 MB export loads in seconds.

From a roster (employee id, org unit, title, hire date, termination date, termination type
or reason) the loader derives the monthly headcount snapshots (everyone hired on or before
the first of the month and not gone before it) and the leavers, voluntary or not by the
mapping file's reason lists (else by the words voluntary/involuntary/resignation in the
reason). A reason the mapping lists as no leaving (a conversion) ends the employment
without a leaver; a reason none covers is quarantined, never guessed. One date pattern reads
all the file's date columns; a termination dated ahead (a notice period) counts the employee
until then and as a leaver once it has passed, and one in the year 9999 (SAP's open end of an
active employee) is none. A rehire (a rehire date after the hire date)
is two spells of employment: from the hire to a termination before the rehire (a leaver
then), and from the rehire on. Critical roles come from a flag column or the mapping file's
list of titles. Attrition is about employees: with the mapping's employment type lists, rows of
an excluded type (contractors, interns) count in neither headcount nor leavers, and a type in
neither list is quarantined, never guessed.

Employee ids are replaced by salted SHA-256 hashes (``employee_pseudonym``, each distinct id
once, within the file's ``employee_id_scope`` when the mapping gives one) as the file is read,
before anything (accepted or quarantined) is written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl

from assets.identity import employee_pseudonym, is_rounded_number
from assets.landing.mapping import Settings
from assets.landing.presets import FIRST_AND_LATEST_HIRE, HR_PRESETS, detect_hr_preset
from assets.landing.snapshot import Snapshot
from assets.landing.tables import MAX_TITLE_ROWS, Records, header_text, load_records, sql_text
from assets.landing.team_map import identifier_key
from assets.landing.values import (
    FALSE_WORDS,
    OPEN_END_YEAR,
    ORACLE_END_OF_TIME,
    TRUE_WORDS,
    ZERO_DATE,
    AmbiguousDates,
    DatePattern,
    workbook_datetime,
)
from assets.warehouse.partitions import HISTORY_START

HEADCOUNT_COLUMNS = ("snapshot_date", "employee_id", "org_unit", "role", "critical_role")
TERMINATION_COLUMNS = ("employee_id", "org_unit", "role", "critical_role", "termination_date", "voluntary")
# DuckDB's working memory for one HR file; beyond it, it spills to the file's temp folder.
DUCKDB_MEMORY = "500MB"
# employees: the distinct (hashed) ids the file lists, loaded or quarantined, with their org
# unit and first hire date: with several rosters, each employee's rows come from the newest
# file listing them (assets.ROSTER_RULE), and ids that two exports give different people are
# reported (assets._ids_shared_across_exports).
OUTPUTS = ("headcount", "terminations", "quarantine", "employees")
VOLUNTARY_WORDS = ("voluntary", "resignation", "resigned", "retirement", "retired")
# "voluntary" negated, as HR tools write it: involuntary, whatever else the reason says.
NOT_VOLUNTARY_WORDS = ("involuntary", "non-voluntary", "non voluntary", "nonvoluntary", "not voluntary", "unvoluntary")
# Death (BambooHR's standard termination type) is not the employee's choice, and voluntary
# attrition is the KPI: it counts as involuntary. A reason holding one of these and a
# voluntary word ("voluntary redundancy", "forced resignation") is not guessed.
INVOLUNTARY_WORDS = ("dismiss", "layoff", "laid off", "redundan", "terminated for cause", "forced", "death",
                     "deceased")
DATE_ROLES = ("hire_date", "rehire_date", "termination_date", "snapshot_date")
# Employment types that are likely no employees (BambooHR's Contractor and Intern, Workday's
# Contingent Worker, Personio's external, Deel's Contractor): without the mapping's employment
# type lists they count as employees, and the file's notes say so.
NON_EMPLOYEE_TYPE = re.compile(r"\b(contract(or|ors)?|contingent|freelance(r|rs)?|consultants?|vendors?|extern(al)?|"
                               r"interns?|internship|trainees?|apprentices?|temp|temporary|seasonal|"
                               r"praktikant(in)?|werkstudent(in)?)\b", re.IGNORECASE)
# Distinct date values the file's date pattern is found from (a roster has a few thousand
# distinct dates; more only in a file with times of day).
DATE_SAMPLE = 50_000
# HR tools' monthly headcount exports (HiBob, Rippling, UKG, SuccessFactors: one row per employee
# per month) name their columns as the tools' rosters do: a snapshot file's column for these
# roles is found by the snapshots preset's names, then by the roster's (a termination reason
# tells voluntary or not as a roster's does; a hire or rehire date after the row's termination
# date tells a rehire whose record keeps the old termination: _snapshot_tables).
SNAPSHOT_ROLES_BY_ROSTER_NAMES = ("employee_id", "org_unit", "role", "critical_role", "hire_date", "rehire_date",
                                  "termination_date", "termination_reason", "employment_type")


class HrExportError(ValueError):
    """The file cannot be read as an HR export; the message lists what is missing."""


@dataclass
class HrFile:
    """One HR export read: its headcount, terminations and quarantine rows are Parquet files
    in ``folder`` (``parquet(name)``): a 200 MB export never passes through Python memory,
    the asset reads them straight into the warehouse."""

    name: str
    preset: str
    diagnosis: dict
    folder: Path
    counts: dict[str, int]
    data_rows: int
    # Employees the file lists, loaded or quarantined (what the shrink check compares).
    employees: int
    months: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # A file of leavers only (hr_terminations.csv): its bad rows go to the leavers' quarantine.
    leavers_only: bool = False
    # How recent the file's content is, what ranks several rosters (assets.ROSTER_RULE): the
    # latest hire date (a snapshot file: snapshot date) and the latest termination date of its
    # accepted rows, each on or before the load date (ISO; '' for none). A date after the load
    # is entered ahead (a notice period, a pre-hire) and says nothing of when the file was written.
    as_of: tuple[str, str] = ("", "")
    # The header row's texts: rosters of one HR system (a monthly export each) share it.
    header: tuple[str, ...] = ()
    # A roster's closed months (YYYY-MM) after the month of its newest date (as_of), before
    # the load's month. A roster states no export date, so its employees are carried forward
    # unchanged to the load's month: in these months, which the models and the report read, it
    # shows no hire and no leaver, whether none happened or the export is older (quarterly, or
    # this month's is late). Its newest date is no export date (a quiet month has no hire or
    # leaver either), and the mart's team-months come from headcount, so the months are kept
    # and the load warns (assets._load_hr) rather than cutting them at a guessed date.
    months_carried_forward: list[str] = field(default_factory=list)
    # A roster without a termination date column: the warning saying it has no leavers ('' when
    # it has one, or is a snapshot or leaver file). The load logs it (assets._load_hr).
    no_termination_column: str = ""
    # A roster listing employees on several rows (one per employment) whose employments overlap:
    # the warning naming them ('' when none). The load logs it (assets._load_hr).
    overlapping_employments: str = ""
    # The mapping's list entries that match nothing in this file, by setting (hr.critical_roles,
    # hr.voluntary_reasons...), for each list that applies to it: an entry no file matches
    # (unmatched_list_warnings) is misspelt, or the file's encoding garbled its accents.
    unmatched_list_entries: dict[str, list[str]] = field(default_factory=dict)

    def parquet(self, name: str) -> Path:
        return self.folder / f"{name}.parquet"

    def table(self, name: str) -> pl.DataFrame:
        """One of the file's output tables as a frame (tests, small files)."""
        return pl.read_parquet(self.parquet(name))

    @property
    def headcount(self) -> pl.DataFrame:
        return self.table("headcount")

    @property
    def terminations(self) -> pl.DataFrame:
        return self.table("terminations")

    @property
    def quarantine(self) -> pl.DataFrame:
        return self.table("quarantine")


def find_hr_header(records: Records, preset: str, columns: Mapping[str, str]) -> tuple[int, str | None]:
    """The index of the header row (the first of the first rows that an HR preset recognises,
    or that holds the employee id column the mapping's ``hr.columns`` names) and its preset
    (``roster`` for a header only the mapping names)."""
    mapped_id = header_text(columns["employee_id"]) if "employee_id" in columns else None
    for index in range(min(MAX_TITLE_ROWS, records.frame.height)):
        cells = {header_text(c) for c in records.row(index)}
        if mapped_id in cells:
            return index, (detect_hr_preset(records.row(index)) or "roster") if preset == "auto" else preset
        found = detect_hr_preset(records.row(index)) if preset == "auto" else (
            preset if cells & set(_preset_columns(preset)["employee_id"]) else None)
        if found:
            return index, found
    return 0, None


def _preset_columns(preset: str) -> dict[str, tuple[str, ...]]:
    """Each role's header names under ``preset``; a snapshot file's also by the roster's names
    (SNAPSHOT_ROLES_BY_ROSTER_NAMES), after its own."""
    columns = HR_PRESETS[preset].columns
    if preset != "snapshots":
        return columns
    roster = HR_PRESETS["roster"].columns
    return {**columns, **{role: columns.get(role, ()) + tuple(n for n in roster[role] if n not in columns.get(role, ()))
                          for role in SNAPSHOT_ROLES_BY_ROSTER_NAMES}}


def _with_mapped_snapshot_date(preset: str, header_cells: list[str], settings: Settings, name: str) -> str:
    """The preset a file is read with once its header is found: a header holding the column the
    mapping names as hr.columns.snapshot_date is a snapshot export (one row per employee per
    month), which the default detection takes for a roster (its hire and termination dates): a
    roster's reading would put every month's rows in the newest month's team and quarantine the
    other months as duplicates. Under a roster preset the mapping names, the load stops."""
    mapped = settings.columns.get("snapshot_date")
    if preset == "snapshots" or mapped is None or header_text(mapped) not in {header_text(c) for c in header_cells}:
        return preset
    if settings.preset == "auto":
        return "snapshots"
    raise HrExportError(f"{name}: export_mapping.yml names {mapped!r} as hr.columns.snapshot_date, a snapshot "
                        f"export's column (one row per employee per month), but the file is read with preset: "
                        f"{settings.preset}, a roster preset, which has no snapshot dates. Set preset: snapshots "
                        "(under hr:, or in a files: entry matching this file) to read it as monthly snapshots, or "
                        "remove snapshot_date from hr.columns to read it as a roster")


def _is_leaver_file(preset: str, roles: dict[str, str]) -> bool:
    """A file of leavers only (the pipeline's hr_terminations.csv): snapshots preset, no snapshot
    dates. A termination date ahead in it is a future date (quarantined), not a notice."""
    return preset == "snapshots" and "snapshot_date" not in roles


def read_hr_file(snapshot: Snapshot, name: str, settings: Settings, org_units: dict[str, str], now: datetime,
                 salt: str, workdir: Path) -> HrFile:
    """Check every row of one HR export and derive its snapshots and leavers, in DuckDB with
    bounded memory (it spills to ``workdir``); the outputs are Parquet files there."""
    output = workdir / f"{name}.hr"
    output.mkdir()
    conn = duckdb.connect(config={"memory_limit": DUCKDB_MEMORY, "threads": 2,
                                  "temp_directory": str(output / "spill")})
    try:
        records = load_records(conn, snapshot, settings.sheet)
        header_index, preset = find_hr_header(records, settings.preset, settings.columns)
        if preset is None:
            raise HrExportError(f"{name}: not an HR export this pipeline recognises ({records.diagnosis}); the first "
                                f"rows have no employee id with hire/termination or snapshot dates. Name the columns "
                                f"in export_mapping.yml (hr.columns) or its preset (hr.preset)")
        preset = _with_mapped_snapshot_date(preset, records.row(header_index), settings, name)
        roles = _roles(records.row(header_index), preset, settings, name)
        no_termination_column = _no_termination_column(records.row(header_index), roles, preset, name)
        header_row = records.frame["row"][header_index]
        summary_lines = _summary_lines(conn, records, header_row)
        if summary_lines:
            records.rejected = [line for line in records.rejected if line[0] < summary_lines[0][0]]
        footer = f" and row < {summary_lines[0][0]}" if summary_lines else ""
        conn.execute(f"create view data as select * from export where row > {header_row}{footer}")
        diagnosis = {**records.diagnosis, "preset": preset, "header_row": str(header_row),
                     **({"employee_id_scope": settings.employee_id_scope} if settings.employee_id_scope else {})}
        if workbook_dates := _workbook_dates(conn, records, roles, header_row):
            diagnosis["date_cells"] = str(workbook_dates)
        pattern = _date_pattern(conn, roles, records.row(header_index), settings, name)
        patterns = {role: pattern for role in DATE_ROLES if role in roles}
        for role in patterns:
            diagnosis[f"{role}_pattern"] = pattern.pattern
        true_words = TRUE_WORDS + settings.true_words
        false_words = FALSE_WORDS + settings.false_words
        # A snapshot file's voluntary flag column, else the termination reason as a roster's.
        voluntary = (_is_true("voluntary_text", true_words) if preset == "snapshots" and "voluntary" in roles
                     else _voluntary_sql(settings))
        critical = (f"case when critical_text <> '' then {_is_true('critical_text', true_words)} "
                    f"else list_contains({_sql_list(settings.critical_roles)}, lower(role)) end")
        # The file's org unit texts matched in Python, with the team map's own rule.
        texts = [text for (text,) in conn.execute(f"select distinct coalesce(trim({roles['org_unit']}), '') "
                                                  "from data").fetchall()]
        matched = {text: org_units[identifier_key(text)] for text in texts if identifier_key(text) in org_units}
        zeros = _leading_zeros_hints(set(texts) - set(matched), org_units)
        conn.register("org_unit_frame", pl.DataFrame(
            {"key": [*matched, *zeros], "org_unit": [*matched.values(), *(None for _ in zeros)],
             "hint": [*(None for _ in matched), *zeros.values()]},
            schema={"key": pl.String, "org_unit": pl.String, "hint": pl.String}).to_arrow())
        conn.execute("create table org_units as select * from org_unit_frame")
        known_types = (settings.counted_employment_types + settings.excluded_employment_types
                       if "employment_type" in roles else ())
        checks = _row_checks(roles, preset, true_words, false_words, voluntary, pattern, known_types,
                             records.diagnosis.get("encoding", ""))
        not_leaver = _not_leaver_sql(settings)
        excluded = f"list_contains({_sql_list(settings.excluded_employment_types)}, lower(employment_type_text))"
        # Snapshot files repeat each employee every month: hash each id once.
        plain_id = f"coalesce(trim({roles['employee_id']}), '')"
        plain = [text for (text,) in conn.execute(f"select distinct {plain_id} from data").fetchall()]
        conn.register("id_frame", pl.DataFrame(
            {"plain": plain, "hashed": [employee_pseudonym(salt, text, settings.employee_id_scope) if text else ""
                                        for text in plain],
             "rounded": [is_rounded_number(text) for text in plain]},
            schema={"plain": pl.String, "hashed": pl.String, "rounded": pl.Boolean}).to_arrow())
        conn.execute("create table id_hashes as select * from id_frame")
        dates = ", ".join(f"typed.{role}" for role in patterns)
        # A row of an excluded employment type (a contractor, an intern) counts nowhere, so no
        # check applies to it: it is left out (_deduplicated), not quarantined.
        conn.execute(f"""create table checked as select typed.row, typed.employee_id, org_units.org_unit,
                             typed.org_unit_text, typed.role, typed.employment_type_text, typed.critical_text,
                             typed.reason_text,
                             {dates}{', ' if dates else ''}{excluded} as excluded_type,
                             case when {excluded} then '' else {checks} end as errors,
                             case when {excluded} then ''
                                  else {_leaver_checks(roles, preset, voluntary, not_leaver)} end as leaver_errors,
                             {critical} as is_critical, {voluntary} as is_voluntary, {not_leaver} as not_a_leaver
                         from ({_typed_sql(roles, patterns, preset)}) as typed
                         left join org_units on org_units.key = typed.org_unit_text""",
                     [now.replace(tzinfo=None)])
        unmatched = _unmatched_list_entries(conn, settings, preset, roles)
        date_role = "hire_date" if preset != "snapshots" else _date_role(roles)
        _deduplicated(conn, date_role)
        # The row as exported, its id hashed: quarantined rows are few, so they are joined back.
        raw = "json_object(" + ", ".join(f"'{role}', {'bad.employee_id' if role == 'employee_id' else 'data.' + column}"
                                         for role, column in roles.items()) + ")::varchar"
        conn.execute(f"""create table quarantine as
            select ? as source_file, bad.row as source_line, bad.reason, {raw} as raw_row
            from (select row, employee_id, concat_ws('; ', nullif(errors, ''), nullif(leaver_errors, '')) as reason
                  from checked where errors <> '' or leaver_errors <> ''
                  union all select row, employee_id, 'duplicate: (employee, {date_role}) also on line ' || kept_row
                                   || ', which is kept' from duplicates) as bad
            join data using (row)
            order by source_line""", [name])
        if records.rejected:
            # A line the reader could not split has no id column to hash, and may name the
            # employee in clear: its file, row and reason are kept, not its text.
            conn.executemany("insert into quarantine values (?, ?, ?, null)",
                             [[name, row, reason] for row, _, reason in records.rejected])
        if preset == "snapshots":
            _snapshot_tables(conn, roles, now.date())
        else:
            _roster_tables(conn, settings.snapshots_from or date.fromisoformat(HISTORY_START), now.date(), roles)
        first_hire = "min(hire_date)" if "hire_date" in patterns else "null::date"
        conn.execute(f"""create view employees as select employee_id, arg_max(org_unit_text, row) as org_unit,
                             {first_hire} as hire_date from checked where employee_id <> '' group by 1""")
        months = [m for (m,) in conn.execute("select distinct left(snapshot_date, 7) from headcount "
                                             "order by 1").fetchall()]
        counts = {table: conn.execute(f"copy {table} to {sql_text(f'{output / table}.parquet')} (format parquet)").fetchone()[0]
                  for table in OUTPUTS}
        # Quarantined rows count too: an employee whose row is quarantined now (an unknown
        # reason) is still in the file, which did not shrink.
        employees = counts["employees"]
        notes = list(records.notes) + [f"line {row} below the table ({text!r}) holds one cell only: read as the "
                                       "export's summary line, not an employee" for row, text in summary_lines]
        if no_termination_column:
            notes.append(no_termination_column)
        if preset == "snapshots" and "snapshot_date" in roles:
            notes += _snapshot_notes(conn, roles, tool_export="snapshot_date" in settings.columns)
        if not _is_leaver_file(preset, roles) and "termination_date" in roles:
            ahead = conn.execute(f"select count(*) from accepted where termination_date > ? and "
                                 f"termination_date <= ? + interval {NOTICE_DAYS_AHEAD} day",
                                 [now.date(), now.date()]).fetchone()[0]
            if ahead:
                notes.append(f"{ahead} termination dates after the load date (notice periods): employed until "
                             "then, leavers once the date has passed")
        overlapping = _overlapping_employments(conn, name) if preset != "snapshots" else ""
        if overlapping:
            notes.append(overlapping)
        from_rehire = conn.execute("select count(*) from accepted_roster where rehired and not earlier_spell_ended"
                                   ).fetchone()[0] if preset != "snapshots" and "rehire_date" in roles else 0
        if from_rehire:
            notes.append(f"{from_rehire} rehired employees without the end of their earlier employment (no "
                         "termination date before the rehire date): counted from their rehire date only, neither "
                         "employed nor a leaver before it")
        if "employment_type" in roles:
            notes += _employment_type_notes(conn, settings, diagnosis)
        data_rows = conn.execute("select count(*) from data").fetchone()[0] + len(records.rejected)
        # A rehire is a roster's latest hire as much as a hire.
        latest = {"hire_date": "greatest(hire_date, coalesce(rehire_date, hire_date))"} if "rehire_date" in roles else {}
        as_of = tuple(conn.execute(f"select coalesce(strftime(max({latest.get(role, role)}), '%Y-%m-%d'), '') "
                                   f"from accepted where {latest.get(role, role)} <= ?",
                                   [now.date()]).fetchone()[0] if role in patterns else ""
                      for role in ("hire_date" if preset != "snapshots" else "snapshot_date", "termination_date"))
    finally:
        conn.close()
    newest_month, load_month = max(as_of)[:7], f"{now:%Y-%m}"
    carried = [m for m in months if newest_month < m < load_month] if preset != "snapshots" and newest_month else []
    return HrFile(name, preset, diagnosis, output, counts, data_rows, employees, months, notes,
                  leavers_only=_is_leaver_file(preset, roles), as_of=as_of,
                  header=tuple(header_text(c) for c in records.row(header_index)),
                  months_carried_forward=carried, no_termination_column=no_termination_column,
                  overlapping_employments=overlapping, unmatched_list_entries=unmatched)


def _summary_lines(conn: duckdb.DuckDBPyConnection, records: Records, header_row: int) -> list[tuple[int, str]]:
    """The one-cell lines that end the file below its last full row and say what a report's
    footer says (Workday's ``Count: 3``, a spreadsheet's ``Total 12``: SUMMARY_LINE), as (row,
    text), whether the CSV reader read them or rejected them as too short. Not employees; a
    one-cell line of any other text (an id alone) stays in the data, where its checks
    quarantine it."""
    columns = [c for c in conn.table("export").columns if c != "row"]
    filled = " + ".join(f"(coalesce(trim({c}), '') <> '')::int" for c in columns)
    last_full = conn.execute(f"select max(row) from export where row > {header_row} and {filled} > 1").fetchone()[0]
    if last_full is None:
        return []
    read = conn.execute(f"select row, trim(concat_ws('', {', '.join(columns)})) from export "
                        f"where row > {last_full} and {filled} = 1").fetchall()
    rejected = [(row, text.strip().strip(",;\t|").strip()) for row, text, _ in records.rejected if row > last_full]
    footer: list[tuple[int, str]] = []
    for row, text in sorted(read + rejected, reverse=True):  # the last lines, up to one of other text
        if not SUMMARY_LINE.fullmatch(text):
            break
        footer.insert(0, (row, text))
    return footer


def _roles(header_cells: list[str], preset: str, settings: Settings, name: str) -> dict[str, str]:
    """Each role's column (c0..cN) from the header, by the mapping or the preset's names."""
    header = [header_text(c) for c in header_cells]
    roles: dict[str, str] = {}
    for role, names in _preset_columns(preset).items():
        wanted = [header_text(settings.columns[role])] if role in settings.columns else list(names)
        column = next((header.index(n) for n in wanted if n in header), None)
        if column is not None:
            roles[role] = f"c{column}"
    if (preset != "snapshots" and all(n in header for n in FIRST_AND_LATEST_HIRE) and "rehire_date" not in roles
            and not {"hire_date", "rehire_date"} & set(settings.columns)):
        roles["hire_date"], roles["rehire_date"] = (f"c{header.index(n)}" for n in FIRST_AND_LATEST_HIRE)
    needed = ("employee_id", "org_unit") + (("hire_date",) if preset != "snapshots" else ())
    missing = [role for role in needed if role not in roles]
    if preset != "snapshots" and "hire_date" in missing and "termination_date" in roles:
        # Leavers without the employees who stayed give no headcount, and a leaver without a hire
        # date is no spell of employment: the roster is what is needed, with its inactive rows.
        raise HrExportError(
            f"{name} ({preset} preset): termination dates but no hire date column: this looks like a list of "
            "leavers only (Personio's Leaving employees export, a terminations report), which is no roster: "
            "headcount and attrition need every employee with their hire and termination dates. Export the "
            "employee roster with inactive (former) employees included and its hire date column (Personio: the "
            "employee list including inactive employees; BambooHR: the report's filter All), and take this file "
            "out of the landing folder (or give it kind: ignore in a files: entry of export_mapping.yml). If the "
            "file has a hire date under another header, name it as hr.columns.hire_date. The header has "
            f"{header_cells}")
    if preset == "snapshots" and "snapshot_date" not in roles and "termination_date" not in roles:
        missing.append("snapshot_date or termination_date")
    if missing:
        # A role the mapping names is missing under the name given, not under the role's own name.
        named = [f"hr.columns.{role} is {settings.columns[role]!r}, which the header does not have"
                 for role in missing if role in settings.columns]
        unnamed = [role for role in missing if role not in settings.columns]
        raise HrExportError(f"{name} ({preset} preset): "
                            + "; ".join(named + ([f"columns not found: {', '.join(unnamed)}"] if unnamed else []))
                            + f"; the header has {header_cells}. Name them in export_mapping.yml hr.columns")
    if ((settings.counted_employment_types or settings.excluded_employment_types) and "employment_type" not in roles
            and preset != "snapshots"):
        # Without the column, contractors would count as employees whatever the mapping lists. The
        # pipeline's own snapshot and leaver files list employees only unless they carry the column.
        raise HrExportError(f"{name} ({preset} preset): export_mapping.yml lists employment types "
                            "(hr.counted_employment_types, hr.excluded_employment_types), but the file has no "
                            f"employment type column; the header has {header_cells}. Export it (BambooHR: "
                            "Employment Status; Workday: Worker Type; ADP Workforce Now: Worker Category; Personio, "
                            "HiBob: Employment type) or name it as hr.columns.employment_type; a file of employees "
                            "only gets counted_employment_types: [] and excluded_employment_types: [] in its files: "
                            "entry")
    return roles


# Header texts that may be a termination date or reason the presets do not know (named in the
# warning of a roster without a termination date column).
TERMINATION_LIKE = re.compile(r"term|separat|leav|exit|depart|austritt|\bend\b|last day", re.IGNORECASE)


def _no_termination_column(header_cells: list[str], roles: dict[str, str], preset: str, name: str) -> str:
    """The warning for a roster without a termination date column ('' when it has one): it loads
    with no leaver, so its attrition is 0, whether it lists active employees only or its termination
    column has a name no preset knows."""
    if preset == "snapshots" or "termination_date" in roles:
        return ""
    used = {int(column[1:]) for column in roles.values()}
    candidates = [cell for index, cell in enumerate(header_cells)
                  if index not in used and TERMINATION_LIKE.search(str(cell))]
    looks = (f"its columns {candidates} may be the termination date and reason" if candidates
             else f"the header has {header_cells}")
    return (f"{name} ({preset} preset): no termination date column found, so this roster has no leavers: every "
            f"employee on it counts as employed up to this month and its attrition is 0. {looks[0].upper()}"
            f"{looks[1:]}: name the termination date column as hr.columns.termination_date in export_mapping.yml "
            "(and the termination type or reason as hr.columns.termination_reason). If the export lists active "
            "employees only, export inactive employees too (BambooHR: the report's filter All; Personio: include "
            "inactive employees)")


# The mapping's word lists, the role or reason text each is matched with, and which rows it applies
# to: critical_roles to rows without a critical-role flag, the reason lists to the rows of a file
# whose leaving is read from its termination reason (a roster, an HR tool's snapshot export; not a
# file with a voluntary flag, as the pipeline's leaver files).
LISTED_ENTRIES = {"critical_roles": ("role", "critical_text = ''", False),
                  "voluntary_reasons": ("reason_text", "true", True),
                  "involuntary_reasons": ("reason_text", "true", True),
                  "not_leaver_reasons": ("reason_text", "true", True)}


def _unmatched_list_entries(conn: duckdb.DuckDBPyConnection, settings: Settings, preset: str,
                            roles: dict[str, str]) -> dict[str, list[str]]:
    """For each of the mapping's lists (LISTED_ENTRIES) that applies to this file, its entries
    that no row's role or reason matches (case ignored, as the load compares them)."""
    by_reason = "termination_reason" in roles and not (preset == "snapshots" and "voluntary" in roles)
    out: dict[str, list[str]] = {}
    for key, (column, applies, reason_list) in LISTED_ENTRIES.items():
        entries = getattr(settings, key)
        if not entries or (reason_list and not by_reason):
            continue
        found = {text for (text,) in conn.execute(f"select distinct lower({column}) from checked where {applies}")
                 .fetchall()}
        if found:  # else no row of the file is read by the list (every row has a critical-role flag)
            out[f"hr.{key}"] = [entry for entry in entries if entry not in found]
    return out


def unmatched_list_warnings(files: list[HrFile]) -> list[str]:
    """A warning for each of the mapping's list entries that matches nothing in any HR file it
    applies to: a critical role no employee holds counts nobody as critical, silently, and an
    accented role misread by the wrong encoding (Excel for Mac's MacRoman read as Windows-1252:
    IngŽnieur for Ingénieur) is such a role."""
    warnings = []
    for key in sorted({key for file in files for key in file.unmatched_list_entries}):
        listing = [file for file in files if key in file.unmatched_list_entries]
        unmatched = [entry for entry in listing[0].unmatched_list_entries[key]
                     if all(entry in file.unmatched_list_entries[key] for file in listing)]
        if not unmatched:
            continue
        what = "employee's role" if key == "hr.critical_roles" else "termination reason"
        effect = ("nobody counts as critical by it" if key == "hr.critical_roles"
                  else "no termination is read by it")
        encodings = ", ".join(f"{file.name} read as {file.diagnosis.get('encoding', '?')}" for file in listing)
        accents = ("; an accented word garbled in the stored text (IngŽnieur for Ingénieur) means the file's "
                   "encoding was misread: Excel for Mac saves CSV as MacRoman, set encoding: mac_roman in the "
                   "file's files: entry of export_mapping.yml" if any(not e.isascii() for e in unmatched) else "")
        warnings.append(f"{key} in export_mapping.yml lists {unmatched}, which match no {what} in the HR exports "
                        f"({encodings}): {effect}. Check the spelling against the exports (case is ignored)"
                        f"{accents}")
    return warnings


def _workbook_dates(conn: duckdb.DuckDBPyConnection, records: Records, roles: dict[str, str],
                    header_row: int) -> int:
    """Table ``workbook_dates`` (row, col, value): a workbook's typed cells in the date columns,
    date cells or numbers (a column formatted General holds Excel's serial dates), as the dates
    they are. No text pattern, found or configured (``date_format`` is for text dates), applies
    to them. A number before 1970's serial is no typed cell: the pattern refuses it as a bad
    date. Returns how many."""
    found = []
    for role in DATE_ROLES:
        if role in roles:
            found += [(row, roles[role], workbook_datetime(value).date())
                      for row, value in records.typed_cells.get(int(roles[role][1:]), {}).items() if row > header_row]
    conn.register("workbook_frame", pl.DataFrame(found, schema={"row": pl.Int64, "col": pl.String, "value": pl.Date},
                                                 orient="row").to_arrow())
    conn.execute("create table workbook_dates as select * from workbook_frame")
    conn.unregister("workbook_frame")
    return len(found)


def _date_pattern(conn, roles: dict[str, str], header: list[str], settings: Settings, name: str
                  ) -> DatePattern | None:
    """One date pattern for all the file's date columns, found over their distinct values
    together: a day above 12 among the hire dates settles the termination dates too, and a
    file is never read day first in one column and month first in another. A file with more
    than DATE_SAMPLE distinct values is judged on a fixed sample of them."""
    date_roles = [role for role in DATE_ROLES if role in roles]
    if not date_roles:
        return None
    values = " union ".join(f"select trim({roles[role]}) as v from data anti join (select row from workbook_dates "
                            f"where col = '{roles[role]}') using (row)" for role in date_roles)
    # Up to DATE_SAMPLE distinct values, the same ones for the same values whatever the row
    # order (ordered by md5: spread over the file's values, not its lowest or first read).
    sample = [v for (v,) in conn.execute(f"select v from (select v from ({values}) where v <> '' "
                                         f"order by md5(v), v limit {DATE_SAMPLE}) order by v").fetchall()]
    columns = tuple(header[int(roles[role][1:])] for role in date_roles)
    try:
        return DatePattern.find(sample, settings.time_zone or "UTC", settings.date_format, file=name,
                                columns=columns, section="hr")
    except AmbiguousDates as error:
        raise HrExportError(str(error)) from None


def _date_role(roles: dict[str, str]) -> str:
    return "snapshot_date" if "snapshot_date" in roles else "termination_date"


def _date_text(column: str) -> str:
    """The cell's text, '' for an empty or all-zero date (BambooHR writes 0000-00-00)."""
    return (f"case when regexp_full_match(coalesce(trim({column}), ''), '{ZERO_DATE}') then '' "
            f"else coalesce(trim({column}), '') end")


# DuckDB's casts are looser than ISO (a timestamp cast reads 6/1/24 as the year 6, and drops
# an offset): only values of the one ISO rule (values.ISO_DATE, which the Python 'iso' reading
# uses too) are cast, and an offset is applied (the UTC date, as in Python).
ISO_DATE = DatePattern.ISO_DATE


def _date_sql(column: str, pattern: DatePattern) -> str:
    value = f"nullif({_date_text(column)}, '')"
    if pattern.pattern == "iso":
        def group(number: int) -> str:  # ISO_DATE's groups: 1 the date, 2 the time, 3 the offset
            return f"regexp_extract({value}, '^{ISO_DATE}$', {number})"

        # The offset in minutes (as values.iso_offset_minutes): +01:00, +0100, +01; 0 for Z, UTC, GMT.
        zone = f"replace({group(3)}, ':', '')"
        minutes = (f"(case when {zone} like '-%' then -1 else 1 end) * coalesce(try_cast(substr({zone}, 2, 2) "
                   f"as integer) * 60 + coalesce(try_cast(nullif(substr({zone}, 4, 2), '') as integer), 0), 0)")
        return (f"case when not regexp_full_match({value}, '{ISO_DATE}') then null "
                f"when length({value}) = 10 then try_cast({value} as date) "
                f"else try_cast(try_cast({group(1)} || ' ' || {group(2)} as timestamp) - to_minutes({minutes}) "
                f"as date) end")
    return f"try_strptime({value}, {sql_text(pattern.pattern)})::date"


def _typed_sql(roles: dict[str, str], patterns: dict[str, DatePattern], preset: str) -> str:
    """The rows typed: each id hashed (the plain id goes no further), texts trimmed, dates
    parsed with the column's pattern. A roster's termination date in OPEN_END_YEAR (SAP's
    9999-12-31, an active employee's open end) is no termination, an empty date."""
    def text(role: str) -> str:
        return f"coalesce(trim({roles[role]}), '')" if role in roles else "''"

    # A workbook's date cells are dates already; the pattern reads the text ones.
    dates = "".join(f"coalesce({role}_cell.value, {_date_sql(roles[role], pattern)}) as {role}, "
                    f"{_date_text(roles[role])} as {role}_text, " for role, pattern in patterns.items())
    cells = "".join(f" left join workbook_dates as {role}_cell on {role}_cell.row = data.row "
                    f"and {role}_cell.col = '{roles[role]}'" for role in patterns)
    typed = f"""
        select
            data.row, id_hashes.hashed as employee_id, id_hashes.rounded as id_rounded,
            {text('org_unit')} as org_unit_text, {text('role')} as role, {text('critical_role')} as critical_text,
            {text('termination_reason')} as reason_text, {text('voluntary')} as voluntary_text,
            {text('employment_type')} as employment_type_text,
            {dates}?::timestamp as loaded_now
        from data join id_hashes on id_hashes.plain = {text('employee_id')}{cells}
        where {' or '.join(f"coalesce(trim({c}), '') <> ''" for c in roles.values())}"""
    if _is_leaver_file(preset, roles) or "termination_date" not in patterns:
        # A leaver file's termination date is a leaving: one in OPEN_END_YEAR stays a future date.
        return typed
    # Read by the file's pattern first, so every pattern's way of writing it (and a workbook's
    # date cell) is one, and a bad date is still a bad date.
    open_end = (f"(year(termination_date) >= {OPEN_END_YEAR} "
                f"or termination_date = date '{ORACLE_END_OF_TIME.isoformat()}')")
    return (f"select * replace (case when {open_end} then null else termination_date end as termination_date, "
            f"case when {open_end} then '' else termination_date_text end as termination_date_text) "
            f"from ({typed})")


def _sql_list(words) -> str:
    """A DuckDB list literal of ``words`` (typed, so an empty list contains nothing)."""
    return "[" + ", ".join(sql_text(w) for w in words) + "]::varchar[]"


def _is_true(column: str, true_words: tuple[str, ...]) -> str:
    return f"list_contains({_sql_list(true_words)}, lower({column}))"


# A report's footer line: a count or total, in one cell below the table.
SUMMARY_LINE = re.compile(r"(count|total|totals|grand total|sum|records|rows|employees|workers|anzahl|summe|gesamt)"
                          r"\b\D*\d[\d,. ]*", re.IGNORECASE)
# How far ahead of the load a roster's termination date is taken as it is (a notice period
# entered in advance). A later one is a fixed-term contract's end (a two-year term) or a
# mistyped year (2205-03-01 for 2025): the employee counts as employed, and their leaving
# waits in quarantine until the date is checked or comes near (_leaver_checks).
NOTICE_DAYS_AHEAD = 366


def _row_checks(roles, preset, true_words, false_words, voluntary: str, pattern: DatePattern | None,
                known_types: tuple[str, ...], encoding: str = "") -> str:
    """A DuckDB expression of every error of a row, joined by '; ' (empty: the row loads). A
    roster's termination date ahead is no error (``_leaver_checks``): the employee counts until
    then, as a leaver once it has passed (``_roster_tables``). With the mapping's employment type
    lists (``known_types``: counted and excluded), a type in neither is an error: a type new in a
    later export is neither counted nor left out unseen."""
    checks = ["case when employee_id = '' then 'missing id: employee id is empty' end",
              ("case when id_rounded then 'rounded id: the employee id is a number in scientific notation (as Excel "
               "saves an id of 12 digits or more), which lost its last digits, so several people may share it: "
               "export the ids as text from the HR tool, not through a spreadsheet' end"),
              ("case when org_units.org_unit is null then 'unknown team: org unit ''' || org_unit_text || "
               "''' is not in the team map''s hr_org_units' || coalesce(org_units.hint, '')"
               f"{_misread_hint(encoding)} end")]
    for role in DATE_ROLES:
        if role in roles:
            checks.append(f"case when {role}_text <> '' and {role} is null then 'bad date: {role} ''' || {role}_text "
                          f"|| ''' ' || {sql_text(pattern.mismatch())} end")
            # A roster's termination ahead is a notice or a contract's end (_leaver_checks).
            if role != "termination_date" or _is_leaver_file(preset, roles):
                checks.append(f"case when {role} > loaded_now then 'future date: {role} ' || {role}_text || "
                              "' is after the load time' end")
    if "hire_date" in roles:
        if preset != "snapshots":  # a snapshot file's hire date only tells a rehire (_rehired_row)
            checks.append("case when hire_date_text = '' then 'bad date: hire date is empty' end")
        if "rehire_date" in roles:
            checks.append("case when rehire_date < hire_date then 'bad date: rehired before hired: rehire_date ' || "
                          "rehire_date_text || ' is before hire_date ' || hire_date_text || ' (Workday: Hire Date "
                          "before Original Hire Date)' end")
        if "termination_date" in roles and preset != "snapshots":
            # Without a rehire date, a termination before the hire may be a rehire's old one (a
            # snapshot file's rows are dated, so its rehires are read: _rehired_row).
            rehire = ("" if "rehire_date" in roles else
                      "; if the employee was rehired, export the rehire date too (ADP Workforce Now: Rehire Date; "
                      "Workday: Original Hire Date beside Hire Date) or name its column as hr.columns.rehire_date")
            checks.append("case when termination_date < hire_date then 'bad date: terminated before hired: "
                          "termination_date ' || termination_date_text || ' is before hire_date ' || hire_date_text "
                          f"|| '{rehire}' end")
    if preset == "snapshots" and "snapshot_date" in roles:
        checks.append("case when snapshot_date_text = '' then 'bad date: snapshot_date is empty' end")
    if _is_leaver_file(preset, roles) and "termination_date" in roles:
        checks.append("case when termination_date_text = '' then 'bad date: termination_date is empty' end")
    for flag, column in (("critical_role", "critical_text"), ("voluntary", "voluntary_text")):
        if flag in roles:
            checks.append(f"case when not list_contains({_sql_list(true_words + false_words)}, lower({column})) "
                          f"then 'bad flag: {flag} ''' || {column} || ''' is not a true/false word' end")
    if known_types:
        lists = ("hr.counted_employment_types (employees) or hr.excluded_employment_types (contractors, interns) in "
                 "export_mapping.yml")
        checks.append("case when employment_type_text = '' then 'missing employment type: the row is neither counted "
                      f"nor left out until its type is filled in the HR tool, or \"\" is listed under {lists}' "
                      f"when not list_contains({_sql_list(known_types)}, lower(employment_type_text)) then 'unknown "
                      "employment type: ''' || employment_type_text || ''' is in neither list: the row is neither "
                      f"counted nor left out until the type is listed under {lists}' end")
    return "concat_ws('; ', " + ", ".join(checks) + ")"


def _leading_zeros_hints(texts: set[str], org_units: dict[str, str]) -> dict[str, str]:
    """For each org unit text of ``texts`` that the team map's ``org_units`` (identifier_key ->
    the map's org unit) lists only with other leading zeros (100 for 0100, or 0100 for 100), what
    the unknown-team reason adds: the map's code, and what to do."""
    unpadded = {key.lstrip("0"): unit for key, unit in org_units.items() if key[:1].isdigit()}
    hints = {}
    for text in texts:
        unit = unpadded.get(identifier_key(text).lstrip("0")) if text[:1].isdigit() else None
        if unit is None:
            continue
        # Fewer zeros in the export: a spreadsheet saved the code as a number.
        advice = ("a spreadsheet saving the code as a number drops them: export it as text, or write it in the team "
                  "map as the export does" if len(text) < len(unit) else "write it in the team map as the export does")
        hints[text] = f" (the team map has '{unit}', which differs only in leading zeros: {advice})"
    return hints


def _misread_hint(encoding: str) -> str:
    """SQL appending to the unknown-team reason, for an accented org unit of a file read as a
    single-byte encoding, that its accents may be misread: Excel for Mac's MacRoman read as
    Windows-1252 turns Équipe into ƒquipe, which no team map lists."""
    if encoding not in ("cp1252", "latin-1"):
        return ""
    return (" || case when regexp_matches(org_unit_text, '[^\\x00-\\x7F]') then ' (the file was read as "
            f"{encoding}: if its accented letters look garbled, set its encoding in its files: entry of "
            "export_mapping.yml, mac_roman for an Excel for Mac CSV)' else '' end")


def _leaver_checks(roles, preset, voluntary: str, not_leaver: str) -> str:
    """A DuckDB expression of what keeps a roster row's leaving from being counted (empty:
    none), joined by '; ': a termination date more than NOTICE_DAYS_AHEAD days ahead, a
    termination date without a reason, or with one neither voluntary nor involuntary nor a
    reason that is no leaving (``not_leaver``). The row still counts in headcount (up to its
    termination date or the load); only the leaver is withheld (quarantined), so a doubtful
    leaving takes nothing else away."""
    if "termination_date" not in roles:
        return "''"
    far_ahead = (f"case when termination_date > loaded_now + interval {NOTICE_DAYS_AHEAD} day then 'termination "
                 "far ahead: termination_date ' || termination_date_text || ' is more than "
                 f"{NOTICE_DAYS_AHEAD} days ahead of the load: the employee counts as employed and their leaving "
                 "is not counted. Check the date in the HR tool: a fixed-term contract''s end stays here until it "
                 f"is {NOTICE_DAYS_AHEAD} days ahead, a mistyped year (2205 for 2025) is corrected there' end")
    kept = "the employee counts in headcount up to that date, and as a leaver once "
    reason = (f"case when termination_date is null or {not_leaver} then null "
              "when reason_text = '' then 'missing termination reason: a termination date without a reason, so "
              f"voluntary or not is unknown ({kept}it is filled in the HR tool, or its termination type or reason "
              "column exported: hr.columns.termination_reason names it)' "
              f"when ({voluntary}) is null then 'unknown termination reason: ''' || reason_text || ''' ({kept}it "
              "is listed under hr.voluntary_reasons or hr.involuntary_reasons in export_mapping.yml, or under "
              "hr.not_leaver_reasons when it is no leaving: a conversion, a transfer to another entity)' end")
    # A leaver file's termination ahead is a future date (_row_checks); a snapshot file's voluntary
    # flag column says voluntary or not without a reason.
    return (f"concat_ws('; ', {'null' if _is_leaver_file(preset, roles) else far_ahead}, "
            f"{'null' if preset == 'snapshots' and 'voluntary' in roles else reason})")


def _not_leaver_sql(settings: Settings) -> str:
    """True for a termination whose reason the mapping lists as no leaving (not_leaver_reasons:
    a contractor converted to an employee, a transfer to another entity): the employment under
    that id ends there, and no leaver is counted."""
    return f"list_contains({_sql_list(settings.not_leaver_reasons)}, lower(reason_text))"


def _employment_type_notes(conn: duckdb.DuckDBPyConnection, settings: Settings, diagnosis: dict) -> list[str]:
    """What the file's employment types did. With the mapping's lists: the rows left out by
    type (also ``diagnosis['excluded_employment_types']``, the file's metadata). Without them,
    when a type looks like no employee (NON_EMPLOYEE_TYPE): every type, all counted as employees,
    and the settings that tell them apart."""
    types = conn.execute("select employment_type_text, count(*), bool_or(excluded_type) from checked "
                         "group by 1 order by 2 desc, 1").fetchall()
    if settings.counted_employment_types or settings.excluded_employment_types:
        left_out = {text: count for text, count, excluded in types if excluded}
        diagnosis["excluded_employment_types"] = left_out
        listed = ", ".join(f"{text}: {count}" for text, count in left_out.items())
        return [(f"{sum(left_out.values())} rows of employment types under hr.excluded_employment_types ({listed}) "
                 "left out: in neither headcount nor leavers")] if left_out else []
    if not any(NON_EMPLOYEE_TYPE.search(text) for text, _, _ in types):
        return []
    listed = ", ".join(f"{text or '(empty)'}: {count}" for text, count, _ in types)
    return [(f"employment types {listed}: every row counts as an employee in headcount and leavers, contractors "
             "and interns too, while attrition is about employees. List the types that count under "
             "hr.counted_employment_types and those to leave out under hr.excluded_employment_types in "
             "export_mapping.yml")]


def _voluntary_sql(settings: Settings) -> str:
    """Voluntary (true), involuntary (false) or unknown (null) from the reason text: the
    mapping's lists first, then the built-in words: "voluntary" negated is involuntary; a
    reason with words of both kinds, or of neither, or none at all, is unknown."""
    reason = "lower(reason_text)"

    def any_of(words: tuple[str, ...]) -> str:
        return " or ".join(f"{reason} like '%{w}%'" for w in words)

    return (f"case when list_contains({_sql_list(settings.voluntary_reasons)}, {reason}) then true "
            f"when list_contains({_sql_list(settings.involuntary_reasons)}, {reason}) then false "
            f"when {any_of(NOT_VOLUNTARY_WORDS)} then false "
            f"when ({any_of(INVOLUNTARY_WORDS)}) and ({any_of(VOLUNTARY_WORDS)}) then null "
            f"when {any_of(INVOLUNTARY_WORDS)} then false "
            f"when {any_of(VOLUNTARY_WORDS)} then true "
            "end")


def _deduplicated(conn: duckdb.DuckDBPyConnection, date_role: str) -> None:
    """``accepted``: clean rows of employees (none of an excluded employment type), one per
    (employee, date), the later row winning; ``duplicates``: the others, with the row kept.
    Headcount and leavers come from ``accepted`` only. Most exports have no duplicates, so the
    window over every row runs only when a repeated key exists."""
    conn.execute("create view clean as select * from checked where errors = '' and not excluded_type")
    repeated = conn.execute(f"select count(*) from (select 1 from clean "
                            f"group by employee_id, {date_role} having count(*) > 1)").fetchone()[0]
    if not repeated:
        conn.execute("create view accepted as select * from clean")
        conn.execute("create view duplicates as select *, row as kept_row from clean where false")
        return
    conn.execute(f"""create table accepted as select * from clean
                     qualify row_number() over (partition by employee_id, {date_role} order by row desc) = 1""")
    conn.execute(f"""create table duplicates as select *, max(row) over (partition by employee_id, {date_role}) as kept_row
                     from clean qualify row < kept_row""")


def _snapshot_tables(conn, roles, today: date) -> None:
    """Tables ``headcount`` and ``terminations`` from a snapshot file: the pipeline's own (its
    snapshots, hr_headcount.csv, or its leavers, hr_terminations.csv) or an HR tool's monthly
    headcount export, whose rows carry the termination date and reason too. The leavers are the
    rows with a termination date (in a file of snapshots one on or before ``today``: a date
    ahead is a notice, as in a roster), each leaving (employee, date) once however many monthly
    rows repeat it, with the row of the snapshot nearest it, on or before it first (the team
    left). A snapshot row dated after its termination (an export listing everyone employed at
    some time in the month) is no employee at that date: not in the headcount (_snapshot_notes),
    unless the row's hire (or rehire) date lies after that termination and on or before the
    snapshot: a rehire, whose worker record keeps the last termination date (``rehired_row``)."""
    snapshots, leavers = "snapshot_date" in roles, "termination_date" in roles
    employed = (f"(termination_date is null or termination_date >= snapshot_date or {_rehired_row(roles)})"
                if snapshots and leavers else "true")
    conn.execute(f"""create view headcount as
        select strftime({'snapshot_date' if snapshots else 'null::date'}, '%Y-%m-%d') as snapshot_date, employee_id,
               org_unit, role, is_critical::varchar as critical_role
        from accepted where {snapshots} and {employed}""")
    if not leavers:
        conn.execute("""create view terminations as
            select employee_id, org_unit, role, is_critical::varchar as critical_role, null::varchar as termination_date,
                   is_voluntary::varchar as voluntary
            from accepted where false""")
        return
    passed = f"termination_date <= date '{today.isoformat()}'" if snapshots else "true"
    nearest = ("snapshot_date > termination_date, abs(date_diff('day', snapshot_date, termination_date)), "
               if snapshots else "")
    conn.execute(f"""create view terminations as
        select employee_id, org_unit, role, is_critical::varchar as critical_role,
               strftime(termination_date, '%Y-%m-%d') as termination_date, is_voluntary::varchar as voluntary
        from accepted where termination_date is not null and {passed} and leaver_errors = '' and not not_a_leaver
        qualify row_number() over (partition by employee_id, accepted.termination_date order by {nearest}row desc) = 1
        order by row""")


def _rehired_row(roles) -> str:
    """True for a snapshot row whose termination date ends an earlier employment: its latest hire
    (the rehire date, else the hire date) lies after the termination and on or before the
    snapshot. Some HR systems keep the last termination date on a rehired worker's record, so
    every monthly row after the rehire repeats it. False without a hire date column."""
    hire = [role for role in ("rehire_date", "hire_date") if role in roles]
    if not hire or "termination_date" not in roles or "snapshot_date" not in roles:
        return "false"
    latest = f"greatest({', '.join(hire)})"  # greatest skips a null (an empty rehire date)
    return f"coalesce(termination_date < {latest} and {latest} <= snapshot_date, false)"


def _snapshot_notes(conn, roles, tool_export: bool) -> list[str]:
    """What a file of snapshots leaves out or reads otherwise than its rows say: no termination
    column in an HR tool's export (``tool_export``: its snapshot date column named in the mapping;
    the pipeline's own hr_headcount.csv has its leavers in hr_terminations.csv), rows dated after
    their employee's termination (not counted), snapshot dates other than the 1st
    (int_team_month_headcount reads each team-month's earliest snapshot as its opening one)."""
    notes = []
    if "termination_date" not in roles and tool_export:
        notes.append("no termination date column found (termination_date, or a roster's name for it: Termination "
                     "Date, ...): this file gives headcount only, no leavers. If it has one, name it as "
                     "hr.columns.termination_date in export_mapping.yml, with its reason as "
                     "hr.columns.termination_reason (or a true/false flag as hr.columns.voluntary); otherwise the "
                     "leavers come from a leaver file (hr_terminations.csv) or a roster")
    elif "termination_date" in roles:
        after, rehired = conn.execute(f"select count(*) filter (where not {_rehired_row(roles)}), "
                                      f"count(*) filter (where {_rehired_row(roles)}) from accepted "
                                      "where termination_date < snapshot_date").fetchone()
        if after:
            hint = ("" if "hire_date" in roles else
                    ". If some are rehired employees whose record keeps the old termination date, export the hire "
                    "date column too (or name it as hr.columns.hire_date): a row whose hire date lies after its "
                    "termination date counts in the headcount")
            notes.append(f"{after} snapshot rows dated after their termination date: the employee had left by "
                         f"then, so they are not in that snapshot's headcount (their leaving counts once){hint}")
        if rehired:
            notes.append(f"{rehired} snapshot rows of rehired employees repeat a termination date before their hire "
                         "(or rehire) date, as HR systems that keep the last termination on the worker record do: "
                         "they count in their snapshot's headcount, and that earlier leaving counts once")
    dates = [d for (d,) in conn.execute("select distinct snapshot_date from headcount "
                                        "where right(snapshot_date, 2) <> '01' order by 1").fetchall()]
    if dates:
        several = [m for (m,) in conn.execute("select left(snapshot_date, 7) from headcount group by 1 "
                                              "having count(distinct snapshot_date) > 1 order by 1").fetchall()]
        listed = ", ".join(dates[:6]) + (f" ... ({len(dates)} dates)" if len(dates) > 6 else "")
        notes.append(f"snapshot dates not on the 1st of a month: {listed}. A team-month's headcount is its opening "
                     "snapshot, and the models read each team-month's earliest snapshot as it"
                     + (f" (months with later snapshots too, not read: {', '.join(several)})" if several else "")
                     + ": a snapshot at the month's end ('as of 31 January') counts that month's hires and not its "
                     "leavers. Export the headcount as of the 1st of each month, or the roster (hire and termination "
                     "dates), from which the monthly opening snapshots are derived")
    return notes


# How many employees' lines the overlapping employments warning lists.
OVERLAPS_LISTED = 6


def _overlapping_employments(conn, name: str) -> str:
    """The warning for employees a roster lists on several rows (distinct hire dates: one row
    per employment, as some HR systems export) whose employments overlap ('' when none). Each
    row is a spell of employment (_roster_tables), which reads successive employments right;
    overlapping ones count the employee twice in the months both cover (in two teams when the
    org units differ) and a termination on one row as a leaver while the other keeps them
    employed. Which row is wrong (an earlier employment never closed, a rehire exported as a
    new row, two people under one id) is the HR tool's to say: the rows load as they are."""
    # Overlapping only where both cover a month's first day, the headcount's snapshot date: a
    # transfer ending one employment and starting the next on the same day (ADP, between company
    # codes) counts the employee once.
    pairs = conn.execute("""
        select a.employee_id, arg_min(a.row, (a.row, b.row)) as first_line, arg_min(b.row, (a.row, b.row)) as second_line
        from spells as a inner join spells as b
            on a.employee_id = b.employee_id and a.row < b.row
        -- the first month's first day on or after both starts
        where date_trunc('month', greatest(a.spell_start, b.spell_start) - interval 1 day) + interval 1 month
              <= least(coalesce(a.spell_end, date '9999-12-31'), coalesce(b.spell_end, date '9999-12-31'))
        group by a.employee_id order by first_line""").fetchall()
    if not pairs:
        return ""
    lines = "; ".join(f"lines {first} and {second}" for _, first, second in pairs[:OVERLAPS_LISTED])
    more = f"; ... ({len(pairs)} employees)" if len(pairs) > OVERLAPS_LISTED else ""
    return (f"{name}: {len(pairs)} employees are listed on several rows whose employments overlap ({lines}{more}): "
            "each row counts as an employment from its hire to its termination, so these employees count twice in "
            "the months both rows cover (in two teams when the org units differ), and a termination on one row "
            "counts a leaver while the other row keeps them employed. Successive employments (a termination "
            "before the next hire) are read right: if the earlier employment ended, give it its termination date "
            "in the HR tool; if the rows are a rehire, export one row per employee with its rehire date (ADP "
            "Workforce Now: Rehire Date; Workday: Original Hire Date beside Hire Date) or name its column as "
            "hr.columns.rehire_date; if they are two people, give them distinct ids")


def _roster_tables(conn, start: date, today: date, roles: dict[str, str]) -> None:
    """Tables ``headcount`` (monthly opening snapshots from ``start`` to this month) and
    ``terminations`` (the leavers) from a roster. A termination dated after ``today`` is a
    notice period: the employee is in every snapshot until then and a leaver only once the
    date has passed (a later load), so attrition never counts someone still employed. A
    roster without termination dates (of active employees only) has no leavers.

    A rehired employee (rehire date after the hire date) has two spells of employment when the
    termination lies before the rehire (ADP keeps the last termination, Workday the original
    hire): from the hire to that termination (a leaver then) and from the rehire on. A
    termination on or after the rehire ends the current spell, and the earlier spell's end is
    unknown: the employee counts from the rehire only (the file's notes say how many)."""
    missing = "".join(f", null::date as {role}" for role in ("rehire_date", "termination_date") if role not in roles)
    conn.execute(f"""create view accepted_roster as
        select *, coalesce(rehire_date > hire_date, false) as rehired,
               coalesce(rehire_date > hire_date and termination_date < rehire_date, false) as earlier_spell_ended
        from (select *{missing} from accepted)""")
    conn.execute("""create view spells as
        select row, employee_id, org_unit, role, is_critical, termination_date as spell_end,
               case when rehired and not earlier_spell_ended then rehire_date else hire_date end as spell_start
        from accepted_roster
        union all select row, employee_id, org_unit, role, is_critical, null::date as spell_end,
                         rehire_date as spell_start
        from accepted_roster where earlier_spell_ended""")
    conn.execute(f"""
        create view headcount as select strftime(month, '%Y-%m-%d') as snapshot_date, employee_id, org_unit, role,
               is_critical::varchar as critical_role
        from spells, range(date_trunc('month', date '{start.isoformat()}'),
                           date_trunc('month', date '{today.isoformat()}') + interval 1 day,
                           interval 1 month) as months(month)
        where spell_start <= month and (spell_end is null or spell_end >= month)""")
    conn.execute(f"""
        create view terminations as select employee_id, org_unit, role, is_critical::varchar as critical_role,
               strftime(termination_date, '%Y-%m-%d') as termination_date, is_voluntary::varchar as voluntary
        from accepted_roster where termination_date <= date '{today.isoformat()}' and leaver_errors = ''
            and not not_a_leaver
        order by row""")
