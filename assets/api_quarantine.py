"""Poison API records: kept aside in ``quarantine.api_records``, never fatal to their stream.

A record the API sends that cannot be parsed (no id, a date that is not a date) or completed
(a Jira changelog shorter than its own total, an incident the API no longer serves) is stored
here with its payload, the reason, and the request that produced or failed it (method, path
and parameters: never headers). The rest of its page and stream load. Every later run tries
the stream's quarantined records again (by id, from the API) and releases those that load; an
asset check warns, with their count and ids, while any remain.

A sync in which more than ``max_quarantined_share`` of the records received could not load
fails instead: that many bad records is a systematic problem (a changed payload format, a
proxy mangling bodies), not poison, and quietly setting them aside would hide it.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from assets.api_retry import ApiError
from assets.warehouse.pool import WAREHOUSE_POOL
from assets.warehouse.raw_tables import RawRecordError, untypable_records, write_batch

QUARANTINE_TABLE = "quarantine.api_records"
# A sync fails when more than this share of the records it received could not load.
DEFAULT_MAX_QUARANTINED_SHARE = 0.05
# Ids listed in a check's metadata and a failure message (the table holds them all).
IDS_SHOWN = 50


@dataclass(frozen=True)
class ApiRequest:
    """A request as the quarantine records it: method, path and parameters, never headers."""

    method: str
    path: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> str:
        return json.dumps({"method": self.method, "path": self.path, "params": dict(self.params)}, sort_keys=True,
                          default=str)

    def __str__(self) -> str:
        query = "&".join(f"{name}={value}" for name, value in self.params.items())
        return f"{self.method} {self.path}" + (f"?{query}" if query else "")


class PoisonRecord(Exception):
    """This record cannot be loaded: ``reason`` says why ('category: detail'), ``request`` is
    the request that produced or failed it."""

    def __init__(self, reason: str, request: ApiRequest):
        super().__init__(reason)
        self.reason = reason
        self.request = request


@dataclass(frozen=True)
class Quarantined:
    record_id: str
    reason: str
    request: ApiRequest
    payload: Any = None


def record_id(record: Any) -> str:
    """The record's own id, else a digest of its payload (a record without an id is still
    kept, once)."""
    if isinstance(record, dict) and isinstance(record.get("id"), str | int) and str(record["id"]):
        return str(record["id"])
    digest = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()
    return f"sha256:{digest[:32]}"


def _ensure_table(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("create schema if not exists quarantine")
    conn.execute(
        f"create table if not exists {QUARANTINE_TABLE} (stream varchar not null, record_id varchar not null, "
        "reason varchar not null, request json not null, payload json, first_quarantined_at timestamptz not null, "
        "last_attempt_at timestamptz not null, attempts integer not null, primary key (stream, record_id))"
    )


def quarantine(conn: duckdb.DuckDBPyConnection, stream: str, records: Iterable[Quarantined]) -> int:
    """Store ``records`` (or, for one already quarantined, its latest reason, request and
    payload, counting the attempt)."""
    rows = [(stream, q.record_id, q.reason, q.request.as_json(),
             None if q.payload is None else json.dumps(q.payload, sort_keys=True, default=str)) for q in records]
    _ensure_table(conn)
    if rows:
        conn.executemany(
            f"insert into {QUARANTINE_TABLE} values (?, ?, ?, ?::json, ?::json, now(), now(), 1) "
            "on conflict (stream, record_id) do update set reason = excluded.reason, request = excluded.request, "
            "payload = coalesce(excluded.payload, api_records.payload), last_attempt_at = excluded.last_attempt_at, "
            "attempts = api_records.attempts + 1",
            rows,
        )
    return len(rows)


def release(conn: duckdb.DuckDBPyConnection, stream: str, ids: Iterable[str]) -> None:
    """Take the records that loaded out of quarantine."""
    ids = list(ids)
    if ids:
        _ensure_table(conn)
        conn.execute(f"delete from {QUARANTINE_TABLE} where stream = ? and record_id in (select unnest(?))",
                     [stream, ids])


def replace_quarantine(conn: duckdb.DuckDBPyConnection, stream: str, records: list[Quarantined]) -> None:
    """For streams listed whole every run (teams, services): the quarantine is this run's."""
    _ensure_table(conn)
    conn.execute(f"delete from {QUARANTINE_TABLE} where stream = ?", [stream])
    quarantine(conn, stream, records)


def quarantined(conn: duckdb.DuckDBPyConnection, stream: str) -> list[Quarantined]:
    """The stream's quarantined records, oldest first."""
    _ensure_table(conn)
    rows = conn.execute(
        f"select record_id, reason, request, payload from {QUARANTINE_TABLE} where stream = ? "
        "order by first_quarantined_at, record_id", [stream]
    ).fetchall()
    return [
        Quarantined(record_id, reason, ApiRequest(**json.loads(request)), None if payload is None else json.loads(payload))
        for record_id, reason, request, payload in rows
    ]


def split_poison(records: Iterable[dict], problem: Callable[[dict], str | None],
                 request: ApiRequest) -> tuple[list[dict], list[Quarantined]]:
    """``records`` that load, and the others (``problem(record)`` names what is wrong)."""
    loadable, poison = [], []
    for record in records:
        reason = problem(record) if isinstance(record, dict) else f"unparseable: not a JSON object ({type(record).__name__})"
        if reason is None:
            loadable.append(record)
        else:
            poison.append(Quarantined(record_id(record), reason, request, record))
    return loadable, poison


def split_untypable(conn: duckdb.DuckDBPyConnection, table: str, records: list[dict],
                    request: ApiRequest) -> tuple[list[dict], list[Quarantined]]:
    """``records`` that ``raw.<table>`` can store, and the others: a field it keeps as a typed
    column that is not of its type (assets/warehouse/raw_tables.py says which fields)."""
    reasons = untypable_records(conn, table, records)
    loadable = [record for record in records if record_id(record) not in reasons]
    poison = [Quarantined(record_id(record), reasons[record_id(record)], request, record)
              for record in records if record_id(record) in reasons]
    return loadable, poison


def write_typable(conn: duckdb.DuckDBPyConnection, table: str, pages: list[tuple[list[dict], ApiRequest]],
                  set_aside: Callable[[list[Quarantined]], None], **write) -> list[dict]:
    """Write the records of ``pages`` (each with the request that returned it) into
    ``raw.<table>`` (``write_batch``, with ``write``'s mark); when a typed column cannot hold
    some, hand those to ``set_aside`` first, named with their page's request, and write the
    rest. A record on several pages is written (or set aside) as its last page has it: an API
    serves a record edited while it is paged through again, later, as it is now. Returns the
    records written. The write is tried whole first, so a batch whose every record fits (nearly
    all) is parsed once, not checked and then written. A failed write is rolled back (inside
    its transaction DuckDB reports a conversion error as an aborted transaction, not as
    ``RawRecordError``); when no record is untypable, the second write raises the real error."""
    pages = _last_copies(pages)
    records = [record for page, _ in pages for record in page]
    try:
        write_batch(conn, table, records, **write)
        return records
    except (RawRecordError, duckdb.Error):
        loadable = []
        for page, request in pages:
            fitting, untypable = split_untypable(conn, table, page, request)
            set_aside(untypable)
            loadable += fitting
        write_batch(conn, table, loadable, **write)
        return loadable


def _last_copies(pages: list[tuple[list[dict], ApiRequest]]) -> list[tuple[list[dict], ApiRequest]]:
    """``pages`` with each record only on the last page that has it."""
    seen: set[str] = set()
    kept = []
    for records, request in reversed(pages):
        latest = []
        for record in reversed(records):
            key = record_id(record)
            if key not in seen:
                seen.add(key)
                latest.append(record)
        kept.append((latest[::-1], request))
    return kept[::-1]


def without_quarantined(pages: list[tuple[list[dict], ApiRequest]],
                        poison: list[Quarantined]) -> list[tuple[list[dict], ApiRequest]]:
    """``pages`` (records waiting to be written) without the records ``poison`` has just
    quarantined: a later copy of a record that cannot load supersedes an earlier one, which
    written would take the newer copy out of quarantine."""
    ids = {record.record_id for record in poison}
    return [([record for record in records if record_id(record) not in ids], request) for records, request in pages]


@dataclass
class PoisonShare:
    """Counts the records a sync received and those it quarantined, and fails the sync when
    the quarantined ones are more than ``max_share`` of them (at least one is always
    tolerated: a single bad record in a quiet night's three is poison, not a pattern)."""

    stream: str
    max_share: float
    received: int = 0
    reasons: Counter = field(default_factory=Counter)
    ids: list[str] = field(default_factory=list)

    def add(self, received: int, poison: list[Quarantined]) -> None:
        self.received += received
        self.reasons.update(q.reason.split(":")[0] for q in poison)
        self.ids.extend(q.record_id for q in poison)

    @property
    def quarantined(self) -> int:
        return len(self.ids)

    def check(self) -> None:
        if self.quarantined <= max(1.0, self.max_share * self.received):
            return
        reasons = ", ".join(f"{reason} ({count})" for reason, count in self.reasons.most_common())
        raise ApiError(
            f"raw.{self.stream}: {self.quarantined} of the {self.received} records received could not be loaded "
            f"({self.quarantined / max(self.received, 1):.0%}; by reason: {reasons}), more than the "
            f"{self.max_share:.0%} share a sync tolerates (`max_quarantined_share` of the resource). That many is a "
            f"systematic problem, not poison records: fix its cause (the reasons, payloads and requests are in "
            f"{QUARANTINE_TABLE}, e.g. ids {', '.join(self.ids[:5])}) or raise max_quarantined_share, then re-run."
        )


def quarantine_check(asset: dg.AssetsDefinition | dg.AssetKey, stream: str) -> dg.AssetChecksDefinition:
    """An asset check warning while ``stream`` has records in quarantine, with their count,
    ids and reasons."""

    @dg.asset_check(pool=WAREHOUSE_POOL, asset=asset, name="quarantine_is_empty", blocking=False,
                    description=f"Warns while {QUARANTINE_TABLE} holds records of raw.{stream} that could not be "
                                "loaded; every sync retries them.")
    def _check(duckdb: DuckDBResource) -> dg.AssetCheckResult:
        with duckdb.get_connection() as conn:
            exists = conn.execute(
                "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                QUARANTINE_TABLE.split("."),
            ).fetchone()[0]
            rows = conn.execute(
                f"select record_id, split_part(reason, ':', 1), attempts from {QUARANTINE_TABLE} "
                "where stream = ? order by first_quarantined_at, record_id", [stream]
            ).fetchall() if exists else []
        return dg.AssetCheckResult(
            passed=not rows,
            severity=dg.AssetCheckSeverity.WARN,
            description=(f"{len(rows)} records of raw.{stream} are in {QUARANTINE_TABLE}" if rows else None),
            metadata={
                "quarantined": len(rows),
                "ids": dg.MetadataValue.json([record for record, _, _ in rows[:IDS_SHOWN]]),
                "by_reason": dg.MetadataValue.json(dict(Counter(reason for _, reason, _ in rows))),
                "most_attempts": max((attempts for _, _, attempts in rows), default=0),
                "table": QUARANTINE_TABLE,
            },
        )

    return _check
