"""docs/metrics.md defines every column of the team-month mart, the table the models and the
report read: a KPI added to the SQL without a definition there fails here."""

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"


def defined_columns() -> set[str]:
    """The columns the doc's team-month table defines (backticked names in its first cell)."""
    section = DOC.read_text().split("## The team-month mart, column by column", 1)[1]
    first_cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {name for cell in first_cells for name in re.findall(r"`(\w+)`", cell)}


@pytest.fixture(scope="module")
def models_columns(tmp_path_factory, dbt) -> dict[str, list[str]]:
    """The columns of every dbt model as dbt builds it (on empty sources)."""
    from conftest import Warehouse

    warehouse = Warehouse(tmp_path_factory.mktemp("doc") / "warehouse.duckdb", dbt)
    warehouse.create_missing_sources()
    warehouse.conn.execute("create table restricted.survey__responses "
                           "(response_id varchar, survey_group varchar, submitted_at timestamp, item_set varchar, item_no integer, "
                           "answer integer, score integer, scale_points integer)")
    warehouse.survey_cells([])
    warehouse.build("fqn:*")
    columns: dict[str, list[str]] = {}
    for table, column in warehouse.conn.execute(
            "select table_name, column_name from duckdb_columns() "
            "where schema_name in ('staging', 'intermediate', 'marts') or database_name = 'restricted' "
            "order by column_index").fetchall():
        columns.setdefault(table, []).append(column)
    warehouse.close()
    return columns


@pytest.fixture(scope="module")
def built_columns(models_columns) -> list[str]:
    return models_columns["mart_team_month"]


def test_every_column_of_the_team_month_mart_is_defined_in_the_metrics_doc(built_columns):
    assert len(built_columns) > 30
    undefined = [column for column in built_columns if column not in defined_columns()]
    assert not undefined, f"define these mart_team_month columns in docs/metrics.md: {undefined}"


def test_the_doc_defines_no_column_the_mart_lacks(built_columns):
    assert defined_columns() - set(built_columns) == set()


def test_every_models_yaml_describes_every_column_it_builds(models_columns, dbt):
    models = [n for n in dbt.manifest.nodes.values() if n.resource_type == "model"]
    assert len(models) >= 14
    for node in models:
        assert list(node.columns) == models_columns[node.name], f"{node.original_file_path}: columns in its YAML"
        assert all(column.description for column in node.columns.values()), node.name
        assert "grain" in node.description.lower(), node.name


def test_the_review_window_default_is_the_assets():
    from assets.pagerduty.reviews import IncidentReviewSyncConfig

    default = IncidentReviewSyncConfig().window_days
    for doc in (DOC, DOC.parents[1] / "README.md"):
        stated = re.findall(r"`window_days`[^.]*?default (\d+)", doc.read_text())
        assert stated and set(stated) == {str(default)}, f"{doc.name} gives the reviews' window_days default as {stated}"
