"""Seeded synthetic organisation with a known ground truth.

The generator draws teams, services, people, incidents, tickets, survey responses and HR
records from a small causal model (documented in docs/ground_truth.md and returned as
``Organisation.ground_truth``). The sandbox serves the operational records through the
PagerDuty and Jira APIs; the survey and HR records are written as landing-folder exports.

Everything is a pure function of ``OrgSpec``: the same spec yields the same organisation,
byte for byte, so the sandbox and the tests can rebuild it instead of storing it.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from assets.landing.identity import write_identity_map
from assets.landing.item_sets import STAGES
from assets.landing.team_map import write_team_map
from pipelines.synthetic.hr import generate_hr
from pipelines.synthetic.incidents import add_ingestion_fidelity, generate_incidents
from pipelines.synthetic.learning import add_repeats, add_reviews
from pipelines.synthetic.model import (
    GroundTruth,
    Organisation,
    OrgSpec,
    Service,
    Team,
    User,
    add_months,
    pd_id,
)
from pipelines.synthetic.people import assign_juniors, assign_reporters, identity_map_entries, make_people
from pipelines.synthetic.survey import generate_survey
from pipelines.synthetic.tickets import SHARED_PROJECT, add_shared_project, generate_tickets

_TEAM_WORDS = (
    "Payments", "Search", "Identity", "Checkout", "Catalog", "Billing", "Messaging",
    "Platform", "Storage", "Network", "Mobile", "Web", "Data", "Analytics", "Ledger",
    "Pricing", "Shipping", "Returns", "Loyalty", "Ads", "Media", "Maps", "Fraud", "Support",
    "Onboarding", "Reporting", "Compliance", "Inventory", "Warehouse", "Routing", "Gateway",
    "Streaming", "Edge", "Observability", "Release", "Security", "Kernel", "Compute",
    "Scheduler", "Notifications",
)
_TEAM_SUFFIXES = ("", " Core", " API", " Infra", " Apps")



def _jira_key(name: str, taken: set[str]) -> str:
    letters = "".join(ch for ch in name.upper() if ch.isalpha())
    for length in (3, 4, 5):
        for start in range(len(letters) - length + 1):
            candidate = letters[start : start + length]
            if candidate not in taken:
                taken.add(candidate)
                return candidate
    raise ValueError(f"no free Jira key for team {name!r}")



def generate(spec: OrgSpec = OrgSpec(), truth: GroundTruth = GroundTruth()) -> Organisation:
    if spec.n_teams < 2 or spec.n_months < 6:
        raise ValueError("an organisation needs at least 2 teams and 6 months")
    if spec.start.day != 1 or spec.start.month not in (1, 4, 7, 10):
        # Survey waves are calendar quarters in the warehouse; the generator's must match.
        raise ValueError(f"start must be the first day of a calendar quarter, not {spec.start}")
    if spec.n_teams > len(_TEAM_WORDS) * len(_TEAM_SUFFIXES):
        raise ValueError(f"at most {len(_TEAM_WORDS) * len(_TEAM_SUFFIXES)} teams")
    rng = np.random.default_rng(spec.seed)
    as_of = add_months(spec.start, spec.n_months)
    n_quarters = math.ceil(spec.n_months / 3)

    headcounts = np.clip(np.round(np.exp(rng.normal(math.log(9), 0.35, spec.n_teams))), 5, 25)
    log_hc = np.log(headcounts)
    size_z = (log_hc - log_hc.mean()) / log_hc.std()
    # Team-constant safety has variance 1 - drift^2 so each wave's latent safety has variance 1.
    between_var = 1.0 - truth.safety_wave_drift_sd**2
    rho = truth.safety_per_sd_log_headcount
    team_safety = rho * size_z + math.sqrt(between_var - rho**2) * rng.normal(size=spec.n_teams)

    teams: list[Team] = []
    taken_keys: set[str] = {SHARED_PROJECT}  # the shared project's key is not a team's
    for i in range(spec.n_teams):
        word = _TEAM_WORDS[i % len(_TEAM_WORDS)]
        name = word + _TEAM_SUFFIXES[i // len(_TEAM_WORDS)]
        teams.append(
            Team(
                key=name.lower().replace(" ", "-"),
                name=name,
                pagerduty_id=pd_id(rng),
                jira_project=_jira_key(name, taken_keys),
                hr_org_unit=f"OU-{1000 + 17 * i}",
                headcount=int(headcounts[i]),
                safety=float(team_safety[i]),
            )
        )

    quarter_safety: dict[tuple[str, int], float] = {}
    for t in teams:
        for q in range(n_quarters):
            quarter_safety[(t.key, q)] = t.safety + rng.normal(0, truth.safety_wave_drift_sd)
    # The optional scales draw from their own stream: the causal model's draws above and
    # below, and so every safety effect, are the same with or without them.
    scales_rng = np.random.default_rng([spec.seed, 2])
    quarter_accountability, quarter_stages = {}, {}
    if spec.extra_scales:
        for t in teams:
            team_accountability = math.sqrt(between_var) * scales_rng.normal()
            for q in range(n_quarters):
                quarter_accountability[(t.key, q)] = team_accountability + scales_rng.normal(
                    0, truth.safety_wave_drift_sd)
                for stage in STAGES:
                    quarter_stages[(t.key, q, stage.key)] = quarter_safety[(t.key, q)] + scales_rng.normal(
                        0, truth.clark_stage_sd)

    services: list[Service] = []
    users: list[User] = []
    for t in teams:
        for s in range(1 + t.headcount // 8):
            services.append(
                Service(pd_id(rng), f"{t.name} service {s + 1}", t.key, pd_id(rng))
            )
        for u in range(min(t.headcount, 6)):
            users.append(
                User(pd_id(rng), f"{t.name} on-call {u + 1}", f"{t.key}.oncall{u + 1}@example.com", t.key)
            )
    services_by_team = {t.key: [s for s in services if s.team_key == t.key] for t in teams}
    users_by_team = {t.key: [u for u in users if u.team_key == t.key] for t in teams}
    size_z_by_team = {t.key: float(z) for t, z in zip(teams, size_z)}
    ttr_team_effect = {t.key: rng.normal(0, truth.log_ttr_team_sd) for t in teams}

    def lagged_safety(team_key: str, month: int) -> float:
        # KPIs of quarter q follow the wave of quarter q-1; the first quarter has no
        # earlier wave, so its KPIs follow the team's own first wave.
        return quarter_safety[(team_key, max(month // 3 - 1, 0))]

    def lagged_accountability(team_key: str, month: int) -> float:
        return quarter_accountability.get((team_key, max(month // 3 - 1, 0)), 0.0)

    incidents = generate_incidents(rng, spec, truth, teams, services_by_team, users_by_team,
                           size_z_by_team, ttr_team_effect, lagged_safety, lagged_accountability, as_of)
    tickets = generate_tickets(rng, spec, truth, teams, lagged_safety, as_of)
    # The ingestion details draw from their own stream: the causal model's draws stay as they were.
    fidelity_rng = np.random.default_rng([spec.seed, 1])
    add_ingestion_fidelity(fidelity_rng, spec, teams, services, incidents, as_of)
    add_shared_project(fidelity_rng, teams, tickets)
    survey_rows = generate_survey(rng, spec, truth, teams, quarter_safety, n_quarters, scales_rng,
                                  quarter_accountability, quarter_stages)
    headcount_rows, termination_rows = generate_hr(rng, spec, truth, teams, lagged_safety)
    org = Organisation(spec, truth, as_of, teams, services, users, incidents, tickets,
                       survey_rows, headcount_rows, termination_rows, quarter_safety,
                       team_quarter_accountability=quarter_accountability, team_quarter_stages=quarter_stages)
    # Learning from errors and speaking up draw from a stream of their own: everything above, and
    # so every other effect, is the same with or without them.
    learning_rng = np.random.default_rng([spec.seed, 3])
    assign_juniors(learning_rng, headcount_rows, termination_rows)
    org.people = make_people(learning_rng, headcount_rows)
    add_repeats(learning_rng, org, lagged_safety)
    add_reviews(learning_rng, org, lagged_safety)
    assign_reporters(learning_rng, org, org.people, lagged_safety)
    return org



def write_landing(org: Organisation, landing_dir: Path) -> dict[str, Path]:
    """Write the survey-tool and HR exports, the team map, the identity map and the ground
    truth as files a data engineer would drop into the landing folder."""
    landing_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "survey": landing_dir / "survey_responses.csv",
        "headcount": landing_dir / "hr_headcount.csv",
        "terminations": landing_dir / "hr_terminations.csv",
        "team_map": landing_dir / "team_map.yml",
        "identity_map": landing_dir / "identity_map.yml",
        "ground_truth": landing_dir / "ground_truth.json",
    }
    write_csv(paths["survey"], org.survey_rows)
    write_csv(paths["headcount"], org.headcount_rows)
    write_csv(paths["terminations"], org.termination_rows)
    write_team_map(paths["team_map"], [
        {
            "team": t.name,
            "pagerduty_teams": [t.name],
            "jira_projects": [t.jira_project],
            "jira_components": [f"{SHARED_PROJECT}/{t.name}"],
            "hr_org_units": [t.hr_org_unit],
            "survey_groups": [t.name],
        }
        for t in org.teams
    ])
    write_identity_map(paths["identity_map"], identity_map_entries(org))
    paths["ground_truth"].write_text(json.dumps(org.ground_truth(), indent=2))
    return paths


def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
