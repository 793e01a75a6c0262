"""Survey responses of the synthetic organisation (a survey tool's export): Edmondson's seven
items and, when the organisation asks them, the accountability items and Clark's four stages."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from assets.landing.item_sets import ACCOUNTABILITY, STAGES, ItemSet
from assets.landing.survey import EDMONDSON_ITEMS
from pipelines.synthetic.model import add_months

# Edmondson (1999) team psychological safety items; the three marked True are reverse-scored.
SURVEY_ITEMS = EDMONDSON_ITEMS
# A respondent's agreement on the 7-point scale: LEVEL + SLOPE x latent score + item noise.
# Safety sits at 4.6 (most teams above the midpoint), accountability at 4.3; Clark's stages
# fall from inclusion to challenger safety, each stage harder to reach than the one before.
SLOPE = 0.8
SAFETY_LEVEL = 4.6
LEVELS = {ACCOUNTABILITY.key: 4.3, **dict(zip((s.key for s in STAGES), (5.1, 4.8, 4.5, 4.0)))}


def expected_mean(level: float, latent: float) -> float:
    """The mean agreement a team-wave with this latent score expects (before rounding)."""
    return level + SLOPE * latent


def _answers(rng, items, latent: float, level: float, truth) -> dict[str, int | str]:
    """One respondent's answers to ``items`` ((text, reverse-keyed) pairs), on 1..K."""
    k = truth.survey_scale_points
    row = {}
    for text, reverse in items:
        # Agreement on the 7-point scale, stretched onto 1..k.
        agreement = expected_mean(level, latent) + rng.normal(0, truth.item_sd)
        answer = int(np.clip(round(1 + (agreement - 1) * (k - 1) / 6), 1, k))
        skipped = rng.random() < truth.item_skip_rate
        row[text] = "" if skipped else (k + 1 - answer if reverse else answer)
    return row


def _items(item_set: ItemSet) -> list[tuple[str, bool]]:
    return [(item.text, item.reverse_keyed) for item in item_set.items]


def generate_survey(rng, spec, truth, teams, quarter_safety, n_quarters, scales_rng=None, quarter_accountability=None,
                    quarter_stages=None) -> list[dict]:
    """One row per response. Edmondson's items draw from ``rng`` (the causal model's stream);
    the optional scales from ``scales_rng``: a respondent answers them from the team-wave's
    latent accountability or stage score plus the respondent's own deviation."""
    rows: list[dict] = []
    for q in range(n_quarters):
        wave_day = add_months(spec.start, 3 * q) + timedelta(days=14)
        if wave_day >= add_months(spec.start, spec.n_months):
            break
        for t in teams:
            for person in range(t.headcount):
                if rng.random() > truth.response_rate:
                    continue
                deviation = rng.normal(0, truth.respondent_sd)
                row = {
                    "response_id": f"R{q:02d}{t.hr_org_unit[3:]}{person:03d}",
                    "submitted_at": (wave_day + timedelta(hours=float(rng.uniform(0, 240)))).strftime("%Y-%m-%d %H:%M:%S"),
                    "team": t.name,
                    **_answers(rng, SURVEY_ITEMS, quarter_safety[(t.key, q)] + deviation, SAFETY_LEVEL, truth),
                }
                if quarter_accountability:
                    own = scales_rng.normal(0, truth.respondent_sd)
                    row.update(_answers(scales_rng, _items(ACCOUNTABILITY), quarter_accountability[(t.key, q)] + own,
                                        LEVELS[ACCOUNTABILITY.key], truth))
                if quarter_stages:
                    for stage in STAGES:
                        row.update(_answers(scales_rng, _items(stage), quarter_stages[(t.key, q, stage.key)] + deviation,
                                            LEVELS[stage.key], truth))
                rows.append(row)
    return rows
