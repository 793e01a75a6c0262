"""The team-month mart computed with polars' lazy API from the raw tables' typed columns, as
a data engineer fluent in polars would write it: one lazy query plan per source, collected once.

It mirrors benchmarks/pandas_baseline.py (and so the dbt models and the survey waves asset);
when the mart's definitions change, change both. The survey's disclosure rule is taken from
the project (``assets.models.psychometrics.wave_suppression``), as the pandas baseline does.
"""

from datetime import date

import duckdb
import pandas as pd
import polars as pl

from assets.landing.item_sets import ITEM_SETS
from assets.models.psychometrics import SAFETY_MAX_WAVE_AGE_QUARTERS, wave_suppression
from assets.warehouse.partitions import HISTORY_START
from benchmarks.pandas_baseline import STORED_RESPONSES

KEY = ["team", "period_month"]
TEST_SERVICE = r"(?i)\btest\b"
TICKET_CLASSES = ("proactive", "reactive", "unclassified")
# The scales the mart carries forward, and the prefix of their columns there.
LAGGED_SCALES = {"psychological_safety": "safety", "accountability": "accountability"}


def _scan(conn: duckdb.DuckDBPyConnection, sql: str) -> pl.LazyFrame:
    return conn.sql(sql).pl().lazy()


def _month(column: str) -> pl.Expr:
    return pl.col(column).dt.truncate("1mo").cast(pl.Date)


def _seconds(later: str, earlier: str) -> pl.Expr:
    return (pl.col(later) - pl.col(earlier)).dt.total_microseconds() / 1e6


def team_month_mart(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """mart_team_month from the raw tables: one row per team and month of HR snapshots."""
    team_map = _scan(conn, "select * from raw.config__team_map").with_columns(
        pl.col("team").str.strip_chars(), pl.col("identifier").str.strip_chars())

    def claims(source: str) -> pl.LazyFrame:
        return team_map.filter(pl.col("source") == source).select("identifier", "team")

    every_month = _headcount(conn, claims("hr_org_unit"))
    months = every_month.filter(pl.col("period_month") >= date.fromisoformat(HISTORY_START))
    incidents, tickets = _incidents(conn, claims), ticket_counts(conn, claims)
    for part in (_leavers(conn, claims("hr_org_unit")), incidents, tickets):
        months = months.join(part, on=KEY, how="left")
    pagerduty_counts = ["incidents", "n_ttr", "n_tta", "n_ttd", "open_incidents", "auto_resolved_incidents",
                        "reopened_incidents"]
    jira_counts = [f"{name}_tickets" for name in TICKET_CLASSES]
    # A source counts from the first month any team has a record of it: no data, not 0, before
    # (mart_team_month's source_starts); a source with no record counts in no month.
    starts = pl.concat([incidents.select(pagerduty_start=pl.col("period_month").min()),
                        tickets.select(jira_start=pl.col("period_month").min())], how="horizontal")
    flagged = pl.col("proactive_tickets") + pl.col("reactive_tickets")
    months = months.join(starts, how="cross").with_columns(
        pl.col("voluntary_leavers", "critical_voluntary_leavers").fill_null(0),
        *(pl.when(pl.col("period_month") >= pl.col(start)).then(pl.col(column).fill_null(0)).alias(column)
          for start, columns in (("pagerduty_start", pagerduty_counts), ("jira_start", jira_counts))
          for column in columns),
    ).drop("pagerduty_start", "jira_start").with_columns(
        voluntary_attrition_rate=pl.col("voluntary_leavers") / pl.when(pl.col("avg_headcount") != 0)
        .then(pl.col("avg_headcount")),
        critical_attrition_rate=pl.col("critical_voluntary_leavers") / pl.when(pl.col("avg_critical_headcount") != 0)
        .then(pl.col("avg_critical_headcount")),
        proactive_share=pl.col("proactive_tickets") / pl.when(flagged != 0).then(flagged),
    )
    mart = _with_lagged_scores(months, _survey_waves(conn, claims("survey_group"), every_month)).sort(KEY).collect()
    return mart.to_pandas()


def _headcount(conn, org_units: pl.LazyFrame) -> pl.LazyFrame:
    """Opening headcount per team-month and the month's average (mean of its opening and the
    next month's opening snapshot; the opening one alone when the next month has none)."""
    rows = (_scan(conn, "select * from raw.hr__headcount").join(org_units, left_on="org_unit", right_on="identifier")
            .with_columns(period_month=pl.col("snapshot_date").str.to_date().dt.truncate("1mo"),
                          critical=pl.col("critical_role").str.to_lowercase() == "true"))
    months = rows.group_by(KEY).agg(
        headcount=pl.col("employee_id").n_unique(),
        critical_headcount=pl.col("employee_id").filter(pl.col("critical")).n_unique(),
    ).sort(KEY)
    consecutive = pl.col("period_month").shift(-1).over("team") == pl.col("period_month").dt.offset_by("1mo")
    return months.with_columns(**{
        average: pl.when(consecutive).then((pl.col(count) + pl.col(count).shift(-1).over("team")) / 2)
        .otherwise(pl.col(count).cast(pl.Float64))
        for count, average in (("headcount", "avg_headcount"), ("critical_headcount", "avg_critical_headcount"))
    })


def _leavers(conn, org_units: pl.LazyFrame) -> pl.LazyFrame:
    rows = (_scan(conn, "select * from raw.hr__terminations").join(org_units, left_on="org_unit", right_on="identifier")
            .with_columns(period_month=pl.col("termination_date").str.to_date().dt.truncate("1mo"),
                          voluntary=pl.col("voluntary").str.to_lowercase() == "true",
                          critical=pl.col("critical_role").str.to_lowercase() == "true"))
    return rows.group_by(KEY).agg(
        voluntary_leavers=pl.col("voluntary").sum(),
        critical_voluntary_leavers=(pl.col("voluntary") & pl.col("critical")).sum(),
    )


def _by_time(column: str, condition: pl.Expr | bool) -> pl.Expr:
    """Per incident, ``column`` of the entries (meeting ``condition``) where it is set, oldest first."""
    kept = pl.col(column).is_not_null() & condition
    return pl.col(column).filter(kept).sort_by(pl.col("created_at").filter(kept), maintain_order=True)


def _earliest(column: str, condition: pl.Expr | bool = True) -> pl.Expr:
    return _by_time(column, condition).first()


def _latest(column: str, condition: pl.Expr | bool = True) -> pl.Expr:
    return _by_time(column, condition).last()


def incident_facts(conn, claims) -> pl.LazyFrame:
    """fct_incidents: per counted incident its team, month, TTD, TTA, TTR and flags, rebuilt
    from log entries (merged incidents and test services' incidents left out)."""
    teams = _scan(conn, "select id as team_id, name as team_name from raw.pagerduty__teams")
    services = _scan(conn, "select id as service_id, team_ids as service_team_ids, name, description "
                           "from raw.pagerduty__services").select(
        "service_id", "service_team_ids", in_directory=pl.lit(True),
        is_test=(pl.col("name").fill_null("") + " " + pl.col("description").fill_null("")).str.contains(TEST_SERVICE))
    incidents = _scan(conn, "select id as incident_id, service_id, service_name, team_ids, created_at, status, "
                            "resolved_at as stated_resolved_at, resolve_reason_type from raw.pagerduty__incidents")
    entries = _scan(conn, "select incident_id, entry_type, created_at, agent_type, channel_type, team_ids, team_names, "
                          "impact_started_at, alert_timestamp from raw.pagerduty__log_entries")

    named = (entries.filter(pl.col("team_ids").list.len() > 0).select(team_id="team_ids", team_name="team_names")
             .explode("team_id", "team_name").filter(pl.col("team_id").is_not_null()))
    known = pl.concat([teams, named]).unique()
    pd_claims = claims("pagerduty_team")
    by_id = known.join(pd_claims, left_on="team_id", right_on="identifier").group_by("team_id").agg(by_id=pl.max("team"))
    by_name = (known.join(pd_claims, left_on="team_name", right_on="identifier")
               .group_by("team_id").agg(by_name=pl.max("team")))
    owner = (known.select("team_id").unique().join(by_id, on="team_id", how="left").join(by_name, on="team_id", how="left")
             .select("team_id", owner=pl.coalesce("by_id", "by_name")))

    trigger = pl.col("entry_type") == "trigger_log_entry"
    resolve = pl.col("entry_type") == "resolve_log_entry"
    timelines = entries.group_by("incident_id").agg(
        trigger_team_ids=_earliest("team_ids", trigger),
        acknowledged_at=pl.col("created_at").filter(
            (pl.col("entry_type") == "acknowledge_log_entry") & (pl.col("agent_type") == "user_reference")).min(),
        last_resolved_at=pl.col("created_at").filter(resolve).max(),
        last_triggered_at=pl.col("created_at").filter(trigger).max(),
        resolver_type=_latest("agent_type", resolve),
        resolve_channel=_latest("channel_type", resolve),
        impact_started_at=_latest("impact_started_at"),
        alert_timestamp=_earliest("alert_timestamp", trigger),
        reopen_count=(trigger & (pl.col("created_at") > pl.col("created_at").filter(resolve).min())).sum(),
    )

    claimed = owner.filter(pl.col("owner").is_not_null())

    def first_claimed(frame: pl.LazyFrame, column: str, name: str) -> pl.LazyFrame:
        """Per incident, the owner of the first team of ``column`` (a list) the team map claims."""
        listed = frame.select("incident_id", team_id=column).explode("team_id").with_row_index("position")
        return (listed.join(claimed, on="team_id").group_by("incident_id")
                .agg(pl.col("owner").sort_by("position").first().alias(name)))

    facts = (incidents.join(timelines, on="incident_id", how="left").join(services, on="service_id", how="left")
             # A service the directory no longer holds (deleted): the name its incidents' reference carries.
             .with_columns(is_test=pl.when(pl.col("in_directory")).then("is_test")
                           .otherwise((pl.col("service_name").fill_null("") + " ").str.contains(TEST_SERVICE)))
             .filter((pl.col("resolve_reason_type") != "merge_resolve_reason").fill_null(True)
                     & ~pl.col("is_test").fill_null(False))
             .join(claims("pagerduty_service").rename({"identifier": "service_id", "team": "by_service"}),
                   on="service_id", how="left"))
    # The first claimed team listed at trigger time, else by the incident, else by the service now.
    for column, name in (("trigger_team_ids", "trigger_owner"), ("team_ids", "incident_owner"),
                         ("service_team_ids", "current_owner")):
        facts = facts.join(first_claimed(facts, column, name), on="incident_id", how="left")
    resolved = pl.col("status") == "resolved"
    return facts.with_columns(
        team=pl.coalesce("by_service", "trigger_owner", "incident_owner", "current_owner"),
        period_month=_month("created_at"),
        # The last resolve entry, else (not stored yet: none, or a trigger after it) the incident's own time.
        resolved_at=pl.when(pl.col("last_resolved_at").is_null()
                            | (pl.col("last_triggered_at") > pl.col("last_resolved_at")))
        .then(pl.coalesce("stated_resolved_at", "last_resolved_at")).otherwise("last_resolved_at"),
        # An onset precedes detection: one after the incident's creation is no onset.
        onset_at=pl.min_horizontal(*(pl.when(pl.col(onset) <= pl.col("created_at")).then(onset)
                                     for onset in ("impact_started_at", "alert_timestamp"))),
    ).with_columns(
        # Times in an impossible order (before the trigger; an acknowledgement after the resolve) are left out.
        resolved_at=pl.when(pl.col("resolved_at") >= pl.col("created_at")).then("resolved_at"),
    ).with_columns(
        acknowledged_at=pl.when((pl.col("acknowledged_at") >= pl.col("created_at"))
                                & ~(resolved & (pl.col("acknowledged_at") > pl.col("resolved_at"))).fill_null(False))
        .then("acknowledged_at"),
    ).with_columns(
        ttd_seconds=_seconds("created_at", "onset_at"),
        tta_seconds=_seconds("acknowledged_at", "created_at"),
        ttr_seconds=pl.when(resolved).then(_seconds("resolved_at", "created_at")),
        is_open=~resolved,
        is_auto_resolved=(pl.col("resolver_type").is_in(["service_reference", "integration_reference"])
                          | (pl.col("resolve_channel") == "timeout")).fill_null(False),
    )


def _incidents(conn, claims) -> pl.LazyFrame:
    stats = []
    for kpi in ("ttr", "tta", "ttd"):
        seconds = pl.col(f"{kpi}_seconds")
        stats += [seconds.count().alias(f"n_{kpi}"), seconds.median().alias(f"{kpi}_median_seconds"),
                  seconds.quantile(0.9, "linear").alias(f"{kpi}_p90_seconds"), seconds.mean().alias(f"{kpi}_mean_seconds")]
    months = incident_facts(conn, claims).filter(pl.col("team").is_not_null()).group_by(KEY).agg(
        pl.len().alias("incidents"), pl.col("is_open").sum().alias("open_incidents"),
        pl.col("is_auto_resolved").sum().alias("auto_resolved_incidents"),
        (pl.col("reopen_count") > 0).sum().alias("reopened_incidents"), *stats,
    )
    return months.with_columns(acknowledged_share=pl.col("n_tta") / pl.col("incidents"),
                               onset_known_share=pl.col("n_ttd") / pl.col("incidents"))


def _ticket_class(rules: list[dict]) -> pl.Expr:
    """The class of the first rule (in file order) whose every condition matches, case-insensitively."""
    classified = pl.lit("unclassified")
    for rule in reversed(rules):
        condition = pl.lit(True)
        if rule["issue_types"]:
            condition &= pl.col("issue_type").str.to_lowercase().is_in(rule["issue_types"])
        if rule["labels"]:
            condition &= pl.col("labels").list.eval(pl.element().str.to_lowercase().is_in(rule["labels"])).list.any()
        if rule["projects"]:
            condition &= pl.col("project_key").str.to_lowercase().is_in(rule["projects"])
        classified = pl.when(condition.fill_null(False)).then(pl.lit(rule["ticket_class"])).otherwise(classified)
    return classified


def ticket_counts(conn, claims) -> pl.LazyFrame:
    """fct_tickets counted per team and month of creation, by class (proactive, reactive,
    unclassified); tickets of no team left out."""
    rules = conn.sql("select * from raw.config__ticket_classification order by rule_order").pl().to_dicts()
    issues = _scan(conn, "select id, parent_id, is_subtask, project_key, issue_type, labels, components, created_at, "
                         "custom_fields[(select ticket_team_field from raw.config__kpi_rules)]::varchar as team_field "
                         "from raw.jira__issues")
    # The Atlassian team the KPI rules' Team field names (a value of another shape: none; a
    # sub-task's empty field: its parent's, not an epic's), owned by the team claiming it by id,
    # else by name (int_jira_team_owners, int_jira_issue_teams).
    is_team = (pl.col("team_field").str.json_path_match("$.title").is_not_null()
               & pl.col("team_field").str.json_path_match("$.isShared").is_not_null())
    issues = issues.with_columns(
        jira_team_id=pl.when(is_team).then(pl.col("team_field").str.json_path_match("$.id")),
        jira_team_name=pl.when(is_team).then(pl.col("team_field").str.json_path_match("$.name")))
    named = issues.select("jira_team_id", "jira_team_name").filter(pl.col("jira_team_id").is_not_null()).unique()
    jira_claims = claims("jira_team")
    by_id = (named.join(jira_claims, left_on="jira_team_id", right_on="identifier")
             .group_by("jira_team_id").agg(by_id=pl.max("team")))
    by_name = (named.join(jira_claims, left_on="jira_team_name", right_on="identifier")
               .group_by("jira_team_id").agg(by_name=pl.max("team")))
    jira_owners = (named.select("jira_team_id").unique().join(by_id, on="jira_team_id", how="left")
                   .join(by_name, on="jira_team_id", how="left")
                   .select("jira_team_id", jira_team=pl.coalesce("by_id", "by_name")))
    parents = issues.select(parent_id="id", parent_team_id="jira_team_id")
    issues = (issues.join(parents, on="parent_id", how="left")
              .with_columns(jira_team_id=pl.coalesce(
                  "jira_team_id", pl.when(pl.col("is_subtask")).then(pl.col("parent_team_id"))))
              .join(jira_owners, on="jira_team_id", how="left"))
    component_teams = (issues.select("id", "project_key", component=pl.col("components"),
                                     position=pl.int_ranges(pl.col("components").list.len()))
                       .explode("component", "position")
                       .with_columns(identifier=pl.col("project_key") + "/" + pl.col("component"))
                       .join(claims("jira_component"), on="identifier")
                       .group_by("id").agg(component_team=pl.col("team").sort_by("position").first()))
    issues = (issues.join(component_teams, on="id", how="left")
              .join(claims("jira_project").rename({"identifier": "project_key", "team": "project_team"}),
                    on="project_key", how="left")
              .with_columns(team=pl.coalesce("jira_team", "component_team", "project_team"),
                            period_month=_month("created_at"),
                            ticket_class=_ticket_class(rules))
              .filter(pl.col("team").is_not_null()))
    return issues.group_by(KEY).agg(
        **{f"{name}_tickets": (pl.col("ticket_class") == name).sum() for name in TICKET_CLASSES})


def _survey_waves(conn, groups: pl.LazyFrame, months: pl.LazyFrame) -> pl.LazyFrame:
    """fct_team_survey_waves' published cells: person score = mean of at least the scale's
    minimum of answered items; a team-wave's mean over its scored respondents per scale;
    hidden cells left out (the disclosure rule reads each team's largest monthly headcount
    of the quarter)."""
    minimum = pl.DataFrame({"item_set": list(ITEM_SETS), "min_answered": [s.min_answered for s in ITEM_SETS.values()]})
    answers = (_scan(conn, f"select response_id, survey_group, submitted_at, item_set, score, wave_quarter "
                           f"from {STORED_RESPONSES}")
               .join(groups, left_on="survey_group", right_on="identifier")
               # The wave the loader gave each response, else (stored before it did) its UTC quarter.
               .with_columns(wave_quarter=pl.coalesce(
                   "wave_quarter", pl.col("submitted_at").cast(pl.Datetime).dt.truncate("1q").cast(pl.Date))))
    people = (answers.group_by("response_id", "team", "wave_quarter", "item_set")
              .agg(person_score=pl.col("score").mean(), count=pl.col("score").count())
              .join(minimum.lazy(), on="item_set")
              .filter(pl.col("count") >= pl.col("min_answered"))
              .rename({"item_set": "scale"}))
    headcount = (months.group_by(wave_quarter=pl.col("period_month").dt.truncate("1q"), team="team")
                 .agg(pl.col("headcount").max()).collect())
    persons = people.select("wave_quarter", "team", "scale", "person_score").collect().to_pandas()
    hidden = [(day, team) for wave, wave_people in persons.groupby("wave_quarter") for day in [pd.Timestamp(wave).date()]
              for team in wave_suppression(wave_people, dict(headcount.filter(pl.col("wave_quarter") == day)
                                                             .select("team", "headcount").iter_rows())).hidden]
    hidden_cells = pl.LazyFrame(hidden, schema={"wave_quarter": pl.Date, "team": pl.String}, orient="row")
    cells = people.group_by("wave_quarter", "scale", "team").agg(n_respondents=pl.len(),
                                                                  mean=pl.col("person_score").mean())
    return cells.join(hidden_cells, on=["wave_quarter", "team"], how="anti")


def _with_lagged_scores(months: pl.LazyFrame, cells: pl.LazyFrame) -> pl.LazyFrame:
    """Per scale, the latest reportable wave of an earlier quarter, carried forward for at most
    SAFETY_MAX_WAVE_AGE_QUARTERS; an older one leaves the month without it (safety: stale)."""
    months = months.with_columns(period_quarter=pl.col("period_month").dt.truncate("1q"))
    quarters = (lambda date: date.dt.year() * 4 + date.dt.quarter())
    for scale, prefix in LAGGED_SCALES.items():
        columns = [f"{prefix}_wave_quarter", f"{prefix}_n_respondents", f"{prefix}_lagged"]
        waves = cells.filter(pl.col("scale") == scale).select(
            "team", **dict(zip(columns, ("wave_quarter", "n_respondents", "mean"))))
        stale = (quarters(pl.col("period_quarter")) - quarters(pl.col(columns[0])) > SAFETY_MAX_WAVE_AGE_QUARTERS
                 ).fill_null(False)
        months = (months.sort("period_quarter")
                  .join_asof(waves.sort(columns[0]), left_on="period_quarter", right_on=columns[0], by="team",
                             strategy="backward", allow_exact_matches=False, check_sortedness=False)
                  .with_columns(stale=stale)
                  .with_columns([pl.when(pl.col("stale")).then(None).otherwise(pl.col(c)).alias(c) for c in columns]))
        months = months.rename({"stale": "is_safety_wave_stale"}) if prefix == "safety" else months.drop("stale")
    return months.drop("period_quarter")
