"""Team-wave profiles from the published survey cells: Edmondson's zones and Clark's stages.

- Zones (Edmondson 2008, *Teaming* 2012: psychological safety against motivation and
  accountability): a team-wave reportable in both scales is *high* on a scale when its mean is
  above the threshold, by default the scale's midpoint (K + 1) / 2 ("neither agree nor
  disagree"): learning zone (both high), comfort zone (high safety, low accountability),
  anxiety zone (low safety, high accountability), apathy zone (both low).
- Clark's stages (Clark 2020), in order: inclusion, learner, contributor, challenger safety.
  A team-wave reportable in all four has reached a stage when that stage and every one before
  it are above the threshold (each stage builds on the previous ones): ``stage_reached`` 0..4,
  and ``first_stage_below`` names the first one that is not.
- Counts per wave (teams per zone, per stage reached) and moves between zones wave to wave
  (teams reportable in a wave and the one before) are shown only for waves with at least
  MIN_RESPONDENTS such teams: in a tiny wave a count can name a team. A suppressed cell is in
  none of them: every figure here comes from published cells.

Pure pandas, computed every night from the frozen published cells (so it never changes what a
closed wave showed, and a changed threshold applies at once).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from assets.landing.item_sets import ACCOUNTABILITY, PSYCHOLOGICAL_SAFETY, STAGES
from assets.models.psychometrics import MIN_RESPONDENTS

ZONES = {
    "learning": "high safety, high accountability",
    "comfort": "high safety, low accountability",
    "anxiety": "low safety, high accountability",
    "apathy": "low safety, low accountability",
}
PROFILE_COLUMNS = ("team", "wave_quarter", "safety_mean", "accountability_mean", "zone",
                   *(f"{stage.key}_mean" for stage in STAGES), "stage_reached", "first_stage_below",
                   "safety_threshold", "accountability_threshold", "stage_threshold")


@dataclass(frozen=True)
class Thresholds:
    """What counts as high on each scale (the raw 1..K mean); None: the scale's midpoint."""

    safety: float | None = None
    accountability: float | None = None
    stages: float | None = None

    def of(self, which: str, scale_points: int) -> float:
        value = getattr(self, which)
        return (scale_points + 1) / 2 if value is None else value


def zone_of(safety_high: bool, accountability_high: bool) -> str:
    return {(True, True): "learning", (True, False): "comfort", (False, True): "anxiety",
            (False, False): "apathy"}[(safety_high, accountability_high)]


def team_profiles(cells: pd.DataFrame, scale_points: dict, thresholds: Thresholds = Thresholds()) -> pd.DataFrame:
    """One row per team-wave with a published cell in any profiled scale: the scale means, the
    zone (reportable in safety and accountability) and the stage reached (reportable in all
    four stages), with the thresholds they were placed by. ``cells``: team, wave_quarter,
    scale, is_suppressed, score_mean; ``scale_points``: K per wave."""
    published = cells[~cells["is_suppressed"].astype(bool)]
    wide = published.pivot_table(index=["team", "wave_quarter"], columns="scale", values="score_mean")
    rows = []
    for (team, wave), means in wide.iterrows():
        k = scale_points[wave]
        safety, accountability = means.get(PSYCHOLOGICAL_SAFETY.key), means.get(ACCOUNTABILITY.key)
        both = pd.notna(safety) and pd.notna(accountability)
        stage_means = [means.get(stage.key) for stage in STAGES]
        staged = all(pd.notna(m) for m in stage_means)
        below = next((i for i, m in enumerate(stage_means) if m <= thresholds.of("stages", k)), None) if staged else None
        rows.append({
            "team": team, "wave_quarter": wave, "safety_mean": safety, "accountability_mean": accountability,
            "zone": zone_of(safety > thresholds.of("safety", k), accountability > thresholds.of("accountability", k))
            if both else None,
            **{f"{stage.key}_mean": m for stage, m in zip(STAGES, stage_means)},
            "stage_reached": (len(STAGES) if below is None else below) if staged else None,
            "first_stage_below": STAGES[below].name if staged and below is not None else None,
            **{f"{which}_threshold": thresholds.of(which, k) for which in ("safety", "accountability")},
            "stage_threshold": thresholds.of("stages", k),
        })
    return pd.DataFrame(rows, columns=list(PROFILE_COLUMNS)).astype({"stage_reached": "Int64"})


def profile_counts(profiles: pd.DataFrame) -> pd.DataFrame:
    """Teams per zone and per stage reached, per wave (wave_quarter, profile, category,
    n_teams, n_teams_in_wave); n_teams is null when fewer than MIN_RESPONDENTS teams of the
    wave have that profile."""
    rows = []
    for profile, column, categories in (("zone", "zone", list(ZONES)),
                                        ("clark_stage", "stage_reached", list(range(len(STAGES) + 1)))):
        for wave, group in profiles.dropna(subset=[column]).groupby("wave_quarter"):
            shown = len(group) >= MIN_RESPONDENTS
            counts = group[column].value_counts()
            rows += [{"wave_quarter": wave, "profile": profile, "category": str(category),
                      "n_teams": int(counts.get(category, 0)) if shown else None, "n_teams_in_wave": len(group)}
                     for category in categories]
    return pd.DataFrame(rows, columns=["wave_quarter", "profile", "category", "n_teams", "n_teams_in_wave"]).astype(
        {"n_teams": "Int64"})


def zone_moves(profiles: pd.DataFrame) -> pd.DataFrame:
    """How teams moved between zones from one wave to the next (wave_quarter is the later one):
    teams with a zone in both, counted per (from_zone, to_zone); null counts when fewer than
    MIN_RESPONDENTS teams are in both."""
    zoned = profiles.dropna(subset=["zone"])
    waves = sorted(zoned["wave_quarter"].unique())
    rows = []
    for previous, wave in zip(waves, waves[1:]):
        if (pd.Timestamp(wave) - pd.DateOffset(months=3)) != pd.Timestamp(previous):
            continue  # not consecutive quarters
        pairs = zoned[zoned["wave_quarter"] == previous][["team", "zone"]].merge(
            zoned[zoned["wave_quarter"] == wave][["team", "zone"]], on="team", suffixes=("_from", "_to"))
        shown = len(pairs) >= MIN_RESPONDENTS
        counts = pairs.groupby(["zone_from", "zone_to"]).size()
        rows += [{"wave_quarter": wave, "from_zone": a, "to_zone": b,
                  "n_teams": int(counts.get((a, b), 0)) if shown else None, "n_teams_in_both": len(pairs)}
                 for a in ZONES for b in ZONES]
    return pd.DataFrame(rows, columns=["wave_quarter", "from_zone", "to_zone", "n_teams", "n_teams_in_both"]).astype(
        {"n_teams": "Int64"})
