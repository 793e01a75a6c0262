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
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from assets.kpi_rules import read_kpi_rules
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
from assets.models.kpis import KPIS, Kpi
from assets.models.psychometrics import survey_wave_tables
from assets.models.stats import kpi_safety_effects, standardise
from pipelines.synthetic.learning import ACTION_ITEM_CLOSE_LOG_SD, ACTION_ITEM_CLOSE_MEDIAN_DAYS, counted
from pipelines.synthetic.model import GroundTruth, Organisation
from pipelines.synthetic.org import OrgSpec, generate, write_csv
from pipelines.synthetic.people import JUNIOR_PREFIX, is_proactive
from pipelines.synthetic.tickets import REACTIVE_TYPES

COUNTS = ("headcount", "critical_headcount", "voluntary_leavers", "critical_voluntary_leavers", "incidents",
          "proactive_tickets", "reactive_tickets", "reviewable_incidents", "reviewed_incidents", "action_items_due",
          "action_items_closed_in_time", "repeat_incidents", "junior_headcount", "cross_team_proactive_tickets",
          "junior_proactive_tickets")


def org_frames(org) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(team-months, incidents) with the latent lagged safety as safety_z, and the latent
    accountability and stage scores (``<prefix>_z``) when the organisation has them. The
    learning KPIs count every review and action item drawn (pipelines/synthetic/learning.py),
    also those the cut-off has not reached yet; the speaking-up KPIs know every reporter."""
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
    roster: dict[tuple[str, int], tuple[str, bool]] = {}  # (employee, month) -> (team, junior)
    for row in org.headcount_rows:
        m = month(date.fromisoformat(row["snapshot_date"]))
        cell = cells[(team_of_unit[row["org_unit"]], m)]
        cell["headcount"] += 1
        cell["critical_headcount"] += row["critical_role"]
        cell["junior_headcount"] += row["role"].startswith(JUNIOR_PREFIX)
        roster[row["employee_id"], m] = (team_of_unit[row["org_unit"]], row["role"].startswith(JUNIOR_PREFIX))
    for row in org.termination_rows:
        cell = cells[(team_of_unit[row["org_unit"]], month(date.fromisoformat(row["termination_date"])))]
        cell["voluntary_leavers"] += row["voluntary"]
        cell["critical_voluntary_leavers"] += row["voluntary"] and row["critical_role"]
    employee_of = {person.account_id: person.employee_id for person in org.people}
    for ticket in org.tickets:
        m = month(ticket.created)
        cell = cells[(ticket.team_key, m)]
        if is_proactive(ticket):
            cell["proactive_tickets"] += 1
            reporter = roster.get((employee_of.get(ticket.reporter_account_id or ticket.creator_account_id), m))
            if reporter is not None:
                cell["cross_team_proactive_tickets"] += reporter[0] != ticket.team_key
                cell["junior_proactive_tickets"] += reporter[0] == ticket.team_key and reporter[1]
        elif ticket.issue_type in REACTIVE_TYPES:
            cell["reactive_tickets"] += 1
    close_within = timedelta(days=read_kpi_rules().action_item_close_within_days)
    review_days: dict = defaultdict(list)
    close_days: dict = defaultdict(list)
    for incident in counted(org):
        key = (incident.team_key, month(incident.created_at))
        cells[key]["repeat_incidents"] += incident.repeat_of is not None
        if incident.urgency == "high" and incident.resolved_at is not None:
            cells[key]["reviewable_incidents"] += 1
        if incident.review_done_at is not None:
            cells[key]["reviewed_incidents"] += 1
            review_days[key].append((incident.review_done_at - incident.resolved_at) / timedelta(days=1))
        for created, closed in incident.review_action_items:
            item_key = (incident.team_key, month(created))
            cells[item_key]["action_items_due"] += 1
            cells[item_key]["action_items_closed_in_time"] += closed - created <= close_within
            close_days[item_key].append((closed - created) / timedelta(days=1))
    for key, days in review_days.items():
        cells[key].update(n_reviews_done=len(days), review_done_median_days=float(np.median(days)))
    for key, days in close_days.items():
        cells[key].update(n_action_items_closed=len(days), action_item_close_median_days=float(np.median(days)))
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
    """Each KPI's true coefficient per SD of latent safety; NaN for the repeat share, which no
    single coefficient describes (docs/ground_truth.md)."""
    return {
        "log median TTR": truth.log_ttr_per_sd, "log median TTA": truth.log_tta_per_sd,
        "incidents per head": truth.incident_rate_log_per_sd, "proactive share": truth.proactive_log_odds_per_sd,
        "voluntary attrition": truth.voluntary_attrition_log_odds_per_sd,
        "critical-role voluntary attrition": truth.voluntary_attrition_log_odds_per_sd,
        "post-incident review share": truth.review_log_odds_per_sd,
        "log median days to finish a review": truth.review_done_log_days_per_sd,
        "review action items closed in time": closed_in_time_log_odds_per_sd(truth),
        "log median days to close an action item": truth.action_item_close_log_days_per_sd,
        "repeat incident share": np.nan,
        "cross-team proactive tickets per head": truth.cross_team_proactive_log_rate_per_sd,
        "junior proactive tickets per junior head": truth.junior_proactive_log_rate_per_sd,
        "log TTR (incident level)": truth.log_ttr_per_sd, "log TTD (incident level)": truth.log_ttd_per_sd,
    }


def closed_in_time_log_odds_per_sd(truth: GroundTruth) -> float:
    """The log odds ratio per SD of safety that a logistic model of "closed within the KPI rules'
    close_within_days" recovers: the close time is log-normal, so the chance is a probit in
    safety, Phi((log(days / median) - effect * s) / log_sd); its best logistic approximation
    over safety ~ N(0, 1) (maximum expected likelihood, on a grid)."""
    days = read_kpi_rules().action_item_close_within_days
    safety = np.linspace(-4, 4, 801)
    weight = stats.norm.pdf(safety) / stats.norm.pdf(safety).sum()
    chance = stats.norm.cdf((np.log(days / ACTION_ITEM_CLOSE_MEDIAN_DAYS)
                             - truth.action_item_close_log_days_per_sd * safety) / ACTION_ITEM_CLOSE_LOG_SD)
    x = np.column_stack([np.ones_like(safety), safety])
    coefficients = np.zeros(2)
    for _ in range(50):  # Newton steps on the expected log-likelihood: converges in a handful
        fitted = 1 / (1 + np.exp(-x @ coefficients))
        coefficients += np.linalg.solve((x * (weight * fitted * (1 - fitted))[:, None]).T @ x,
                                        x.T @ (weight * (chance - fitted)))
    return float(coefficients[1])


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
                     incident_rate_log_per_sd=0.0, review_log_odds_per_sd=0.0, review_done_log_days_per_sd=0.0,
                     action_item_close_log_days_per_sd=0.0, repeat_log_odds_per_sd=0.0,
                     cross_team_proactive_log_rate_per_sd=0.0, junior_proactive_log_rate_per_sd=0.0,
                     log_ttr_per_sd_accountability=0.0, log_ttr_per_sd2_safety_x_accountability=0.0)


def results(seed: int, truth: GroundTruth = GroundTruth(), n_teams: int = 40, n_months: int = 12,
            kpis: tuple[Kpi, ...] = KPIS, models: tuple[ScoreModel, ...] = (SAFETY_MODEL,)) -> pd.DataFrame:
    """The results table on the latent scores of a generated organisation."""
    months, incidents = org_frames(generate(OrgSpec(seed=seed, n_teams=n_teams, n_months=n_months), truth))
    return kpi_safety_effects(months, incidents, kpis=kpis, models=models)


def measured_results(seed: int, truth: GroundTruth = GroundTruth(), n_teams: int = 40, n_months: int = 12,
                     kpis: tuple[Kpi, ...] = KPIS) -> pd.DataFrame:
    """The results table on measured safety, with the latent SD of the published team-waves
    (``latent_sd``: the corrected estimates' truth is the GroundTruth effect times it)."""
    frames = measured_frames(generate(OrgSpec(seed=seed, n_teams=n_teams, n_months=n_months), truth))
    table = kpi_safety_effects(frames.months, frames.incidents, frames.reference_reliability, kpis)
    return table.assign(latent_sd=frames.latent_sd)
