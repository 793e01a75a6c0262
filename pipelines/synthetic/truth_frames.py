"""Team-month and incident frames straight from a generated organisation, and the model
coefficients that are true on them: what the statistics engine is checked against
(tests/test_recovery.py, benchmarks/model_recovery.py).

- ``org_frames``: safety is the latent lagged team safety (SD 1 per wave), measured without
  error, so every estimate's truth is the GroundTruth value.
- ``measured_frames``: safety is what the survey measured, as the warehouse computes it (the
  landing loader's scoring, the survey asset's team-wave means with suppression, standardised
  over the published means), with each mean's error variance. The plain estimates are then
  attenuated; the reliability-corrected ones (per SD of true safety) have the GroundTruth
  value as their truth. Months of the first quarter (no earlier wave) and months whose
  previous wave was suppressed have no safety; the mart's carry-forward is not repeated here.
"""

import tempfile
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from assets.landing.item_sets import PSYCHOLOGICAL_SAFETY
from assets.landing.survey import read_survey_exports
from assets.models.design import (
    ACCOUNTABILITY_SCORE,
    ERROR_VARIANCE,
    INTERACTION_MODEL,
    SAFETY,
    SAFETY_MODEL,
    SAFETY_SCORE,
    SCORES,
    WAVE,
    ScoreModel,
)
from assets.models.inputs import measurement_error
from assets.models.psychometrics import survey_wave_tables
from assets.models.stats import kpi_safety_effects, standardise
from pipelines.synthetic.model import GroundTruth, Organisation
from pipelines.synthetic.org import OrgSpec, generate, write_csv
from pipelines.synthetic.tickets import PROACTIVE_TYPES, REACTIVE_TYPES

COUNTS = ("headcount", "critical_headcount", "voluntary_leavers", "critical_voluntary_leavers", "incidents",
          "proactive_tickets", "reactive_tickets")


def org_frames(org) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(team-months, incidents) with the latent lagged safety as safety_z, and the latent
    accountability and stage scores (``<prefix>_z``) when the organisation has them."""
    start = org.spec.start
    team_of_unit = {t.hr_org_unit: t.key for t in org.teams}

    def month(d) -> int:
        return (d.year - start.year) * 12 + d.month - start.month

    def lagged(team: str, m: int) -> dict[str, float]:
        wave = max(m // 3 - 1, 0)
        scores = {SAFETY_SCORE.z: org.team_quarter_safety[(team, wave)]}
        if org.team_quarter_accountability:
            scores[ACCOUNTABILITY_SCORE.z] = org.team_quarter_accountability[(team, wave)]
        scores.update({SCORES[stage].z: org.team_quarter_stages[(team, wave, stage)]
                       for stage in {key for _, _, key in org.team_quarter_stages}})
        return scores

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
            "team": incident.team_key, "period_month": m, **lagged(incident.team_key, m),
            "ttr_seconds": (incident.resolved_at - incident.created_at).total_seconds()
            if incident.resolved_at else np.nan,
            "open_for_seconds": np.nan if incident.resolved_at else (org.as_of - incident.created_at).total_seconds(),
            "tta_seconds": (incident.acknowledged_at - incident.created_at).total_seconds()
            if incident.acknowledged_at else np.nan,
            "ttd_seconds": (incident.created_at - incident.onset_at).total_seconds() if incident.onset_at else np.nan,
        })
    incidents = pd.DataFrame(incidents)
    months = pd.DataFrame([{"team": t, "period_month": m, **lagged(t, m), **cell}
                           for (t, m), cell in cells.items()])
    medians = incidents.groupby(["team", "period_month"], as_index=False).agg(
        ttr_median_seconds=("ttr_seconds", "median"), tta_median_seconds=("tta_seconds", "median"))
    months = months.merge(medians, on=["team", "period_month"], how="left")
    incidents = incidents.merge(months[["team", "period_month", "headcount"]], on=["team", "period_month"])
    return months, incidents


@dataclass(frozen=True)
class MeasuredFrames:
    months: pd.DataFrame
    incidents: pd.DataFrame
    reference_reliability: float  # share of the published team-wave means' variance that is true
    # The SD of the latent safety behind the published team-waves: the corrected estimates are
    # per SD of true team-wave safety in this organisation, so their truth is the GroundTruth
    # effect (per latent SD 1) times this.
    latent_sd: float


def measured_cells(org: Organisation) -> pd.DataFrame:
    """The survey asset's team-wave cells of every scale from the organisation's export, scored
    by the landing loader, with ``wave`` (the quarter index from the organisation's start)."""
    with tempfile.TemporaryDirectory(prefix="psafe-survey-") as folder:
        export = Path(folder) / "survey_responses.csv"
        write_csv(export, org.survey_rows)
        load = read_survey_exports([export], {t.name for t in org.teams}, org.as_of,
                                   org.truth.survey_scale_points)
    answers = pd.DataFrame(load.checked.accepted)
    key_of = {t.name: t.key for t in org.teams}
    answers = answers.assign(team=answers["survey_group"].map(key_of),
                             wave_quarter=pd.to_datetime(answers["submitted_at"]).dt.to_period("Q").dt.start_time)
    cells, _ = survey_wave_tables(answers, org.truth.survey_scale_points)
    start = pd.Timestamp(org.spec.start)
    return cells.assign(wave=(cells["wave_quarter"].dt.year - start.year) * 4
                        + (cells["wave_quarter"].dt.month - start.month) // 3)


def measured_frames(org: Organisation) -> MeasuredFrames:
    """Team-months and incidents with measured lagged safety as safety_z and its error
    variance, from the organisation's survey export."""
    cells = measured_cells(org)
    cells = cells[cells["scale"] == PSYCHOLOGICAL_SAFETY.key]
    published = measurement_error(cells[~cells["is_suppressed"]].astype({"n_respondents": int}).astype(
        {"score_mean": float, "score_sd": float}))
    scale = published["score_mean"].std(ddof=1)
    published[SAFETY] = standardise(published["score_mean"], published["score_mean"])
    published[ERROR_VARIANCE] = published["error_var"] / scale**2
    waves = published[["team", "wave", SAFETY, ERROR_VARIANCE]].rename(columns={"wave": WAVE})
    latent = [org.team_quarter_safety[(team, wave)] for team, wave in zip(published["team"], published["wave"])]
    months, incidents = org_frames(org)

    def measured(frame: pd.DataFrame) -> pd.DataFrame:
        lagged = frame.drop(columns=SAFETY).assign(**{WAVE: frame["period_month"] // 3 - 1})
        return lagged.merge(waves, on=["team", WAVE], how="inner")

    return MeasuredFrames(measured(months), measured(incidents), float(1 - published[ERROR_VARIANCE].mean()),
                          float(np.std(latent, ddof=1)))


def truths(truth: GroundTruth) -> dict[str, float]:
    return {
        "log median TTR": truth.log_ttr_per_sd, "log median TTA": truth.log_tta_per_sd,
        "incidents per head": truth.incident_rate_log_per_sd, "proactive share": truth.proactive_log_odds_per_sd,
        "voluntary attrition": truth.voluntary_attrition_log_odds_per_sd,
        "critical-role voluntary attrition": truth.voluntary_attrition_log_odds_per_sd,
        "log TTR (incident level)": truth.log_ttr_per_sd, "log TTD (incident level)": truth.log_ttd_per_sd,
    }


def interaction_truths(truth: GroundTruth) -> dict[tuple[str, str], float]:
    """The truth of each row of the safety x accountability model, by (KPI, construct):
    accountability and the interaction act on time to resolve only."""
    constructs = INTERACTION_MODEL.constructs()
    ttr = {"log median TTR", "log TTR (incident level)"}
    effects = {ACCOUNTABILITY_SCORE: truth.log_ttr_per_sd_accountability, None: truth.log_ttr_per_sd2_safety_x_accountability}
    table = {}
    for kpi in truths(truth):
        for term in INTERACTION_MODEL.reported_terms(True) + INTERACTION_MODEL.reported_terms(False):
            effect = effects[ACCOUNTABILITY_SCORE if term.startswith(ACCOUNTABILITY_SCORE.prefix) else None]
            table[(kpi, constructs[term])] = effect if kpi in ttr else 0.0
    return table


# Every safety effect switched off: nothing should come out significant after BH.
NULL_TRUTH = replace(GroundTruth(), log_ttr_per_sd=0.0, log_tta_per_sd=0.0, log_ttd_per_sd=0.0,
                     proactive_log_odds_per_sd=0.0, voluntary_attrition_log_odds_per_sd=0.0,
                     incident_rate_log_per_sd=0.0, log_ttr_per_sd_accountability=0.0,
                     log_ttr_per_sd2_safety_x_accountability=0.0)


def results(seed: int, truth: GroundTruth = GroundTruth(), n_teams: int = 40, n_months: int = 12,
            models: tuple[ScoreModel, ...] = (SAFETY_MODEL,)) -> pd.DataFrame:
    """The results table on the latent scores of a generated organisation."""
    months, incidents = org_frames(generate(OrgSpec(seed=seed, n_teams=n_teams, n_months=n_months), truth))
    return kpi_safety_effects(months, incidents, models=models)


def measured_results(seed: int, truth: GroundTruth = GroundTruth(), n_teams: int = 40, n_months: int = 12
                     ) -> pd.DataFrame:
    """The results table on measured safety, with the latent SD of the published team-waves
    (``latent_sd``: the corrected estimates' truth is the GroundTruth effect times it)."""
    frames = measured_frames(generate(OrgSpec(seed=seed, n_teams=n_teams, n_months=n_months), truth))
    table = kpi_safety_effects(frames.months, frames.incidents, frames.reference_reliability)
    return table.assign(latent_sd=frames.latent_sd)
