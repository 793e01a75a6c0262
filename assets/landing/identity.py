"""The identity map: which Jira account (or email address) is which employee of the HR roster.

    people:
      - employee_id: E000123                      # as the HR export writes it
        jira_account_ids: [5b10ac8d82e05b22cc7d4ef5]
        emails: [jane.doe@example.com]

``identity_map.yml`` in the landing folder is optional: without it the speaking-up KPIs (who
raises proactive tickets) are absent and the report says why. Every entry needs an employee id
and at least one account id or email; each list is optional. An unknown key, an employee
listed twice, or an account id or email given to two employees stops the load with a message
naming the entries: a wrong person is worse than a failed run.

Every value is hashed with the HR salt (assets/identity.py) before anything is written: the
warehouse holds ``raw.config__identity_map`` as pseudonyms only (kind, the account's or email's
pseudonym, the employee's), which join the pseudonyms the Jira sync stores for reporters and
the HR loader for employees.
"""

import re
from pathlib import Path

import dagster as dg
import polars as pl
import yaml
from dagster_duckdb import DuckDBResource

from assets.identity import (
    account_pseudonym,
    email_pseudonym,
    is_rounded_number,
    written_employee_key,
    written_employee_pseudonym,
)
from assets.landing.resource import LandingFolderResource
from assets.landing.team_map import yaml_list
from assets.warehouse.pool import WAREHOUSE_POOL
from assets.warehouse.raw_tables import replace_table, warehouse_connection

IDENTITY_MAP_FILE = "identity_map.yml"
# Keys of an entry: what each list holds and its kind in the table.
IDENTITY_KINDS = {"jira_account_ids": "jira_account_id", "emails": "email"}
SCHEMA = {"identity_kind": pl.String, "identity": pl.String, "employee_id": pl.String}


class IdentityMapError(ValueError):
    """The identity map is malformed or ambiguous; the message names the entries."""


def read_identity_map(path: Path) -> list[dict]:
    """Rows ``{"identity_kind", "identity", "employee_id", "entry"}`` in clear (the caller hashes
    them): one per account id or email address the map gives an employee, with the position of
    its entry in the file (1 for the first), by which the checks name it."""
    entries = yaml_list(path, "people", IdentityMapError)
    rows: list[dict] = []
    owners: dict[tuple[str, str], tuple[int, str]] = {}
    seen: dict[str, int] = {}
    for position, entry in enumerate(entries, start=1):
        where = f"{path}: people entry {position}"
        if not isinstance(entry, dict) or not str(entry.get("employee_id") or "").strip():
            raise IdentityMapError(f"{where}: every entry needs a non-empty 'employee_id'")
        employee = str(entry["employee_id"]).strip()
        if is_rounded_number(employee):
            raise IdentityMapError(f"{where}: employee_id {employee!r} is a number in scientific notation, which lost "
                                   "its last digits (a spreadsheet's doing); write the id as the HR export does")
        # One employee in the forms their id takes (00123 and 123 alike), as the HR loader reads it.
        if written_employee_key(employee) in seen:
            raise IdentityMapError(f"{where}: employee {employee!r} is also entry {seen[written_employee_key(employee)]}; "
                                   "give each employee one entry listing all their account ids and emails")
        seen[written_employee_key(employee)] = position
        unknown = sorted(set(entry) - {"employee_id", *IDENTITY_KINDS})
        if unknown:
            raise IdentityMapError(f"{where} ({employee}): unknown keys {unknown}; valid keys: employee_id, "
                                   f"{', '.join(IDENTITY_KINDS)}")
        found = 0
        for key, kind in IDENTITY_KINDS.items():
            values = entry.get(key) or []
            if not isinstance(values, list):
                raise IdentityMapError(f"{where} ({employee}): {key} must be a list, e.g. {key}: [{values}]")
            for value in values:
                identity = "" if value is None else str(value).strip()
                if not identity:
                    raise IdentityMapError(f"{where} ({employee}): an empty value in {key}")
                if kind == "email":
                    identity = identity.lower()
                    if "@" not in identity:
                        raise IdentityMapError(f"{where} ({employee}): {identity!r} in emails is not an email address")
                found += 1
                if (kind, identity) in owners:
                    owner = owners[kind, identity]
                    if written_employee_key(owner[1]) != written_employee_key(employee):
                        raise IdentityMapError(f"{where}: {key} {identity!r} is given to both {owner[1]!r} (entry "
                                               f"{owner[0]}) and {employee!r}")
                    continue  # the same value twice in one entry
                owners[kind, identity] = (position, employee)
                rows.append({"identity_kind": kind, "identity": identity, "employee_id": employee, "entry": position})
        if not found:
            raise IdentityMapError(f"{where} ({employee}): gives neither jira_account_ids nor emails")
    return rows


def write_identity_map(path: Path, people: list[dict]) -> None:
    """Write ``people`` (dicts with ``employee_id`` and any of the list keys) as an identity map."""
    header = ("# Identity map: which Jira account ids and email addresses are which HR employee id (see README).\n"
              "# Keys per person: employee_id, " + ", ".join(IDENTITY_KINDS) + " (lists, at least one).\n")
    body = yaml.safe_dump({"people": people}, sort_keys=False, allow_unicode=True, default_flow_style=None)
    path.write_text(header + body, encoding="utf-8")


def pseudonymised(rows: list[dict[str, str]], salt: str) -> pl.DataFrame:
    """``read_identity_map`` rows with every value replaced by its pseudonym."""
    hashed = {"jira_account_id": account_pseudonym, "email": email_pseudonym}
    return pl.DataFrame([{"identity_kind": row["identity_kind"],
                          "identity": hashed[row["identity_kind"]](salt, row["identity"]),
                          "employee_id": written_employee_pseudonym(salt, row["employee_id"])} for row in rows],
                        schema=SCHEMA)


@dg.asset(pool=WAREHOUSE_POOL, key=["raw", "config__identity_map"], group_name="landing", kinds={"yaml", "duckdb"})
def identity_map(context: dg.AssetExecutionContext, landing: LandingFolderResource,
                 duckdb: DuckDBResource) -> dg.MaterializeResult:
    """The identity map `identity_map.yml` (optional): one row per Jira account id or email
    address with the employee's HR id, every value hashed with the HR salt before it is
    written. Without the file the table is empty and the speaking-up KPIs are absent."""
    path = landing.folder / IDENTITY_MAP_FILE
    if path.is_file():
        try:
            rows = read_identity_map(path)
        except IdentityMapError as error:
            raise dg.Failure(description=str(error), allow_retries=False) from None
        frame = pseudonymised(rows, landing.hr_id_salt)
        people = len({row["employee_id"] for row in rows})
        context.log.info(f"identity map: {frame.height} account ids and emails of {people} employees")
    else:
        frame = pl.DataFrame(schema=SCHEMA)
        people = 0
        context.log.info(f"no {IDENTITY_MAP_FILE} in {landing.folder}: the speaking-up KPIs will be absent")
    with warehouse_connection(duckdb) as conn:
        replace_table(conn, "raw", "config__identity_map", frame)
    return dg.MaterializeResult(metadata={"rows": frame.height, "employees": people, "present": path.is_file()})


# Entries of the identity map the check names in its description; the metadata lists them all.
NAMED_ENTRIES = 20
# The widths to which the check pads an id's number when it looks for the HR export's form of
# an id written with other leading zeros (E4 for E000004): ids are rarely longer.
PADDED_WIDTHS = 12


def _alike_forms(written: str) -> dict[str, tuple[str, ...]]:
    """The forms of the employee id ``written`` that differ from it only in case, spaces or the
    leading zeros of its (last) number, each with what differs: how a hand-written id most
    often differs from the HR export's (e000004 for E000004, E 000004, E4). The HR export is
    held as pseudonyms only, so its ids cannot be compared otherwise: each form is hashed."""
    forms: dict[str, tuple[str, ...]] = {}
    for spaced, spacing in ((written, ()), ("".join(written.split()), ("spaces",))):
        for cased, casing in ((spaced, ()), (spaced.upper(), ("case",)), (spaced.lower(), ("case",))):
            numbers = list(re.finditer(r"[0-9]+", cased))
            padded = [(cased, ())]
            if numbers:
                number = numbers[-1]
                digits = number[0].lstrip("0") or "0"
                padded += [(cased[:number.start()] + digits.zfill(width) + cased[number.end():], ("leading zeros",))
                           for width in range(len(digits), max(PADDED_WIDTHS, len(number[0])) + 1)]
            for form, zeros in padded:
                if form != written and form not in forms:
                    forms[form] = (*casing, *spacing, *zeros)
    return forms


def _entries_not_in_hr(path: Path, salt: str, unknown: set[str], roster: set[str]) -> list[str]:
    """The entries of the identity map at ``path`` whose employee's pseudonym is in ``unknown``,
    each named by its position and its employee id as the user wrote it (the map is their own
    file; an email address by its position only; nothing of the HR export is named but an id form
    ``_alike_forms`` derives from it), with the forms of that id the HR export has (``roster``:
    its pseudonyms). Raises IdentityMapError when the file cannot be read now."""
    rows = read_identity_map(path) if path.is_file() else []
    entries = {(row["entry"], row["employee_id"]) for row in rows
               if written_employee_pseudonym(salt, row["employee_id"]) in unknown}
    named = []
    for entry, employee in sorted(entries):
        if "@" in employee:
            # An email address is kept in clear nowhere outside the restricted file, the run's
            # event log included: the entry's position finds it.
            named.append(f"entry {entry} (employee_id: an email address)")
            continue
        matches = {form: ignored for form, ignored in _alike_forms(employee).items()
                   if written_employee_pseudonym(salt, form) in roster}
        ignored = [what for what in ("case", "spaces", "leading zeros")
                   if any(what in differences for differences in matches.values())]
        named.append(f"entry {entry} (employee_id {employee!r}"
                     + (f"; ignoring {' and '.join(ignored)} it matches the HR export's "
                        f"{' and '.join(repr(form) for form in matches)}" if matches else "") + ")")
    return named


@dg.asset_check(pool=WAREHOUSE_POOL, asset=identity_map, name="people_are_in_the_hr_roster", blocking=False,
                additional_deps=[dg.AssetKey(["raw", "hr__headcount"])],
                description="Warns when the identity map names employees the HR headcount export never lists: "
                            "their tickets count for no team. Names the map's entries by position and employee id.")
def people_are_in_the_hr_roster(duckdb: DuckDBResource, landing: LandingFolderResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as conn:
        mapped = {row[0] for row in conn.execute("select distinct employee_id from raw.config__identity_map").fetchall()}
        roster = {row[0] for row in conn.execute("select distinct employee_id from raw.hr__headcount").fetchall()}
    unknown = mapped - roster
    # The warehouse holds pseudonyms only: the entries are found by hashing the map's ids anew.
    path = Path(landing.path) / IDENTITY_MAP_FILE
    try:
        entries, unreadable = _entries_not_in_hr(path, landing.hr_id_salt, unknown, roster), None
    except IdentityMapError as error:
        # Edited since it was loaded, and wrong now: the next load stops with the same error.
        entries, unreadable = [], str(error)
    said = None
    if unknown:
        shown = "; ".join(entries[:NAMED_ENTRIES]) + (
            f"; and {len(entries) - NAMED_ENTRIES} more (metadata entries_not_in_hr)" if len(entries) > NAMED_ENTRIES
            else "")
        changed = len(unknown) - len(entries)
        said = (f"{len(unknown)} of the {len(mapped)} employees of the identity map are in no HR headcount snapshot, "
                f"so their tickets count for no team; correct their employee ids in {IDENTITY_MAP_FILE} "
                "(ids other than numbers and email addresses match as the HR export writes them, case included)"
                + (f": {shown}" if entries else "")
                + (f"; {IDENTITY_MAP_FILE} cannot be read as it is now, so none is named ({unreadable})" if unreadable
                   else f"; {IDENTITY_MAP_FILE} is gone from the landing folder, so none is named" if not path.is_file()
                   else f"; {changed} of them are no longer in {IDENTITY_MAP_FILE} as it is now (it changed since it "
                        "was loaded): load it again to have them named" if changed else ""))
    return dg.AssetCheckResult(
        passed=not unknown, severity=dg.AssetCheckSeverity.WARN,
        description=said,
        metadata={"employees": len(mapped), "not_in_hr": len(unknown),
                  "entries_not_in_hr": dg.MetadataValue.json(entries)},
    )
