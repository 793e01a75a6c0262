"""The nightly job end to end: synthetic organisation -> sandbox APIs over HTTPS through the
official clients -> DuckDB -> SQL marts -> models, checked against the generator's truth."""

import json
import shutil
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import nbformat
import pytest
from conftest import Warehouse, expected_log_entries, rows_unlike_a_full_rebuild
from nbclient import NotebookClient

from assets.identity import salt_fingerprint
from assets.jira.assets import STREAM as JIRA_STREAM
from assets.models.kpis import CORRELATION_KPIS
from assets.report.inputs import read_correlations
from assets.report.wording import correlation_sentence
from assets.warehouse.raw_tables import record_salt_fingerprint
from pipelines.definitions import defs
from pipelines.demo import main, run_nightly, start_sandbox
from pipelines.synthetic.learning import counted
from pipelines.synthetic.org import OrgSpec, generate, write_landing
from pipelines.synthetic.people import JUNIOR_PREFIX, is_proactive
from pipelines.synthetic.tickets import UNOWNED_COMPONENT

# Runs the whole pipeline: the full tier only (`make test`, not `make test-fast`).
pytestmark = pytest.mark.slow

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
# Run in a notebook's kernel after its cells: prints the names of DuckDB connections still open
# for writing (closed connections raise ConnectionException and are fine).
WRITABLE_CONNECTIONS_PROBE = """
import duckdb as _duckdb

_writable = []
for _name, _value in list(globals().items()):
    if isinstance(_value, _duckdb.DuckDBPyConnection):
        try:
            _readonly = _value.sql("select readonly from duckdb_databases() where database_name = current_database()").fetchone()[0]
        except _duckdb.ConnectionException:
            continue
        if not _readonly:
            _writable.append(_name)
print(sorted(_writable))
"""


@pytest.fixture(scope="module")
def nightly(tmp_path_factory):
    org = generate(OrgSpec(seed=7, n_teams=30, n_months=24))
    workdir = tmp_path_factory.mktemp("nightly")
    landing, warehouse = workdir / "landing", workdir / "warehouse.duckdb"
    write_landing(org, landing)
    with start_sandbox(org) as sandbox:
        result = run_nightly(sandbox, org, warehouse, landing)
        requests = Counter(sandbox.request_counts)
        rerun = run_nightly(sandbox, org, warehouse, landing)
    return org, warehouse, result, rerun, requests


def query(warehouse, sql):
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.sql(sql).fetchall()


def test_every_asset_materializes(nightly):
    org, warehouse, result, rerun, requests = nightly
    assert result.success and rerun.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"raw/pagerduty__log_entries", "raw/jira__issues", "marts/mart_team_month",
            "models/kpi_safety_effects", "models/kpi_correlations"} <= materialized


def test_raw_tables_hold_every_record_once_even_after_a_rerun(nightly):
    org, warehouse, *_ = nightly
    log_entries = sum(expected_log_entries(i) for i in org.incidents)
    assert query(warehouse, "select count(*), count(distinct id) from raw.pagerduty__incidents") == [
        (len(org.incidents), len(org.incidents))
    ]
    assert query(warehouse, "select count(*) from raw.pagerduty__log_entries") == [(log_entries,)]
    assert query(warehouse, "select count(*) from raw.jira__issues") == [(len(org.tickets),)]
    assert query(warehouse, "select count(*) from marts.fct_incidents where team is null") == [(0,)]


def test_the_reruns_incremental_staging_matches_a_full_rebuild(nightly, dbt):
    _, warehouse, result, rerun, _ = nightly
    assert result.success and rerun.success
    incremental = {node.name for node in dbt.manifest.nodes.values()
                   if node.resource_type == "model" and node.config.incremental_strategy == "delete+insert"}
    # Every staging model of API records, and nothing else.
    assert incremental == {"stg_pagerduty__incidents", "stg_pagerduty__log_entries", "stg_pagerduty__incident_reviews",
                           "stg_pagerduty__review_action_items", "stg_jira__issues"}
    # Compiling opens the file for writing: a copy, under the name the compiled SQL reads it by.
    copy = warehouse.parent / "rebuild-check" / "warehouse.duckdb"
    copy.parent.mkdir()
    shutil.copyfile(warehouse, copy)
    checked = Warehouse(copy, dbt)
    try:
        for model in incremental:
            assert rows_unlike_a_full_rebuild(checked, model) == 0, model
    finally:
        checked.close()


def test_changelogs_beyond_the_embedded_page_are_complete(nightly):
    org, warehouse, *_, requests = nightly
    longest = max(org.tickets, key=lambda t: len(t.changelog))
    assert len(longest.changelog) > 100
    payload = json.loads(query(warehouse, f"select payload from raw.jira__issues where id = '{longest.id}'")[0][0])
    assert [h["id"] for h in payload["changelog"]["histories"]] == [c.id for c in longest.changelog]
    assert any("changelog" in key for key in requests)


def test_clients_went_through_the_paginated_endpoints(nightly):
    *_, requests = nightly
    assert requests["pagerduty GET /incidents"] > 24  # at least one request per monthly window
    assert requests["jira GET /rest/api/3/search/jql"] + requests["jira POST /rest/api/3/search/jql"] > 1


def test_regression_recovers_the_ground_truth(nightly):
    """The generator's effect is per SD of latent team safety; the survey measures it with error,
    which attenuates the plain estimate: the reliability-corrected one is what recovers it."""
    org, warehouse, *_ = nightly
    estimate, corrected, low, high, n_teams, warnings = query(
        warehouse, "select estimate, estimate_corrected, ci_low_corrected, ci_high_corrected, n_teams, warnings "
                   "from models.kpi_safety_effects where kpi = 'log TTR (incident level)' and role = 'main'"
    )[0]
    truth = org.truth.log_ttr_per_sd
    assert estimate < 0, "sign of the safety effect on time to resolve"
    assert abs(corrected) >= abs(estimate), "the correction for measurement error undoes attenuation"
    assert low <= truth <= high, f"corrected 95% CI [{low:.3f}, {high:.3f}] misses the truth {truth}"
    assert n_teams == 30 and "unreliable" in warnings  # fewer than 40 teams


def test_correlation_table_reports_every_kpi_with_team_bootstrap_intervals(nightly):
    org, warehouse, *_ = nightly
    rows = {row[0]: row[1:] for row in query(
        warehouse, "select kpi, r, ci_low, ci_high, n_teams, n_team_months from models.kpi_correlations"
    )}
    assert set(rows) == {kpi.name for kpi in CORRELATION_KPIS}  # the identity map was loaded
    # A team without juniors has no junior proactive tickets per junior head.
    unit_team = {team.hr_org_unit: team.key for team in org.teams}
    with_juniors = len({unit_team[row["org_unit"]] for row in org.headcount_rows
                        if row["role"].startswith(JUNIOR_PREFIX)})
    for kpi, (r, low, high, n_teams, n_team_months) in rows.items():
        assert low <= r <= high, kpi
        assert n_teams == (with_juniors if kpi == "junior proactive tickets per junior head" else 30), kpi
        assert n_team_months > n_teams * 18, kpi
    r, low, _, *_ = rows["proactive share"]
    assert low > 0, "safer teams raise a larger share of proactive tickets in the ground truth"
    r, _, high, *_ = rows["log median TTR"]
    assert high < 0, "safer teams resolve faster in the ground truth"


def test_reviews_action_items_repeats_and_reporters_reach_the_mart_as_generated(nightly):
    """What the generator made (pipelines/synthetic/learning.py, people.py) and the sandbox
    serves, found again by the KPI rules through ingestion and the SQL."""
    org, warehouse, *_ = nightly
    totals = dict(zip(
        ("reviewed", "action_items", "repeats", "cross_team", "junior"),
        query(warehouse, "select sum(reviewed_incidents), sum(action_items), sum(repeat_incidents), "
                         "sum(cross_team_proactive_tickets), sum(junior_proactive_tickets) "
                         "from marts.mart_team_month")[0]))
    counted_incidents = counted(org)
    reviewed = [i for i in counted_incidents if i.review_created_at is not None and i.review_created_at < org.as_of]
    assert totals["reviewed"] == len(reviewed) > 50
    # Reviews in both places, named every way the generator names them.
    assert query(warehouse, "select count(distinct first_review_source), count(distinct first_review_linked_by) "
                            "from marts.fct_incident_reviews")[0] == (2, 4)
    items = [item for incident in reviewed for item, _ in incident.review_action_items if item < org.as_of]
    assert totals["action_items"] == len(items) > 50
    assert totals["repeats"] == sum(incident.repeat_of is not None for incident in counted_incidents) > 20

    employee_of = {person.account_id: person for person in org.people}
    team_in_month = {(row["employee_id"], row["snapshot_date"][:7]): row for row in org.headcount_rows}
    unit_team = {team.hr_org_unit: team.key for team in org.teams}
    cross = junior = 0
    for ticket in org.tickets:
        person = employee_of.get(ticket.reporter_account_id or ticket.creator_account_id)
        # Tickets under the shared project's unowned component have no team (the asset check lists them).
        if (not is_proactive(ticket) or person is None or person.mapped_by is None
                or UNOWNED_COMPONENT in ticket.components):
            continue
        row = team_in_month[person.employee_id, f"{ticket.created:%Y-%m}"]
        cross += unit_team[row["org_unit"]] != ticket.team_key
        junior += unit_team[row["org_unit"]] == ticket.team_key and row["role"].startswith(JUNIOR_PREFIX)
    assert (totals["cross_team"], totals["junior"]) == (cross, junior) and cross > 50 and junior > 50


def test_no_identity_in_clear_outside_restricted(nightly):
    """Every Jira account id and email address of the organisation is pseudonymised before it
    is written: none appears in any text or JSON column outside the restricted schema."""
    _, warehouse, *_ = nightly
    columns = query(warehouse, "select table_schema, table_name, column_name from information_schema.columns "
                               "where table_schema <> 'restricted' and data_type in ('VARCHAR', 'JSON')")
    assert len(columns) > 50
    leaks = [f"{schema}.{table}.{column}" for schema, table, column in columns if query(
        warehouse, f'select count(*) from "{schema}"."{table}" where "{column}"::varchar similar to '
                   "'.*(712020:[0-9a-f]{8}-|@example\\.com).*'")[0][0]]
    assert not leaks


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs_in_a_kernel_on_a_read_only_warehouse_alone(nightly, monkeypatch, notebook, tmp_path):
    _, nightly_warehouse, *_ = nightly
    # The warehouse file alone, as analysts have it: no restricted file anywhere near it.
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(nightly_warehouse, warehouse)
    monkeypatch.setenv("PSAFE_WAREHOUSE", str(warehouse))
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(notebook.parent)}})
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)  # raises CellExecutionError on any error
        # The kernel is alive with its connection open: another process may still read the
        # file, which DuckDB refuses while anyone holds it for writing ...
        assert subprocess.run([sys.executable, "-c", f"import duckdb; duckdb.connect({str(warehouse)!r}, read_only=True)"],
                              capture_output=True, check=False).returncode == 0
        # ... and a connection the notebook left open reports itself read-only.
        probe = nbformat.v4.new_code_cell(WRITABLE_CONNECTIONS_PROBE)
        nb.cells.append(probe)
        client.execute_cell(probe, len(nb.cells) - 1)
    assert probe.outputs[0]["text"].strip() == "[]", "connections open for writing"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["warehouse.duckdb"], "nothing else was opened here"
    if notebook.name == "explore_marts.ipynb":
        printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
        asset_estimate = query(warehouse, "select estimate from models.kpi_safety_effects where kpi = 'log TTR (incident level)' and role = 'main'")[0][0]
        assert f"log TTR per SD of safety: {asset_estimate:+.3f}" in printed


TEAM_KPIS = next(path for path in NOTEBOOKS if path.name == "team_kpis.ipynb")


def execute_notebook(notebook: Path, warehouse: Path, monkeypatch, *probes: str) -> nbformat.NotebookNode:
    """``notebook`` executed in a Jupyter kernel on ``warehouse``, then ``probes`` (code cells
    appended) in the same kernel; raises CellExecutionError on any error."""
    monkeypatch.setenv("PSAFE_WAREHOUSE", str(warehouse))
    nb = nbformat.read(notebook, as_version=4)
    nb.cells.extend(nbformat.v4.new_code_cell(probe) for probe in probes)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(notebook.parent)}}).execute()
    return nb


def cell_text(cell) -> str:
    """What a code cell printed and displayed, as plain text."""
    return "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in cell.get("outputs", []))


def warehouse_copy(nightly, tmp_path) -> Path:
    _, nightly_warehouse, *_ = nightly
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(nightly_warehouse, warehouse)
    return warehouse


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs_its_mart_parts_before_the_models_are_built(nightly, monkeypatch, notebook, tmp_path):
    """A new warehouse whose first run stopped at a blocking check: the marts are built, no
    models.* table is (README, "Which checks block")."""
    warehouse = warehouse_copy(nightly, tmp_path)
    with duckdb.connect(str(warehouse)) as conn:
        models = conn.sql("select table_name from information_schema.tables where table_schema = 'models'").fetchall()
        for (table,) in models:
            conn.execute(f"drop table models.{table}")
        teams = [team for (team,) in conn.sql("select distinct team from marts.mart_team_month "
                                              "where safety_lagged is not null order by team").fetchall()]
    nb = execute_notebook(notebook, warehouse, monkeypatch)
    printed = "".join(cell_text(cell) for cell in nb.cells if cell.cell_type == "code")
    assert (f"models.kpi_correlations is not in {warehouse}: the models have not been built yet." in printed
            and '"Which checks block"' in printed and "let the next nightly run finish" in printed)
    if notebook.name == "team_kpis.ipynb":
        per_team = next(cell_text(cell) for cell in nb.cells if cell.cell_type == "code" and "by_team" in cell.source)
        assert len(teams) > 10 and all(team in per_team for team in teams)
    else:
        assert "log TTR per SD of safety: " in printed


def test_team_kpis_pools_only_the_months_that_have_ended(nightly, monkeypatch, tmp_path):
    """The still open month is in the mart (a nightly run refreshes it) but not in the per-team
    table, as it is not in the models: its few days of incidents against a whole month's headcount."""
    warehouse = warehouse_copy(nightly, tmp_path)
    open_month = datetime.now(UTC).date().replace(day=1)
    with duckdb.connect(str(warehouse)) as conn:
        team, last = conn.sql("select team, max(period_month) from marts.mart_team_month "
                              "where safety_lagged is not null group by team order by team limit 1").fetchone()
        assert last < open_month
        closed = list(conn.sql("select count(*), sum(incidents) from marts.mart_team_month "
                               "where team = ? and safety_lagged is not null", params=[team]).fetchone())
        # The open month as a run on its 2nd writes it: the last month's scores and headcount, a day's incidents.
        conn.execute("insert into marts.mart_team_month select * replace (?::date as period_month, 1 as incidents) "
                     "from marts.mart_team_month where team = ? and period_month = ?", [open_month, team, last])
    nb = execute_notebook(TEAM_KPIS, warehouse, monkeypatch,
                          f"print(by_team.loc[{team!r}, ['months', 'incidents']].tolist())",
                          "print(f'{coverage.index.max():%Y-%m}')")
    per_team, coverage_until = cell_text(nb.cells[-2]), cell_text(nb.cells[-1])
    assert per_team.strip() == str(closed)
    assert coverage_until.strip() == f"{open_month:%Y-%m}"  # the coverage table still shows it


def test_team_kpis_rates_leave_out_the_months_before_a_source(nightly, monkeypatch, tmp_path):
    """A team's months before PagerDuty's first record carry no incident data (the mart leaves
    them null): its incidents per head is over the months with data, not every month's headcount."""
    warehouse = warehouse_copy(nightly, tmp_path)
    with duckdb.connect(str(warehouse)) as conn:
        team, first, last = conn.sql("select team, min(period_month), max(period_month) from marts.mart_team_month "
                                     "where safety_lagged is not null group by team order by team limit 1").fetchone()
        # Half the team's scored months as they read before a source's first record.
        cut = first + (last - first) / 2
        conn.execute("update marts.mart_team_month set incidents = null where team = ? and period_month < ?", [team, cut])
        incidents, headcount = conn.sql("select sum(incidents), sum(headcount) from marts.mart_team_month where team = ? "
                                        "and safety_lagged is not null and incidents is not null and period_month <= ?",
                                        params=[team, last]).fetchone()
    nb = execute_notebook(TEAM_KPIS, warehouse, monkeypatch, f"print(repr(by_team.loc[{team!r}, 'incidents_per_head']))")
    assert float(cell_text(nb.cells[-1]).strip().removeprefix("np.float64(").rstrip(")")) == pytest.approx(
        incidents / headcount, rel=1e-12)


def test_team_kpis_reads_the_correlations_as_the_report_does(nightly, monkeypatch, tmp_path):
    """The stored table with the partial r given team size, p and q, and the report's own
    sentences: a direction only when q says unlikely to be chance, led by the partial r."""
    warehouse = warehouse_copy(nightly, tmp_path)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        stored = read_correlations(conn)
    nb = execute_notebook(TEAM_KPIS, warehouse, monkeypatch)
    shown = cell_text(nb.cells[-1])
    for column in ("size_adjusted_r", "size_adjusted_p_value", "size_adjusted_q_value", "q_value", "warnings"):
        assert column in shown
    sentences = [correlation_sentence(row) for row in stored.itertuples()]
    assert len(sentences) > 10 and all(f"- {sentence}\n" in shown for sentence in sentences)
    # Both kinds of sentence are there: with a direction (q below the threshold) and without.
    assert any("safer teams had" in s for s in sentences) and any("no clear association" in s for s in sentences)


def test_demo_command_runs_and_prints_the_tables(tmp_path, capsys):
    assert main(["--teams", "8", "--months", "9", "--workdir", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    out = captured.out
    # A step counter instead of Dagster's DEBUG stream, which goes whole to the log file.
    steps = len(defs().resolve_job_def("nightly").graph.nodes)
    assert f"{steps}/{steps} steps, " in captured.err and "0 failed" in captured.err
    assert " - DEBUG - " not in out + captured.err
    assert (tmp_path / "nightly.log").read_text().count("STEP_SUCCESS") == steps
    assert "KPI correlation table" in out and "proactive share" in out
    assert "ground truth of this synthetic organisation: -0.250" in out
    assert (tmp_path / "warehouse.duckdb").is_file()
    # The sandbox's salt is as long as a deployment's must be: no warning of a short one.
    assert "PSAFE_HR_ID_SALT has" not in out + captured.err


def test_the_demo_stops_on_an_earlier_demos_warehouse_naming_what_to_remove(tmp_path, capsys):
    """An earlier release's demo pseudonymised its Jira issues with a shorter salt: the sync would
    stop asking for a full refresh, which a demo user has no reason to know; the demo says what to do."""
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as conn:
        record_salt_fingerprint(conn, JIRA_STREAM, salt_fingerprint("sandbox-salt"))
    assert main(["--teams", "4", "--months", "6", "--workdir", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"{warehouse} was made by an earlier release's demo, whose sandbox salt was another one: remove {tmp_path} "
        "(or give --workdir a new folder) and run the demo again.")
    assert not (tmp_path / "nightly.log").exists()


def test_incidents_count_for_the_team_at_trigger_time_not_the_services_current_team(nightly):
    org, warehouse, *_ = nightly
    counted = [i for i in org.incidents if i.merged_into is None
               and not next(s for s in org.services if s.pagerduty_id == i.service_id).is_test]
    names = {t.key: t.name for t in org.teams}
    assert Counter(dict(query(warehouse, "select team, count(*) from marts.fct_incidents group by team"))) == Counter(
        names[i.team_key] for i in counted)
    moved = next(s for s in org.services if s.moved_at is not None)
    before_move = [i for i in counted if i.service_id == moved.pagerduty_id and i.created_at < moved.moved_at]
    assert before_move and {i.team_key for i in before_move} == {moved.previous_team_key}
    # Joining through the service's current PagerDuty team would hand them to the new owner.
    assert query(warehouse, f"""
        select count(*) from marts.fct_incidents as f
        join staging.stg_pagerduty__services as s using (service_id)
        join staging.stg_pagerduty__teams as t on list_contains(s.team_ids, t.team_id)
        where f.service_id = '{moved.pagerduty_id}' and f.triggered_at < '{moved.moved_at:%Y-%m-%d}'
          and t.team_name = '{names[moved.team_key]}' and f.team = '{names[moved.previous_team_key]}'
    """) == [(len(before_move),)]


def test_durations_follow_the_metric_definitions(nightly):
    org, warehouse, *_ = nightly
    rows = {r[0]: r[1:] for r in query(
        warehouse, "select incident_id, ttd_seconds, onset_source, reopen_count, is_auto_resolved, tta_seconds "
                   "from marts.fct_incidents")}
    merged = {i.pagerduty_id for i in org.incidents if i.merged_into}
    assert merged and not merged & set(rows)
    checked = 0
    for incident in org.incidents:
        if incident.pagerduty_id not in rows:
            continue
        ttd, source, reopens, auto, tta = rows[incident.pagerduty_id]
        onset = min(t for t in (incident.impact_started_at, incident.alert_timestamp) if t) if (
            incident.impact_started_at or incident.alert_timestamp) else None
        assert ttd == (None if onset is None else (incident.created_at - onset).total_seconds())
        assert (source is None) == (onset is None)
        assert reopens == (incident.reopened_at is not None)
        # Resolved by timeout, or by the monitoring integration when nobody acknowledged it.
        assert auto == (incident.resolved_at is not None and (incident.auto_resolved or not incident.acknowledged_by))
        expected_tta = incident.acknowledged_at and (incident.acknowledged_at - incident.created_at).total_seconds()
        assert tta == expected_tta
        checked += 1
    assert checked > 2000
    sources = dict(query(warehouse, "select onset_source, count(*) from marts.fct_incidents group by 1"))
    assert {"custom_field", "alert", "custom_field_and_alert", None} == set(sources)


def test_tickets_are_classified_by_the_rules_file_and_counted_per_team_month(nightly):
    org, warehouse, *_ = nightly
    names = {t.key: t.name for t in org.teams}
    rows = {r[0]: r[1:] for r in query(warehouse, "select issue_key, team, team_source, ticket_class "
                                                  "from marts.fct_tickets")}
    assert len(rows) == len(org.tickets)
    for ticket in org.tickets:
        team, source, ticket_class = rows[ticket.key]
        if ticket.components == ["Shared tooling"]:
            assert team is None  # claimed by no team: reported by the asset check below
        else:
            assert team == names[ticket.team_key]
            assert source == ("component" if ticket.components else "project")
        proactive = ticket.issue_type in ("Risk", "Near miss", "Improvement", "Security finding", "Tech debt") or (
            set(ticket.labels) & {"near-miss", "proactive", "raised-concern"})
        expected = "proactive" if proactive else "reactive" if ticket.issue_type in (
            "Incident", "Escalation", "Problem") else "unclassified"
        assert ticket_class == expected, ticket.key
    mart = query(warehouse, "select sum(proactive_tickets), sum(reactive_tickets), sum(unclassified_tickets) "
                            "from marts.mart_team_month")[0]
    facts = query(warehouse, "select count(*) filter (where ticket_class = 'proactive'), "
                             "count(*) filter (where ticket_class = 'reactive'), "
                             "count(*) filter (where ticket_class = 'unclassified') "
                             "from marts.fct_tickets where team is not null")[0]
    assert mart == facts


def test_unmapped_entities_are_reported_by_asset_checks_not_dropped(nightly):
    org, warehouse, result, *_ = nightly
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["pagerduty_entities_are_mapped"].passed
    jira = checks["jira_entities_are_mapped"]
    assert not jira.passed and jira.severity.value == "WARN"
    unowned = sum(t.components == ["Shared tooling"] for t in org.tickets)
    assert jira.metadata["unmapped"].value == [f"jira_component OPS/Shared tooling ({unowned} records)"]
    # The sandbox site's KPI rules say it has no Team field (tickets.team_field: ~), so no field is
    # named as on no issue; nor does any of the Jira rules select nothing.
    assert jira.metadata["kpi_rules_fields_on_no_issue"].value == []
    assert checks["jira_rules_match_issues"].passed
