"""The team-month mart computed the way a careful analyst would in plain pandas: read the
raw tables, ``json.loads`` each payload, pull out the fields, group and merge.

It mirrors sql/staging/*, sql/marts/fct_incidents.sql, fct_team_survey_waves.sql and
mart_team_month.sql (METRICS.md's definitions); when those change, change this module with
them. ``compare`` checks it against the SQL mart, which makes it a correctness check of both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

import duckdb
import numpy as np
import pandas as pd

from pipelines.synthetic.survey import SURVEY_ITEMS

PROACTIVE_TYPES = {"risk", "near miss", "improvement", "security finding", "tech debt"}
PROACTIVE_LABELS = {"near-miss", "proactive", "raised-concern"}
REACTIVE_TYPES = {"incident", "escalation", "problem"}
KEY = ["team", "period_month"]
CHUNK_ROWS = 50_000


def _payloads(conn: duckdb.DuckDBPyConnection, table: str) -> Iterator[dict]:
    """Each record's parsed payload, fetched in chunks so the JSON text never sits in memory whole."""
    cursor = conn.execute(f"select payload::varchar from raw.{table}")
    while rows := cursor.fetchmany(CHUNK_ROWS):
        for (payload,) in rows:
            yield json.loads(payload)


def _records(conn, table: str, extract: Callable[[dict], tuple], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame((extract(p) for p in _payloads(conn, table)), columns=columns)


def _utc(values: pd.Series, fmt: str | None = None) -> pd.Series:
    return pd.to_datetime(values, utc=True, format=fmt).dt.tz_localize(None)


def _month(values: pd.Series) -> pd.Series:
    return values.dt.to_period("M").dt.to_timestamp()


def _quarter(values: pd.Series) -> pd.Series:
    return values.dt.to_period("Q").dt.to_timestamp()


def team_month_mart(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """mart_team_month from the raw tables: one row per team and month of HR snapshots."""
    team_map = conn.sql("select * from raw.config__team_map").df()
    team_map["team"] = team_map["team"].str.strip()
    team_map["identifier"] = team_map["identifier"].str.strip()

    def claims(source: str) -> pd.DataFrame:
        return team_map.loc[team_map["source"] == source, ["identifier", "team"]]

    months = _headcount(conn, claims("hr_org_unit"))
    for part in (_leavers(conn, claims("hr_org_unit")), _incidents(conn, claims),
                 _tickets(conn, claims("jira_project"))):
        months = months.merge(part, on=KEY, how="left")
    for column in ("voluntary_leavers", "critical_voluntary_leavers", "incidents", "n_ttr", "n_tta",
                   "proactive_tickets", "reactive_tickets", "unclassified_tickets"):
        months[column] = months[column].fillna(0).astype("int64")
    months["voluntary_attrition_rate"] = months["voluntary_leavers"] / months["headcount"].replace(0, np.nan)
    months["critical_attrition_rate"] = (
        months["critical_voluntary_leavers"] / months["critical_headcount"].replace(0, np.nan)
    )
    flagged = (months["proactive_tickets"] + months["reactive_tickets"]).replace(0, np.nan)
    months["proactive_share"] = months["proactive_tickets"] / flagged
    return _with_lagged_safety(months, _survey_waves(conn, claims("survey_group")))


def _headcount(conn, org_units: pd.DataFrame) -> pd.DataFrame:
    rows = conn.sql("select * from raw.hr__headcount").df()
    rows = rows.merge(org_units, left_on="org_unit", right_on="identifier")
    rows["period_month"] = _month(pd.to_datetime(rows["snapshot_date"]))
    rows["critical"] = rows["critical_role"].str.lower() == "true"
    grouped = rows.groupby(KEY)
    return pd.DataFrame({
        "headcount": grouped["employee_id"].nunique(),
        "critical_headcount": rows[rows["critical"]].groupby(KEY)["employee_id"].nunique(),
    }).fillna({"critical_headcount": 0}).astype("int64").reset_index()


def _leavers(conn, org_units: pd.DataFrame) -> pd.DataFrame:
    rows = conn.sql("select * from raw.hr__terminations").df()
    rows = rows.merge(org_units, left_on="org_unit", right_on="identifier")
    rows["period_month"] = _month(pd.to_datetime(rows["termination_date"]))
    rows["voluntary"] = rows["voluntary"].str.lower() == "true"
    rows["critical_voluntary"] = rows["voluntary"] & (rows["critical_role"].str.lower() == "true")
    return rows.groupby(KEY, as_index=False).agg(
        voluntary_leavers=("voluntary", "sum"), critical_voluntary_leavers=("critical_voluntary", "sum")
    )


def incident_facts(conn, claims: Callable[[str], pd.DataFrame]) -> pd.DataFrame:
    """fct_incidents: per incident its team, month, TTA and TTR rebuilt from log entries."""
    teams = _records(conn, "pagerduty__teams", lambda p: (p["id"], p["name"]), ["team_id", "team_name"])
    services = _records(conn, "pagerduty__services", lambda p: (p["id"], (p["teams"] or [{}])[0].get("id")),
                        ["service_id", "team_id"])
    incidents = _records(conn, "pagerduty__incidents",
                         lambda p: (p["id"], p["service"]["id"], p["created_at"], p["status"]),
                         ["incident_id", "service_id", "created_at", "status"])
    entries = _records(conn, "pagerduty__log_entries",
                       lambda p: (p["incident"]["id"], p["type"], p["created_at"], p["agent"]["type"]),
                       ["incident_id", "type", "created_at", "agent_type"])
    incidents["created_at"] = _utc(incidents["created_at"])
    entries["created_at"] = _utc(entries["created_at"])

    by_team_id = claims("pagerduty_team").merge(teams, left_on="identifier", right_on="team_id")
    by_team_name = claims("pagerduty_team").merge(teams, left_on="identifier", right_on="team_name")
    team_of_pd_team = pd.concat([by_team_id, by_team_name])[["team_id", "team"]].drop_duplicates()
    services = services.merge(team_of_pd_team, on="team_id", how="left")
    by_service = claims("pagerduty_service").rename(columns={"identifier": "service_id", "team": "service_team"})
    services = services.merge(by_service, on="service_id", how="left")
    services["team"] = services["service_team"].fillna(services["team"])

    acks = entries[(entries["type"] == "acknowledge_log_entry") & (entries["agent_type"] == "user_reference")]
    resolves = entries[entries["type"] == "resolve_log_entry"]
    facts = (
        incidents
        .merge(acks.groupby("incident_id")["created_at"].min().rename("acknowledged_at"), on="incident_id", how="left")
        .merge(resolves.groupby("incident_id")["created_at"].max().rename("resolved_at"), on="incident_id", how="left")
        .merge(services[["service_id", "team"]], on="service_id", how="left")
    )
    facts["period_month"] = _month(facts["created_at"])
    facts["tta_seconds"] = (facts["acknowledged_at"] - facts["created_at"]).dt.total_seconds()
    resolved = facts["status"] == "resolved"
    facts["ttr_seconds"] = (facts["resolved_at"] - facts["created_at"]).dt.total_seconds().where(resolved)
    return facts


def _incidents(conn, claims) -> pd.DataFrame:
    facts = incident_facts(conn, claims).dropna(subset=["team"])
    grouped = facts.groupby(KEY)
    return pd.DataFrame({
        "incidents": grouped.size(),
        "n_ttr": grouped["ttr_seconds"].count(),
        "ttr_median_seconds": grouped["ttr_seconds"].median(),
        "ttr_p90_seconds": grouped["ttr_seconds"].quantile(0.9),
        "ttr_mean_seconds": grouped["ttr_seconds"].mean(),
        "n_tta": grouped["tta_seconds"].count(),
        "tta_median_seconds": grouped["tta_seconds"].median(),
        "tta_p90_seconds": grouped["tta_seconds"].quantile(0.9),
        "tta_mean_seconds": grouped["tta_seconds"].mean(),
    }).reset_index()


def _ticket_class(issue_type: str, labels: list[str]) -> str:
    if (issue_type or "").lower() in PROACTIVE_TYPES or PROACTIVE_LABELS & set(labels or ()):
        return "proactive"
    if (issue_type or "").lower() in REACTIVE_TYPES:
        return "reactive"
    return "unclassified"


def _tickets(conn, projects: pd.DataFrame) -> pd.DataFrame:
    issues = _records(
        conn, "jira__issues",
        lambda p: (p["fields"]["project"]["key"], p["fields"]["created"],
                   _ticket_class(p["fields"]["issuetype"]["name"], p["fields"]["labels"])),
        ["project_key", "created", "ticket_class"],
    )
    issues = issues.merge(projects, left_on="project_key", right_on="identifier")
    issues["period_month"] = _month(_utc(issues["created"], "%Y-%m-%dT%H:%M:%S.%f%z"))
    counts = pd.crosstab([issues["team"], issues["period_month"]], issues["ticket_class"])
    counts = counts.reindex(columns=["proactive", "reactive", "unclassified"], fill_value=0)
    counts.columns = [f"{name}_tickets" for name in counts.columns]
    return counts.reset_index()


def _normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip()).lower()


def _survey_waves(conn, groups: pd.DataFrame) -> pd.DataFrame:
    """fct_team_survey_waves: respondents with at least 5 answered items; cells of fewer than
    5 respondents suppressed."""
    responses = conn.sql("select * from raw.survey__responses").df()
    items = {_normalised(text): reverse for text, reverse in SURVEY_ITEMS}
    answers = responses.melt(id_vars=["response_id", "submitted_at", "team"], var_name="item", value_name="answer")
    answers["reverse"] = answers["item"].map(_normalised).map(items)
    answers = answers[answers["reverse"].notna() & answers["answer"].notna()]
    answers = answers[answers["answer"].str.strip() != ""]
    answer = answers["answer"].astype(int)
    answers["score"] = np.where(answers["reverse"].astype(bool), 8 - answer, answer)
    answers["wave_quarter"] = _quarter(pd.to_datetime(answers["submitted_at"]))
    people = answers.groupby(["response_id", "team", "wave_quarter"])["score"].agg(["mean", "count"]).reset_index()
    people = people[people["count"] >= 5].merge(groups, left_on="team", right_on="identifier", suffixes=("_group", ""))
    waves = people.groupby(["team", "wave_quarter"])["mean"].agg(n_respondents="count", safety_mean="mean")
    waves = waves.reset_index()
    return waves[waves["n_respondents"] >= 5]


def _with_lagged_safety(months: pd.DataFrame, waves: pd.DataFrame) -> pd.DataFrame:
    """The latest reportable wave of an earlier quarter, carried forward."""
    months["period_quarter"] = _quarter(months["period_month"])
    waves = waves.rename(columns={"wave_quarter": "safety_wave_quarter", "n_respondents": "safety_n_respondents",
                                  "safety_mean": "safety_lagged"})
    merged = pd.merge_asof(
        months.sort_values("period_quarter"), waves.sort_values("safety_wave_quarter"),
        left_on="period_quarter", right_on="safety_wave_quarter", by="team",
        allow_exact_matches=False, direction="backward",
    )
    return merged.drop(columns="period_quarter").sort_values(KEY).reset_index(drop=True)


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
