"""The landing folder's exports as a set: which files there are, what kind each is, what
each held when it was last loaded, and whether a new version lost anything.

The folder may hold several exports of each kind (one per wave, or one cumulative file):
every run loads all of them, so a new file adds to what was loaded. A manifest remembers, per
file, its checksum, preset, data rows, responses or employees and the waves or months it covered
(counts only: no respondent data): ``raw.landing__files`` for HR files, and for survey files
``restricted.landing__files``, in the restricted file (MANIFESTS). A file that comes back with
fewer rows, responses, employees, waves or months than it had blocks the load, saying what
shrank, unless the run's config accepts it (``accept_shrunk_exports``): a copy cut at a line end
looks like a valid, shorter export and would otherwise replace a full wave.
"""

from __future__ import annotations

import codecs
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from assets.landing.item_sets import PSYCHOLOGICAL_SAFETY
from assets.landing.mapping import MAPPING_FILE, Mapping
from assets.landing.presets import HR_PRESETS, detect_hr_preset, detect_survey_preset
from assets.landing.snapshot import ZIP_SIGNATURE, Snapshot, detect_encoding
from assets.landing.survey import item_parts, item_texts
from assets.landing.tables import UnreadableText, header_text, read_records
from assets.warehouse.raw_tables import ensure_schema, table_columns
from assets.warehouse.restricted import leave_rewrite_marker

TEAM_MAP_FILE = "team_map.yml"
EXPORT_SUFFIXES = {".csv", ".tsv", ".xlsx"}
CONFIG_FILES = {TEAM_MAP_FILE, MAPPING_FILE}
# The sensor also watches the configuration files: a changed team map or mapping reloads.
WATCHED_SUFFIXES = EXPORT_SUFFIXES | {".yml", ".yaml"}
# Where each kind's manifest is kept. A survey file's rows and responses count its respondents,
# a team's when the tool exports one file per team (a form per team), which the disclosure rule
# hides below MIN_RESPONDENTS: they stay in the restricted file, beside the responses, out of the
# warehouse file analysts read. HR files' counts are no survey data.
MANIFESTS = {"hr": ("raw", "landing__files"), "survey": ("restricted", "landing__files")}
WAREHOUSE_MANIFEST = MANIFESTS["hr"]
PEEK_BYTES = 256 * 1024


class ShrunkExport(RuntimeError):
    """A file lost rows, responses or waves it had when it was last loaded."""


def watched_files(folder: Path) -> list[Path]:
    """Exports and configuration files the sensor and the loaders consider (no hidden files,
    no partial uploads such as ``*.part``)."""
    return [p for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.startswith((".", "~$")) and p.suffix.lower() in WATCHED_SUFFIXES]


def export_files(folder: Path) -> list[Path]:
    return [p for p in watched_files(folder) if p.suffix.lower() in EXPORT_SUFFIXES and p.name not in CONFIG_FILES]


def classify(path: Path, mapping: Mapping) -> str | None:
    """'survey', 'hr', 'ignore' or None (unrecognised) from the mapping file or the file's
    first rows (a peek at its head: a 200 MB HR export is not read to find out)."""
    kind = mapping.settings(path.name).kind
    if kind:
        return kind
    with tempfile.TemporaryDirectory(prefix="psafe-peek-") as workdir:
        with path.open("rb") as fh:
            head = fh.read(PEEK_BYTES)
        if head.startswith(ZIP_SIGNATURE):
            snapshot = Snapshot(path, path, "", 0, 0, "binary", True)
        else:
            peek = Path(workdir) / "head.csv"
            peek.write_bytes(head)
            encoding = detect_encoding(peek)
            # Cut at the last line break of the decoded text, not of the bytes: in UTF-16 a
            # line break is two bytes, and a cut between them leaves half a character behind.
            # The incremental decoder holds back a character the peek cut in two.
            text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head).lstrip("\ufeff")
            if len(head) == PEEK_BYTES and "\n" in text:
                text = text[: text.rfind("\n") + 1]
            peek.write_text(text, encoding="utf-8")
            snapshot = Snapshot(path, peek, "", 0, 0, "utf-8", False)
        try:
            records = read_records(snapshot)
        except UnreadableText:
            raise  # the file's own problem, named, not "not recognised"
        except ValueError:
            return None
    rows = [records.row(i) for i in range(min(10, records.frame.height))]
    if not rows:
        return None
    if any(detect_hr_preset(row) for row in rows):
        return "hr"
    preset = detect_survey_preset(rows, snapshot.is_zip)
    if preset not in (None, "culture_amp"):
        return "survey"
    # A header no preset knows is recognised by the columns the mapping names for it: an HR
    # header with the mapped employee id beside an org unit column (an id alone, such as a
    # survey's Email or ID, makes no roster), or a survey column of a file set to a preset.
    if _mapped_hr_header(rows, mapping.settings(path.name, "hr").columns):
        return "hr"
    survey = mapping.settings(path.name, "survey")
    named = {header_text(column) for column in survey.columns.values()}
    if survey.preset != "auto" and any(named & {header_text(cell) for cell in row} for row in rows):
        return "survey"
    if preset == "culture_amp":
        # Any workbook falls through to Culture Amp: it is one only if its header names items.
        texts = item_texts(PSYCHOLOGICAL_SAFETY, survey.aliases.get(PSYCHOLOGICAL_SAFETY.key, {}))
        named = {texts[part] for cell in rows[0] for part in item_parts(cell) if part in texts}
        return "survey" if len(named) >= len(PSYCHOLOGICAL_SAFETY.items) // 2 else None
    return None


def _mapped_hr_header(rows: list[list[str]], columns: dict[str, str]) -> bool:
    """Whether a row holds the employee id column ``columns`` (hr.columns) names and an org unit
    column (named there too, or one a roster preset knows)."""
    if "employee_id" not in columns:
        return False
    org_units = ({header_text(columns["org_unit"])} if "org_unit" in columns
                 else set(HR_PRESETS["roster"].columns["org_unit"]))
    for row in rows:
        cells = {header_text(cell) for cell in row}
        if header_text(columns["employee_id"]) in cells and cells & org_units:
            return True
    return False


@dataclass(frozen=True)
class FileFacts:
    """What one file held when loaded: ``units`` are responses or employees; ``periods``
    waves (survey) or months (HR)."""

    name: str
    kind: str
    preset: str
    sha256: str
    data_rows: int
    units: int
    periods: tuple[str, ...]


def previous_facts(conn: duckdb.DuckDBPyConnection, kind: str) -> dict[str, FileFacts]:
    """What the files of ``kind`` held when last loaded: from the kind's manifest, else (a
    warehouse an earlier release loaded) from the rows of ``kind`` in the warehouse's manifest."""
    for schema, table in (MANIFESTS[kind], WAREHOUSE_MANIFEST):
        if table_columns(conn, f"{schema}.{table}"):
            rows = conn.execute(f"select file, kind, preset, sha256, data_rows, units, periods from {schema}.{table} "
                                "where kind = ?", [kind]).fetchall()
            return {r[0]: FileFacts(r[0], r[1], r[2], r[3], r[4], r[5], tuple(json.loads(r[6]))) for r in rows}
    return {}


def shrinkage(old: FileFacts, new: FileFacts | None, unit: str, period: str,
              count: Callable[[int], int | str] = int) -> str | None:
    """What ``new`` lost against ``old`` in words, or None when nothing shrank; its rows and
    units shown as ``count`` shows them (survey.response_count: none below MIN_RESPONDENTS)."""
    if new is None:
        return (f"{old.name} was loaded before ({count(old.data_rows)} rows, {count(old.units)} {unit}s, {period}s "
                f"{', '.join(old.periods) or 'none'}) and is gone from the landing folder")
    lost = []
    if new.data_rows < old.data_rows:
        lost.append(f"rows {count(old.data_rows)} -> {count(new.data_rows)}")
    if new.units < old.units:
        lost.append(f"{unit}s {count(old.units)} -> {count(new.units)}")
    missing = sorted(set(old.periods) - set(new.periods))
    if missing:
        lost.append(f"{period}s lost: {', '.join(missing)}")
    return f"{old.name} shrank since it was last loaded ({'; '.join(lost)})" if lost else None


def check_shrinkage(old: dict[str, FileFacts], new: dict[str, FileFacts], accepted: list[str], unit: str,
                    period: str, op: str, count: Callable[[int], int | str] = int) -> list[str]:
    """Raise ``ShrunkExport`` for every file that lost something, unless ``accepted`` names
    it; return the accepted shrinkages (for the log and metadata), counts shown as ``count``
    shows them. The message gives the run config of the loading ``op`` that accepts them, as the
    Launchpad takes it."""
    problems, allowed = [], []
    for name, facts in old.items():
        message = shrinkage(facts, new.get(name), unit, period, count)
        if message is None:
            continue
        (allowed if name in accepted else problems).append(message)
    if problems:
        shrunk = [name for name in old if any(name in problem for problem in problems)]
        run_config = json.dumps({"ops": {op: {"config": {"accept_shrunk_exports": shrunk}}}})
        raise ShrunkExport(
            "nothing loaded, the previous load stays: " + " | ".join(problems)
            + ". If the smaller export is right (rows deleted on purpose, a file retired), launch the job again "
              f"(the Launchpad, or dagster job execute -c with a file holding it) with the run config {run_config}")
    return allowed


def write_facts(conn: duckdb.DuckDBPyConnection, kind: str, facts: dict[str, FileFacts]) -> None:
    """Replace the manifest rows of ``kind`` with ``facts`` (inside the caller's transaction)."""
    schema, table = MANIFESTS[kind]
    ensure_schema(conn, schema)
    conn.execute(f"create table if not exists {schema}.{table} (file varchar, kind varchar, preset varchar, "
                 "sha256 varchar, data_rows bigint, units bigint, periods varchar, loaded_at timestamptz)")
    conn.execute(f"delete from {schema}.{table} where kind = ?", [kind])
    frame = pl.DataFrame(
        [{"file": f.name, "kind": kind, "preset": f.preset, "sha256": f.sha256, "data_rows": f.data_rows,
          "units": f.units, "periods": json.dumps(list(f.periods)), "loaded_at": datetime.now(UTC)}
         for f in facts.values()],
        schema={"file": pl.String, "kind": pl.String, "preset": pl.String, "sha256": pl.String,
                "data_rows": pl.Int64, "units": pl.Int64, "periods": pl.String,
                "loaded_at": pl.Datetime(time_zone="UTC")})
    conn.register("incoming_facts", frame.to_arrow())
    try:
        conn.execute(f"insert into {schema}.{table} select * from incoming_facts")
    finally:
        conn.unregister("incoming_facts")


def clear_warehouse_facts(conn: duckdb.DuckDBPyConnection, kind: str) -> int:
    """Delete the rows of ``kind`` an earlier release kept in the warehouse's manifest, when the
    kind's manifest is elsewhere (survey files: the restricted file), in one transaction with the
    rewrite marker: DuckDB keeps a deleted row's bytes in the file until the block is reused, so
    the next connection rewrites the warehouse file. Returns the number of rows."""
    schema, table = WAREHOUSE_MANIFEST
    if MANIFESTS[kind] == WAREHOUSE_MANIFEST or not table_columns(conn, f"{schema}.{table}"):
        return 0
    [(rows,)] = conn.execute(f"select count(*) from {schema}.{table} where kind = ?", [kind]).fetchall()
    if rows:
        conn.execute("begin transaction")
        try:
            conn.execute(f"delete from {schema}.{table} where kind = ?", [kind])
            leave_rewrite_marker(conn)
            conn.execute("commit")
        except BaseException:
            conn.execute("rollback")
            raise
    return rows
