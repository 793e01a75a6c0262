"""The Dagster entry point: wires assets, the nightly job and resources. Nothing else."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from assets.jira import assets as jira_assets
from assets.jira.resource import JiraResource
from assets.landing import assets as landing_assets
from assets.landing.resource import LandingFolderResource
from assets.models import assets as model_assets
from assets.pagerduty import assets as pagerduty_assets
from assets.pagerduty.resource import PagerDutyResource
from assets.warehouse.sql_models import sql_model_assets
from assets.warehouse.team_map_checks import jira_entities_are_mapped, pagerduty_entities_are_mapped

# DuckDB allows one writing process per database file, so the nightly job runs its steps in
# one process, one after another, instead of the default multiprocess executor.
nightly_job = dg.define_asset_job(
    "nightly", selection=dg.AssetSelection.all(), executor_def=dg.in_process_executor
)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[
            *dg.load_assets_from_modules([pagerduty_assets, jira_assets, landing_assets, model_assets]),
            *sql_model_assets(),
        ],
        asset_checks=[pagerduty_entities_are_mapped, jira_entities_are_mapped],
        jobs=[nightly_job],
        resources={
            "pagerduty": PagerDutyResource(
                api_token=dg.EnvVar("PAGERDUTY_API_TOKEN"), base_url=dg.EnvVar("PAGERDUTY_URL")
            ),
            "jira": JiraResource(
                server_url=dg.EnvVar("JIRA_URL"),
                email=dg.EnvVar("JIRA_EMAIL"),
                api_token=dg.EnvVar("JIRA_API_TOKEN"),
            ),
            "landing": LandingFolderResource(
                path=dg.EnvVar("PSAFE_LANDING_DIR"), hr_id_salt=dg.EnvVar("PSAFE_HR_ID_SALT")
            ),
            "duckdb": DuckDBResource(database=dg.EnvVar("PSAFE_WAREHOUSE")),
        },
    )
