"""Rules that compare Jira issues with names (seventh trial, Jira classification items 1 and 2).

Jira sends an issue type's name in the language of the account reading it: its own types (Bug,
Task, Story, Epic, Sub-task) are translated ("Aufgabe" for Task when the account is German), and
only the id stays the same in every language. A rule naming Task then matched no ticket, silently:
every Task counted as unclassified. A rule may now name an issue type by its id as well as by its
name, and the check jira_rules_match_issues names every rule that selects no stored issue (a
translated name, a typo), with each value of the rules that no stored issue has.

The issues come from the Jira sandbox through the real sync (Dagster asset raw/jira__issues), once
as an English account reads them and once as a German one (the sandbox's variation
translated_issue_type_names); the models are built with dbt.
"""

from dataclasses import replace

import dagster as dg
import pytest

from assets.jira.assets import jira_issues, quarantine_checks
from assets.jira.resource import DEFAULT_CLASSIFICATION_RULES, JiraResource
from assets.kpi_rules import read_kpi_rules
from assets.warehouse.resource import WarehouseResource
from assets.warehouse.team_map_checks import jira_rules_match_issues, jira_rules_report
from pipelines.demo import SANDBOX_JIRA_EMAIL, SANDBOX_JIRA_TOKEN, start_sandbox
from pipelines.synthetic.org import OrgSpec, generate

# Every test syncs from the sandbox or builds with dbt: left to `make test`, not the fast tier.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def org():
    return generate(OrgSpec(seed=5, n_teams=2, n_months=6))


def sync(org, warehouse, variations=()) -> None:
    """raw/jira__issues from the sandbox through the sync asset, read with ``variations``."""
    warehouse.close()
    with start_sandbox(org, variations=set(variations)) as sandbox:
        jira = JiraResource(server_url=sandbox.jira_url, email=SANDBOX_JIRA_EMAIL, api_token=SANDBOX_JIRA_TOKEN,
                            ca_bundle_path=sandbox.ca_bundle_path, kpi_rules_path=sandbox.kpi_rules_path,
                            timeout_seconds=10, base_delay_seconds=0.01)
        definitions = dg.Definitions(assets=[jira_issues], asset_checks=quarantine_checks,
                                     resources={"jira": jira, "duckdb": WarehouseResource(database=str(warehouse.path))},
                                     jobs=[dg.define_asset_job("sync")])
        result = definitions.resolve_job_def("sync").execute_in_process(
            run_config={"ops": {"raw__jira__issues": {"config": {"history_start": org.spec.start.isoformat()}}}})
    assert result.success


def classify(warehouse, tmp_path, rules: str) -> dict[str, int]:
    """Build fct_tickets and int_jira_rule_values with the classification ``rules``; the tickets
    of each class."""
    path = tmp_path / "ticket_classification.yml"
    path.write_text(rules, encoding="utf-8")
    warehouse.classification_rules(path)
    warehouse.kpi_rules(read_kpi_rules())
    warehouse.build("+fct_tickets", "+int_jira_rule_values", "+int_post_incident_reviews", "--exclude",
                    "stg_survey__responses")
    return dict(warehouse.conn.sql("select ticket_class, count(*) from marts.fct_tickets group by all").fetchall())


def stored_tasks(warehouse) -> int:
    return warehouse.conn.sql("select count(*) from marts.fct_tickets where issue_type in ('Task', 'Aufgabe')").fetchone()[0]


def task_type(warehouse) -> tuple[str, str]:
    """The (name, id) the stored Task tickets' issue type has."""
    [row] = warehouse.conn.sql("select distinct issue_type, issue_type_id from marts.fct_tickets "
                               "where issue_type in ('Task', 'Aufgabe')").fetchall()
    return row


def report(warehouse) -> dg.AssetCheckResult:
    warehouse.close()
    return jira_rules_report(WarehouseResource(database=str(warehouse.path)))


# Tasks are reactive, a user's rule (the shipped rules name no Jira type of its own).
BY_NAME = """rules:
  - class: reactive
    issue_types: [Task]
"""


def test_a_rule_naming_task_classifies_the_tasks_an_english_account_reads(org, warehouse, tmp_path):
    sync(org, warehouse)
    classes = classify(warehouse, tmp_path, BY_NAME)
    assert stored_tasks(warehouse) and classes["reactive"] == stored_tasks(warehouse)
    assert task_type(warehouse)[0] == "Task"
    checked = report(warehouse)
    assert checked.passed, checked.description
    assert checked.metadata["rules_selecting_nothing"].value == []


def test_a_translated_task_is_named_by_the_check_and_classified_by_its_id(org, warehouse, tmp_path):
    sync(org, warehouse)
    classify(warehouse, tmp_path, BY_NAME)
    english_id, tasks = task_type(warehouse)[1], stored_tasks(warehouse)

    other = tmp_path / "german"
    other.mkdir()
    warehouse = type(warehouse)(other / "warehouse.duckdb", warehouse.dbt)
    sync(org, warehouse, {"translated_issue_type_names"})
    # The German account reads Task as Aufgabe, with the same id: the rule by name matches nothing.
    assert set(classify(warehouse, tmp_path, BY_NAME)) == {"unclassified"}
    assert task_type(warehouse) == ("Aufgabe", english_id) and stored_tasks(warehouse) == tasks
    checked = report(warehouse)
    assert not checked.passed
    assert checked.metadata["rules_selecting_nothing"].value == ["ticket classification rule 1 (reactive) issue_types 'task' matches no issue"]
    assert "in the language of the account the sync reads with" in checked.description
    assert "or by its id (issue_type_id)" in checked.description

    # The same rule naming the type by its id (and by its name, for an English account) classifies every Task.
    by_id = f"rules:\n  - class: reactive\n    issue_types: [Task, {english_id}]\n"
    assert classify(warehouse, tmp_path, by_id)["reactive"] == tasks
    checked = report(warehouse)
    assert checked.passed, checked.description
    # Task itself is still named, as a value no stored issue has; the id is not.
    values = checked.metadata["values_matching_nothing"].value
    assert "ticket classification rule 1 (reactive) issue_types 'task'" in values
    assert not any(english_id in value for value in values)


def test_review_rules_by_id_select_the_translated_reviews(org, warehouse, tmp_path):
    # The KPI rules compare issue types as the classification does (macro jira_issue_has).
    warehouse_dir = tmp_path / "kpi"
    warehouse_dir.mkdir()
    warehouse = type(warehouse)(warehouse_dir / "warehouse.duckdb", warehouse.dbt)
    sync(org, warehouse, {"translated_issue_type_names"})
    classify(warehouse, tmp_path, BY_NAME)
    _, task_id = task_type(warehouse)
    warehouse.kpi_rules(replace(read_kpi_rules(), review_issue_types=(task_id,), review_labels=()))
    warehouse.build("+int_post_incident_reviews", "--exclude", "stg_survey__responses")
    reviews = warehouse.conn.sql("select count(*) from intermediate.int_post_incident_reviews "
                                 "where source = 'jira'").fetchone()[0]
    assert reviews == stored_tasks(warehouse) > 0


def test_the_shipped_rules_select_issues_of_the_sandbox_organisation(org, warehouse, tmp_path):
    # The demo's nightly run must not warn: every shipped rule selects some of its tickets; the
    # KPI rules' alternatives it does not use are named only.
    sync(org, warehouse)
    classify(warehouse, tmp_path, DEFAULT_CLASSIFICATION_RULES.read_text(encoding="utf-8"))
    checked = report(warehouse)
    assert checked.passed, checked.description
    values = checked.metadata["values_matching_nothing"].value
    assert "KPI rules post_incident_reviews.issue_types 'postmortem'" in values
    assert all(value.startswith("KPI rules post_incident_reviews.") for value in values), values


TYPO = """rules:
  - class: proactive
    issue_types: [Risk, Near mis]
  - class: proactive
    labels: [near-miss]
    projects: [PYA]
"""


def test_a_typo_is_named_and_a_rule_whose_condition_matches_nothing_fails_the_check(org, warehouse, tmp_path):
    sync(org, warehouse)
    classify(warehouse, tmp_path, TYPO)
    checked = report(warehouse)
    assert not checked.passed
    # Rule 2's project matches no issue: the rule selects nothing. Rule 1 still selects its Risks.
    assert checked.metadata["rules_selecting_nothing"].value == ["ticket classification rule 2 (proactive) projects 'pya' matches no issue"]
    values = checked.metadata["values_matching_nothing"].value
    assert "ticket classification rule 1 (proactive) issue_types 'near mis'" in values
    assert "ticket classification rule 2 (proactive) projects 'pya'" in values
    # The shipped KPI rules' alternatives the sandbox does not use are named, failing nothing.
    assert "KPI rules post_incident_reviews.issue_types 'postmortem'" in values


def test_a_rule_whose_conditions_never_meet_on_one_issue_fails_the_check(org, warehouse, tmp_path):
    """An issue type used only in other projects than the rule's (issue type schemes differ per
    project): each value matches some issue, the rule none (trial F4: it passed before)."""
    sync(org, warehouse)
    classify(warehouse, tmp_path, DEFAULT_CLASSIFICATION_RULES.read_text(encoding="utf-8"))
    issue_type, project = warehouse.conn.sql(
        "select types.issue_type, projects.project_key from (select distinct issue_type from marts.fct_tickets) as types "
        "cross join (select distinct project_key from staging.stg_jira__issues) as projects "
        "anti join staging.stg_jira__issues as issues using (issue_type, project_key) order by all limit 1").fetchone()
    classify(warehouse, tmp_path, f"rules:\n  - class: proactive\n    issue_types: [{issue_type}]\n"
                                  f"    projects: [{project}]\n")
    checked = report(warehouse)
    assert not checked.passed
    rule = "ticket classification rule 1 (proactive)"
    assert checked.metadata["rules_selecting_nothing"].value == [
        f"{rule} issue_types {issue_type.lower()!r} with {rule} projects {project.lower()!r} never meet on one issue"]
    assert not any(value.startswith(rule) for value in checked.metadata["values_matching_nothing"].value)


def test_review_rules_matching_nothing_fail_only_while_no_pagerduty_review_is_stored(org, warehouse, tmp_path):
    """A site that writes its post-incident reviews in PagerDuty has none in Jira: the KPI rules'
    review types matching nothing is no mistake there, and must not warn every night."""
    sync(org, warehouse)
    classify(warehouse, tmp_path, DEFAULT_CLASSIFICATION_RULES.read_text(encoding="utf-8"))
    warehouse.kpi_rules(replace(read_kpi_rules(), review_issue_types=("retrospektive",), review_labels=(),
                                review_projects=()))
    warehouse.build("int_jira_rule_values", "int_post_incident_reviews")
    checked = report(warehouse)
    assert not checked.passed
    assert checked.metadata["rules_selecting_nothing"].value == [
        "KPI rules post_incident_reviews.issue_types 'retrospektive' matches no issue"]
    warehouse.conn.execute("insert into intermediate.int_post_incident_reviews (review_id, source) "
                           "values ('pagerduty:R1', 'pagerduty')")
    checked = report(warehouse)
    assert checked.passed, checked.description
    assert "KPI rules post_incident_reviews.issue_types 'retrospektive'" in checked.metadata[
        "values_matching_nothing"].value
    # A review type matching nothing may be a translated name too: the check says so.
    assert "Jira sends an issue type's name in the language of the account" in checked.description


def test_the_check_is_wired_on_fct_tickets():
    [spec] = jira_rules_match_issues.check_specs
    assert spec.asset_key == dg.AssetKey(["marts", "fct_tickets"])
