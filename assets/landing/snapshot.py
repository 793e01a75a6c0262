"""Reading a landing file only when it is complete, and only from a consistent snapshot.

A file being copied in looks like a short but valid export, so two rules apply before any
row is read, in the sensor and in every run alike (``is_ready``):

- the file has not changed (size and modification time) for ``settle_seconds``;
- a text export ends with a line break, or its last record parses whole (checked by the
  reader, which quarantines a cut-off last record); an XLSX file is a complete ZIP archive.

The read itself copies the file to a private snapshot while hashing it, hashes the file
again, and refuses the snapshot unless size and SHA-256 match: a file overwritten during the
read fails the load naming the file instead of loading a mix of two versions.
"""

from __future__ import annotations

import codecs
import hashlib
import shutil
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20
# mac_roman: Excel for Mac's "Comma Separated Values" and "Macintosh Comma Separated" (its accented
# letters read as Windows-1252 are other letters, Ingénieur as IngŽnieur). It is never detected:
# its bytes are valid Windows-1252 too, so only the setting tells them apart.
ENCODINGS = ("auto", "utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "cp1252", "latin-1", "mac_roman")
ZIP_SIGNATURE = b"PK\x03\x04"


class SnapshotChanged(RuntimeError):
    """The file changed while it was being read."""


@dataclass(frozen=True)
class Snapshot:
    """A private, verified copy of a landing file: ``path`` is the copy to read (text
    transcoded to UTF-8), ``source`` the landing file, ``sha256``/``size`` its content."""

    source: Path
    path: Path
    sha256: str
    size: int
    mtime_ns: int
    encoding: str
    is_zip: bool

    @property
    def name(self) -> str:
        return self.source.name


def file_state(path: Path) -> tuple[int, int]:
    """(mtime in ns, size): what the sensor's cursor and the settle rule compare."""
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def is_ready(path: Path, settle_seconds: float, now: float | None = None) -> tuple[bool, str]:
    """Whether ``path`` may be read now, and if not why: changed within ``settle_seconds``,
    an XLSX that is not a complete ZIP archive (a copy still under way). A text file that
    does not end with a line break is read, and its last record must parse whole."""
    mtime_ns, size = file_state(path)
    age = (now if now is not None else time.time()) - mtime_ns / 1e9
    if age < settle_seconds:
        return False, f"{path.name} changed {age:.0f} s ago (less than {settle_seconds:.0f} s): waiting for the copy to finish"
    if size == 0:
        return False, f"{path.name} is empty: waiting for its content"
    with path.open("rb") as fh:
        head = fh.read(4)
    if head == ZIP_SIGNATURE and not _complete_zip(path):
        return False, f"{path.name} is a ZIP/XLSX file without its central directory (copy unfinished or file damaged)"
    return True, ""


def _complete_zip(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError):
        return False


def _sha256(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def take_snapshot(source: Path, workdir: Path, encoding: str = "auto") -> Snapshot:
    """Copy ``source`` into ``workdir`` while hashing it; raise ``SnapshotChanged`` unless a
    second hash of ``source`` after the copy gives the same size and SHA-256. Text in
    another encoding than UTF-8 is transcoded so that every reader sees UTF-8."""
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown export encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")
    mtime_ns, _ = file_state(source)
    raw_copy = workdir / f"{source.name}.snapshot"
    digest, size = hashlib.sha256(), 0
    with source.open("rb") as fh, raw_copy.open("wb") as out:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    after, after_size = _sha256(source)
    if (after, after_size) != (digest.hexdigest(), size):
        raise SnapshotChanged(
            f"{source.name} changed while it was being read ({size} bytes, then {after_size}; checksums differ): "
            "nothing was loaded from it. Let the copy into the landing folder finish; the next run reads it again."
        )
    with raw_copy.open("rb") as fh:
        head = fh.read(4)
    if head == ZIP_SIGNATURE:
        return Snapshot(source, raw_copy, after, size, mtime_ns, "binary", True)
    used = detect_encoding(raw_copy) if encoding == "auto" else encoding
    path = raw_copy
    if used not in ("utf-8", "utf-8-sig"):
        path = workdir / f"{source.name}.utf8"
        _transcode(raw_copy, path, used)
    return Snapshot(source, path, after, size, mtime_ns, used, False)


def detect_encoding(path: Path) -> str:
    """A BOM wins; NUL bytes mean BOM-less UTF-16; text that is not valid UTF-8 anywhere it
    uses non-ASCII bytes is Windows-1252. Streams the file: memory stays flat."""
    with path.open("rb") as fh:
        head = fh.read(4096)
        if head.startswith(b"\xef\xbb\xbf"):
            return "utf-8-sig"
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            return "utf-16"
        if head.count(b"\x00") > len(head) // 4:
            return "utf-16-le" if head[1:2] == b"\x00" else "utf-16-be"
        fh.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        valid_non_ascii = invalid = False
        while chunk := fh.read(CHUNK):
            if chunk.isascii():
                continue
            text = decoder.decode(chunk)
            invalid = invalid or any(0xDC80 <= ord(ch) <= 0xDCFF for ch in text)
            valid_non_ascii = valid_non_ascii or any(ord(ch) > 127 and not 0xDC80 <= ord(ch) <= 0xDCFF for ch in text)
            if valid_non_ascii:
                return "utf-8"
    return "cp1252" if invalid else "utf-8"


def _transcode(source: Path, target: Path, encoding: str) -> None:
    try:
        with source.open("r", encoding=encoding, newline="") as fh, target.open("w", encoding="utf-8", newline="") as out:
            shutil.copyfileobj(fh, out, CHUNK)
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{source.name.removesuffix('.snapshot')}: not readable as {encoding} ({error.reason} at byte {error.start}); "
            f"set the export encoding (PSAFE_EXPORT_ENCODING or the mapping file's encoding: one of {', '.join(ENCODINGS)})"
        ) from None
