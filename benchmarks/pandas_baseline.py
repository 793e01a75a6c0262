"""The team-month mart computed the way a careful analyst would in plain pandas: read the
raw tables' typed columns (the fields the writers extracted from each payload, as staging
reads them), group and merge.

It mirrors sql/models/staging/*, restricted/stg_survey__responses, marts/fct_incidents,
fct_tickets and mart_team_month, and the survey waves asset (docs/metrics.md's
definitions); when those change, change this module (and benchmarks/polars_baseline.py)
with them. ``compare`` checks it against the SQL mart, which makes it a correctness check
of both. Every column of the SQL mart is mirrored; the one rule taken from the project
rather than re-derived is the survey's disclosure rule
(``assets.models.psychometrics.wave_suppression``: which team-waves are hidden), a privacy
policy rather than a computation. Every wave is taken as closed (frozen waves,
assets/models/frozen_waves.py, only differ for responses loaded after their wave froze).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import duckdb
import numpy as np
import pandas as pd

from assets.landing.item_sets import ITEM_SETS
from assets.models.psychometrics import SAFETY_MAX_WAVE_AGE_QUARTERS, wave_suppression
from assets.warehouse.partitions import HISTORY_START

KEY = ["team", "period_month"]
PAGERDUTY_COUNTS = ("incidents", "n_ttr", "n_tta", "n_ttd", "open_incidents", "auto_resolved_incidents",
                    "reopened_incidents")
JIRA_COUNTS = ("proactive_tickets", "reactive_tickets", "unclassified_tickets")
COUNT_COLUMNS = ("voluntary_leavers", "critical_voluntary_leavers", *PAGERDUTY_COUNTS, *JIRA_COUNTS)
TEST_SERVICE = re.compile(r"\btest\b", re.IGNORECASE)
# The scales the mart carries forward, and the prefix of their columns there.
LAGGED_SCALES = {"psychological_safety": "safety", "accountability": "accountability"}


def _read(conn: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    return conn.sql(sql).df()


def _month(values: pd.Series) -> pd.Series:
    return values.dt.to_period("M").dt.to_timestamp()


# The stored survey answers with their wave column, null in a table stored before it existed.
STORED_RESPONSES = ("(select * from restricted.survey__responses union all by name "
                    "select null::date as wave_quarter where false)")


def _quarter(values: pd.Series) -> pd.Series:
    return values.dt.to_period("Q").dt.to_timestamp()


def team_month_mart(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """mart_team_month from the raw tables: one row per team and month of HR snapshots."""
    team_map = conn.sql("select * from raw.config__team_map").df()
    team_map["team"] = team_map["team"].str.strip()
    team_map["identifier"] = team_map["identifier"].str.strip()

    def claims(source: str) -> pd.DataFrame:
        return team_map.loc[team_map["source"] == source, ["identifier", "team"]]

    every_month = _headcount(conn, claims("hr_org_unit"))
    months = every_month[every_month["period_month"] >= pd.Timestamp(HISTORY_START)]  # the API syncs start there
    incidents, tickets = _incidents(conn, claims), ticket_counts(conn, claims)
    for part in (_leavers(conn, claims("hr_org_unit")), incidents, tickets):
        months = months.merge(part, on=KEY, how="left")
    for column in COUNT_COLUMNS:
        months[column] = months[column].fillna(0).astype("int64")
    # A source counts from the first month any team has a record of it: no data, not 0, before
    # (mart_team_month's source_starts); a source with no record counts in no month.
    for part, columns in ((incidents, PAGERDUTY_COUNTS), (tickets, JIRA_COUNTS)):
        months[list(columns)] = months[list(columns)].where(
            months["period_month"] >= pd.to_datetime(part["period_month"]).min())
    months["voluntary_attrition_rate"] = months["voluntary_leavers"] / months["avg_headcount"].replace(0, np.nan)
    months["critical_attrition_rate"] = (
        months["critical_voluntary_leavers"] / months["avg_critical_headcount"].replace(0, np.nan)
    )
    flagged = (months["proactive_tickets"] + months["reactive_tickets"]).replace(0, np.nan)
    months["proactive_share"] = months["proactive_tickets"] / flagged
    return _with_lagged_scores(months, _survey_waves(conn, claims("survey_group"), every_month))


def _headcount(conn, org_units: pd.DataFrame) -> pd.DataFrame:
    """Opening headcount per team-month and the month's average (mean of its opening and the
    next month's opening snapshot; the opening one alone when the next month has none)."""
    rows = conn.sql("select * from raw.hr__headcount").df()
    rows = rows.merge(org_units, left_on="org_unit", right_on="identifier")
    rows["period_month"] = _month(pd.to_datetime(rows["snapshot_date"]))
    rows["critical"] = rows["critical_role"].str.lower() == "true"
    grouped = rows.groupby(KEY)
    months = pd.DataFrame({
        "headcount": grouped["employee_id"].nunique(),
        "critical_headcount": rows[rows["critical"]].groupby(KEY)["employee_id"].nunique(),
    }).fillna({"critical_headcount": 0}).astype("int64").reset_index().sort_values(KEY)
    by_team = months.groupby("team")
    consecutive = by_team["period_month"].shift(-1) == months["period_month"] + pd.DateOffset(months=1)
    for count, average in (("headcount", "avg_headcount"), ("critical_headcount", "avg_critical_headcount")):
        following = by_team[count].shift(-1)
        months[average] = np.where(consecutive, (months[count] + following) / 2, months[count]).astype(float)
    return months


def _leavers(conn, org_units: pd.DataFrame) -> pd.DataFrame:
    rows = conn.sql("select * from raw.hr__terminations").df()
    rows = rows.merge(org_units, left_on="org_unit", right_on="identifier")
    rows["period_month"] = _month(pd.to_datetime(rows["termination_date"]))
    rows["voluntary"] = rows["voluntary"].str.lower() == "true"
    rows["critical_voluntary"] = rows["voluntary"] & (rows["critical_role"].str.lower() == "true")
    return rows.groupby(KEY, as_index=False).agg(
        voluntary_leavers=("voluntary", "sum"), critical_voluntary_leavers=("critical_voluntary", "sum")
    )


def _earliest(frame: pd.DataFrame, column: str) -> pd.Series:
    """Per incident, ``column`` of the earliest entry where it is set (DuckDB's arg_min)."""
    known = frame.dropna(subset=[column]).sort_values("created_at", kind="stable")
    return known.groupby("incident_id")[column].first()


def _latest(frame: pd.DataFrame, column: str) -> pd.Series:
    known = frame.dropna(subset=[column]).sort_values("created_at", kind="stable")
    return known.groupby("incident_id")[column].last()


def _first_claimed(lists: pd.Series, owner: pd.Series) -> pd.Series:
    """Per incident (the index of ``lists``, lists of PagerDuty team ids), the owner of the
    first team of its list that the team map claims (int_pagerduty_incident_teams)."""
    owners = lists.explode().dropna().map(owner).dropna()
    return owners.groupby(level=0).first()


def incident_facts(conn, claims: Callable[[str], pd.DataFrame]) -> pd.DataFrame:
    """fct_incidents: per counted incident its team, month, TTD, TTA, TTR and flags, rebuilt
    from log entries (merged incidents and test services' incidents left out)."""
    teams = _read(conn, "select id as team_id, name as team_name from raw.pagerduty__teams")
    services = _read(conn, "select id as service_id, team_ids as service_team_ids, name, description "
                           "from raw.pagerduty__services")
    text = services["name"].fillna("") + " " + services["description"].fillna("")
    services["is_test"] = text.str.contains(TEST_SERVICE)
    incidents = _read(conn, "select id as incident_id, service_id, service_name, team_ids, created_at, status, "
                            "resolved_at as stated_resolved_at, resolve_reason_type, resolve_reason_incident_id "
                            "from raw.pagerduty__incidents")
    incidents["merged_into"] = incidents["resolve_reason_incident_id"].where(
        incidents["resolve_reason_type"] == "merge_resolve_reason")
    entries = _read(conn, "select incident_id, entry_type as type, created_at, agent_type, channel_type, team_ids, "
                          "team_names, impact_started_at, alert_timestamp from raw.pagerduty__log_entries")

    named = (entries.loc[entries["team_ids"].map(len) > 0, ["team_ids", "team_names"]]
             .explode(["team_ids", "team_names"]).rename(columns={"team_ids": "team_id", "team_names": "team_name"}))
    known = pd.concat([teams, named.dropna(subset=["team_id"])]).drop_duplicates()
    pd_claims = claims("pagerduty_team")
    by_id = known.merge(pd_claims, left_on="team_id", right_on="identifier").groupby("team_id")["team"].max()
    by_name = known.merge(pd_claims, left_on="team_name", right_on="identifier").groupby("team_id")["team"].max()
    owner = by_id.combine_first(by_name)
    by_service = claims("pagerduty_service").set_index("identifier")["team"]

    triggers = entries[entries["type"] == "trigger_log_entry"]
    acks = entries[(entries["type"] == "acknowledge_log_entry") & (entries["agent_type"] == "user_reference")]
    resolves = entries[entries["type"] == "resolve_log_entry"]
    timelines = pd.DataFrame({
        "trigger_team_ids": _earliest(triggers, "team_ids"),
        "acknowledged_at": acks.groupby("incident_id")["created_at"].min(),
        "last_resolved_at": resolves.groupby("incident_id")["created_at"].max(),
        "last_triggered_at": triggers.groupby("incident_id")["created_at"].max(),
        "first_resolved_at": resolves.groupby("incident_id")["created_at"].min(),
        "resolver_type": _latest(resolves, "agent_type"),
        "resolve_channel": _latest(resolves, "channel_type"),
        "impact_started_at": _latest(entries, "impact_started_at"),
        "alert_timestamp": _earliest(triggers, "alert_timestamp"),
    })
    after_resolve = triggers.merge(timelines["first_resolved_at"].dropna(), left_on="incident_id", right_index=True)
    timelines["reopen_count"] = (after_resolve[after_resolve["created_at"] > after_resolve["first_resolved_at"]]
                                 .groupby("incident_id").size())

    facts = incidents.merge(timelines, left_on="incident_id", right_index=True, how="left")
    facts = facts.merge(services[["service_id", "service_team_ids", "is_test"]], on="service_id", how="left")
    # A service the directory no longer holds (deleted): the name its incidents' reference carries.
    gone = ~facts["service_id"].isin(services["service_id"])
    facts.loc[gone, "is_test"] = facts.loc[gone, "service_name"].fillna("").str.contains(TEST_SERVICE)
    facts = facts[facts["merged_into"].isna() & ~facts["is_test"].fillna(False).astype(bool)].copy()
    # The first claimed team listed at trigger time, else by the incident, else by the service now.
    listed = facts.set_index("incident_id")
    facts["team"] = (facts["service_id"].map(by_service)
                     .combine_first(facts["incident_id"].map(_first_claimed(listed["trigger_team_ids"], owner)))
                     .combine_first(facts["incident_id"].map(_first_claimed(listed["team_ids"], owner)))
                     .combine_first(facts["incident_id"].map(_first_claimed(listed["service_team_ids"], owner))))
    facts["period_month"] = _month(facts["created_at"])
    # An onset precedes detection: one after the incident's creation is no onset.
    onsets = facts[["impact_started_at", "alert_timestamp"]]
    facts["onset_at"] = onsets.where(onsets.le(facts["created_at"], axis=0)).min(axis=1)
    resolved = facts["status"] == "resolved"
    facts["ttd_seconds"] = (facts["created_at"] - facts["onset_at"]).dt.total_seconds()
    # The last resolve entry, else (not stored yet: none, or a trigger after it) the incident's own time.
    pending = facts["last_resolved_at"].isna() | (facts["last_triggered_at"] > facts["last_resolved_at"])
    resolved_at = facts["last_resolved_at"].mask(pending, facts["stated_resolved_at"].fillna(facts["last_resolved_at"]))
    # Times in an impossible order (before the trigger; an acknowledgement after the resolve) are left out.
    resolved_at = resolved_at.where(resolved_at >= facts["created_at"])
    acknowledged_at = facts["acknowledged_at"].where((facts["acknowledged_at"] >= facts["created_at"])
                                                     & ~(resolved & (facts["acknowledged_at"] > resolved_at)))
    facts["tta_seconds"] = (acknowledged_at - facts["created_at"]).dt.total_seconds()
    facts["ttr_seconds"] = (resolved_at - facts["created_at"]).dt.total_seconds().where(resolved)
    facts["is_open"] = ~resolved
    facts["reopen_count"] = facts["reopen_count"].fillna(0)
    facts["is_auto_resolved"] = (facts["resolver_type"].isin(["service_reference", "integration_reference"])
                                 | (facts["resolve_channel"] == "timeout"))
    return facts


def _incidents(conn, claims) -> pd.DataFrame:
    facts = incident_facts(conn, claims).dropna(subset=["team"])
    grouped = facts.groupby(KEY)
    stats = {"incidents": grouped.size(), "open_incidents": grouped["is_open"].sum(),
             "auto_resolved_incidents": grouped["is_auto_resolved"].sum(),
             "reopened_incidents": grouped["reopen_count"].apply(lambda counts: (counts > 0).sum())}
    for kpi in ("ttr", "tta", "ttd"):
        seconds = grouped[f"{kpi}_seconds"]
        stats |= {f"n_{kpi}": seconds.count(), f"{kpi}_median_seconds": seconds.median(),
                  f"{kpi}_p90_seconds": seconds.quantile(0.9), f"{kpi}_mean_seconds": seconds.mean()}
    months = pd.DataFrame(stats)
    months["acknowledged_share"] = months["n_tta"] / months["incidents"]
    months["onset_known_share"] = months["n_ttd"] / months["incidents"]
    return months.reset_index()


def _ticket_class(rules: list[dict], issue_type: str | None, labels: list[str], project: str | None) -> str:
    """The class of the first rule (in file order) whose every condition matches, case-insensitively."""
    issue_type, project = (issue_type or "").lower() or None, (project or "").lower() or None
    lowered = {label.lower() for label in (labels if labels is not None else ())}
    for rule in rules:
        if ((not rule["issue_types"] or issue_type in rule["issue_types"])
                and (not rule["labels"] or lowered & set(rule["labels"]))
                and (not rule["projects"] or project in rule["projects"])):
            return rule["ticket_class"]
    return "unclassified"


def ticket_counts(conn, claims) -> pd.DataFrame:
    """fct_tickets counted per team and month of creation, by class (proactive, reactive,
    unclassified); tickets of no team left out."""
    rules = conn.sql("select * from raw.config__ticket_classification order by rule_order").df()
    rules = [{**rule, **{k: list(rule[k]) for k in ("issue_types", "labels", "projects")}}
             for rule in rules.to_dict("records")]
    components = claims("jira_component").set_index("identifier")["team"]
    issues = _read(conn, "select id, parent_id, is_subtask, project_key, issue_type, labels, components, created_at, "
                         "custom_fields[(select ticket_team_field from raw.config__kpi_rules)]::varchar as team_field "
                         "from raw.jira__issues")
    # The Atlassian team the KPI rules' Team field names (a value of another shape: none; a
    # sub-task's empty field: its parent's, not an epic's), owned by the team claiming it by id,
    # else by name (int_jira_team_owners, int_jira_issue_teams).
    values = [json.loads(text) if isinstance(text, str) else None for text in issues["team_field"]]
    teams = [value if isinstance(value, dict) and {"title", "isShared"} <= value.keys() else {} for value in values]
    issues["jira_team_id"] = [team.get("id") for team in teams]
    issues["jira_team_name"] = [team.get("name") for team in teams]
    named = issues[["jira_team_id", "jira_team_name"]].dropna(subset=["jira_team_id"]).drop_duplicates()
    jira_claims = claims("jira_team")
    by_id = (named.merge(jira_claims, left_on="jira_team_id", right_on="identifier")
             .groupby("jira_team_id")["team"].max())
    by_name = (named.merge(jira_claims, left_on="jira_team_name", right_on="identifier")
               .groupby("jira_team_id")["team"].max())
    team_of_issue = issues.set_index("id")["jira_team_id"]
    issues["jira_team_id"] = issues["jira_team_id"].combine_first(
        issues["parent_id"].where(issues["is_subtask"].fillna(False).astype(bool)).map(team_of_issue))

    def component_team(project: str, names) -> str | None:
        claimed = (f"{project}/{name}" for name in (names if names is not None else ()))
        return next((components[key] for key in claimed if key in components.index), None)

    issues["component_team"] = [component_team(p, c) for p, c in zip(issues["project_key"], issues["components"])]
    issues["ticket_class"] = [_ticket_class(rules, t, labels, p) for t, labels, p in
                              zip(issues["issue_type"], issues["labels"], issues["project_key"])]
    issues["team"] = (issues["jira_team_id"].map(by_id.combine_first(by_name))
                      .combine_first(issues["component_team"])
                      .combine_first(issues["project_key"].map(claims("jira_project").set_index("identifier")["team"])))
    issues = issues.dropna(subset=["team"])
    issues["period_month"] = _month(issues["created_at"])
    counts = pd.crosstab([issues["team"], issues["period_month"]], issues["ticket_class"])
    counts = counts.reindex(columns=["proactive", "reactive", "unclassified"], fill_value=0)
    counts.columns = [f"{name}_tickets" for name in counts.columns]
    return counts.reset_index()


def _survey_waves(conn, groups: pd.DataFrame, months: pd.DataFrame) -> pd.DataFrame:
    """fct_team_survey_waves' published cells: person score = mean of at least the scale's
    minimum of answered items; a team-wave's mean over its scored respondents per scale;
    hidden cells left out (the disclosure rule reads each team's largest monthly headcount
    of the quarter)."""
    answers = conn.sql(f"select response_id, survey_group, submitted_at, item_set, score, wave_quarter "
                       f"from {STORED_RESPONSES}").df()
    answers = answers.merge(groups, left_on="survey_group", right_on="identifier")
    # The wave the loader gave each response, else (stored before it did) its UTC quarter.
    answers["wave_quarter"] = pd.to_datetime(answers["wave_quarter"]).fillna(
        _quarter(pd.to_datetime(answers["submitted_at"])))
    people = answers.groupby(["response_id", "team", "wave_quarter", "item_set"])["score"].agg(
        ["mean", "count"]).reset_index()
    people = people[people["count"] >= people["item_set"].map({k: s.min_answered for k, s in ITEM_SETS.items()})]
    people = people.rename(columns={"item_set": "scale", "mean": "person_score"})
    headcount = months.assign(wave_quarter=_quarter(months["period_month"])).groupby(
        ["wave_quarter", "team"])["headcount"].max()
    hidden = {(wave, team) for wave, wave_people in people.groupby("wave_quarter")
              for team in wave_suppression(wave_people, headcount.xs(wave).to_dict() if wave in headcount else {}
                                           ).hidden}
    cells = people.groupby(["wave_quarter", "scale", "team"])["person_score"].agg(
        n_respondents="count", mean="mean").reset_index()
    return cells[[(w, t) not in hidden for w, t in zip(cells["wave_quarter"], cells["team"])]]


def _with_lagged_scores(months: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Per scale, the latest reportable wave of an earlier quarter, carried forward for at most
    SAFETY_MAX_WAVE_AGE_QUARTERS; an older one leaves the month without it (safety: stale)."""
    months["period_quarter"] = _quarter(months["period_month"])
    for scale, prefix in LAGGED_SCALES.items():
        columns = [f"{prefix}_wave_quarter", f"{prefix}_n_respondents", f"{prefix}_lagged"]
        waves = cells.loc[cells["scale"] == scale, ["team", "wave_quarter", "n_respondents", "mean"]]
        waves = waves.set_axis(["team", *columns], axis=1)
        months = pd.merge_asof(
            months.sort_values("period_quarter"), waves.sort_values(columns[0]),
            left_on="period_quarter", right_on=columns[0], by="team",
            allow_exact_matches=False, direction="backward",
        )
        period, wave = pd.to_datetime(months["period_quarter"]), pd.to_datetime(months[columns[0]])
        age = ((period.dt.year - wave.dt.year) * 4 + (period.dt.month - wave.dt.month) // 3)
        stale = age > SAFETY_MAX_WAVE_AGE_QUARTERS  # no wave: NaN age, not stale
        months[columns] = months[columns].where(~stale)
        if prefix == "safety":
            months["is_safety_wave_stale"] = stale
    return months.drop(columns="period_quarter").sort_values(KEY).reset_index(drop=True)


def compare(sql_mart: pd.DataFrame, pandas_mart: pd.DataFrame, rtol: float = 1e-9) -> dict:
    """Row-by-row, column-by-column comparison on (team, period_month) of the columns both
    marts have. Floats are equal within ``rtol``; nulls must be null on both sides."""
    left, right = sql_mart.copy(), pandas_mart.copy()
    for frame in (left, right):
        for column in frame.columns:
            if column.endswith(("_month", "_quarter")):
                frame[column] = pd.to_datetime(frame[column])
    merged = left.merge(right, on=KEY, how="outer", suffixes=("_sql", "_pandas"), indicator=True)
    shared = [c for c in right.columns if c in left.columns and c not in KEY]
    both = merged[merged["_merge"] == "both"]
    mismatches = {}
    for column in shared:
        a, b = both[f"{column}_sql"], both[f"{column}_pandas"]
        if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
            a, b = a.astype(float).to_numpy(), b.astype(float).to_numpy()
            equal = np.isclose(a, b, rtol=rtol, atol=1e-9, equal_nan=True)
        else:
            equal = (a.isna() & b.isna()) | (a == b)
        if (~np.asarray(equal)).sum():
            mismatches[column] = int((~np.asarray(equal)).sum())
    return {
        "rows_sql": len(left),
        "rows_pandas": len(right),
        "rows_only_sql": int((merged["_merge"] == "left_only").sum()),
        "rows_only_pandas": int((merged["_merge"] == "right_only").sum()),
        "columns_compared": shared,
        "columns_not_in_baseline": [c for c in left.columns if c not in right.columns],
        "mismatched_columns": mismatches,
        "equal": not mismatches and len(left) == len(right) == len(both),
    }
