"""HR exports: an HRIS roster (BambooHR, Workday or any with the same columns) or the
pipeline's own monthly snapshot and leaver files, checked and derived in DuckDB so a
200 MB export loads in seconds.

From a roster (employee id, org unit, title, hire date, termination date, termination type
or reason) the loader derives the monthly headcount snapshots (everyone hired on or before
the first of the month and not gone before it) and the leavers, voluntary or not by the
mapping file's reason lists (else by the words voluntary/involuntary/resignation in the
reason). A reason neither covers is quarantined, never guessed. Critical roles come from
a flag column or the mapping file's list of titles.

Employee ids are replaced by salted SHA-256 hashes inside the query that reads them, before
anything (accepted or quarantined) is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb
import polars as pl

from assets.landing.mapping import Settings
from assets.landing.presets import HR_PRESETS, detect_hr_preset
from assets.landing.tables import Records, header_text
from assets.landing.values import FALSE_WORDS, TRUE_WORDS, DatePattern
from assets.warehouse.partitions import HISTORY_START

HEADCOUNT_COLUMNS = ("snapshot_date", "employee_id", "org_unit", "role", "critical_role")
TERMINATION_COLUMNS = ("employee_id", "org_unit", "role", "critical_role", "termination_date", "voluntary")
QUARANTINE_COLUMNS = ("source_file", "source_line", "reason", "raw_row")
# Rows above the header a report tool may add (a title, a run date): searched for the header.
MAX_TITLE_ROWS = 10
VOLUNTARY_WORDS = ("voluntary", "resignation", "resigned", "retirement", "retired")
INVOLUNTARY_WORDS = ("involuntary", "dismiss", "layoff", "laid off", "redundan", "terminated for cause")


class HrExportError(ValueError):
    """The file cannot be read as an HR export; the message lists what is missing."""


@dataclass
class HrFile:
    name: str
    preset: str
    diagnosis: dict
    headcount: pl.DataFrame
    terminations: pl.DataFrame
    quarantine: pl.DataFrame
    data_rows: int
    employees: int
    months: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def find_hr_header(records: Records, preset: str) -> tuple[int, str | None]:
    """The index of the header row (the first of the first rows that an HR preset
    recognises) and that preset."""
    for index in range(min(MAX_TITLE_ROWS, records.frame.height)):
        found = detect_hr_preset(records.row(index)) if preset == "auto" else (
            preset if _has_columns(records.row(index), preset) else None)
        if found:
            return index, found
    return 0, None


def _has_columns(header: list[str], preset: str) -> bool:
    cells = {header_text(c) for c in header}
    return bool(cells & set(HR_PRESETS[preset].columns["employee_id"]))


def read_hr_file(records: Records, name: str, settings: Settings, org_units: dict[str, str], now: datetime,
                 salt: str) -> HrFile:
    """Check every row of one HR export and derive its snapshots and leavers."""
    header_index, preset = find_hr_header(records, settings.preset)
    if preset is None:
        raise HrExportError(f"{name}: not an HR export this pipeline recognises ({records.diagnosis}); the first rows "
                            f"have no employee id with hire/termination or snapshot dates. Name the columns in "
                            f"export_mapping.yml (hr.columns) or its preset (hr.preset)")
    header = [header_text(c) for c in records.row(header_index)]
    roles: dict[str, str] = {}
    for role, names in HR_PRESETS[preset].columns.items():
        wanted = [header_text(settings.columns[role])] if role in settings.columns else list(names)
        column = next((header.index(n) for n in wanted if n in header), None)
        if column is not None:
            roles[role] = f"c{column}"
    needed = ("employee_id", "org_unit") + (("hire_date",) if preset != "snapshots" else ())
    missing = [role for role in needed if role not in roles]
    if preset == "snapshots" and "snapshot_date" not in roles and "termination_date" not in roles:
        missing.append("snapshot_date or termination_date")
    if missing:
        raise HrExportError(f"{name} ({preset} preset): columns not found: {', '.join(missing)}; the header has "
                            f"{records.row(header_index)}. Name them in export_mapping.yml hr.columns")
    data = records.frame.slice(header_index + 1)
    diagnosis = {**records.diagnosis, "preset": preset, "header_row": str(header_index + 1)}
    patterns = {}
    for role in ("hire_date", "termination_date", "snapshot_date"):
        if role in roles:
            sample = data[roles[role]].drop_nulls().head(2000).to_list()
            patterns[role] = DatePattern.find(sample, settings.time_zone, settings.date_format)
            diagnosis[f"{role}_pattern"] = patterns[role].pattern
    true_words = TRUE_WORDS + settings.true_words
    false_words = FALSE_WORDS + settings.false_words
    voluntary = _voluntary_sql(settings) if preset != "snapshots" else _is_true("voluntary_text", true_words)
    critical = (f"case when critical_text <> '' then {_is_true('critical_text', true_words)} "
                f"else lower(role) in (select unnest({_sql_list(settings.critical_roles or [''])})) end")
    conn = duckdb.connect()
    try:
        conn.register("export", data.to_arrow())
        conn.register("org_units", pl.DataFrame({"key": list(org_units), "org_unit": list(org_units.values())},
                                                schema={"key": pl.String, "org_unit": pl.String}).to_arrow())
        conn.execute(_typed_sql(roles, patterns), [salt, now.replace(tzinfo=None)])
        checks = _row_checks(roles, preset, true_words, false_words, voluntary)
        conn.execute(f"""create table checked as select typed.*, org_units.org_unit, {checks} as errors,
                             {critical} as is_critical, {voluntary} as is_voluntary
                         from typed left join org_units on org_units.key = lower(typed.org_unit_text)""")
        date_role = "hire_date" if preset != "snapshots" else _date_role(roles)
        _deduplicated(conn, date_role)
        quarantine = conn.execute(
            "select ? as source_file, row as source_line, array_to_string(errors, '; ') as reason, "
            "to_json(raw)::varchar as raw_row from checked where len(errors) > 0 "
            "union all select ?, row, reason, to_json(raw)::varchar from duplicates order by source_line",
            [name, name]).pl()
        if preset == "snapshots":
            headcount, terminations = _snapshot_tables(conn, roles)
        else:
            start = settings.snapshots_from or date.fromisoformat(HISTORY_START)
            headcount, terminations = _roster_tables(conn, start, now.date())
        months = sorted({d[:7] for d in headcount["snapshot_date"].to_list()})
        employees = conn.execute("select count(distinct employee_id) from accepted").fetchone()[0]
    finally:
        conn.close()
    return HrFile(name, preset, diagnosis, headcount, terminations,
                  _with_rejects(quarantine, records, name), data.height + len(records.rejected), employees, months,
                  list(records.notes))


def _date_role(roles: dict[str, str]) -> str:
    return "snapshot_date" if "snapshot_date" in roles else "termination_date"


def _date_sql(column: str, pattern: DatePattern) -> str:
    if pattern.pattern == "iso":
        return f"try_cast(try_cast(nullif(trim({column}), '') as timestamp) as date)"
    return f"try_strptime(nullif(trim({column}), ''), '{pattern.pattern}')::date"


def _typed_sql(roles: dict[str, str], patterns: dict[str, DatePattern]) -> str:
    def text(role: str) -> str:
        return f"coalesce(trim({roles[role]}), '')" if role in roles else "''"

    dates = ", ".join(f"{_date_sql(roles[role], pattern)} as {role}, coalesce(trim({roles[role]}), '') as {role}_text"
                      for role, pattern in patterns.items())
    # The raw row quarantined carries the hashed id, never the plain one.
    raw_fields = ", ".join(f"'{role}': " + ("employee_id_hash" if role == "employee_id" else column)
                           for role, column in roles.items())
    return f"""
        create table typed as with hashed as (
            select *, case when {text('employee_id')} = '' then ''
                           else left(sha256(?1 || ':' || {text('employee_id')}), 20) end as employee_id_hash
            from export
            where {' or '.join(f"coalesce(trim({c}), '') <> ''" for c in roles.values())})
        select
            row, employee_id_hash as employee_id,
            {text('org_unit')} as org_unit_text, {text('role')} as role, {text('critical_role')} as critical_text,
            {text('termination_reason')} as reason_text, {text('voluntary')} as voluntary_text,
            {dates}{',' if dates else ''} ?2 as loaded_now,
            {{{raw_fields}}} as raw
        from hashed"""


def _sql_list(words) -> str:
    return "[" + ", ".join("'" + w.replace("'", "''") + "'" for w in words) + "]"


def _is_true(column: str, true_words: tuple[str, ...]) -> str:
    return f"lower({column}) in (select unnest({_sql_list(true_words)}))"


def _row_checks(roles, preset, true_words, false_words, voluntary: str) -> str:
    """A DuckDB list expression of every error of a row (empty: the row loads)."""
    checks = ["case when employee_id = '' then 'missing id: employee id is empty' end",
              "case when org_units.org_unit is null then 'unknown team: org unit ''' || org_unit_text || "
              "''' is not in the team map''s hr_org_units' end"]
    for role in ("hire_date", "termination_date", "snapshot_date"):
        if role in roles:
            checks.append(f"case when {role}_text <> '' and {role} is null then 'bad date: {role} ''' || {role}_text "
                          f"|| ''' does not match the column''s date pattern (set hr.date_format)' end")
            checks.append(f"case when {role} > loaded_now then 'future date: {role} ' || {role}_text || "
                          "' is after the load time' end")
    if "hire_date" in roles:
        checks.append("case when hire_date_text = '' then 'bad date: hire date is empty' end")
        if "termination_date" in roles:
            checks.append("case when termination_date < hire_date then 'bad date: terminated before hired' end")
    if preset == "snapshots" and "snapshot_date" in roles:
        checks.append("case when snapshot_date_text = '' then 'bad date: snapshot_date is empty' end")
    for flag, column in (("critical_role", "critical_text"), ("voluntary", "voluntary_text")):
        if flag in roles:
            checks.append(f"case when lower({column}) not in (select unnest({_sql_list(true_words + false_words)})) "
                          f"then 'bad flag: {flag} ''' || {column} || ''' is not a true/false word' end")
    if preset != "snapshots" and "termination_date" in roles:
        checks.append(f"case when termination_date is not null and ({voluntary}) is null "
                      "then 'unknown termination reason: ''' || reason_text || ''' (list it under "
                      "hr.voluntary_reasons or hr.involuntary_reasons in export_mapping.yml)' end")
    return "list_filter([" + ", ".join(checks) + "], e -> e is not null)"


def _voluntary_sql(settings: Settings) -> str:
    """Voluntary (true), involuntary (false) or unknown (null) from the reason text: the
    mapping's lists first, then the words of the built-in rules (involuntary checked first:
    it contains 'voluntary')."""
    reason = "lower(reason_text)"
    return (f"case when {reason} in (select unnest({_sql_list(settings.voluntary_reasons or [''])})) then true "
            f"when {reason} in (select unnest({_sql_list(settings.involuntary_reasons or [''])})) then false "
            + "".join(f"when {reason} like '%{w}%' then false " for w in INVOLUNTARY_WORDS)
            + "".join(f"when {reason} like '%{w}%' then true " for w in VOLUNTARY_WORDS)
            + "end")


def _deduplicated(conn: duckdb.DuckDBPyConnection, date_role: str) -> None:
    """Table ``accepted``: clean rows, one per (employee, date), the later row winning;
    ``duplicates``: the others, naming the row kept."""
    conn.execute(f"""
        create table ranked as select *, row_number() over (partition by employee_id, {date_role} order by row desc) as rank,
            first_value(row) over (partition by employee_id, {date_role} order by row desc) as kept_row
        from checked where len(errors) = 0""")
    conn.execute("create table accepted as select * from ranked where rank = 1")
    conn.execute(f"create table duplicates as select row, 'duplicate: (employee, {date_role}) also on line ' "
                 "|| kept_row || ', which is kept' as reason, raw from ranked where rank > 1")


def _snapshot_tables(conn, roles) -> tuple[pl.DataFrame, pl.DataFrame]:
    headcount, terminations = _empty(HEADCOUNT_COLUMNS), _empty(TERMINATION_COLUMNS)
    if "snapshot_date" in roles:
        headcount = conn.execute("""
            select strftime(snapshot_date, '%Y-%m-%d') as snapshot_date, employee_id, org_unit, role,
                   is_critical::varchar as critical_role from accepted order by row""").pl()
    if "termination_date" in roles:
        terminations = conn.execute("""
            select employee_id, org_unit, role, is_critical::varchar as critical_role,
                   strftime(termination_date, '%Y-%m-%d') as termination_date, is_voluntary::varchar as voluntary
            from accepted order by row""").pl()
    return headcount, terminations


def _roster_tables(conn, start: date, today: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Monthly opening snapshots from ``start`` to this month, and the leavers."""
    headcount = conn.execute("""
        select strftime(month, '%Y-%m-%d') as snapshot_date, employee_id, org_unit, role,
               is_critical::varchar as critical_role
        from accepted, range(date_trunc('month', ?::date), date_trunc('month', ?::date) + interval 1 day,
                             interval 1 month) as months(month)
        where hire_date <= month and (termination_date is null or termination_date >= month)
        order by month, row""", [start, today]).pl()
    terminations = conn.execute("""
        select employee_id, org_unit, role, is_critical::varchar as critical_role,
               strftime(termination_date, '%Y-%m-%d') as termination_date, is_voluntary::varchar as voluntary
        from accepted where termination_date is not null order by row""").pl()
    return headcount, terminations


def _empty(columns) -> pl.DataFrame:
    return pl.DataFrame(schema={c: pl.String for c in columns})


def _with_rejects(quarantine: pl.DataFrame, records: Records, name: str) -> pl.DataFrame:
    rejects = pl.DataFrame([{"source_file": name, "source_line": row, "reason": reason, "raw_row": raw}
                            for row, raw, reason in records.rejected],
                           schema={"source_file": pl.String, "source_line": pl.Int64, "reason": pl.String,
                                   "raw_row": pl.String})
    return pl.concat([rejects, quarantine.cast({"source_line": pl.Int64, "raw_row": pl.String})])
