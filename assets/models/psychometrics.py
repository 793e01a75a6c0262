"""Survey psychometrics: reliability, within-team agreement, group-level reliability, and the
anonymity rule that decides which team-wave cells may be published.

Pure numpy/pandas so every formula can be checked against published and hand-computed values.
Definitions follow METRICS.md (Survey).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

# The anonymity threshold (METRICS.md): a team-wave cell with fewer respondents is suppressed
# everywhere. Every other module (GX suites, the anonymity check, the report) imports it.
MIN_RESPONDENTS = 5
MIN_ITEMS_ANSWERED = 5
# A team's latest reportable wave describes the quarters after it for at most this many quarters
# (marts.mart_team_month, through the dbt var safety_max_wave_age_quarters); an older wave
# leaves the team-month without safety.
SAFETY_MAX_WAVE_AGE_QUARTERS = 2


CELL_COLUMNS = ("team", "wave_quarter", "is_suppressed", "suppression_reason", "n_respondents", "safety_mean",
                "safety_sd", "rwg_j")
WAVE_COLUMNS = ("wave_quarter", "scale_points", "n_respondents", "safety_mean", "n_teams", "n_teams_published",
                "n_respondents_published", "cronbach_alpha", "n_alpha_complete_responses", "icc1", "icc2", "anova_f",
                "anova_df_between", "anova_df_within", "anova_group_size_k")


def cronbach_alpha(items: np.ndarray) -> float:
    """Cronbach's alpha of a respondents x items matrix of complete answers:
    J/(J-1) * (1 - sum of item variances / variance of the sum score). NaN with < 2 rows."""
    items = np.asarray(items, dtype=float)
    if items.ndim != 2 or items.shape[0] < 2 or items.shape[1] < 2:
        return float("nan")
    if np.isnan(items).any():
        raise ValueError("cronbach_alpha needs complete responses; drop partial ones first")
    n_items = items.shape[1]
    total_variance = items.sum(axis=1).var(ddof=1)
    if total_variance == 0:
        return float("nan")
    return float(n_items / (n_items - 1) * (1 - items.var(axis=0, ddof=1).sum() / total_variance))


def rwg_j(items: np.ndarray, scale_points: int) -> float:
    """James, Demaree & Wolf's rwg(j) for one team: J items, mean observed item variance s2
    against the uniform null sigma2_EU = (K^2 - 1)/12:
    J(1 - s2/sigma2_EU) / (J(1 - s2/sigma2_EU) + s2/sigma2_EU).
    Items may hold NaN for skipped answers (each item's variance uses its answers). When s2
    exceeds sigma2_EU the index is out of its range and is reported as 0 (no agreement).
    The readable one-team formula: ``rwg_j_by_group`` computes it for every team-wave at once
    and is tested against it."""
    items = np.asarray(items, dtype=float)
    n_items = items.shape[1]
    answered = (~np.isnan(items)).sum(axis=0)
    if (answered < 2).any():
        return float("nan")
    mean_variance = float(np.nanvar(items, axis=0, ddof=1).mean())
    ratio = mean_variance / ((scale_points**2 - 1) / 12)
    if ratio >= 1:
        return 0.0
    agreement = n_items * (1 - ratio)
    return float(agreement / (agreement + ratio))


def icc_from_f(f_statistic: float, group_size: float) -> tuple[float, float]:
    """ICC(1) and ICC(2) from a one-way ANOVA's F = MSB/MSW and the (average) group size k:
    ICC(1) = (F - 1)/(F + k - 1), ICC(2) = 1 - 1/F (Bliese 2000)."""
    return (f_statistic - 1) / (f_statistic + group_size - 1), 1 - 1 / f_statistic


def group_reliability(scores: pd.Series, groups: pd.Series) -> dict[str, float]:
    """One-way ANOVA of person scores on team: F, df, the group size k and ICC(1)/ICC(2).
    With unequal team sizes k = (N - sum(n_j^2)/N)/(J - 1) (Bliese & Halverson 1998)."""
    frame = pd.DataFrame({"score": scores.to_numpy(dtype=float), "group": groups.to_numpy()}).dropna()
    sizes = frame.groupby("group")["score"].size()
    n, n_groups = len(frame), len(sizes)
    if n_groups < 2 or n <= n_groups:
        nan = float("nan")
        return {"f": nan, "df_between": n_groups - 1, "df_within": n - n_groups, "k": nan, "icc1": nan, "icc2": nan}
    means = frame.groupby("group")["score"].transform("mean")
    grand = frame["score"].mean()
    ms_between = float(((means - grand) ** 2).sum() / (n_groups - 1))
    ms_within = float(((frame["score"] - means) ** 2).sum() / (n - n_groups))
    k = float((n - (sizes**2).sum() / n) / (n_groups - 1))
    f = ms_between / ms_within if ms_within > 0 else float("inf")
    icc1, icc2 = icc_from_f(f, k) if np.isfinite(f) else (1.0, 1.0)
    return {"f": f, "df_between": n_groups - 1, "df_within": n - n_groups, "k": k, "icc1": icc1, "icc2": icc2}


def suppressed_cells(sizes: pd.Series, minimum: int = MIN_RESPONDENTS) -> dict[object, str]:
    """Cells of one parent (e.g. the teams of one wave, ``sizes`` indexed by team) that must
    not be published, with the reason.

    Primary: fewer than ``minimum`` respondents. Complementary: while a parent has suppressed
    cells and they are a single cell, or together hold fewer than ``minimum`` respondents,
    the next smallest published sibling is suppressed too, so that the parent's published
    total minus its published cells only ever reveals a pooled group of >= 2 cells and
    >= ``minimum`` people."""
    order = sorted(sizes.index, key=lambda cell: (sizes[cell], str(cell)))
    reasons = {cell: f"fewer than {minimum} respondents" for cell in order if sizes[cell] < minimum}
    while reasons and (len(reasons) < 2 or sum(sizes[c] for c in reasons) < minimum):
        remaining = [cell for cell in order if cell not in reasons]
        if not remaining:
            break
        reasons[remaining[0]] = "complementary: protects a smaller suppressed cell of the same wave"
    return reasons


def person_scores(answers: pd.DataFrame) -> pd.DataFrame:
    """One row per response from long answers (response_id, team, wave_quarter, item_no,
    score): the mean of answered items, kept only with at least 5 of 7 answered."""
    grouped = answers.groupby(["response_id", "team", "wave_quarter"], as_index=False).agg(
        n_items=("score", "size"), person_score=("score", "mean")
    )
    return grouped[grouped["n_items"] >= MIN_ITEMS_ANSWERED]


def _rows_by_group_size(groups: np.ndarray, n_groups: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Rows of groups 0..n_groups-1 (``groups`` holds each row's group), one batch per group size
    n: the groups of that size and a groups x n array of their row positions, in input order.

    Reducing a batch along its n axis sums each group in the order a numpy call on that group
    alone would, so the vectorised figures equal the per-group formulas bit for bit (a flat
    segmented sum such as np.add.reduceat adds in another order and differs in the last bits)."""
    sizes = np.bincount(groups, minlength=n_groups)
    order = np.argsort(groups, kind="stable")
    starts = np.cumsum(sizes) - sizes
    for size in np.unique(sizes[sizes > 0]):
        members = np.flatnonzero(sizes == size)
        yield members, order[starts[members, None] + np.arange(size)]


def _group_mean_sd(values: np.ndarray, groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Each group's mean and sample sd (ddof=1, NaN for one value), computed as pandas'
    Series.mean() and Series.std() compute them (sum / n, then the two-pass variance)."""
    means, sds = np.full(n_groups, np.nan), np.full(n_groups, np.nan)
    for members, rows in _rows_by_group_size(groups, n_groups):
        block = values[rows]
        means[members] = block.sum(axis=1) / block.shape[1]
        if block.shape[1] > 1:
            squares = (means[members, None] - block) ** 2
            sds[members] = np.sqrt(squares.sum(axis=1) / (block.shape[1] - 1))
    return means, sds


def rwg_j_by_group(items: np.ndarray, groups: np.ndarray, n_groups: int, scale_points: int) -> np.ndarray:
    """rwg_j of every group at once: ``items`` is respondents x items (NaN for a skipped answer),
    ``groups`` each respondent's group in 0..n_groups-1. Element g equals rwg_j(items[groups == g],
    scale_points); NaN for a group without respondents."""
    items = np.asarray(items, dtype=float)
    n_items = items.shape[1]
    result = np.full(n_groups, np.nan)
    # 0/0 item means and variances of items answered fewer than twice are masked below.
    with np.errstate(divide="ignore", invalid="ignore"):
        for members, rows in _rows_by_group_size(groups, n_groups):
            block = items[rows]  # groups x respondents x items
            answered = ~np.isnan(block)
            counts = answered.sum(axis=1)
            filled = np.where(answered, block, 0.0)
            deviations = np.where(answered, filled - (filled.sum(axis=1) / counts)[:, None, :], 0.0)
            variances = (deviations * deviations).sum(axis=1) / (counts - 1)
            ratio = variances.mean(axis=1) / ((scale_points**2 - 1) / 12)
            agreement = n_items * (1 - ratio)
            index = np.where(ratio >= 1, 0.0, agreement / (agreement + ratio))
            result[members] = np.where((counts >= 2).all(axis=1), index, np.nan)
    return result


def survey_wave_tables(answers: pd.DataFrame, scale_points: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Team-wave and wave tables from long answers (response_id, team, wave_quarter, item_no,
    score), with suppression applied: nothing in them identifies a cell under 5 respondents.

    Team-wave: n, mean, sd, rwg(j) (null when suppressed). Wave: respondents and mean over
    every scored respondent (safe because of complementary suppression), Cronbach's alpha
    and ICC(1)/ICC(2) over the published cells only, so they carry no information about the
    suppressed ones."""
    persons = person_scores(answers)
    scored = answers.merge(persons[["response_id"]], on="response_id")
    wide = scored.pivot_table(index=["response_id", "team", "wave_quarter"], columns="item_no", values="score")
    by_cell = persons.groupby(["wave_quarter", "team"])
    sizes = by_cell.size()
    person_cells = by_cell.ngroup().to_numpy()
    means, sds = _group_mean_sd(persons["person_score"].to_numpy(dtype=float), person_cells, len(sizes))
    # -1: a team-wave without any scored respondent, reached only by a response id also filed
    # under a second team or wave with too few items there; it has no team-wave row.
    wide_cells = sizes.index.get_indexer(wide.index.droplevel("response_id").reorder_levels(sizes.index.names))
    rwg = rwg_j_by_group(wide.to_numpy()[wide_cells >= 0], wide_cells[wide_cells >= 0], len(sizes), scale_points)
    reasons, waves = {}, []
    for wave, wave_persons in persons.groupby("wave_quarter"):
        wave_sizes = sizes.xs(wave, level="wave_quarter")
        hidden = suppressed_cells(wave_sizes)
        reasons.update({(wave, team): reason for team, reason in hidden.items()})
        published = wave_persons[~wave_persons["team"].isin(list(hidden))]
        complete = wide.xs(wave, level="wave_quarter").loc[lambda w: ~w.index.get_level_values("team").isin(list(hidden))]
        complete = complete.dropna()
        reliability = group_reliability(published["person_score"], published["team"])
        total_hidden = len(wave_persons) < MIN_RESPONDENTS
        waves.append({
            "wave_quarter": wave,
            "scale_points": scale_points,
            "n_respondents": None if total_hidden else len(wave_persons),
            "safety_mean": None if total_hidden else float(wave_persons["person_score"].mean()),
            "n_teams": len(wave_sizes),
            "n_teams_published": len(wave_sizes) - len(hidden),
            "n_respondents_published": len(published),
            "cronbach_alpha": cronbach_alpha(complete.to_numpy()),
            "n_alpha_complete_responses": len(complete),
            "icc1": reliability["icc1"],
            "icc2": reliability["icc2"],
            "anova_f": reliability["f"],
            "anova_df_between": reliability["df_between"],
            "anova_df_within": reliability["df_within"],
            "anova_group_size_k": reliability["k"],
        })
    suppression = sizes.index.map(reasons)
    shown = suppression.isna()
    cells = pd.DataFrame({
        "team": sizes.index.get_level_values("team"),
        "wave_quarter": sizes.index.get_level_values("wave_quarter"),
        "is_suppressed": ~shown,
        "suppression_reason": suppression,
        "n_respondents": sizes.to_numpy(),
        "safety_mean": means,
        "safety_sd": sds,
        "rwg_j": rwg,
    }, columns=[*CELL_COLUMNS])
    cell_types = {"n_respondents": "Int64", "safety_mean": "Float64", "safety_sd": "Float64", "rwg_j": "Float64"}
    wave_types = {"n_respondents": "Int64", "safety_mean": "Float64"}
    cells = cells.astype(cell_types)
    cells.loc[~shown, ["n_respondents", "safety_mean", "safety_sd", "rwg_j"]] = pd.NA
    return cells, pd.DataFrame(waves, columns=[*WAVE_COLUMNS]).astype(wave_types)
