"""Psychological-safety survey responses of the synthetic organisation (a survey tool's export)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from assets.landing.survey import EDMONDSON_ITEMS
from pipelines.synthetic.model import add_months

# Edmondson (1999) team psychological safety items; the three marked True are reverse-scored.
SURVEY_ITEMS = EDMONDSON_ITEMS


def generate_survey(rng, spec, truth, teams, quarter_safety, n_quarters) -> list[dict]:
    rows: list[dict] = []
    k = truth.survey_scale_points
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
                    # Agreement on the 7-point scale, stretched onto 1..k.
                    agreement = 4.6 + 0.8 * latent + rng.normal(0, truth.item_sd)
                    answer = int(np.clip(round(1 + (agreement - 1) * (k - 1) / 6), 1, k))
                    skipped = rng.random() < truth.item_skip_rate
                    row[text] = "" if skipped else (k + 1 - answer if reverse else answer)
                rows.append(row)
    return rows

