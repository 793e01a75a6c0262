"""Landing-folder exports: survey responses, HR rosters or snapshots, the team map.

Every export in the folder is loaded on every run (several waves, or one cumulative file);
each file is read only when complete, from a verified snapshot, with the preset found from
the file or named in ``export_mapping.yml``. Every row either loads or lands in a quarantine
table with its file, row and reason; the counts by reason are asset metadata, and an asset
check warns while any remain. A file that lost rows or waves since its last load, or a wave
that fails the keying check, stops the load and the previous load stays. Survey rows are
respondent-level, so they (and their quarantine) live only in the ``restricted`` schema;
HR rows carry hashed ids only.
"""

import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
from dagster_duckdb import DuckDBResource

from assets.landing.files import (
    FileFacts,
    ShrunkExport,
    check_shrinkage,
    classify,
    clear_warehouse_facts,
    export_files,
    previous_facts,
    write_facts,
)
from assets.landing.hr import (
    HEADCOUNT_COLUMNS,
    TERMINATION_COLUMNS,
    HrExportError,
    HrFile,
    read_hr_file,
    unmatched_list_warnings,
)
from assets.landing.item_sets import PSYCHOLOGICAL_SAFETY
from assets.landing.mapping import MappingError, read_mapping
from assets.landing.resource import LandingFolderResource
from assets.landing.snapshot import SnapshotChanged, is_ready, take_snapshot
from assets.landing.survey import (
    KeyingFailure,
    SurveyExportError,
    SurveyFile,
    combine_survey_files,
    read_survey_file,
    redated_responses,
    response_count,
)
from assets.landing.tables import UnreadableText, read_records, sql_text
from assets.landing.team_map import TeamMapError, identifier_key, read_team_map
from assets.warehouse.pool import WAREHOUSE_POOL
from assets.warehouse.raw_tables import replace_table, table_columns, warehouse_connection
from assets.warehouse.restricted import leave_rewrite_marker

TEAM_MAP = dg.AssetKey(["raw", "config__team_map"])
QUARANTINE_SCHEMA = {"source_file": pl.String, "source_line": pl.Int64, "reason": pl.String, "raw_row": pl.String}
SURVEY_SCHEMA = {
    "response_id": pl.String, "survey_group": pl.String, "submitted_at": pl.Datetime, "source_line": pl.Int64,
    "item_set": pl.String, "item_no": pl.Int64, "answer": pl.Int64, "score": pl.Int64, "scale_points": pl.Int64, "source_file": pl.String,
    # The wave the response counts in (first day of its quarter); null in rows kept from a load
    # before it was stored, whose staging takes the calendar quarter of submitted_at (UTC).
    "wave_quarter": pl.Date,
}
# Where each loader writes its quarantined rows.
QUARANTINE_TABLES = {
    "survey__responses": ("restricted", "survey__responses_quarantine"),
    "hr__headcount": ("quarantine", "hr__headcount"),
    "hr__terminations": ("quarantine", "hr__terminations"),
}


@contextmanager
def stopping_clearly() -> Iterator[None]:
    """A load refused on purpose (a file shrank, an export that cannot be read, a file
    changed during the read) fails the step with the message alone and
    without retries: the same files would be refused again."""
    try:
        yield
    except (ShrunkExport, SnapshotChanged, SurveyExportError, HrExportError, MappingError,
            TeamMapError, UnreadableText) as error:
        raise dg.Failure(description=str(error), allow_retries=False) from None


class LandingLoadConfig(dg.Config):
    """``accept_shrunk_exports``: file names whose new, smaller version (or removal) this run
    accepts; without it a file that lost rows or waves stops the load."""

    accept_shrunk_exports: list[str] = []


def _identifiers(duckdb_resource: DuckDBResource, source: str) -> dict[str, str]:
    """The team map's identifiers of ``source``, keyed by ``identifier_key``: names in an
    export match whatever their case, spacing or Unicode form."""
    with duckdb_resource.get_connection() as conn:
        rows = conn.execute("select identifier from raw.config__team_map where source = ?", [source])
        return {identifier_key(identifier): identifier for (identifier,) in rows.fetchall()}


def _files_of_kind(context, landing: LandingFolderResource, kind: str) -> tuple[list[Path], list[str], object]:
    """The complete exports of ``kind`` (survey or hr), the names of those still being
    copied (left for a later run), and the mapping."""
    mapping = read_mapping(landing.folder)
    ready, waiting, unknown = [], [], []
    exports = export_files(landing.folder)
    for warning in mapping.unmatched_entries([path.name for path in exports]):
        context.log.warning(warning)
    for path in exports:
        ok, why = is_ready(path, landing.settle_seconds)
        if not ok:
            waiting.append(path.name)
            context.log.warning(f"{why}; its previous load (if any) stays until it is complete")
            continue
        found = classify(path, mapping)
        if found == kind:
            ready.append(path)
        elif found is None:
            unknown.append(path.name)
    if unknown:
        raise MappingError(f"landing folder {landing.path}: not recognised as a survey or HR export: {unknown}. "
                         "Name their kind and preset under files in export_mapping.yml (kind: ignore skips a file)")
    return ready, waiting, mapping


def _loaded_ids(conn, file_name: str) -> list[str]:
    """The response ids the last load took from ``file_name``."""
    if "source_file" not in table_columns(conn, "restricted.survey__responses"):
        return []
    return [response_id for (response_id,) in conn.execute(
        "select distinct response_id from restricted.survey__responses where source_file = ?", [file_name]).fetchall()]


def _kept_rows(conn, schema: str, table: str, files: list[str]) -> pl.DataFrame | None:
    """Rows an earlier load took from ``files`` (still being copied now), to keep them."""
    if not files or "source_file" not in table_columns(conn, f"{schema}.{table}"):
        return None
    return conn.execute(f"select * from {schema}.{table} where source_file in (select unnest(?))", [files]).pl()


def _held_back_rows(conn, failures: list[KeyingFailure], accepted: pl.DataFrame) -> pl.DataFrame | None:
    """The rows an earlier load took of the scales and waves the keying check held back now, to
    keep them (responses loaded anew in another wave are not kept twice). A table loaded before
    scales were told apart holds psychological safety only."""
    columns = table_columns(conn, "restricted.survey__responses")
    if not failures or "source_file" not in columns:
        return None
    has_item_set = "item_set" in columns
    responses = ("restricted.survey__responses" if has_item_set else
                 f"(select *, '{PSYCHOLOGICAL_SAFETY.key}' as item_set from restricted.survey__responses)")
    # A row's wave as staging takes it (stg_survey__responses): the stored one, else (rows loaded
    # before it was stored) the calendar quarter of submitted_at.
    wave = "date_trunc('quarter', responses.submitted_at)::date"
    if "wave_quarter" in columns:
        wave = f"coalesce(responses.wave_quarter, {wave})"
    held = pl.DataFrame({"item_set": [f.item_set.key for f in failures],
                         "wave": [f.quarter_start for f in failures]}, schema={"item_set": pl.String, "wave": pl.Date})
    conn.register("held_back_waves", held.to_arrow())
    try:
        rows = conn.sql(f"""select responses.* from {responses} as responses
                            join held_back_waves as held on held.item_set = responses.item_set
                                and held.wave = {wave}""").pl()
    finally:
        conn.unregister("held_back_waves")
    return rows.join(accepted.select("response_id", "item_set").unique(), on=["response_id", "item_set"], how="anti")


def _quarantine_frame(rows: list[dict] | pl.DataFrame, loaded_at: datetime) -> pl.DataFrame:
    frame = rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(rows, schema=QUARANTINE_SCHEMA)
    return frame.select(list(QUARANTINE_SCHEMA)).cast(QUARANTINE_SCHEMA).with_columns(
        loaded_at=pl.lit(loaded_at, dtype=pl.Datetime(time_zone="UTC")))


def _replace(conn: duckdb.DuckDBPyConnection, writes: list[tuple[str, str, pl.DataFrame]],
             facts: dict[str, FileFacts]) -> None:
    """Replace the survey tables with ``writes`` and the survey files' manifest with ``facts``,
    in one transaction of the restricted file."""
    conn.execute("begin transaction")
    try:
        for schema, table, frame in writes:
            replace_table(conn, schema, table, frame)
        write_facts(conn, "survey", facts)
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise


SURVEY_RESPONSES = dg.AssetKey(["restricted", "survey__responses"])


@dg.asset(
    pool=WAREHOUSE_POOL,
    key=SURVEY_RESPONSES,
    deps=[TEAM_MAP],
    group_name="landing",
    kinds={"csv", "xlsx", "duckdb"},
    check_specs=[dg.AssetCheckSpec(
        "keying_check", asset=SURVEY_RESPONSES,
        description="Warns naming the scale, wave and items when a scale's items in a wave do not hang together "
                    "the way their keying says (Cronbach's alpha below 0, or a reverse-keyed item correlating "
                    "negatively with the rest): below 0 by more than chance explains at the wave's number of "
                    "responses, that wave's answers of that scale are held back and its previous load stays "
                    "(held_back); otherwise they load (loaded_doubtful). Other waves and scales load.")],
)
def survey_responses(
    context: dg.AssetExecutionContext, config: LandingLoadConfig, landing: LandingFolderResource,
    duckdb: DuckDBResource,
) -> dg.MaterializeResult:
    """Every survey export in the landing folder (Qualtrics CSV/TSV, Google Forms, Microsoft
    Forms, SurveyMonkey, LimeSurvey, Culture Amp, generic), in long form: one row per response and
    answered item, matched by item text, of every scale the export measures (item_set:
    psychological safety, and accountability and Clark's four stages where present), with
    the 1..K answer and its score (reverse-keyed items: K + 1 - answer, K the file's scale), the
    file and row it came from, and the wave it counts in (wave_quarter: the file's wave setting,
    else the quarter of its submission date in the file's time zone; a file straddling a quarter
    end without the setting warns). Previews, tests, spam and unfinished responses are dropped and counted. Rows
    with bad answers, unknown survey groups, bad or future dates, no answers, unreadable bytes
    or quotes, or a response seen again (the latest submission is kept) go to
    restricted.survey__responses_quarantine with their reason. A file that lost responses or
    waves stops the load; a scale's wave failing the keying check is held back (its previous
    load stays) and the keying_check warns naming the items. Respondent-level, so restricted."""
    with stopping_clearly():
        return _load_surveys(context, config, landing, duckdb)


def _load_surveys(context, config: LandingLoadConfig, landing: LandingFolderResource,
                  duckdb: DuckDBResource) -> dg.MaterializeResult:
    files, waiting, mapping = _files_of_kind(context, landing, "survey")
    groups = _identifiers(duckdb, "survey_group")
    now = datetime.now(UTC)
    read: list[SurveyFile] = []
    with tempfile.TemporaryDirectory(prefix="psafe-landing-") as workdir:
        for path in files:
            settings = mapping.settings(path.name, "survey")
            snapshot = take_snapshot(path, Path(workdir), landing.encoding(settings.encoding))
            file = read_survey_file(read_records(snapshot, settings.sheet), path.name, settings, groups, now,
                                    landing.scale_points)
            file.diagnosis["sha256"] = snapshot.sha256
            read.append(file)
    # Each file is scored on its own scale (its files: entry, survey:, or the resource's).
    load = combine_survey_files(read)
    # A response quarantined now (its team left the team map, say) is still in the file, which
    # did not shrink: responses count loaded or quarantined.
    new_facts = {f.name: FileFacts(f.name, "survey", f.preset, f.diagnosis["sha256"], f.data_rows,
                                   len({p["response_id"] for *_, p in f.candidates}) + len(f.checked.quarantined),
                                   tuple(f.submission_quarters)) for f in read}
    loaded_at = datetime.now(UTC)
    with warehouse_connection(duckdb) as conn:
        if problems := [problem for file in read if (problem := redated_responses(file, _loaded_ids(conn, file.name)))]:
            raise SurveyExportError("; ".join(problems))
        old_facts = previous_facts(conn, "survey")
        kept_facts = {name: facts for name, facts in old_facts.items() if name in waiting}
        accepted_shrink = check_shrinkage({k: v for k, v in old_facts.items() if k not in waiting}, new_facts,
                                          config.accept_shrunk_exports, "response", "wave", context.op_def.name,
                                          response_count)
        accepted = pl.DataFrame(load.checked.accepted, schema=SURVEY_SCHEMA)
        for kept in (_kept_rows(conn, "restricted", "survey__responses", waiting),
                     _held_back_rows(conn, load.keying_failures, accepted)):
            if kept is not None and kept.height:
                if "wave_quarter" not in kept.columns:  # loaded before the wave was stored
                    kept = kept.with_columns(wave_quarter=pl.lit(None, dtype=pl.Date))
                accepted = pl.concat([accepted, kept.select(list(SURVEY_SCHEMA)).cast(SURVEY_SCHEMA)])
        quarantine = _quarantine_frame(load.checked.quarantined, loaded_at)
        kept_quarantine = _kept_rows(conn, "restricted", "survey__responses_quarantine", waiting)
        if kept_quarantine is not None and kept_quarantine.height:
            quarantine = pl.concat([quarantine, kept_quarantine.select(quarantine.columns).cast(quarantine.schema)])
        _replace(conn, [("restricted", "survey__responses", accepted),
                        ("restricted", "survey__responses_quarantine", quarantine)], {**new_facts, **kept_facts})
        if moved := clear_warehouse_facts(conn, "survey"):
            context.log.info(f"Moved the manifest rows of {moved} survey files (their rows and responses) out of the "
                             "warehouse file's raw.landing__files into the restricted file's landing__files; the "
                             "next connection rewrites the warehouse file without their bytes")
    for warning in load.warnings + [f"accepted: {message}" for message in accepted_shrink]:
        context.log.warning(warning)
    reasons = load.checked.reasons()
    dropped = sum((f.dropped for f in read), Counter())
    context.log.info(f"restricted.survey__responses: {response_count(load.responses)} responses "
                     f"({accepted.height} answers) from "
                     f"{len(read)} files, scales {', '.join(load.scales) or 'none'}; quarantined {quarantine.height} "
                     f"{reasons or ''}; dropped {dict(dropped)}")
    def findings(found: list) -> dg.MetadataValue:
        return dg.MetadataValue.json([
            {"scale": f.item_set.key, "wave": f.wave, "responses": f.responses, "alpha": round(f.alpha, 3),
             "negative_reverse_keyed_items": [{"item": n, "text": f.item_set.item(n).text, "r": round(r, 3),
                                               "p": round(f.correlation_p(r), 3)} for n, r in f.negative]}
            for f in found])

    # A doubtful finding's answers are loaded, but the check still shows it: an export whose tool
    # reversed the items cannot always be told from chance in a small wave.
    keying = dg.AssetCheckResult(
        check_name="keying_check", passed=not (load.keying_failures or load.keying_doubts),
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(f.message for f in [*load.keying_failures, *load.keying_doubts]) or None,
        metadata={"held_back": findings(load.keying_failures), "loaded_doubtful": findings(load.keying_doubts)})
    return dg.MaterializeResult(check_results=[keying], metadata={
        "rows": accepted.height, "responses": response_count(load.responses), "quarantined": quarantine.height,
        "scales": dg.MetadataValue.json(load.scales),
        "quarantined_by_reason": dg.MetadataValue.json(reasons),
        "dropped_not_responses": dg.MetadataValue.json(dict(dropped)),
        "partial_responses": load.partial_responses, "scale_points": dg.MetadataValue.json(sorted({f.scale_points for f in read})),
        "identical_copies_merged": load.identical_copies,
        # A file's count is a team's when the tool exports one file per team: "fewer than 5" below
        # the disclosure rule's minimum, as in the log; the exact counts are in the restricted file.
        "files": dg.MetadataValue.json({f.name: {**f.diagnosis, "responses": response_count(new_facts[f.name].units),
                                                 "waves": f.waves, "scales": f.scales, "dropped": dict(f.dropped), "notes": f.notes,
                                                 "ignored_columns": f.ignored_columns} for f in read}),
        "waiting_for_complete_copy": dg.MetadataValue.json(waiting),
        "accepted_shrinkage": dg.MetadataValue.json(accepted_shrink),
    })


@dg.multi_asset(
    specs=[
        dg.AssetSpec(["raw", "hr__headcount"], deps=[TEAM_MAP], group_name="landing", kinds={"csv", "xlsx", "duckdb"},
                     description="Monthly headcount snapshots per employee (employee ids as salted hashes): "
                                 "from an HRIS roster (derived from hire and termination dates) or the snapshot "
                                 "file hr_headcount.csv."),
        dg.AssetSpec(["raw", "hr__terminations"], deps=[TEAM_MAP], group_name="landing",
                     kinds={"csv", "xlsx", "duckdb"},
                     description="One row per leaver with the voluntary and critical-role flags (employee ids as "
                                 "salted hashes): from an HRIS roster's termination dates and reasons, or "
                                 "hr_terminations.csv."),
    ],
    pool=WAREHOUSE_POOL,
    name="hr_exports",
)
def hr_exports(context: dg.AssetExecutionContext, config: LandingLoadConfig, landing: LandingFolderResource,
               duckdb: DuckDBResource):
    """Every HR export in the landing folder (BambooHR or Workday roster, any roster with
    the same columns, or the snapshot/leaver files). Rows with unknown org units, bad or
    future dates, bad flags, unknown termination reasons or a repeated (employee, date) go
    to quarantine.hr__headcount / quarantine.hr__terminations with their reason; every row
    names the export it came from (source_file). Several files combine by ROSTER_RULE: each
    employee's headcount, leaver and quarantined rows from the newest roster listing them (by
    the dates its content shows), a leaver in several files once. A file that lost rows,
    employees or months stops the load; a file still being copied keeps the rows its previous
    load took from it. A roster whose newest date lies before closed months it carries
    forward (HrFile.months_carried_forward) warns, naming them."""
    with stopping_clearly():
        yield from _load_hr(context, config, landing, duckdb)


def _load_hr(context, config: LandingLoadConfig, landing: LandingFolderResource, duckdb: DuckDBResource):
    with warehouse_connection(duckdb) as conn:
        if scrubbed := _scrub_clear_quarantined_lines(conn):
            context.log.warning(
                f"Removed the text of {scrubbed} quarantined HR lines that an earlier release stored in clear "
                "(an employee's id, name, email or reason, in the file analysts read); the warehouse file is rewritten "
                "without it. Copies of the warehouse file made before now (backups) still hold it: keep them as "
                "private as the HR exports, or delete them.")
    files, waiting, mapping = _files_of_kind(context, landing, "hr")
    org_units = _identifiers(duckdb, "hr_org_unit")
    now = datetime.now(UTC)
    read: list[HrFile] = []
    modified: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="psafe-landing-") as workdir:
        for path in files:
            settings = mapping.settings(path.name, "hr")
            snapshot = take_snapshot(path, Path(workdir), landing.encoding(settings.encoding))
            modified[path.name] = snapshot.mtime_ns
            file = read_hr_file(snapshot, path.name, settings, org_units, now, landing.hr_id_salt, Path(workdir))
            file.diagnosis["sha256"] = snapshot.sha256
            read.append(file)
            context.log.info(f"{path.name}: {file.preset} preset, {file.counts}")
        new_facts = {f.name: FileFacts(f.name, "hr", f.preset, f.diagnosis["sha256"], f.data_rows, f.employees,
                                       tuple(f.months)) for f in read}
        leavers_only = {f.name for f in read if f.leavers_only}
        with warehouse_connection(duckdb) as conn:
            old_facts = previous_facts(conn, "hr")
            kept_facts = {name: facts for name, facts in old_facts.items() if name in waiting}
            accepted_shrink = check_shrinkage({k: v for k, v in old_facts.items() if k not in waiting}, new_facts,
                                              config.accept_shrunk_exports, "employee", "month", context.op_def.name)
            # ROSTER_RULE's order: what the content shows first, then the modification time.
            newest_last = [f.name for f in sorted(read, key=lambda f: (f.as_of, modified[f.name], f.name))]
            counts, combined = _copy_hr_tables(conn, read, leavers_only, waiting, datetime.now(UTC), newest_last,
                                               modified)
            write_facts(conn, "hr", {**new_facts, **kept_facts})
    for message in accepted_shrink:
        context.log.warning(f"accepted: {message}")
    for replaced in combined["snapshot_rows_replaced"]:
        context.log.warning(
            f"{replaced['newer']} puts {replaced['rows']} employee snapshot rows of {replaced['older']} (an employee on a "
            "date) in another org unit, and is taken for them, as the snapshot file modified later: if "
            f"{replaced['older']} is the correction (a copy without -t keeps the original's time), touch it or remove "
            f"the superseded {replaced['newer']}")
    for older, newer in combined["missing_from_a_newer_roster"].items():
        context.log.warning(
            f"{sum(newer.values())} employees {older} lists as employed are missing from the newer "
            f"{', '.join(newer)}, which lists others of their org unit: they still count as employed, as {older} "
            "says. A roster of active employees only drops a leaver without a date: export inactive employees too "
            "(BambooHR: the report's filter All; Personio: include inactive employees), or remove the older roster "
            "once the newer one covers its employees")
    for shared in combined["ids_shared_across_exports"]:
        first, second = shared["files"]
        context.log.warning(
            f"{shared['employees']} employee ids are in both {first} and {second}, exports with different headers "
            "(two HR systems?), with another org unit and hire date in each: each id is taken as one person, "
            "whose rows come from the newer roster. If the two systems number their employees separately, give "
            f"one of them an id scope: employee_id_scope (a short name of its HR system, like DE) in the files "
            f"entry of export_mapping.yml matching {second}, or a new entry {{match: \"{second}\", kind: hr, "
            "employee_id_scope: DE}")
    for file in read:
        # A roster of active employees beside the pipeline's own leaver files takes its leavers from them.
        if file.no_termination_column and not leavers_only:
            context.log.warning(file.no_termination_column)
        if file.overlapping_employments:
            context.log.warning(file.overlapping_employments)
    for warning in unmatched_list_warnings(read):
        context.log.warning(warning)
    for file in read:
        # A roster whose every employee a newer roster lists carries nobody forward.
        supplies_rows = combined["employees_taken_from_a_newer_roster"].get(file.name, 0) < file.employees
        if file.months_carried_forward and supplies_rows:
            context.log.warning(_carried_forward_warning(file))
    files_meta = dg.MetadataValue.json({f.name: {**f.diagnosis, "employees": f.employees, "months": len(f.months),
                                                 "notes": f.notes, "months_carried_forward": f.months_carried_forward}
                                        for f in read})
    for key, (rows, reasons) in counts.items():
        quarantined = sum(reasons.values())
        context.log.info(f"raw.{key}: loaded {rows} rows; quarantined {quarantined} {reasons or ''}")
        yield dg.MaterializeResult(asset_key=dg.AssetKey(["raw", key]), metadata={
            "rows": rows, "quarantined": quarantined, "quarantined_by_reason": dg.MetadataValue.json(reasons),
            "files": files_meta, "accepted_shrinkage": dg.MetadataValue.json(accepted_shrink),
            "files_combined": dg.MetadataValue.json(combined),
            "waiting_for_complete_copy": dg.MetadataValue.json(waiting),
        })


def _carried_forward_warning(file: HrFile) -> str:
    """What a roster older than the closed months it fills (HrFile.months_carried_forward)
    makes of them, and what to do."""
    hire, termination = file.as_of
    newest = max(file.as_of)
    return (f"{file.name}: the newest date in this roster is {newest} (latest hire {hire or 'none'}, latest "
            f"termination {termination or 'none'}) and a roster states no export date: its employees are carried "
            f"forward unchanged to the load's month, so the closed months {', '.join(file.months_carried_forward)} "
            "count its full headcount and no hire or leaver, and the models and the report read them. If the export "
            "is older than that (a quarterly export, or this month's is late), put the current roster in the "
            f"landing folder; if nobody joined or left since {newest}, these months are right")


# Releases before 2026-12-07 stored a quarantined HR line the CSV reader could not split as its
# text: an employee's id, name and email in clear, in the file analysts read. A row the loader
# read keeps a JSON object of its cells, its id hashed; such a line now keeps no text.
CLEAR_QUARANTINED_LINE = "raw_row is not null and coalesce(try(json_type(raw_row)), '') <> 'OBJECT'"


def _scrub_clear_quarantined_lines(conn) -> int:
    """Null the text of quarantined HR lines an earlier release kept (CLEAR_QUARANTINED_LINE),
    in the transaction that leaves the rewrite marker: DuckDB keeps a changed row's old bytes in
    the file until the block is reused, so the next connection rewrites the file from its live
    objects (WarehouseResource, restricted.REWRITE_MARKER). Returns the number of lines."""
    tables = [f"{schema}.{table}" for key, (schema, table) in QUARANTINE_TABLES.items()
              if key.startswith("hr__") and "raw_row" in table_columns(conn, f"{schema}.{table}")]
    lines = sum(conn.execute(f"select count(*) from {table} where {CLEAR_QUARANTINED_LINE}").fetchone()[0]
                for table in tables)
    if lines:
        conn.execute("begin transaction")
        for table in tables:
            conn.execute(f"update {table} set raw_row = null where {CLEAR_QUARANTINED_LINE}")
        leave_rewrite_marker(conn)
        conn.execute("commit")
    return lines


# Several rosters side by side (a monthly export each, or one per division): each employee's
# rows are taken from one of them, or an employee who moved team would count in both teams
# every month, a rescinded notice would still make a leaver and a corrected termination date
# two. The newest wins, judged first by what the content shows: a later export lists every
# hire an earlier one did plus the newer ones, while the modification time is lost by a copy
# without -t and renewed when someone corrects an old export (the backfill recipe). Hire dates
# rank before termination dates: a notice rescinded or a leaving date corrected earlier
# vanishes from the newer roster, a hire rarely does. Dates after the load are entered ahead
# and ignored. Then the modification time, then the file name (bamboohr_2025-05, _2025-06).
ROSTER_RULE = ("rosters rank by the latest hire date their accepted rows show, then the latest termination date "
               "(each on or before the load date), then the latest modification time, then the later file name; "
               "each employee's monthly headcount, leaver rows and quarantined rows come from the newest roster "
               "listing them (a quarantined row without an employee id stays while its roster is the newest for "
               "someone, or the newest roster of all); leaver and snapshot files add up: a leaver (employee, "
               "termination date) in several files counts once, with the newest file's row, and an employee's "
               "snapshot rows of one date come from the newest snapshot file listing them on it (by modification "
               "time, then file name)")


def _copy_hr_tables(conn, read: list[HrFile], leavers_only: set[str], waiting: list[str],
                    loaded_at: datetime, newest_last: list[str], modified: dict[str, int] | None = None
                    ) -> tuple[dict, dict]:
    """Replace the HR tables with the files' rows, in one transaction, straight from the
    files' Parquet outputs (a 200 MB export never passes through Python), combined by
    ROSTER_RULE (``newest_last``: the files, oldest first; ``modified``: their modification
    times in ns, which rank the snapshot files, and for the metadata). Each row says which export it
    came from (``source_file``); the rows an earlier load took from the files in ``waiting``
    (still being copied) are kept as they were. Returns the counts per table and what the
    combination merged (for the metadata)."""
    rank = {name: index for index, name in enumerate(newest_last)}

    def rows(table: str, columns: tuple[str, ...], files: list[HrFile], ranks: dict[str, int] = rank) -> str:
        """The files' rows of ``table`` with ``columns`` (``source_file`` is each export's
        name) and each file's ``file_rank`` in ``ranks`` (higher: newer)."""
        def select(file: HrFile) -> str:
            named = ", ".join(f"{sql_text(file.name)} as source_file" if c == "source_file" else c for c in columns)
            return f"select {named}, {ranks[file.name]} as file_rank from read_parquet({sql_text(file.parquet(table))})"
        empty = "select " + ", ".join(f"null::{'bigint' if c == 'source_line' else 'varchar'} as {c}"
                                      for c in columns) + ", 0 as file_rank where false"
        return " union all ".join(select(f) for f in files) or empty

    def kept(schema: str, table: str, columns: tuple[str, ...]) -> str:
        if not waiting or "source_file" not in table_columns(conn, f"{schema}.{table}"):
            return ""
        return f" union all select {', '.join(columns)} from {schema}.{table} where source_file in (select unnest($waiting))"

    rosters = [f for f in read if f.preset != "snapshots"]
    snapshot_files = [f for f in read if f.preset == "snapshots" and f.name not in leavers_only]
    roster_employees = " union all ".join(
        f"select employee_id, {sql_text(f.name)} as source_file, {rank[f.name]} as file_rank "
        f"from read_parquet({sql_text(f.parquet('employees'))})" for f in rosters)
    # Each employee's newest roster: (employee_id, file_rank) of the roster their rows come from.
    newest = f"(select employee_id, max(file_rank) as file_rank from ({roster_employees}) group by 1)"

    def from_newest(table: str, columns: tuple[str, ...]) -> str:
        """The rosters' rows of ``table``, each employee's from their newest roster only."""
        query = f"select * from ({rows(table, columns, rosters)})"
        return query + f" semi join {newest} as newest using (employee_id, file_rank)" if len(rosters) > 1 else query

    headcount_columns = (*HEADCOUNT_COLUMNS, "source_file")
    listed = ", ".join(headcount_columns)
    from_rosters = f"select {listed} from ({from_newest('headcount', headcount_columns)})"
    from_snapshots = f"select {listed} from ({rows('headcount', headcount_columns, snapshot_files)})"
    # Snapshots are facts per date: several files add up (a month each), and an employee's rows
    # of one date come from the newest file listing them on it: a month re-sent with corrections
    # beside the original replaces it, and does not count a moved person in both org units.
    # Exact duplicates within that file merge. Newest by modification time, then name: a
    # correction shows no later date than the file it corrects (a whole history exported in June
    # outranks May's correction by content).
    sent = {name: n for n, name in enumerate(sorted((f.name for f in snapshot_files),
                                                    key=lambda name: ((modified or {}).get(name, 0), name)))}
    snapshot_rows = rows('headcount', headcount_columns, snapshot_files, sent)
    newest_listing = "qualify file_rank = max(file_rank) over (partition by employee_id, snapshot_date)"
    if len(snapshot_files) > 1:
        from_snapshots = f"select distinct {listed} from ({snapshot_rows}) {newest_listing}"
    termination_columns = (*TERMINATION_COLUMNS, "source_file")
    # A roster's leavers follow its headcount (a notice rescinded or a date corrected in a newer
    # roster leaves no leaver behind); leaver and snapshot files add up, a leaver once.
    leaver_rows = (f"{from_newest('terminations', termination_columns)} union all "
                   f"{rows('terminations', termination_columns, [f for f in read if f.preset == 'snapshots'])}")
    leavers = f"select {', '.join(termination_columns)} from ({leaver_rows})"
    if len(read) > 1:
        leavers += " qualify row_number() over (partition by employee_id, termination_date order by file_rank desc) = 1"
    quarantine_columns = tuple(QUARANTINE_SCHEMA)
    quarantined = ", ".join(quarantine_columns)
    roster_quarantine = f"select {quarantined} from ({rows('quarantine', quarantine_columns, rosters)})"
    if len(rosters) > 1:
        # The quarantined row's (hashed) employee id is in its raw_row; a line rejected before
        # its cells were read (no raw_row) or a row without an id matches no one: it
        # stays while its roster is the newest for some employee, or the newest roster of all.
        quarantined_id = ("coalesce(case when json_valid(raw_row) then json_extract_string(raw_row, '$.employee_id') "
                          "end, '')")
        roster_quarantine = (
            f"select {quarantined} from (select *, {quarantined_id} as quarantined_id "
            f"from ({rows('quarantine', quarantine_columns, rosters)})) as q "
            f"left join {newest} as newest on newest.employee_id = q.quarantined_id "
            f"where case when q.quarantined_id = '' then q.file_rank in (select file_rank from {newest}) "
            f"or q.file_rank = {max(rank[f.name] for f in rosters)} "
            "else coalesce(newest.file_rank, q.file_rank) = q.file_rank end")
    snapshot_quarantine = rows("quarantine", quarantine_columns, snapshot_files)
    tables = [
        ("raw", "hr__headcount", headcount_columns, f"{from_rosters} union all {from_snapshots}"),
        ("raw", "hr__terminations", termination_columns, leavers),
        ("quarantine", "hr__headcount", quarantine_columns,
         f"{roster_quarantine} union all select {quarantined} from ({snapshot_quarantine})"),
        ("quarantine", "hr__terminations", quarantine_columns, f"select {quarantined} from ("
         + rows("quarantine", quarantine_columns, [f for f in read if f.name in leavers_only]) + ")"),
    ]
    conn.execute("begin transaction")
    try:
        for schema in ("raw", "quarantine"):
            conn.execute(f"create schema if not exists {schema}")
        for schema, table, columns, query in tables:
            query += kept(schema, table, columns)
            stamp = ", $loaded_at::timestamptz as loaded_at" if schema == "quarantine" else ""
            parameters = {"waiting": waiting} if "$waiting" in query else {}
            if stamp:
                parameters["loaded_at"] = loaded_at
            conn.execute(f"create or replace table {schema}.{table} as select *{stamp} from ({query})", parameters)
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    counts = {}
    for key in ("hr__headcount", "hr__terminations"):
        total = conn.execute(f"select count(*) from raw.{key}").fetchone()[0]
        reasons = dict(conn.execute(f"select split_part(reason, ':', 1), count(*) from quarantine.{key} "
                                    "group by 1 order by 1").fetchall())
        counts[key] = (total, reasons)
    superseded = dict(conn.execute(
        f"select source_file, count(*) from (select source_file, file_rank, max(file_rank) over (partition by "
        f"employee_id) as newest from ({roster_employees})) where file_rank < newest group by 1 order by 1"
    ).fetchall()) if len(rosters) > 1 else {}
    fresh = conn.execute("select count(*) from raw.hr__terminations where source_file not in (select unnest(?))",
                         [waiting]).fetchone()[0]
    loaded_quarantine = dict(conn.execute(
        "select source_file, count(*) from quarantine.hr__headcount where source_file in (select unnest(?)) "
        "group by 1", [[f.name for f in rosters]]).fetchall())
    quarantine_superseded = {f.name: f.counts["quarantine"] - loaded_quarantine.get(f.name, 0) for f in rosters
                             if f.counts["quarantine"] > loaded_quarantine.get(f.name, 0)}
    by_name = {f.name: f for f in read}
    # Rows of an older snapshot file that a newer one replaced with another org unit: what a
    # correction changed, or, when the older file is the correction (copied without its time), lost.
    replaced = conn.execute(f"""
        with listed as ({snapshot_rows}), newest as (select * from listed {newest_listing})
        select older.source_file, newest.source_file, count(distinct (older.employee_id, older.snapshot_date))
        from listed as older join newest using (employee_id, snapshot_date)
        where older.file_rank < newest.file_rank and older.org_unit is distinct from newest.org_unit
        group by all order by all""").fetchall() if len(snapshot_files) > 1 else []
    combined = {"rule": ROSTER_RULE, "files_oldest_first": newest_last,
                "snapshot_files_oldest_first": sorted(sent, key=sent.get),
                "snapshot_rows_replaced": [{"older": older, "newer": newer, "rows": n} for older, newer, n in replaced],
                "missing_from_a_newer_roster": _missing_from_newer_rosters(conn, rank, [f.name for f in rosters]),
                "ids_shared_across_exports": _ids_shared_across_exports(conn, rosters),
                "ranked_by": {name: {"latest_hire_or_snapshot_date": by_name[name].as_of[0] or None,
                                     "latest_termination_date": by_name[name].as_of[1] or None,
                                     "modified": datetime.fromtimestamp(modified[name] / 1e9, UTC).isoformat()
                                     if modified and name in modified else None}
                              for name in newest_last},
                "employees_taken_from_a_newer_roster": superseded,
                "leavers_merged": sum(f.counts["terminations"] for f in read) - fresh,
                "quarantined_rows_superseded": quarantine_superseded}
    return counts, combined


def _missing_from_newer_rosters(conn, rank: dict[str, int], rosters: list[str]) -> dict[str, dict[str, int]]:
    """Employees still employed this month by the roster they are last listed in while a newer
    roster lists others of their org unit this month, not them, by that roster and the newer
    one: an export of active employees only (BambooHR's and Personio's default) drops a
    leaver instead of dating their leaving, and the last roster listing them counts them for
    ever."""
    if len(rosters) < 2:
        return {}
    ranks = " union all ".join(f"select {sql_text(name)} as source_file, {rank[name]} as file_rank" for name in rosters)
    found = conn.execute(f"""
        with ranks as ({ranks}),
        roster_rows as (select * from raw.hr__headcount join ranks using (source_file)),
        current as (select employee_id, org_unit, source_file, file_rank from roster_rows
                    where snapshot_date = (select max(snapshot_date) from roster_rows)),
        newest_per_unit as (select org_unit, max(file_rank) as file_rank from current group by 1)
        select current.source_file, newer.source_file, count(*)
        from current join newest_per_unit as unit using (org_unit) join ranks as newer on newer.file_rank = unit.file_rank
        where current.file_rank < unit.file_rank group by all order by all""").fetchall()
    missing: dict[str, dict[str, int]] = {}
    for older, newer, count in found:
        missing.setdefault(older, {})[newer] = count
    return missing


def _ids_shared_across_exports(conn, rosters: list[HrFile]) -> list[dict]:
    """Employee ids that two rosters of different exports (their headers differ: two HR
    systems, BambooHR in the US and Personio in Germany, each numbering from 1) both list with
    another org unit and another first hire date: likely two people, whom ROSTER_RULE merges
    into one. One system's monthly exports share a header, and a mover keeps the hire date."""
    shared = []
    for position, first in enumerate(rosters):
        for second in rosters[position + 1:]:
            if first.header == second.header:
                continue
            count = conn.execute(
                f"select count(*) from read_parquet({sql_text(first.parquet('employees'))}) as a "
                f"join read_parquet({sql_text(second.parquet('employees'))}) as b using (employee_id) "
                "where lower(trim(a.org_unit)) <> lower(trim(b.org_unit)) and a.hire_date <> b.hire_date"
            ).fetchone()[0]
            if count:
                shared.append({"files": [first.name, second.name], "employees": count})
    return shared


def _quarantine_check(asset_key: dg.AssetKey, table: str) -> dg.AssetChecksDefinition:
    q_schema, q_table = QUARANTINE_TABLES[table]

    @dg.asset_check(pool=WAREHOUSE_POOL, asset=asset_key, name="quarantine_is_empty", blocking=False,
                    description=f"Warns while {q_schema}.{q_table} holds rows the exports could not load.")
    def _check(duckdb: DuckDBResource) -> dg.AssetCheckResult:
        with duckdb.get_connection() as conn:
            counts = dict(conn.execute(
                f"select split_part(reason, ':', 1), count(*) from {q_schema}.{q_table} group by 1 order by 1"
            ).fetchall())
        return dg.AssetCheckResult(
            passed=not counts, severity=dg.AssetCheckSeverity.WARN,
            metadata={"quarantined": sum(counts.values()), "by_reason": dg.MetadataValue.json(counts),
                      "table": f"{q_schema}.{q_table}"},
        )

    return _check


quarantine_checks = [
    _quarantine_check(dg.AssetKey(["restricted", "survey__responses"]), "survey__responses"),
    _quarantine_check(dg.AssetKey(["raw", "hr__headcount"]), "hr__headcount"),
    _quarantine_check(dg.AssetKey(["raw", "hr__terminations"]), "hr__terminations"),
]


@dg.asset(pool=WAREHOUSE_POOL, key=["raw", "config__team_map"], group_name="landing", kinds={"yaml", "duckdb"})
def team_map(
    context: dg.AssetExecutionContext, landing: LandingFolderResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Team map `team_map.yml`: one row per (team, source, identifier), joining PagerDuty
    teams and services, Jira projects and components, HR org units and survey groups."""
    rows = read_team_map(landing.file("team_map.yml"))
    frame = pl.DataFrame(rows, schema={"team": pl.String, "source": pl.String, "identifier": pl.String})
    with duckdb.get_connection() as conn:
        count = replace_table(conn, "raw", "config__team_map", frame)
    context.log.info(f"config__team_map: loaded {count} rows")
    return dg.MaterializeResult(metadata={"rows": count})
