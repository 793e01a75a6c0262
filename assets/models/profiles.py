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

import numpy as np
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
    stage_keys = [stage.key for stage in STAGES]
    wide = published.pivot_table(index=["team", "wave_quarter"], columns="scale", values="score_mean").reindex(
        columns=[PSYCHOLOGICAL_SAFETY.key, ACCOUNTABILITY.key, *stage_keys]).astype(float)
    k = wide.index.get_level_values("wave_quarter").map(scale_points).to_numpy(dtype=float)
    limit = {which: np.broadcast_to(np.asarray(thresholds.of(which, k), dtype=float), len(wide))
             for which in ("safety", "accountability", "stages")}
    safety, accountability = wide[PSYCHOLOGICAL_SAFETY.key].to_numpy(), wide[ACCOUNTABILITY.key].to_numpy()
    both = ~np.isnan(safety) & ~np.isnan(accountability)
    zones = [zone_of(s, a) if in_both else None
             for s, a, in_both in zip(safety > limit["safety"], accountability > limit["accountability"], both)]
    stage_means = wide[stage_keys].to_numpy()
    staged = ~np.isnan(stage_means).any(axis=1)
    not_above = stage_means <= limit["stages"][:, None]
    # Each stage builds on the ones before it: the first stage not above the threshold stops the climb.
    below = np.where(not_above.any(axis=1), not_above.argmax(axis=1), len(STAGES))
    return pd.DataFrame({
        "team": wide.index.get_level_values("team"), "wave_quarter": wide.index.get_level_values("wave_quarter"),
        "safety_mean": safety, "accountability_mean": accountability, "zone": zones,
        **{f"{key}_mean": stage_means[:, i] for i, key in enumerate(stage_keys)},
        "stage_reached": pd.arrays.IntegerArray(below.astype("int64"), mask=~staged),
        "first_stage_below": [STAGES[b].name if s and b < len(STAGES) else None for s, b in zip(staged, below)],
        "safety_threshold": limit["safety"], "accountability_threshold": limit["accountability"],
        "stage_threshold": limit["stages"],
    }, columns=list(PROFILE_COLUMNS))


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
