"""The scale benchmark's pieces on a tiny organisation: the bulk raw tables have the shapes the
sandbox serves and the typed columns the writers store, the dbt pipeline runs on them, and
the SQL mart equals the pandas and polars baselines."""

import json
import shutil
from collections import defaultdict

import duckdb
import pandas as pd
import polars as pl
import pytest
from werkzeug.test import Client

from assets.jira.resource import ISSUE_FIELDS
from assets.warehouse.restricted import read_only_connection
from benchmarks import pandas_baseline, polars_baseline, shapes, stages
from benchmarks.bulk_org import BulkSpec, build_raw_warehouse
from benchmarks.pandas_baseline import compare
from benchmarks.scale import keep_only_raw_tables
from pipelines.sandbox.jira import API, JiraApi
from pipelines.sandbox.pagerduty import PagerDutyApi
from pipelines.synthetic.org import OrgSpec, generate

TINY = BulkSpec(n_teams=6, n_months=9, incidents_per_head_month=1.0, tickets_per_head_month=1.5, seed=3)
# Not covered by the bulk path yet (issue 11, learning from errors and speaking up): its tickets
# carry no people, links or sub-tasks and it has no reviews, so the baselines do not compute
# the mart's learning and speaking-up columns either. Named here so any other gap still fails.
ISSUE_FIELDS_NOT_IN_BULK = ("reporter", "creator", "issuelinks", "subtasks", "parent")
COLUMNS_NOT_IN_BASELINES = [
    "reviewable_incidents", "reviewed_incidents", "review_share", "n_reviews_done", "review_done_median_days",
    "action_items", "action_items_due", "action_items_closed_in_time", "action_items_closed_in_time_share",
    "n_action_items_closed", "action_item_close_median_days", "repeat_incidents", "repeat_share",
    "junior_headcount", "proactive_tickets_reporter_known", "cross_team_proactive_tickets", "junior_proactive_tickets",
]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "warehouse.duckdb"
    raw_rows = build_raw_warehouse(path, TINY, progress=lambda message: None)
    generated = _tables(path)
    results = {stage: stages.run(stage, str(path), 2, "1GiB", None, full_refresh=True)
               for stage in stages.PIPELINE_STAGES}
    return path, raw_rows, results, generated


def _tables(warehouse) -> set[tuple[str, str, str]]:
    """Every table of the warehouse and its restricted file: (database, schema, table)."""
    with read_only_connection(str(warehouse)) as conn:
        return set(conn.sql("select database_name, schema_name, table_name from duckdb_tables()").fetchall())


def _shape(value, path="$") -> set[tuple[str, str]]:
    """Every (path, JSON type) in a payload; list elements share the path ``[]``."""
    if isinstance(value, dict):
        return {(path, "object")} | {pair for key, item in value.items() for pair in _shape(item, f"{path}.{key}")}
    if isinstance(value, list):
        return {(path, "array")} | {pair for item in value for pair in _shape(item, f"{path}[]")}
    return {(path, type(value).__name__)}


def _shapes_by(records, kind) -> dict[str, set]:
    grouped = defaultdict(set)
    for record in records:
        grouped[kind(record)] |= _shape(record)
    return grouped


def _sandbox_payloads(org) -> dict[str, list[dict]]:
    """What the sandbox serves for a generator organisation (embedded changelogs only: the
    comparison is of shapes, not of complete histories)."""
    pagerduty = Client(PagerDutyApi(org, token="t", base_url=shapes.PAGERDUTY_URL, rate_limit_per_minute=10**6,
                                    count_request=lambda key: None))
    payloads = {}
    for path, table in (("/incidents", "pagerduty__incidents"), ("/log_entries", "pagerduty__log_entries"),
                        ("/teams", "pagerduty__teams"), ("/services", "pagerduty__services")):
        collection = path.strip("/")
        response = pagerduty.get(path, query_string={"date_range": "all", "limit": 100},
                                 headers={"Authorization": "Token token=t"})
        payloads[table] = response.get_json()[collection]
    jira = Client(JiraApi(org, email="e", token="t", base_url=shapes.JIRA_URL, count_request=lambda key: None))
    issues = jira.get(f"{API}/search/jql", auth=("e", "t"), query_string={
        "jql": "updated >= 0", "fields": ",".join(ISSUE_FIELDS), "expand": "changelog", "maxResults": 100,
    }).get_json()["issues"]
    for issue in issues:
        histories = issue["changelog"]["histories"]
        issue["changelog"] = {"startAt": 0, "maxResults": len(histories), "total": len(histories),
                              "histories": histories[::-1]}
    payloads["jira__issues"] = issues
    return payloads


def _without_people_and_links(issue: dict) -> dict:
    return {**issue, "fields": {k: v for k, v in issue["fields"].items() if k not in ISSUE_FIELDS_NOT_IN_BULK}}


@pytest.mark.slow
def test_bulk_payloads_have_the_shapes_the_sandbox_serves(warehouse):
    path, *_ = warehouse
    served = _sandbox_payloads(generate(OrgSpec(seed=1, n_teams=3, n_months=6)))
    kinds = {
        "pagerduty__incidents": lambda p: p["status"],
        "pagerduty__log_entries": lambda p: p["type"] + "/" + p["agent"]["type"] + "/" + p["channel"]["type"],
        "pagerduty__teams": lambda p: "team",
        "pagerduty__services": lambda p: "service",
        "jira__issues": lambda p: "issue",
    }
    with duckdb.connect(str(path), read_only=True) as conn:
        for table, kind in kinds.items():
            bulk = [json.loads(p) for (p,) in conn.sql(f"select payload from raw.{table}").fetchall()]
            if table == "jira__issues":
                bulk, served[table] = map(_without_people_and_links, bulk), map(_without_people_and_links,
                                                                                 served[table])
            bulk_shapes, served_shapes = _shapes_by(bulk, kind), _shapes_by(served[table], kind)
            assert set(served_shapes) <= set(bulk_shapes), f"{table}: variants the bulk path never makes"
            for variant, shape in served_shapes.items():
                assert bulk_shapes[variant] == shape, f"{table} {variant}: {bulk_shapes[variant] ^ shape}"


@pytest.mark.slow
def test_bulk_warehouse_feeds_every_stage(warehouse):
    path, raw_rows, results, _ = warehouse
    assert raw_rows["pagerduty__incidents"] > 300 and raw_rows["jira__issues"] > 500
    assert raw_rows["pagerduty__log_entries"] > 2 * raw_rows["pagerduty__incidents"]
    rows = {key: n for result in results.values() for key, n in result["rows"].items()}
    with duckdb.connect(str(path), read_only=True) as conn:
        merged, on_test_services, excluded = conn.sql("""
            select count(*) filter (where merged), count(*) filter (where test), count(*) filter (where merged or test)
            from (
                select incidents.payload -> 'resolve_reason' ->> 'type' = 'merge_resolve_reason' as merged,
                       coalesce(services.payload ->> 'name' like '%(test)', false) as test
                from raw.pagerduty__incidents as incidents
                inner join raw.pagerduty__services as services
                    on services.id = (incidents.payload -> 'service' ->> 'id')
            )
        """).fetchone()
        entry_types = dict(conn.sql("select payload ->> 'type', count(*) from raw.pagerduty__log_entries "
                                    "group by all").fetchall())
        alerted = conn.sql("select count(*) from raw.pagerduty__log_entries "
                           "where (payload -> 'channel' -> 'cef_details') is not null").fetchone()[0]
    assert merged > 0 and on_test_services > 0 and alerted > 0
    assert entry_types["custom_field_value_change_log_entry"] > 0
    assert rows["marts/fct_incidents"] == raw_rows["pagerduty__incidents"] - excluded
    assert rows["staging/stg_jira__issues"] == raw_rows["jira__issues"]
    assert rows["marts/mart_team_month"] == TINY.n_teams * TINY.n_months
    for result in results.values():
        assert result["seconds"] > 0 and result["cpu_seconds"] > 0 and result["peak_rss_bytes"] > 10 * 1024**2
    with duckdb.connect(str(path), read_only=True) as conn:
        assert conn.sql("select count(*) from marts.fct_incidents where team is null").fetchone() == (0,)
        assert conn.sql("select count(*) from models.kpi_safety_effects where kpi = 'log TTR (incident level)' and role = 'main'").fetchone() == (1,)
        sources = dict(conn.sql("select team_source, count(*) from marts.fct_tickets group by all").fetchall())
        onsets = conn.sql("select count(onset_at) from marts.fct_incidents").fetchone()[0]
    # Shared-project tickets go to their component's team; unowned components to none.
    assert sources["component"] > 0 and sources["project"] > 0 and sources[None] > 0
    assert onsets > 0.5 * rows["marts/fct_incidents"]


@pytest.mark.slow
@pytest.mark.parametrize("baseline", [pandas_baseline, polars_baseline], ids=["pandas", "polars"])
def test_sql_mart_equals_the_baseline(warehouse, baseline):
    path, *_ = warehouse
    with read_only_connection(str(path)) as conn:  # the baselines read the survey responses too
        sql_mart = conn.sql("select * from marts.mart_team_month").df()
        computed = baseline.team_month_mart(conn)
    comparison = compare(sql_mart, computed)
    assert comparison["equal"], comparison
    assert comparison["columns_not_in_baseline"] == COLUMNS_NOT_IN_BASELINES
    assert set(comparison["columns_compared"]) == set(sql_mart.columns) - {"team", "period_month",
                                                                          *COLUMNS_NOT_IN_BASELINES}
    # Not a vacuous equality: the mart holds the KPIs the comparison covers.
    assert sql_mart["incidents"].sum() > 300 and sql_mart["ttr_median_seconds"].notna().mean() > 0.9
    assert sql_mart["safety_lagged"].notna().sum() > 0 and sql_mart["proactive_share"].between(0, 1).any()
    assert sql_mart["ttd_median_seconds"].notna().mean() > 0.9 and sql_mart["auto_resolved_incidents"].sum() > 0
    assert sql_mart["unclassified_tickets"].sum() > 0 and sql_mart["voluntary_attrition_rate"].gt(0).any()


@pytest.mark.slow
def test_compare_reports_a_changed_value(warehouse):
    path, *_ = warehouse
    with duckdb.connect(str(path), read_only=True) as conn:
        sql_mart = conn.sql("select * from marts.mart_team_month").df()
    changed = sql_mart.copy()
    changed.loc[3, "ttr_p90_seconds"] += 1.0
    comparison = compare(sql_mart, changed.iloc[1:])
    assert not comparison["equal"]
    assert comparison["mismatched_columns"] == {"ttr_p90_seconds": 1} and comparison["rows_only_sql"] == 1


@pytest.mark.slow
def test_a_reused_warehouse_starts_its_first_build_from_what_the_generator_wrote(warehouse, tmp_path):
    """``benchmarks.scale --reuse`` drops an earlier run's staging, marts, models and frozen survey
    waves: left in place, they would make the first build an incremental one."""
    path, _, _, generated = warehouse
    shutil.copytree(path.parent, tmp_path / "copy")
    reused = tmp_path / "copy" / path.name
    before = _tables(reused)
    assert ("warehouse", "marts", "mart_team_month") in before and ("restricted", "main", "survey__wave_members") in before
    dropped = keep_only_raw_tables(reused)
    assert _tables(reused) == generated
    assert sorted(dropped) == sorted(f'"{d}"."{s}"."{t}"' for d, s, t in before - generated)


def test_both_baselines_count_a_response_in_the_wave_the_loader_gave_it():
    """A campaign pinned to 2025-Q1 (export_mapping.yml's wave:) with a straggler on 3 April:
    staging counts all six respondents in Q1 (the stored wave_quarter), and so must the
    baselines; a response stored before the wave column existed takes its UTC quarter."""
    conn = duckdb.connect()
    conn.execute("attach ':memory:' as restricted")
    conn.execute("create table restricted.survey__responses (response_id varchar, survey_group varchar, "
                 "submitted_at timestamp, item_set varchar, item_no bigint, score bigint, wave_quarter date)")
    conn.executemany("insert into restricted.survey__responses values (?, ?, ?, 'psychological_safety', ?, ?, ?)", [
        (f"R{i}", "Payments", "2025-04-03 09:00:00" if i == 0 else "2025-03-25 09:00:00", item, 3 + i % 3,
         "2025-01-01") for i in range(6) for item in range(1, 8)])
    months = {"team": ["Payments"] * 6, "period_month": [f"2025-{m:02d}-01" for m in range(1, 7)], "headcount": [20] * 6}
    groups = {"identifier": ["Payments"], "team": ["Payments"]}
    by_pandas = pandas_baseline._survey_waves(conn, pd.DataFrame(groups), pd.DataFrame(months).astype(
        {"period_month": "datetime64[ns]"}))
    by_polars = polars_baseline._survey_waves(conn, pl.LazyFrame(groups), pl.LazyFrame(months).with_columns(
        pl.col("period_month").str.to_date())).collect()
    assert by_pandas[["wave_quarter", "n_respondents"]].astype(str).values.tolist() == [["2025-01-01", "6"]]
    assert by_polars.select(pl.col("wave_quarter").cast(pl.String), "n_respondents").rows() == [("2025-01-01", 6)]
    # Stored before the loader kept each response's wave: the calendar quarter of submission.
    conn.execute("alter table restricted.survey__responses drop column wave_quarter")
    by_pandas = pandas_baseline._survey_waves(conn, pd.DataFrame(groups), pd.DataFrame(months).astype(
        {"period_month": "datetime64[ns]"}))
    assert by_pandas[["wave_quarter", "n_respondents"]].astype(str).values.tolist() == [["2025-01-01", "5"]]
