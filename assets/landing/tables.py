"""Reading an export's records as text, in one pass that reports everything wrong with it.

CSV and TSV go through DuckDB's CSV reader (delimiter and width from the header line, RFC 4180 quoting, every
malformed record kept in its rejects table with the reason); XLSX through python-calamine.
No header is assumed: every record comes back, header rows included, numbered as a
spreadsheet shows it (row 1 is the first line; a cell spanning several lines is one row),
so a preset can find a header of one, two or three rows.

Nothing is dropped silently: a record DuckDB cannot read comes back in ``rejected`` with its
row and a reason; a malformed quote that swallowed the lines after it quarantines each of
those lines, naming the quote; a record cut off at the end of the file (a copy that
stopped) is rejected as such; an over-long free-text cell is dropped with a note.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field, replace

import duckdb
import polars as pl
from python_calamine import CalamineWorkbook

from assets.landing.snapshot import CHUNK, Snapshot

# Excel's own limit on a cell: longer text is free text nobody could have typed in a cell.
MAX_CELL_CHARS = 32_767
# DuckDB refuses longer lines; a free-text comment of several MB still fits.
MAX_LINE_BYTES = 8 * 1024 * 1024
# What a refusal of a workbook read from its first sheet adds: the data may be on another.
SHEET_HINT = "{names} (name the sheet to read as sheet: in a files: entry of export_mapping.yml)"
# Rows above the header a report tool may add (a title, a run date): how far down a file or
# a sheet its header is looked for.
MAX_TITLE_ROWS = 10
# A workbook's date column formatted General holds Excel's serial dates: days since 1899-12-30
# in the 1900 date system (its day 60 is the 29 February 1900 that never was, so the count is
# right from March 1900 on), the time of day as the fraction. A number below 1970-01-01's
# serial is no survey or HR date (an answer or an id in the wrong column): refused, not read as
# a day of 1900.
EXCEL_EPOCH = dt.datetime(1899, 12, 30)
EXCEL_SERIAL_MIN = 25569
# Rows kept in Python to find a header (title rows, up to three header rows).
HEAD_ROWS = 12
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
# Excel's first line naming the delimiter ("sep=;", quoted by some writers), then its line break.
SEP_LINE = re.compile(r'"?sep=(.)"?[ \t]*\r?\n', re.IGNORECASE)
DUCKDB_REASONS = {
    "INVALID ENCODING": "wrong encoding",
    "MISSING COLUMNS": "malformed row",
    "TOO MANY COLUMNS": "malformed row",
    "UNQUOTED VALUE": "malformed quote",
    "LINE SIZE OVER MAXIMUM": "line too long",
    "CAST": "malformed row",
}


@dataclass
class Records:
    """An export's records as text. ``frame`` holds ``row`` (spreadsheet row number) and
    one String column per field, ``c0``..``cN``; ``rejected`` the rows that could not be read
    as (row, raw text, reason); ``diagnosis`` what the reader found (format, delimiter,
    encoding); ``notes`` what it dropped on purpose (over-long free text); ``typed_cells`` a
    workbook's date and number cells as typed."""

    frame: pl.DataFrame
    rejected: list[tuple[int, str, str]] = field(default_factory=list)
    diagnosis: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # A workbook's cells that hold dates, or numbers from 1970's serial date on, as the workbook
    # types them: field index -> {row: value}. Their text in ``frame`` is what a CSV would hold
    # (ISO dates, 4 for 4.0); a date reader takes a date cell as a date, whatever text pattern
    # the file's text dates use, and a number in a date column as Excel's serial date.
    typed_cells: dict[int, dict[int, object]] = field(default_factory=dict)

    @property
    def width(self) -> int:
        return self.frame.width - 1

    def row(self, index: int) -> list[str]:
        """Record ``index`` (0-based, in file order) as a list of text."""
        return [value or "" for value in self.frame.row(index)[1:]]


def read_records(snapshot: Snapshot, sheet: str | None = None) -> Records:
    """Every record of ``snapshot`` (CSV, TSV or XLSX), header rows included, in memory.
    What DuckDB spills goes beside the snapshot, in its private folder (by default it would go
    to the process's working folder, where anyone might read survey answers)."""
    conn = duckdb.connect(config={"temp_directory": str(snapshot.path.parent / "spill")})
    try:
        records = load_records(conn, snapshot, sheet)
        records.frame = conn.execute("select * from export order by row").pl()
    finally:
        conn.close()
    return records


def load_records(conn: duckdb.DuckDBPyConnection, snapshot: Snapshot, sheet: str | None = None) -> Records:
    """Every record of ``snapshot`` into the table ``export`` (``row``, ``c0``..``cN``) of
    ``conn``: large exports stay in DuckDB (which spills to disk) instead of Python memory.
    The returned ``Records`` holds the first rows only (for finding the header)."""
    if snapshot.is_zip:
        records = _read_xlsx(snapshot, sheet)
        conn.register("xlsx_frame", records.frame.to_arrow())
        conn.execute("create table export as select * from xlsx_frame")
        conn.unregister("xlsx_frame")
    else:
        records = _read_text(conn, snapshot)
    _drop_overlong_cells(conn, records)
    records.frame = conn.execute(f"select * from export order by row limit {HEAD_ROWS}").pl()
    return records


class UnreadableText(ValueError):
    """DuckDB's CSV reader gave up on a file (not a record of it: the whole file)."""


def _read_text(conn: duckdb.DuckDBPyConnection, snapshot: Snapshot) -> Records:
    snapshot = _with_lf_line_ends(snapshot)
    delimiter, width, skip = _dialect(snapshot)
    name = DELIMITER_NAMES.get(delimiter, repr(delimiter))
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width)) + "}"
    try:
        conn.execute(
            "create table records as select * from read_csv(?, header=false, "
            "auto_detect=false, delim=?, quote='\"', escape='\"', skip=?, "
            f"columns={columns}, strict_mode=true, store_rejects=true, rejects_table='rejected_rows', "
            f"rejects_scan='rejected_scans', max_line_size={MAX_LINE_BYTES})",
            [str(snapshot.path), delimiter, skip],
        )
    except duckdb.Error as error:
        raise UnreadableText(
            f"{snapshot.name}: DuckDB's CSV reader could not read it as {name}-delimited "
            f"text with {width} columns ({str(error).splitlines()[0]}); export it again as CSV (UTF-8) or XLSX"
        ) from None
    # DuckDB counts the skipped sep line; a spreadsheet does not show it as a row.
    errors = [(line - skip, *rest) for line, *rest in conn.execute(
        "select distinct line, line_byte_position, error_type, csv_line, error_message, byte_position "
        "from rejected_rows order by line"
    ).fetchall()]
    records = Records(
        frame=pl.DataFrame(),
        diagnosis={"format": "tsv" if delimiter == "\t" else "csv", "delimiter": name,
                   "encoding": snapshot.encoding, **({"sep_line": f"sep={delimiter}"} if skip else {})},
    )
    _numbered(conn, sorted(_rejected(snapshot, errors, records)))
    return records


def _dialect(snapshot: Snapshot) -> tuple[str, int, int]:
    """The delimiter, how many fields a record has, and how many lines to skip before the
    header. Excel's ``sep=;`` first line (written to tell Excel the delimiter, and hidden by
    Excel as no row) names the delimiter and is skipped. Otherwise the delimiter is the one
    that splits the first record into the most fields (comma on a tie). The first record, not
    line: a header cell may hold a line break (Alt+Enter in Excel) or a quoted delimiter. The
    header fixes the width every record must have. (DuckDB's sniffer guesses wrong, or stops,
    on the very files that need diagnosing: a broken quote or a stray byte in its sample; it
    does not know the sep line either.)"""
    with snapshot.path.open("rb") as fh:
        head = fh.read(MAX_LINE_BYTES).decode("utf-8", errors="replace").lstrip("\ufeff")
    sep_line = SEP_LINE.match(head)
    if sep_line:
        delimiter, head = sep_line.group(1), head[sep_line.end():]
        return delimiter, max(len(next(csv.reader(io.StringIO(head, newline=""), delimiter=delimiter), [])), 1), 1
    widths = {d: len(next(csv.reader(io.StringIO(head, newline=""), delimiter=d), [])) for d in DELIMITER_NAMES}
    delimiter = max(widths, key=lambda d: widths[d])  # the first of the widest: comma before the others
    return delimiter, max(widths[delimiter], 1), 0


def _with_lf_line_ends(snapshot: Snapshot) -> Snapshot:
    """DuckDB (1.5) takes a file's line ending from its first line break and, in strict mode,
    fails on the whole file ("The CSV Parser state machine reached an invalid state") where
    another follows: a CRLF export with a row appended by an editor that writes LF, or an Excel
    CSV (records end in CRLF) whose header cell holds a line break (Alt+Enter writes LF). A
    file with any CRLF is therefore read from a copy with LF line ends (a CRLF inside a quoted
    cell becomes LF too: free text is never loaded, and header texts are compared with their
    white space normalised)."""
    with snapshot.path.open("rb") as fh:
        carried = b""
        while chunk := fh.read(CHUNK):
            if b"\r\n" in carried + chunk:
                break
            carried = chunk[-1:]
        else:
            return snapshot
    copy = snapshot.path.with_name(f"{snapshot.path.name}.lf")
    with snapshot.path.open("rb") as fh, copy.open("wb") as out:
        carried = b""
        while chunk := fh.read(CHUNK):
            chunk = carried + chunk
            carried = b"\r" if chunk.endswith(b"\r") else b""
            out.write(chunk[: len(chunk) - len(carried)].replace(b"\r\n", b"\n"))
        out.write(carried)
    return replace(snapshot, path=copy)


def _rejected(snapshot: Snapshot, errors: list[tuple], records: Records) -> set[int]:
    """Turn DuckDB's rejects into quarantine rows; return the row numbers they occupy."""
    rows: set[int] = set()
    by_row: dict[int, list[tuple]] = {}
    for error in errors:
        by_row.setdefault(error[0], []).append(error)
    with snapshot.path.open("rb") as fh:
        data_size = snapshot.path.stat().st_size
        for row, row_errors in by_row.items():
            rows.add(row)
            _, reported_start, error_type, csv_line, message, _ = row_errors[0]
            byte_position = _line_start(fh, reported_start)
            kinds = {e[2] for e in row_errors}
            if "INVALID ENCODING" in kinds:
                fh.seek(byte_position)
                raw_bytes = fh.readline().rstrip(b"\r\n")
                escaped = raw_bytes.decode("utf-8", errors="surrogateescape")
                bad = sorted({f"0x{ord(ch) - 0xDC00:02X}" for ch in escaped if 0xDC80 <= ord(ch) <= 0xDCFF})
                records.rejected.append((row, raw_bytes.decode("cp1252", errors="replace"),
                                         f"wrong encoding: bytes {', '.join(bad)} are not UTF-8 like the rest of the file"))
                continue
            if "UNQUOTED VALUE" in kinds:
                lines = _swallowed_lines(fh, byte_position, row_errors[0], data_size)
                reason = (f"malformed quote: a quote opened on row {row} is not closed where the field ends, so it "
                          f"swallowed {len(lines)} line(s) of the file; fix the quote and export again")
                records.rejected.extend((row, line, reason) for line in lines)
                continue
            if "LINE SIZE OVER MAXIMUM" in kinds:
                records.rejected.append((row, (csv_line or "")[:1000], f"line too long: over {MAX_LINE_BYTES} bytes"))
                continue
            fh.seek(byte_position)
            raw_bytes = fh.read(min(len((csv_line or "").encode()) + 2, data_size - byte_position))
            at_end = byte_position + len(raw_bytes.rstrip(b"\r\n")) >= data_size - (2 if raw_bytes.endswith(b"\n") else 0)
            text = (csv_line or "").rstrip("\r\n")
            if at_end and not raw_bytes.endswith(b"\n") and "MISSING COLUMNS" in kinds:
                reason = (f"cut off: the last record has fewer fields than the header and no line break after it "
                          f"(a copy that stopped?): {message}")
            else:
                reason = f"{DUCKDB_REASONS.get(error_type, 'malformed row')}: {message}"
            records.rejected.append((row, text, reason))
    return rows


def _line_start(fh, reported: int) -> int:
    """The first byte of the line DuckDB reports at ``reported`` (its count starts at 0 or 1
    depending on the line ending): just after the line break before it."""
    window_start = max(reported - 2, 0)
    fh.seek(window_start)
    window = fh.read(reported + 1 - window_start)
    newline = window.rfind(b"\n")
    return window_start + newline + 1 if newline >= 0 else max(reported - 1, 0)


def _swallowed_lines(fh, line_start: int, error: tuple, data_size: int) -> list[str]:
    """The lines a quote that opens a field and never closes in place took with it: from the
    record's line to the line where the next quote character closes it, or to the end of the
    file. (DuckDB's own copy of the record stops at 10,000 characters.)"""
    fh.seek(line_start)
    span = fh.read(min(data_size - line_start, MAX_LINE_BYTES))
    quote = span.find(b'"', max(error[5] - 2 - line_start, 0))  # the opening quote (DuckDB counts from 1)
    closing = span.find(b'"', quote + 1) if quote >= 0 else -1
    end = len(span) if closing < 0 else (span.find(b"\n", closing) + 1 or len(span))
    return [line.rstrip(b"\r").decode("utf-8", errors="replace") for line in span[:end].split(b"\n") if line.strip()]


def _numbered(conn: duckdb.DuckDBPyConnection, rejected_rows: list[int]) -> None:
    """Table ``export``: the records with their row numbers. Accepted records fill, in order,
    the rows not taken by rejected ones: the k-th is on row k + the number of rejected rows
    before it, i.e. k + the number of thresholds (rejected row - rejected rows so far) below k."""
    if not rejected_rows:  # rowid is the insertion (file) order
        conn.execute("create view export as select rowid + 1 as row, * from records")
        return
    thresholds = pl.DataFrame({"threshold": [row - taken for taken, row in enumerate(rejected_rows, start=1)],
                               "offset": list(range(1, len(rejected_rows) + 1))},
                              schema={"threshold": pl.Int64, "offset": pl.Int64})
    conn.register("thresholds", thresholds.to_arrow())
    conn.execute("create table export as select numbered.k + coalesce(t.offset, 0) as row, numbered.* exclude (k) "
                 "from (select rowid + 1 as k, * from records) as numbered "
                 "asof left join thresholds as t on numbered.k > t.threshold")
    conn.execute("drop table records")
    conn.unregister("thresholds")


def _drop_overlong_cells(conn: duckdb.DuckDBPyConnection, records: Records) -> None:
    columns = [c for c in conn.table("export").columns if c != "row"]
    if not columns:
        return
    condition = " or ".join(f"length({c}) > {MAX_CELL_CHARS}" for c in columns)
    for row, *values in conn.execute(f"select row, {', '.join(columns)} from export where {condition}").fetchall():
        for column, value in zip(columns, values):
            if value is not None and len(value) > MAX_CELL_CHARS:
                records.notes.append(f"row {row}, field {int(column[1:]) + 1}: {len(value):,} characters of text "
                                     f"dropped (over {MAX_CELL_CHARS:,}; free text is never loaded)")
    if records.notes:
        # ``export`` is a view over ``records`` when no record was rejected.
        views = conn.execute("select count(*) from duckdb_views() where view_name = 'export'").fetchone()[0]
        conn.execute(f"update {'records' if views else 'export'} set " + ", ".join(
            f"{c} = case when length({c}) > {MAX_CELL_CHARS} then '' else {c} end" for c in columns))


def _read_xlsx(snapshot: Snapshot, sheet: str | None) -> Records:
    """The sheet named, else the first sheet continued by every later sheet that repeats one of
    its first rows (its header, perhaps below the same title rows): report tools write a long
    report over several sheets (IBM Cognos, behind UKG's reports, at 65,536 rows a sheet; SSRS a
    sheet a page). Rows are numbered on through the sheets read, in the workbook's order."""
    try:
        workbook = CalamineWorkbook.from_path(str(snapshot.path))
    except Exception as error:  # calamine raises its own error types for non-workbooks
        raise ValueError(f"{snapshot.name}: a ZIP file but not a readable XLSX workbook ({error})") from None
    names = workbook.sheet_names
    if sheet is not None and sheet not in names:
        raise ValueError(f"{snapshot.name}: no sheet {sheet!r}; the workbook has {names}")
    base = sheet or names[0]
    rows = workbook.get_sheet_by_name(base).to_python(skip_empty_area=False)
    opening = {_row_key(r) for r in _first_rows(rows)}
    read, others = [base], []
    # A sheet named is read alone; the sheets before the first are no continuation of it.
    for name in names[1:] if sheet is None else ():
        more = workbook.get_sheet_by_name(name).to_python(skip_empty_area=False)
        if (header := _repeated_header(more, opening)) is not None:
            rows += more[header + 1:]
            read.append(name)
        else:
            others.append(name)
    width = max((len(r) for r in rows), default=0)
    text_rows = [[_cell_text(v) for v in r] + [""] * (width - len(r)) for r in rows]
    numbered = [(i, r) for i, r in enumerate(text_rows, start=1) if any(v.strip() for v in r)]
    typed: dict[int, dict[int, object]] = {}
    for i, r in enumerate(rows, start=1):
        for j, value in enumerate(r):
            # Only what a date reader can take as a date: every number of a large roster would
            # cost memory for nothing.
            if isinstance(value, dt.date) or (isinstance(value, (int, float)) and not isinstance(value, bool)
                                              and value >= EXCEL_SERIAL_MIN):
                typed.setdefault(j, {})[i] = value
    frame = pl.DataFrame(
        {"row": [i for i, _ in numbered], **{f"c{j}": [r[j] for _, r in numbered] for j in range(width)}},
        schema={"row": pl.Int64, **{f"c{j}": pl.String for j in range(width)}},
    )
    diagnosis = {"format": "xlsx", "sheet": ", ".join(read), "encoding": "xlsx"}
    if others:
        diagnosis["other_sheets"] = SHEET_HINT.format(names=", ".join(repr(n) for n in others))
    return Records(frame=frame, diagnosis=diagnosis, typed_cells=typed)


def _row_key(row: list) -> tuple[str, ...]:
    return tuple(header_text(_cell_text(v)) for v in row if _cell_text(v).strip())


def _first_rows(rows: list[list]) -> list[list]:
    """The first non-empty rows of a sheet, where its header is (below a report's title rows)."""
    return [r for r in rows if any(_cell_text(v).strip() for v in r)][:MAX_TITLE_ROWS]


def _repeated_header(rows: list[list], opening: set[tuple[str, ...]]) -> int | None:
    """The index of the last of a sheet's first rows that repeats one of the read sheet's first
    rows and has more than one cell (a header, not a lone title), or None: not a continuation."""
    found, seen = None, 0
    for index, row in enumerate(rows):
        if not (key := _row_key(row)):
            continue
        if len(key) > 1 and key in opening:
            found = index
        seen += 1
        if seen == MAX_TITLE_ROWS:
            break
    return found


def _cell_text(value) -> str:
    """A cell as the text a CSV export would hold: whole numbers without '.0', dates ISO."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def sql_text(value: str) -> str:
    """``value`` as a DuckDB string literal, for what an export or the mapping file names (a
    file called O'Brien's roster.csv, a date_format of %d %b '%y) where a query cannot take it
    as a parameter (COPY's target, a list built into a query)."""
    return "'" + str(value).replace("'", "''") + "'"


def header_text(value: str) -> str:
    """A header cell as compared: case, spacing, curly quotes and trailing punctuation ignored."""
    text = value.replace("\u2019", "'").replace("\u2018", "'").replace("\u00a0", " ")
    return re.sub(r"\s+", " ", text).strip().rstrip(".?!:;*").strip().lower()
