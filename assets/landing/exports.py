"""Reading export files as their tools write them: CSV in UTF-8 (with or without a BOM),
UTF-16 (Excel's "Unicode text"), or Windows-1252/Latin-1, with every row that cannot be read
cleanly kept for quarantine instead of dropped.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

ENCODINGS = ("auto", "utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1")


@dataclass
class ExportRows:
    """The rows of one export: ``rows`` as dicts of text keyed by the header, each with its
    1-based line number in ``lines``; ``rejected`` rows (line, raw text, reason) that could
    not be read; ``encoding`` as detected or configured."""

    encoding: str
    header: list[str]
    rows: list[dict[str, str]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)


def detect_encoding(data: bytes) -> str:
    """The encoding of an export from its bytes: a BOM wins; NUL bytes mean BOM-less UTF-16;
    text that is not valid UTF-8 anywhere it uses non-ASCII bytes is Windows-1252."""
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    head = data[:4096]
    if head.count(b"\x00") > len(head) // 4:
        return "utf-16-le" if head[1:2] == b"\x00" else "utf-16-be"
    decoded = data.decode("utf-8", errors="surrogateescape")
    valid_non_ascii = any(ord(ch) > 127 and not 0xDC80 <= ord(ch) <= 0xDCFF for ch in decoded)
    invalid = any(0xDC80 <= ord(ch) <= 0xDCFF for ch in decoded)
    if invalid and not valid_non_ascii:
        return "cp1252"
    return "utf-8"


def read_export(path: Path, encoding: str = "auto") -> ExportRows:
    """Parse ``path`` as CSV. In a UTF-8 file, a row holding bytes that are not UTF-8 (a
    line pasted from another system) is rejected with the reason, not guessed at."""
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown export encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")
    data = path.read_bytes()
    used = detect_encoding(data) if encoding == "auto" else encoding
    strict_utf8 = used in ("utf-8", "utf-8-sig")
    try:
        text = data.decode(used, errors="surrogateescape" if strict_utf8 else "strict")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path.name}: not readable as {used} ({error.reason} at byte {error.start}); "
            f"set the landing resource's export_encoding (one of {', '.join(ENCODINGS)})"
        ) from None
    records = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        header = [name.strip() for name in next(records)]
    except StopIteration:
        raise ValueError(f"{path.name}: the file is empty (no header row)") from None
    result = ExportRows(encoding=used, header=header)
    for record in records:
        line = records.line_num
        if not any(value.strip() for value in record):
            continue
        bad_bytes = sorted({f"0x{ord(ch) - 0xDC00:02X}" for value in record for ch in value if 0xDC80 <= ord(ch) <= 0xDCFF})
        if bad_bytes:
            raw = ",".join(record).encode("utf-8", errors="surrogateescape").decode("cp1252", errors="replace")
            result.rejected.append((line, raw, f"wrong encoding: bytes {', '.join(bad_bytes)} are not UTF-8 "
                                               f"like the rest of the file"))
            continue
        if len(record) != len(header):
            result.rejected.append((line, ",".join(record), f"malformed row: {len(record)} fields, "
                                                             f"the header has {len(header)}"))
            continue
        result.rows.append(dict(zip(header, record)))
        result.lines.append(line)
    return result


def raw_json(row: dict) -> str:
    return json.dumps(row, ensure_ascii=False, default=str)
