"""Bulk synthetic warehouses: the raw tables of an organisation of any size, fast.

``pipelines.synthetic`` draws one incident at a time in Python and names at most 200 teams,
which is right for tests and the demo but not for a 1,000-team, 36-month organisation with
millions of incidents and tickets. This module follows the same causal model (lagged team
safety drives time to resolve, proactive share, attrition; larger teams are less safe and
slower; see docs/ground_truth.md) but draws small tables (teams, team-months, HR, survey)
with numpy and the millions of records in DuckDB SQL from counter-based hashes, month by
month. What each record looks like comes from ``benchmarks.shapes`` (the sandbox's own
rendering), so the raw tables are the ones the ingestion would have written after syncing
the sandbox; the API download itself is not part of the benchmark.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl

from assets.jira.classification import read_rules, rules_frame
from assets.jira.resource import DEFAULT_CLASSIFICATION_RULES
from assets.kpi_rules import read_kpi_rules
from assets.kpi_rules import rules_frame as kpi_rules_frame
from assets.landing.assets import SURVEY_SCHEMA
from assets.landing.identity import SCHEMA as IDENTITY_MAP_SCHEMA
from assets.landing.resource import LandingFolderResource
from assets.landing.survey import read_survey_exports
from assets.landing.team_map import read_team_map, write_team_map
from assets.warehouse.raw_tables import insert_records, replace_table, upsert_json_records
from assets.warehouse.resource import attach_restricted
from assets.warehouse.restricted import resolve_restricted_path
from benchmarks import shapes
from pipelines.synthetic.model import GroundTruth, Service, Team, User, add_months
from pipelines.synthetic.survey import SURVEY_ITEMS
from pipelines.synthetic.tickets import (
    PROACTIVE_LABELS,
    PROACTIVE_TYPES,
    REACTIVE_TYPES,
    SHARED_PROJECT,
    UNCLASSIFIED_TYPES,
    UNOWNED_COMPONENT,
)

HR_SALT = "bench-salt"
ROLES = ("engineer", "senior engineer", "sre", "manager", "analyst")
INCIDENT_KINDS = ("latency", "errors", "saturation", "outage")
ID_SPACE = 36**6  # six base-36 digits after the "P" of a PagerDuty id
ID_MULTIPLIER = 1_000_003  # coprime with 36: scatters sequence numbers over the id space, one to one


@dataclass(frozen=True)
class BulkSpec:
    """What to generate. ``seed`` fixes every draw."""

    n_teams: int = 30
    n_months: int = 24
    incidents_per_head_month: float = 0.45
    tickets_per_head_month: float = 1.2
    seed: int = 7
    start: date = date(2024, 1, 1)

    def __post_init__(self):
        if self.n_teams < 2 or self.n_months < 6:
            raise ValueError("an organisation needs at least 2 teams and 6 months")
        if self.start.day != 1 or self.start.month not in (1, 4, 7, 10):
            raise ValueError(f"start must be the first day of a calendar quarter, not {self.start}")
        if self.n_teams > 17_000:
            raise ValueError("at most 17,000 teams (HR org units and survey response ids are numbered per team)")


# 1x is the demo organisation; 100x is ~1,000 teams over 36 months with millions of incidents
# and of tickets (rates raised, since people do not scale); 10x sits between them.
SCALES = {
    1: BulkSpec(n_teams=30, n_months=24, incidents_per_head_month=0.45, tickets_per_head_month=1.2),
    10: BulkSpec(n_teams=300, n_months=36, incidents_per_head_month=1.0, tickets_per_head_month=1.2),
    100: BulkSpec(n_teams=1000, n_months=36, incidents_per_head_month=6.0, tickets_per_head_month=6.0),
}

Progress = Callable[[str], None]


def _pd_id(prefix: str, number: int) -> str:
    return prefix + np.base_repr(number, 36).rjust(6 - len(prefix) + 1, "0")


def build_raw_warehouse(path: Path, spec: BulkSpec, progress: Progress = print, memory_limit: str = "8GB",
                        threads: int = 2) -> dict[str, int]:
    """Write every raw table of ``spec``'s organisation into the DuckDB file ``path``;
    return the row count of each raw table."""
    truth = GroundTruth()
    rng = np.random.default_rng(spec.seed)
    org = _draw_teams(spec, truth, rng)
    with duckdb.connect(str(path), config={"threads": threads, "memory_limit": memory_limit}) as conn:
        attach_restricted(conn, str(path), resolve_restricted_path(str(path)))
        _macros(conn, spec.seed)
        _load_directory(conn, org)
        _load_landing(conn, spec, org, truth, rng)
        # One transaction per source: committing each month would rewrite the growing
        # primary-key indexes at every checkpoint.
        for load in (_load_incidents, _load_tickets):
            conn.execute("begin")
            load(conn, spec, org, progress)
            progress("  committing (compressing and writing the payloads) ...")
            conn.execute("commit")
        tables = conn.sql(
            "select table_name from duckdb_tables() where schema_name = 'raw' order by table_name"
        ).fetchall()
        return {name: conn.sql(f"select count(*) from raw.{name}").fetchone()[0] for (name,) in tables}


@dataclass
class _Org:
    teams: pd.DataFrame  # one row per team
    services: pd.DataFrame
    users: pd.DataFrame
    team_months: pd.DataFrame
    quarter_safety: np.ndarray  # teams x quarters
    lagged_safety: np.ndarray  # teams x months


def _draw_teams(spec: BulkSpec, truth: GroundTruth, rng: np.random.Generator) -> _Org:
    n = spec.n_teams
    headcounts = np.clip(np.round(np.exp(rng.normal(math.log(9), 0.35, n))), 5, 25).astype(int)
    log_hc = np.log(headcounts)
    size_z = (log_hc - log_hc.mean()) / log_hc.std()
    rho = truth.safety_per_sd_log_headcount
    between_var = 1.0 - truth.safety_wave_drift_sd**2
    team_safety = rho * size_z + math.sqrt(between_var - rho**2) * rng.normal(size=n)
    n_quarters = math.ceil(spec.n_months / 3)
    quarter_safety = team_safety[:, None] + rng.normal(0, truth.safety_wave_drift_sd, (n, n_quarters))
    months = np.arange(spec.n_months)
    lagged = quarter_safety[:, np.maximum(months // 3 - 1, 0)]
    teams = pd.DataFrame({
        "team_idx": np.arange(n),
        "team_name": [f"Team {i + 1:04d}" for i in range(n)],
        "team_pd_id": [_pd_id("PT", i) for i in range(n)],
        "jira_key": ["T" + _letters(i) for i in range(n)],
        "project_id": 10000 + np.arange(n),
        "org_unit": [f"OU-{1000 + 17 * i}" for i in range(n)],
        "headcount": headcounts,
        "size_z": size_z,
        "ttr_team_effect": rng.normal(0, truth.log_ttr_team_sd, n),
    })
    services = [
        (i, s, _pd_id("PS", len_before + s), f"{name} service {s + 1}", _pd_id("PE", len_before + s))
        for i, name, hc, len_before in zip(teams.team_idx, teams.team_name, headcounts,
                                           np.cumsum(1 + headcounts // 8) - (1 + headcounts // 8))
        for s in range(1 + hc // 8)
    ]
    users = [
        (i, u, _pd_id("PU", 6 * i + u), f"{name} on-call {u + 1}")
        for i, name, hc in zip(teams.team_idx, teams.team_name, headcounts)
        for u in range(min(hc, 6))
    ]
    services = pd.DataFrame(services, columns=["team_idx", "service_no", "service_id", "service_name", "policy_id"])
    # Synthetic checks: their incidents count in no KPI (stg_pagerduty__services.is_test).
    last = services.groupby("team_idx").service_no.transform("max")
    test = (services.team_idx % shapes.TEST_SERVICE_EVERY == 0) & (services.service_no == last) & (last > 0)
    services.loc[test, "service_name"] = services.loc[test, "service_name"] + " synthetic checks (test)"
    users = pd.DataFrame(users, columns=["team_idx", "user_no", "user_id", "user_name"])
    teams["n_services"] = services.groupby("team_idx").size().to_numpy()
    teams["n_users"] = users.groupby("team_idx").size().to_numpy()

    team_idx, month = np.meshgrid(np.arange(n), months, indexing="ij")
    team_idx, month = team_idx.ravel(), month.ravel()  # team-major, then month
    safety = lagged.ravel()
    reporting = np.exp(truth.incident_rate_log_per_sd * safety)
    incident_rate = headcounts[team_idx] * spec.incidents_per_head_month * reporting
    n_incidents = rng.poisson(incident_rate)
    n_tickets = rng.poisson(headcounts[team_idx] * spec.tickets_per_head_month)
    team_months = pd.DataFrame({
        "team_idx": team_idx, "month": month, "safety": safety,
        "month_start": [add_months(spec.start, m).replace(tzinfo=None) for m in month],
        "month_seconds": [(add_months(spec.start, m + 1) - add_months(spec.start, m)).total_seconds() for m in month],
        "n_incidents": n_incidents, "n_tickets": n_tickets,
        "p_proactive": 1 / (1 + np.exp(-(-0.6 + truth.proactive_log_odds_per_sd * safety))),
    })
    # Sequence numbers month by month (ids and ticket numbers grow with time, as they do live).
    by_month = team_months.sort_values(["month", "team_idx"])
    for count, first in (("n_incidents", "first_incident_seq"), ("n_tickets", "first_ticket_seq")):
        team_months[first] = (by_month[count].cumsum() - by_month[count]).reindex(team_months.index)
    team_months["first_ticket_number"] = team_months.groupby("team_idx").n_tickets.cumsum() - team_months.n_tickets
    return _Org(teams, services, users, team_months, quarter_safety, lagged)


def _letters(number: int) -> str:
    """A three-letter suffix (AAA, AAB, ...): Jira project keys are letters."""
    return "".join(chr(65 + (number // 26**p) % 26) for p in (2, 1, 0))


def _macros(conn: duckdb.DuckDBPyConnection, seed: int) -> None:
    # Counter-based draws: the same (record, purpose) always gives the same number, whatever
    # the thread count or chunking, so a scale's warehouse is reproducible.
    conn.execute(f"create or replace temp macro uniform(seq, purpose) as "
                 f"((hash(seq, purpose, {seed}) >> 11)::double / 9007199254740992.0)")
    conn.execute("create or replace temp macro normal(seq, purpose) as "
                 "sqrt(-2 * ln(greatest(uniform(seq, purpose || '.r'), 1e-300)))"
                 " * cos(2 * pi() * uniform(seq, purpose || '.a'))")
    conn.execute("create or replace temp macro pick(options, u) as options[1 + floor(u * len(options))::integer]")


def _load_directory(conn: duckdb.DuckDBPyConnection, org: _Org) -> None:
    teams = [Team(key=str(t.team_idx), name=t.team_name, pagerduty_id=t.team_pd_id, jira_project=t.jira_key,
                  hr_org_unit=t.org_unit, headcount=int(t.headcount), safety=0.0)
             for t in org.teams.itertuples()]
    services = [Service(pagerduty_id=s.service_id, name=s.service_name, team_key=str(s.team_idx),
                        escalation_policy_id=s.policy_id) for s in org.services.itertuples()]
    users = [User(pagerduty_id=u.user_id, name=u.user_name, email=f"{u.user_id.lower()}@example.com",
                  team_key=str(u.team_idx)) for u in org.users.itertuples()]
    team_payloads, service_payloads = shapes.pagerduty_directory(teams, services, users)
    upsert_json_records(conn, "pagerduty__teams", team_payloads)
    upsert_json_records(conn, "pagerduty__services", service_payloads)
    # The ingestion's table definitions, filled below; the bulk organisation has no PagerDuty
    # Incident Reviews (its reviews' KPIs then count none).
    for table in ("pagerduty__incidents", "pagerduty__log_entries", "jira__issues", "pagerduty__incident_reviews",
                  "pagerduty__review_action_items"):
        upsert_json_records(conn, table, [])
    for name, frame in (("bench_teams", org.teams), ("bench_services", org.services), ("bench_users", org.users),
                        ("bench_team_months", org.team_months)):
        conn.register(f"{name}_frame", frame)
        conn.execute(f"create or replace temp table {name} as select * from {name}_frame")
        conn.unregister(f"{name}_frame")


def _load_landing(conn, spec: BulkSpec, org: _Org, truth: GroundTruth, rng: np.random.Generator) -> None:
    headcount, terminations = _draw_hr(spec, org, truth, rng)
    replace_table(conn, "raw", "hr__headcount", headcount)
    replace_table(conn, "raw", "hr__terminations", terminations)
    with tempfile.TemporaryDirectory() as folder:
        # The survey export goes through the landing asset's own parser (long form, scored).
        export = Path(folder) / "survey_responses.csv"
        _draw_survey(spec, org, truth, rng).write_csv(export)
        as_of = add_months(spec.start, spec.n_months)
        survey = read_survey_exports([export], set(org.teams.team_name), as_of)
        if survey.checked.quarantined:
            raise RuntimeError(f"bulk survey rows quarantined: {survey.checked.reasons()}")
        replace_table(conn, "restricted", "survey__responses", pl.DataFrame(survey.checked.accepted,
                                                                             schema=SURVEY_SCHEMA))
        team_map = Path(folder) / "team_map.yml"
        write_team_map(team_map, [
            {"team": t.team_name, "pagerduty_teams": [t.team_name], "jira_projects": [t.jira_key],
             "jira_components": [f"{SHARED_PROJECT}/{t.team_name}"], "hr_org_units": [t.org_unit],
             "survey_groups": [t.team_name]}
            for t in org.teams.itertuples()
        ])
        rows = read_team_map(team_map)
    frame = pl.DataFrame(rows, schema={"team": pl.String, "source": pl.String, "identifier": pl.String})
    replace_table(conn, "raw", "config__team_map", frame)
    replace_table(conn, "raw", "config__ticket_classification", rules_frame(read_rules(DEFAULT_CLASSIFICATION_RULES)))
    replace_table(conn, "raw", "config__kpi_rules", kpi_rules_frame(read_kpi_rules()))
    # No identity map: the speaking-up KPIs are absent, as on a site without one.
    replace_table(conn, "raw", "config__identity_map", pl.DataFrame(schema=IDENTITY_MAP_SCHEMA))


def _draw_hr(spec: BulkSpec, org: _Org, truth: GroundTruth, rng) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Monthly snapshots of every seat; a leaver's seat is filled by a new employee next month."""
    headcounts = org.teams.headcount.to_numpy()
    seat_team = np.repeat(np.arange(len(headcounts)), headcounts)
    n_seats, n_months = len(seat_team), spec.n_months
    role = rng.integers(0, len(ROLES), n_seats)
    critical = rng.random(n_seats) < 0.2
    base = math.log(0.012 / 0.988)
    p_voluntary = 1 / (1 + np.exp(-(base + truth.voluntary_attrition_log_odds_per_sd * org.lagged_safety[seat_team])))
    draws = rng.random((n_seats, n_months))
    leaves = draws < p_voluntary + 0.003
    occupant = np.cumsum(leaves, axis=1) - leaves  # leavers before this month
    employee_number = np.arange(n_seats)[:, None] + occupant * n_seats
    landing = LandingFolderResource(path=".", hr_id_salt=HR_SALT)
    numbers = np.unique(employee_number)
    hashed = dict(zip(numbers.tolist(), (landing.pseudonymise(f"E{n:07d}") for n in numbers.tolist())))
    month_starts = [add_months(spec.start, m).date() for m in range(n_months)]
    org_units = org.teams.org_unit.to_numpy()
    roles = np.array(ROLES)
    flags = np.array([shapes.CSV_FALSE, shapes.CSV_TRUE])
    seat, month = np.meshgrid(np.arange(n_seats), np.arange(n_months), indexing="ij")
    seat, month = seat.ravel(), month.ravel()
    ids = np.array([hashed[n] for n in employee_number.ravel().tolist()])
    headcount = pl.DataFrame({
        "snapshot_date": [month_starts[m].isoformat() for m in month],
        "employee_id": ids, "org_unit": org_units[seat_team[seat]], "role": roles[role[seat]],
        "critical_role": flags[critical[seat].astype(int)],
    }).select(shapes.HEADCOUNT_COLUMNS)
    left = leaves.ravel()
    days = rng.integers(1, 28, left.sum())
    terminations = pl.DataFrame({
        "employee_id": ids[left], "org_unit": org_units[seat_team[seat[left]]], "role": roles[role[seat[left]]],
        "critical_role": flags[critical[seat[left]].astype(int)],
        "termination_date": [(month_starts[m] + timedelta(days=int(d))).isoformat() for m, d in zip(month[left], days)],
        "voluntary": flags[(draws.ravel()[left] < p_voluntary.ravel()[left]).astype(int)],
    }).select(shapes.TERMINATION_COLUMNS)
    return headcount, terminations


def _draw_survey(spec: BulkSpec, org: _Org, truth: GroundTruth, rng) -> pl.DataFrame:
    """A wave in the third week of every quarter; 85% of each team answers the 7 items."""
    k = 7
    as_of = add_months(spec.start, spec.n_months)
    columns: dict[str, list] = {name: [] for name in (*shapes.SURVEY_ID_COLUMNS, *shapes.SURVEY_ITEM_TEXTS)}
    headcounts, org_units = org.teams.headcount.to_numpy(), org.teams.org_unit.to_numpy()
    for q in range(org.quarter_safety.shape[1]):
        wave_day = add_months(spec.start, 3 * q) + timedelta(days=14)
        if wave_day >= as_of:
            break
        team = np.repeat(np.arange(len(headcounts)), headcounts)
        person = np.concatenate([np.arange(h) for h in headcounts])
        answered = rng.random(len(team)) <= truth.response_rate
        team, person = team[answered], person[answered]
        latent = org.quarter_safety[team, q] + rng.normal(0, truth.respondent_sd, len(team))
        submitted = wave_day + pd.to_timedelta(rng.uniform(0, 240, len(team)), unit="h")
        columns["response_id"] += [f"R{q:02d}{org_units[t][3:]}{p:03d}" for t, p in zip(team, person)]
        columns["submitted_at"] += submitted.strftime(shapes.SURVEY_TIME_FORMAT).tolist()
        columns["team"] += org.teams.team_name.to_numpy()[team].tolist()
        for text, reverse in SURVEY_ITEMS:
            answer = np.clip(np.round(4.6 + 0.8 * latent + rng.normal(0, truth.item_sd, len(team))), 1, k).astype(int)
            columns[text] += (k + 1 - answer if reverse else answer).astype(str).tolist()
    return pl.DataFrame(columns, schema={name: pl.String for name in columns})


def _sql_list(values) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _case(variable: str, branches: dict[str, str]) -> str:
    return "case " + " ".join(f"when {variable} = '{key}' then {sql}" for key, sql in branches.items()) + " end"


def _load_incidents(conn, spec: BulkSpec, org: _Org, progress: Progress) -> None:
    truth = GroundTruth()
    templates = shapes.pagerduty_templates()
    as_of = add_months(spec.start, spec.n_months).replace(tzinfo=None)
    started, loaded = time.monotonic(), 0
    for month in range(spec.n_months):
        conn.execute(f"""
            create or replace temp table month_incidents as
            with drawn as (
                select tm.team_idx, tm.month_start, tm.month_seconds, tm.safety, tm.first_incident_seq + k as seq
                from (select *, unnest(range(n_incidents)) as k from bench_team_months where month = {month}) as tm
            ),
            timed as (
                select
                    drawn.*, teams.team_name, teams.team_pd_id, teams.n_services, teams.n_users,
                    drawn.month_start
                        + to_seconds(floor(uniform(seq, 'created') * month_seconds)::bigint) as created_at,
                    greatest(30.0, exp(ln(3600) + {truth.log_ttr_per_sd} * safety
                        + {truth.log_ttr_per_sd_log_headcount} * teams.size_z + teams.ttr_team_effect
                        + {truth.log_ttr_incident_sd} * normal(seq, 'ttr'))) as ttr,
                    uniform(seq, 'auto') < 0.05 as auto_resolved,
                    uniform(seq, 'ack') < 0.95 as ack_draw,
                    exp(ln(300) + {truth.log_tta_per_sd} * safety + 0.8 * normal(seq, 'tta')) as tta_draw,
                    uniform(seq, 'alerted') < {shapes.ALERTED_SHARE} as alerted,
                    exp(ln(600) + 0.8 * normal(seq, 'ttd')) as alert_lead,
                    uniform(seq, 'impact') < {shapes.IMPACT_RECORDED_SHARE} as impact_drawn,
                    exp(ln(900) + 0.8 * normal(seq, 'impact_lead')) as impact_lead
                from drawn
                inner join bench_teams as teams using (team_idx)
            ),
            outcomes as (
                select
                    *,
                    not auto_resolved and ack_draw as acknowledged,
                    created_at + to_seconds(floor(greatest(1.0, least(ttr * 0.9, tta_draw)))::bigint) as acked_at,
                    created_at + to_seconds(floor(ttr)::bigint) as resolved_at,
                    floor(uniform(seq, 'service') * n_services)::integer as service_no,
                    floor(uniform(seq, 'user') * n_users)::integer as user_no,
                    'P' || to_base((seq * {ID_MULTIPLIER}) % {ID_SPACE}, 36, 6) as incident_id
                from timed
            ),
            rendered as (
            select
                outcomes.*,
                case
                    when resolved_at < '{as_of}' and auto_resolved then 'resolved_by_timeout'
                    when resolved_at < '{as_of}' and acknowledged then 'resolved_by_user'
                    when resolved_at < '{as_of}' then 'resolved_by_api'
                    when acknowledged and acked_at < '{as_of}' then 'acknowledged'
                    when acknowledged then 'triggered_assigned'
                    else 'triggered'
                end as variant,
                (row_number() over (order by created_at, seq)
                    + (select coalesce(sum(n_incidents), 0) from bench_team_months where month < {month}))::varchar
                    as incident_number,
                services.service_name || ': ' || pick({_sql_list(INCIDENT_KINDS)}, uniform(seq, 'kind')) as title,
                case when uniform(seq, 'urgency') < 0.7 then 'high' else 'low' end as urgency,
                services.service_id, services.service_name, services.policy_id, users.user_id, users.user_name,
                strftime(created_at, '{shapes.PAGERDUTY_TIME_FORMAT}') as created_text,
                strftime(acked_at, '{shapes.PAGERDUTY_TIME_FORMAT}') as acked_text,
                strftime(resolved_at, '{shapes.PAGERDUTY_TIME_FORMAT}') as resolved_text,
                md5(incident_id) as incident_key,
                'R' || upper(substr(md5(incident_id || '/trigger'), 1, 13)) as trigger_log_id,
                'R' || upper(substr(md5(incident_id || '/acknowledge'), 1, 13)) as acknowledge_log_id,
                'R' || upper(substr(md5(incident_id || '/resolve'), 1, 13)) as resolve_log_id,
                'R' || upper(substr(md5(incident_id || '/impact'), 1, 13)) as custom_field_log_id,
                strftime(created_at - to_seconds(floor(alert_lead)::bigint), '{shapes.PAGERDUTY_TIME_FORMAT}')
                    as alert_text,
                strftime(created_at - to_seconds(floor(impact_lead)::bigint), '{shapes.PAGERDUTY_TIME_FORMAT}')
                    as impact_text,
                strftime(created_at + to_seconds(floor(ttr / 2)::bigint), '{shapes.PAGERDUTY_TIME_FORMAT}')
                    as recorded_text
            from outcomes
            inner join bench_services as services using (team_idx, service_no)
            inner join bench_users as users using (team_idx, user_no)
            ),
            merge_targets as (
            select
                *,
                case when urgency = 'high' then 'critical' else 'warning' end as severity,
                lag(incident_id) over by_team as merged_id,
                lag(incident_number) over by_team as merged_number,
                lag(title) over by_team as merged_title
            from rendered
            window by_team as (partition by team_idx order by created_at, seq)
            )
            select
                * replace (
                    case when variant = 'resolved_by_user' and merged_id is not null
                        and uniform(seq, 'merged') < {shapes.MERGED_SHARE} then '{shapes.MERGED_VARIANT}'
                        else variant end as variant
                ),
                impact_drawn and variant like 'resolved%' as impact_recorded
            from merge_targets
        """)
        insert_records(conn, "pagerduty__incidents", f"""(
            select incident_id as id, {_case('variant', templates.incident)} as payload from month_incidents
        )""", replace=False)
        plain_trigger = {v: entries["trigger"] for v, entries in templates.log_entries.items()}
        insert_records(conn, "pagerduty__log_entries", f"""(
            select trigger_log_id as id, case when alerted then {_case('variant', templates.alerted_trigger)}
                                              else {_case('variant', plain_trigger)} end as payload
            from month_incidents
        )""", replace=False)
        for kind in ("acknowledge", "resolve"):
            branches = {v: entries[kind] for v, entries in templates.log_entries.items() if kind in entries}
            insert_records(conn, "pagerduty__log_entries", f"""(
                select {kind}_log_id as id, {_case('variant', branches)} as payload from month_incidents
                where variant in ({", ".join(f"'{v}'" for v in branches)})
            )""", replace=False)
        insert_records(conn, "pagerduty__log_entries", f"""(
            select custom_field_log_id as id, {_case('variant', templates.impact_change)} as payload
            from month_incidents
            where impact_recorded and variant in ({", ".join(f"'{v}'" for v in templates.impact_change)})
        )""", replace=False)
        loaded += conn.sql("select count(*) from month_incidents").fetchone()[0]
        progress(f"  incidents: month {month + 1}/{spec.n_months}, {loaded:,} incidents with their log entries "
                 f"({time.monotonic() - started:.0f} s)")
    conn.execute("drop table month_incidents")


def _load_tickets(conn, spec: BulkSpec, org: _Org, progress: Progress) -> None:
    templates = shapes.jira_templates()
    as_of = add_months(spec.start, spec.n_months).replace(tzinfo=None)
    lookups = {
        "bench_issue_types": pd.DataFrame(templates.issue_types.items(), columns=["issue_type", "issuetype_json"]),
        "bench_statuses": pd.DataFrame(templates.statuses.items(), columns=["status", "status_json"]),
        "bench_transitions": pd.DataFrame(
            [(a, b, items) for (a, b), items in templates.transition_items.items()],
            columns=["from_status", "to_status", "items_json"]),
    }
    for name, frame in lookups.items():
        conn.register(f"{name}_frame", frame)
        conn.execute(f"create or replace temp table {name} as select * from {name}_frame")
        conn.unregister(f"{name}_frame")
    conn.execute(f"""
        create or replace temp table bench_projects as
        select team_idx, team_name, jira_key, ({templates.project}) as project_json
        from (select * replace (project_id::varchar as project_id), jira_key as project_key from bench_teams)
    """)
    n_teams = len(org.teams)
    conn.execute(f"""
        create or replace temp table bench_shared as
        select ({templates.project}) as project_json
        from (select '{10000 + n_teams}' as project_id, '{SHARED_PROJECT}' as project_key, 'Operations' as team_name)
    """)
    conn.execute(f"""
        create or replace temp table bench_components as
        select team_idx, component_name, ({templates.component}) as component_json
        from (select team_idx, team_name as component_name, (10000 + team_idx)::varchar as component_id
              from bench_teams
              union all
              select null, '{UNOWNED_COMPONENT}', '{10000 + n_teams}')
    """)
    started, loaded = time.monotonic(), 0
    for month in range(spec.n_months):
        conn.execute(f"""
            create or replace temp table month_tickets as
            with drawn as (
                select
                    tm.team_idx, tm.p_proactive, tm.first_ticket_seq + k as seq,
                    tm.first_ticket_number + k + 1 as ticket_number,
                    tm.month_start + to_seconds(
                        floor(uniform(tm.first_ticket_seq + k, 'created') * tm.month_seconds)::bigint) as created_at
                from (select *, unnest(range(n_tickets)) as k from bench_team_months where month = {month}) as tm
            ),
            classified as (
                select
                    *,
                    case
                        when uniform(seq, 'class') < 0.2
                            then pick({_sql_list(UNCLASSIFIED_TYPES)}, uniform(seq, 'type'))
                        when uniform(seq, 'proactive') < p_proactive then
                            case when uniform(seq, 'labelled') < 0.25 then 'Task'
                                 else pick({_sql_list(PROACTIVE_TYPES)}, uniform(seq, 'type')) end
                        else pick({_sql_list(REACTIVE_TYPES)}, uniform(seq, 'type'))
                    end as issue_type,
                    uniform(seq, 'class') >= 0.2 and uniform(seq, 'proactive') < p_proactive
                        and uniform(seq, 'labelled') < 0.25 as labelled,
                    uniform(seq, 'shared') < {shapes.SHARED_TICKET_SHARE} as shared,
                    uniform(seq, 'unowned') < {shapes.UNOWNED_COMPONENT_SHARE} as unowned,
                    case when uniform(seq, 'bounces') < 0.01
                         then 2 + 2 * ((60 + floor(uniform(seq, 'n_bounces') * 80)::integer) // 2) else 2 end as n_steps
                from drawn
            ),
            steps as (
                select seq, created_at, step, n_steps,
                    created_at + to_seconds((sum(floor(-ln(1 - uniform(seq * 1000 + step, 'wait')) * 30 * 3600)::bigint)
                        over (partition by seq order by step))::bigint) as moved_at
                from (select seq, created_at, n_steps, unnest(range(n_steps)) as step from classified)
            ),
            histories as (
                select
                    steps.seq, steps.step, steps.moved_at,
                    case when step = 0 then '{shapes.INITIAL_STATUS}' when step % 2 = 1 then '{shapes.WORKING_STATUS}'
                         else '{shapes.REVIEW_STATUS}' end as from_status,
                    case when step = n_steps - 1 then '{shapes.DONE_STATUS}'
                         when step % 2 = 0 then '{shapes.WORKING_STATUS}'
                         else '{shapes.REVIEW_STATUS}' end as to_status
                from steps
                where moved_at < '{as_of}'
            ),
            changelogs as (
                select
                    seq,
                    count(*) as n_histories,
                    '[' || string_agg({templates.history}, ', ' order by step) || ']' as histories_json,
                    arg_max(to_status, step) as last_status,
                    max(moved_at) as last_moved_at
                from (
                    select histories.*, transitions.items_json,
                        (10000 + seq)::varchar || lpad(step::varchar, 4, '0') as history_id,
                        strftime(moved_at, '{shapes.JIRA_TIME_FORMAT}') as history_created_text
                    from histories
                    inner join bench_transitions as transitions using (from_status, to_status)
                )
                group by seq
            )
            select
                (10000 + classified.seq)::varchar as issue_id,
                case when shared then '{SHARED_PROJECT}-' || (classified.seq + 1)
                     else projects.jira_key || '-' || classified.ticket_number end as issue_key,
                classified.issue_type || ' raised by ' || projects.team_name as summary,
                strftime(classified.created_at, '{shapes.JIRA_TIME_FORMAT}') as created_text,
                strftime(coalesce(changelogs.last_moved_at, classified.created_at), '{shapes.JIRA_TIME_FORMAT}')
                    as updated_text,
                types.issuetype_json,
                case when shared then (select project_json from bench_shared) else projects.project_json end
                    as project_json,
                case when shared then '[' || components.component_json || ']' else '[]' end as components_json,
                statuses.status_json,
                case when labelled then '["' || pick({_sql_list(PROACTIVE_LABELS)}, uniform(classified.seq, 'label'))
                     || '"]' else '[]' end as labels_json,
                case when changelogs.last_status = '{shapes.DONE_STATUS}'
                     then '"' || strftime(changelogs.last_moved_at, '{shapes.JIRA_TIME_FORMAT}') || '"'
                     else 'null' end as resolutiondate_json,
                coalesce(changelogs.n_histories, 0)::varchar as n_histories_json,
                coalesce(changelogs.histories_json, '[]') as histories_json
            from classified
            left join changelogs using (seq)
            inner join bench_projects as projects using (team_idx)
            inner join bench_components as components
                on components.team_idx is not distinct from (case when not unowned then classified.team_idx end)
            inner join bench_issue_types as types using (issue_type)
            inner join bench_statuses as statuses
                on statuses.status = coalesce(changelogs.last_status, '{shapes.INITIAL_STATUS}')
        """)
        insert_records(conn, "jira__issues", f"(select issue_id as id, {templates.issue} as payload from month_tickets)",
                       replace=False)
        loaded += conn.sql("select count(*) from month_tickets").fetchone()[0]
        progress(f"  tickets: month {month + 1}/{spec.n_months}, {loaded:,} issues with their changelogs "
                 f"({time.monotonic() - started:.0f} s)")
    conn.execute("drop table month_tickets")
