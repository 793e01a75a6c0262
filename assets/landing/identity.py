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


def read_identity_map(path: Path) -> list[dict[str, str]]:
    """Rows ``{"identity_kind", "identity", "employee_id"}`` in clear (the caller hashes them):
    one per account id or email address the map gives an employee."""
    entries = yaml_list(path, "people", IdentityMapError)
    rows: list[dict[str, str]] = []
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
                rows.append({"identity_kind": kind, "identity": identity, "employee_id": employee})
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


@dg.asset_check(pool=WAREHOUSE_POOL, asset=identity_map, name="people_are_in_the_hr_roster", blocking=False,
                additional_deps=[dg.AssetKey(["raw", "hr__headcount"])],
                description="Warns when the identity map names employees the HR headcount export never lists: "
                            "their tickets count for no team.")
def people_are_in_the_hr_roster(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as conn:
        mapped, unknown = conn.execute(
            "select count(distinct employee_id), count(distinct employee_id) filter (where employee_id not in "
            "(select employee_id from raw.hr__headcount)) from raw.config__identity_map").fetchone()
    return dg.AssetCheckResult(
        passed=unknown == 0, severity=dg.AssetCheckSeverity.WARN,
        description=(f"{unknown} of the {mapped} employees of the identity map are in no HR headcount snapshot "
                     "(check their employee ids)" if unknown else None),
        metadata={"employees": mapped, "not_in_hr": unknown},
    )
