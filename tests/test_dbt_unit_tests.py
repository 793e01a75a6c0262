"""The dbt unit tests (sql/models/*/_unit_tests.yml) pass: the marts' logic on fixed rows,
with the expected rows worked out by hand (durations, team attribution, classification,
attrition arithmetic, carry-forward of the lagged survey scores)."""

from conftest import Warehouse


def test_every_dbt_unit_test_passes(tmp_path, dbt):
    unit_tests = [node for node in dbt.manifest.unit_tests.values()]
    assert {test.model for test in unit_tests} >= {"fct_incidents", "fct_tickets", "mart_team_month", "int_pagerduty_team_owners",
                                                   "int_jira_team_owners", "int_jira_issue_teams",
                                                   "fct_team_month_survey_scores"}
    warehouse = Warehouse(tmp_path / "warehouse.duckdb", dbt)
    warehouse.create_missing_sources()
    # Unit tests read the column types of the models' inputs from the warehouse: build them, empty.
    warehouse.build("+mart_team_month", "--exclude", "stg_survey__responses")
    results = [r for r in warehouse.run("test", "--select", "test_type:unit").result.results
               if r.node.resource_type == "unit_test"]
    assert sorted(r.node.name for r in results) == sorted(test.name for test in unit_tests)
    assert all(r.status == "pass" for r in results), [(r.node.name, r.message) for r in results]
