"""Psychological-safety survey responses of the synthetic organisation (a survey tool's export)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from pipelines.synthetic.model import add_months

# Edmondson (1999) team psychological safety items; the three marked True are reverse-scored.
SURVEY_ITEMS: tuple[tuple[str, bool], ...] = (
    ("If you make a mistake on this team, it is often held against you", True),
    ("Members of this team are able to bring up problems and tough issues", False),
    ("People on this team sometimes reject others for being different", True),
    ("It is safe to take a risk on this team", False),
    ("It is difficult to ask other members of this team for help", True),
    (
        "No one on this team would deliberately act in a way that undermines my efforts",
        False,
    ),
    (
        "Working with members of this team, my unique skills and talents are valued and utilized",
        False,
    ),
)


def generate_survey(rng, spec, truth, teams, quarter_safety, n_quarters) -> list[dict]:
    rows: list[dict] = []
    k = 7
    for q in range(n_quarters):
        wave_day = add_months(spec.start, 3 * q) + timedelta(days=14)
        if wave_day >= add_months(spec.start, spec.n_months):
            break
        for t in teams:
            for person in range(t.headcount):
                if rng.random() > truth.response_rate:
                    continue
                latent = quarter_safety[(t.key, q)] + rng.normal(0, truth.respondent_sd)
                row = {
                    "response_id": f"R{q:02d}{t.hr_org_unit[3:]}{person:03d}",
                    "submitted_at": (wave_day + timedelta(hours=float(rng.uniform(0, 240)))).strftime("%Y-%m-%d %H:%M:%S"),
                    "team": t.name,
                }
                for text, reverse in SURVEY_ITEMS:
                    agreement = 4.6 + 0.8 * latent + rng.normal(0, truth.item_sd)
                    answer = int(np.clip(round(agreement), 1, k))
                    row[text] = k + 1 - answer if reverse else answer
                rows.append(row)
    return rows

