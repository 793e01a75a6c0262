"""The Dagster entry point: wires assets, jobs, the schedule, the sensor and resources. Nothing else."""

from pathlib import Path

import dagster as dg

from assets.jira import assets as jira_assets
from assets.jira.resource import JiraResource
from assets.landing import assets as landing_assets
from assets.landing import identity as identity_assets
from assets.landing.resource import LandingFolderResource
from assets.landing.sensors import landing_files_sensor, landing_refresh_job
from assets.models import assets as model_assets
from assets.pagerduty import assets as pagerduty_assets
from assets.pagerduty import reviews as pagerduty_reviews
from assets.pagerduty.resource import PagerDutyResource
from assets.quality.checks import gx_asset_checks
from assets.quality.headcount import closed_months_have_headcount
from assets.qualtrics import assets as qualtrics_assets
from assets.qualtrics.resource import QualtricsResource
from assets.report import assets as report_assets
from assets.report.resource import ReportFolderResource
from assets.warehouse.dbt import monthly_marts, survey_attribution, warehouse_models
from assets.warehouse.dead_runs import dead_run_workers_sensor, freeing_dead_run_slots
from assets.warehouse.resource import WarehouseResource
from assets.warehouse.team_map_checks import (
    jira_entities_are_mapped,
    jira_rules_match_issues,
    pagerduty_entities_are_mapped,
)
from pipelines.schedules import nightly_job, nightly_schedule


@dg.definitions
def defs() -> dg.Definitions:
    wired = dg.Definitions(
        assets=[
            *dg.load_assets_from_modules([pagerduty_assets, pagerduty_reviews, jira_assets, landing_assets,
                                           identity_assets, model_assets, report_assets, qualtrics_assets]),
            warehouse_models,
            survey_attribution,
            monthly_marts,
        ],
        asset_checks=[
            *dg.load_asset_checks_from_modules([pagerduty_assets, pagerduty_reviews, jira_assets, landing_assets,
                                                identity_assets, model_assets]),
            pagerduty_entities_are_mapped,
            jira_entities_are_mapped,
            jira_rules_match_issues,
            *gx_asset_checks(),
            closed_months_have_headcount,
        ],
        jobs=[nightly_job, landing_refresh_job, qualtrics_assets.qualtrics_sync_job],
        schedules=[nightly_schedule, qualtrics_assets.qualtrics_schedule],
        sensors=[landing_files_sensor, dead_run_workers_sensor],
        executor=freeing_dead_run_slots(dg.multi_or_in_process_executor),
        resources={
            "pagerduty": PagerDutyResource(
                api_token=dg.EnvVar("PAGERDUTY_API_TOKEN"), base_url=dg.EnvVar("PAGERDUTY_URL")
            ),
            # The rules files are optional settings, so not EnvVars (an unset EnvVar fails the
            # run): JiraResource reads PSAFE_TICKET_CLASSIFICATION_RULES and PSAFE_KPI_RULES
            # when a run uses them, as LandingFolderResource reads PSAFE_SURVEY_SCALE_POINTS.
            "jira": JiraResource(
                server_url=dg.EnvVar("JIRA_URL"),
                email=dg.EnvVar("JIRA_EMAIL"),
                api_token=dg.EnvVar("JIRA_API_TOKEN"),
                identity_salt=dg.EnvVar("PSAFE_HR_ID_SALT"),
            ),
            "landing": LandingFolderResource(
                path=dg.EnvVar("PSAFE_LANDING_DIR"),
                hr_id_salt=dg.EnvVar("PSAFE_HR_ID_SALT"),
            ),
            "qualtrics": QualtricsResource(
                base_url=dg.EnvVar("QUALTRICS_URL"),
                api_token=dg.EnvVar("QUALTRICS_API_TOKEN"),
                survey_ids=dg.EnvVar("QUALTRICS_SURVEY_IDS"),
            ),
            "duckdb": WarehouseResource(database=dg.EnvVar("PSAFE_WAREHOUSE")),
            "report_folder": ReportFolderResource(path=dg.EnvVar("PSAFE_REPORT_DIR")),
        },
    )
    # Whatever `dg scaffold defs` added under pipelines/defs/.
    scaffolded = dg.load_from_defs_folder(project_root=Path(__file__).resolve().parents[1])
    return dg.Definitions.merge(wired, scaffolded)
