"""Team-month and incident frames straight from a generated organisation, with the latent
lagged safety (SD 1 per wave) as ``safety_z``, and the model coefficients that are true on
them: what the statistics engine is checked against (tests/test_recovery.py,
benchmarks/model_recovery.py)."""

from collections import defaultdict
from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd

from assets.models.stats import kpi_safety_effects
from pipelines.synthetic.model import GroundTruth
from pipelines.synthetic.org import OrgSpec, generate
from pipelines.synthetic.tickets import PROACTIVE_TYPES, REACTIVE_TYPES

COUNTS = ("headcount", "critical_headcount", "voluntary_leavers", "critical_voluntary_leavers", "incidents",
          "proactive_tickets", "reactive_tickets")


def org_frames(org) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(team-months, incidents) with the latent lagged safety as safety_z."""
    start = org.spec.start
    team_of_unit = {t.hr_org_unit: t.key for t in org.teams}

    def month(d) -> int:
        return (d.year - start.year) * 12 + d.month - start.month

    def lagged(team: str, m: int) -> float:
        return org.team_quarter_safety[(team, max(m // 3 - 1, 0))]

    cells: dict = defaultdict(lambda: dict.fromkeys(COUNTS, 0))
    for row in org.headcount_rows:
        cell = cells[(team_of_unit[row["org_unit"]], month(date.fromisoformat(row["snapshot_date"])))]
        cell["headcount"] += 1
        cell["critical_headcount"] += row["critical_role"]
    for row in org.termination_rows:
        cell = cells[(team_of_unit[row["org_unit"]], month(date.fromisoformat(row["termination_date"])))]
        cell["voluntary_leavers"] += row["voluntary"]
        cell["critical_voluntary_leavers"] += row["voluntary"] and row["critical_role"]
    for ticket in org.tickets:
        cell = cells[(ticket.team_key, month(ticket.created))]
        if ticket.issue_type in PROACTIVE_TYPES or ticket.labels:
            cell["proactive_tickets"] += 1
        elif ticket.issue_type in REACTIVE_TYPES:
            cell["reactive_tickets"] += 1
    incidents = []
    for incident in org.incidents:
        m = month(incident.created_at)
        cells[(incident.team_key, m)]["incidents"] += 1
        incidents.append({
            "team": incident.team_key, "period_month": m, "safety_z": lagged(incident.team_key, m),
            "ttr_seconds": (incident.resolved_at - incident.created_at).total_seconds()
            if incident.resolved_at else np.nan,
            "tta_seconds": (incident.acknowledged_at - incident.created_at).total_seconds()
            if incident.acknowledged_at else np.nan,
            "ttd_seconds": (incident.created_at - incident.onset_at).total_seconds() if incident.onset_at else np.nan,
        })
    incidents = pd.DataFrame(incidents)
    months = pd.DataFrame([{"team": t, "period_month": m, "safety_z": lagged(t, m), **cell}
                           for (t, m), cell in cells.items()])
    medians = incidents.groupby(["team", "period_month"], as_index=False).agg(
        ttr_median_seconds=("ttr_seconds", "median"), tta_median_seconds=("tta_seconds", "median"))
    months = months.merge(medians, on=["team", "period_month"], how="left")
    incidents = incidents.merge(months[["team", "period_month", "headcount"]], on=["team", "period_month"])
    return months, incidents


def truths(truth: GroundTruth) -> dict[str, float]:
    return {
        "log median TTR": truth.log_ttr_per_sd, "log median TTA": truth.log_tta_per_sd,
        "incidents per head": truth.incident_rate_log_per_sd, "proactive share": truth.proactive_log_odds_per_sd,
        "voluntary attrition": truth.voluntary_attrition_log_odds_per_sd,
        "critical-role voluntary attrition": truth.voluntary_attrition_log_odds_per_sd,
        "log TTR (incident level)": truth.log_ttr_per_sd, "log TTD (incident level)": truth.log_ttd_per_sd,
    }


# Every safety effect switched off: nothing should come out significant after BH.
NULL_TRUTH = replace(GroundTruth(), log_ttr_per_sd=0.0, log_tta_per_sd=0.0, log_ttd_per_sd=0.0,
                     proactive_log_odds_per_sd=0.0, voluntary_attrition_log_odds_per_sd=0.0,
                     incident_rate_log_per_sd=0.0)


def results(seed: int, truth: GroundTruth = GroundTruth(), n_teams: int = 40) -> pd.DataFrame:
    months, incidents = org_frames(generate(OrgSpec(seed=seed, n_teams=n_teams, n_months=12), truth))
    return kpi_safety_effects(months, incidents)
