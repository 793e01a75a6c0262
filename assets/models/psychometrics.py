"""Survey psychometrics: reliability, within-team agreement, group-level reliability, and the
anonymity rules that decide which team-wave cells may be published, for every scale the
survey measured (assets/landing/item_sets.py).

Pure numpy/pandas so every formula can be checked against published and hand-computed values.
Definitions follow METRICS.md (Survey).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from math import lcm

import numpy as np
import pandas as pd
from scipy import stats

from assets.landing.item_sets import DEFAULT_SCALE_POINTS, ITEM_SETS
from assets.models.stats import MIN_TEAMS_FOR_TESTS

# The anonymity threshold (METRICS.md): a team-wave cell with fewer respondents is suppressed
# everywhere. Every other module (GX suites, the anonymity check, the report) imports it. The
# same number of reportable teams is the least a wave needs before its zone counts are shown.
MIN_RESPONDENTS = 5
# A team's latest reportable wave describes the quarters after it for at most this many quarters
# (marts.fct_team_month_survey_scores, through the dbt var safety_max_wave_age_quarters, for
# every scale); an older wave leaves the team-month without that score.
SAFETY_MAX_WAVE_AGE_QUARTERS = 2
# A wave is a calendar quarter of responses. It closes this many days after its quarter ends;
# the first night after that its figures are computed once, published or suppressed, and
# frozen: later nights never recompute them, and a response of that quarter loaded only after
# the freeze counts in the next wave still open (docs/metrics.md, Anonymity across nights).
WAVE_CLOSE_DAYS = 14

PRIMARY = f"fewer than {MIN_RESPONDENTS} respondents"
NO_VARIATION = "no variation: every respondent gave the same score, so each one's score would show"
SCORES_PINNED = ("scores pinned: all but one respondent gave the same score and the cell's n, mean and sd fit no "
                 "other set of person scores, so each one's score would show")
COMPLEMENTARY = "complementary: "
POOL_TOO_SMALL = "protects a smaller suppressed cell of the same wave"
POOL_NO_VARIATION = "the suppressed cells' pooled scores would all be equal, so each one's score would show"
POOL_SCORES_PINNED = ("the suppressed cells' pooled people all but one gave the same score and their size and mean "
                      "would fit no other set of person scores, so each one's score would show")
POOL_SIZE_PINNED = "the published counts and HR headcounts would pin a suppressed cell's size"

CELL_COLUMNS = ("team", "wave_quarter", "scale", "is_suppressed", "suppression_reason", "n_respondents", "score_mean",
                "score_sd", "rwg_j")
WAVE_COLUMNS = ("wave_quarter", "scale", "scale_points", "n_respondents", "score_mean", "n_teams", "n_teams_published",
                "n_respondents_published", "published_mean", "published_mean_ci_low", "published_mean_ci_high",
                "cronbach_alpha", "n_alpha_complete_responses", "icc1", "icc2", "anova_f", "anova_df_between",
                "anova_df_within", "anova_group_size_k")


def wave_closes_on(wave_quarter: date, close_after_days: int = WAVE_CLOSE_DAYS) -> date:
    """The day a wave closes: ``close_after_days`` after the last day of its quarter."""
    start = pd.Timestamp(wave_quarter).to_period("Q").end_time.date()
    return start + timedelta(days=close_after_days)


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


@dataclass
class WaveDecision:
    """What one wave may publish: the suppressed teams with the reason (the same in every
    scale, so one scale's counts never bound another's), and the scales whose wave totals
    are withheld."""

    hidden: dict[str, str] = field(default_factory=dict)
    totals_hidden: set[str] = field(default_factory=set)


def _size_pinned(sizes: Mapping[str, int], reasons: Mapping[str, str], headcount: Mapping[str, float],
                 minimum: int) -> bool:
    """Whether an attacker can pin a suppressed cell's size from the pooled size (wave total
    minus published cells), the published reasons (a cell hidden for having fewer than
    ``minimum`` respondents has 1..minimum-1, any other hidden cell at least ``minimum``) and
    HR headcounts (a team has at most its headcount respondents): a cell hidden for having
    fewer than ``minimum`` respondents whose feasible sizes, given the others' bounds, are a
    single number is pinned. (Another hidden cell's size may be known, e.g. a team of five
    that all answered: at least ``minimum``, it is not what suppression hides.)"""
    low = {t: 1 if reasons[t] == PRIMARY else minimum for t in sizes}
    high = {t: min(headcount.get(t, np.inf), minimum - 1 if reasons[t] == PRIMARY else np.inf) for t in sizes}
    pooled = sum(sizes.values())
    for team in (t for t in sizes if reasons[t] == PRIMARY):
        others = [t for t in sizes if t != team]
        fewest = max(low[team], pooled - sum(high[t] for t in others))
        most = min(high[team], pooled - sum(low[t] for t in others))
        if fewest == most:
            return True
    return False


@lru_cache(maxsize=64)
def _score_grid(answered: tuple[int, ...], scale_points: int) -> tuple[list[int], int]:
    """The person scores an attacker can assume, in integer units of 1/L: every mean of
    ``a`` answers on 1..K for each number of answered items ``a`` that occurs among the
    respondents (with every item answered, the multiples of 1/items). Who skipped how many
    is not published, so each person may take any of them. Returns the sorted grid and L."""
    unit = lcm(*answered)
    grid = sorted({v for a in answered for v in range(unit, scale_points * unit + 1, unit // a)})
    return grid, unit


def _fits_one_set(grid: Sequence[int], n: int, total: int, squares: int | None) -> bool:
    """Whether exactly one multiset of ``n`` values of ``grid`` (sorted integers) has sum
    ``total`` and, unless None, sum of squares ``squares``: the published n, mean and sd (or,
    for a pool, n and mean) in integer units. A depth-first search over non-decreasing values
    (a stack, so a pool of thousands does not hit Python's recursion limit) that stops at the
    second solution. A value v leaves r values in [v, top] and is tried only if they can
    reach the rest of the sum (r v <= s <= r top) and of the squares (at least s^2/r by
    Cauchy-Schwarz, at most (v + top) s - r v top since every (x - v)(top - x) >= 0)."""
    top, found = grid[-1], 0

    def values(start: int, left: int, rest: int) -> Iterator[int]:
        return iter(range(bisect_left(grid, rest - (left - 1) * top, lo=start), bisect_right(grid, rest // left)))

    stack = [(n, total, squares, values(0, n, total))]
    while stack:
        left, rest, rest_squares, positions = stack[-1]
        position = next(positions, None)
        if position is None:
            stack.pop()
            continue
        value, r = grid[position], left - 1
        s, q = rest - value, None if rest_squares is None else rest_squares - value * value
        if q is not None and (r * q < s * s or q > (value + top) * s - r * value * top):
            continue
        if r == 0:
            if q is None or q == 0:
                found += 1
            if found > 1:
                return False
        else:
            stack.append((r, s, q, values(position, r, s)))
    return found == 1


def _pinned(scores: np.ndarray, answered: np.ndarray, scale_points: int, with_sd: bool) -> bool:
    """Whether these person scores are all alike but one and their published figures (their n
    and mean, and their sd when ``with_sd``) fit no other multiset of scores on the grid an
    attacker can assume (``_score_grid``): then every respondent's score shows, to each of them
    at least, as when all are equal. A pinned multiset of more varied scores says which scores
    were given, not who gave which: it is published (docs/metrics.md), as suppressing it would
    hide a third of small teams' cells on the optional scales' coarse grids."""
    _, counts = np.unique(np.round(scores, 9), return_counts=True)
    if counts.max() < len(scores) - 1:
        return False
    grid, unit = _score_grid(tuple(sorted(set(answered.tolist()))), scale_points)
    units = np.rint(scores * unit).astype(np.int64)
    return _fits_one_set(grid, len(units), int(units.sum()), int((units * units).sum()) if with_sd else None)


def _cells(persons: pd.DataFrame) -> Iterator[tuple[tuple[str, str], np.ndarray, np.ndarray]]:
    """Each (scale, team) cell's person scores and answered items, without a pandas group per cell."""
    keys = persons.groupby(["scale", "team"], sort=False).ngroup().to_numpy()
    order = np.argsort(keys, kind="stable")
    scores, answered = persons["person_score"].to_numpy(dtype=float), persons["n_items"].to_numpy(dtype=int)
    scales, teams = persons["scale"].to_numpy(), persons["team"].to_numpy()
    for rows in np.split(order, np.flatnonzero(np.diff(keys[order])) + 1):
        if len(rows):
            yield (scales[rows[0]], teams[rows[0]]), scores[rows], answered[rows]


def wave_suppression(persons: pd.DataFrame, headcount: Mapping[str, float] | None = None,
                     minimum: int = MIN_RESPONDENTS, scale_points: int = DEFAULT_SCALE_POINTS) -> WaveDecision:
    """Which team cells of one wave must not be published, in any scale, and why.

    ``persons``: one row per scored respondent and scale (team, scale, person_score, and
    n_items: the items answered, every item of the scale when the column is absent);
    ``headcount``: each team's HR headcount in the wave's quarter (its largest monthly one),
    what an analyst can read beside the survey figures; ``scale_points``: the Likert K.

    Primary: a team with fewer than ``minimum`` respondents in any scale, or whose respondents
    all gave the same score in a scale (a mean at the scale's bound is one such: each person's
    score would show), or whose scores in a scale are all alike but one and whose n, mean and
    sd fit no other set of person scores (four at 7 and one at 6: ``_pinned``). Complementary, per scale, while the wave's
    published total minus its published cells (the pooled suppressed cells) would reveal
    something: the next smallest published team is suppressed too while the pool is a single
    cell or under ``minimum`` people, while its scores are all equal, while its size and mean
    fit a single set of scores, or while the reasons, the pooled size and the headcounts pin a
    suppressed cell's size. When no team is left to add, the scale's wave total is withheld."""
    headcount = headcount or {}
    if "n_items" not in persons:
        persons = persons.assign(n_items=persons["scale"].map(lambda scale: len(ITEM_SETS[scale].items)))
    cells = persons.groupby(["scale", "team"])["person_score"]
    sizes = cells.size()
    # Per team, over its scales: its smallest cell, and whether any cell's scores are all equal.
    smallest = sizes.groupby(level="team").min()
    uniform = (cells.max() - cells.min()).eq(0).groupby(level="team").any()
    decision = WaveDecision()
    for team in sorted(persons["team"].unique()):
        if smallest[team] < minimum:
            decision.hidden[team] = PRIMARY
        elif uniform[team]:
            decision.hidden[team] = NO_VARIATION
    # The exact search runs only for cells that would otherwise be published.
    for (_, team), scores, answered in _cells(persons[~persons["team"].isin(list(decision.hidden))]):
        if team not in decision.hidden and _pinned(scores, answered, scale_points, with_sd=True):
            decision.hidden[team] = SCORES_PINNED
    scales = sorted(sizes.index.get_level_values("scale").unique())
    changed = True
    while changed:
        changed = False
        for scale in scales:
            if scale in decision.totals_hidden:
                continue
            scale_sizes = sizes.xs(scale, level="scale")
            if scale_sizes.sum() < minimum:
                decision.totals_hidden.add(scale)
                continue
            hidden = {t: int(scale_sizes[t]) for t in decision.hidden if t in scale_sizes.index}
            pool = persons[(persons["scale"] == scale) & persons["team"].isin(list(hidden))]
            why = (POOL_TOO_SMALL if len(hidden) == 1 or 0 < sum(hidden.values()) < minimum
                   else POOL_NO_VARIATION if hidden and pool["person_score"].max() == pool["person_score"].min()
                   else POOL_SCORES_PINNED if hidden and _pinned(pool["person_score"].to_numpy(dtype=float),
                                                                 pool["n_items"].to_numpy(dtype=int), scale_points,
                                                                 with_sd=False)
                   else POOL_SIZE_PINNED if hidden and _size_pinned(hidden, decision.hidden, headcount, minimum)
                   else None)
            if why is None:
                continue
            remaining = sorted((t for t in scale_sizes.index if t not in decision.hidden),
                               key=lambda t: (scale_sizes[t], str(t)))
            if remaining:
                decision.hidden[remaining[0]] = COMPLEMENTARY + why
                changed = True
            else:
                decision.totals_hidden.add(scale)
    return decision


def person_scores(answers: pd.DataFrame) -> pd.DataFrame:
    """One row per response and scale from long answers (response_id, team, wave_quarter,
    item_set, item_no, score): the mean of answered items, kept only with at least the item
    set's ``min_answered`` (5 of Edmondson's 7)."""
    grouped = answers.groupby(["response_id", "team", "wave_quarter", "item_set"], as_index=False).agg(
        n_items=("score", "size"), person_score=("score", "mean"))
    # Typed, so that a night with no wave to publish (no answers) compares an empty column too.
    needed = grouped["item_set"].map({key: s.min_answered for key, s in ITEM_SETS.items()}).astype("int64")
    return grouped[grouped["n_items"] >= needed].rename(columns={"item_set": "scale"})


def published_mean_with_ci(n: pd.Series, means: pd.Series) -> tuple[float, float, float]:
    """The respondent-weighted mean of published team means and its 95% CI, clustered by
    team: Var = J/(J-1) * sum(n_j (m_j - mean))^2 / N^2 with t(J - 1). Computed from
    published figures only, so it reveals nothing about a suppressed cell. No interval (NaN)
    below MIN_TEAMS_FOR_TESTS teams, the models' rule for testing at all: with t(1) from 2 teams
    it ran to -1.9 to 8.9 on a 1-7 scale, and the review compares these intervals between quarters."""
    n, means = n.to_numpy(dtype=float), means.to_numpy(dtype=float)
    if len(n) == 0:
        return (float("nan"),) * 3
    total = n.sum()
    mean = float((n * means).sum() / total)
    if len(n) < MIN_TEAMS_FOR_TESTS:
        return mean, float("nan"), float("nan")
    se = float(np.sqrt(len(n) / (len(n) - 1) * ((n * (means - mean)) ** 2).sum()) / total)
    half = stats.t.ppf(0.975, len(n) - 1) * se
    return mean, mean - half, mean + half


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


def survey_wave_tables(answers: pd.DataFrame, scale_points: int, headcount: Mapping[tuple, float] | None = None
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Team-wave-scale and wave-scale tables from long answers (response_id, team,
    wave_quarter, item_set, item_no, score), with suppression applied (``wave_suppression``,
    per wave; ``headcount`` maps (team, wave_quarter) to the team's HR headcount then): nothing
    in them identifies a cell under 5 respondents or one person's score.

    Team-wave-scale: n, mean, sd, rwg(j) (null when suppressed). Wave-scale: respondents and
    mean over every scored respondent (safe because of complementary suppression, withheld
    when that cannot make it safe), the respondent-weighted mean of the published cells with
    its team-clustered 95% CI, Cronbach's alpha and ICC(1)/ICC(2) over the published cells
    only, so they carry no information about the suppressed ones."""
    persons = person_scores(answers)
    scored = answers.rename(columns={"item_set": "scale"}).merge(persons[["response_id", "scale"]],
                                                                  on=["response_id", "scale"])
    by_cell = persons.groupby(["wave_quarter", "scale", "team"])
    sizes = by_cell.size()
    means, sds = _group_mean_sd(persons["person_score"].to_numpy(dtype=float), by_cell.ngroup().to_numpy(),
                                len(sizes))
    rwg = np.full(len(sizes), np.nan)
    wides = {}
    for scale, scale_answers in scored.groupby("scale"):
        wide = scale_answers.pivot_table(index=["response_id", "team", "wave_quarter"], columns="item_no",
                                         values="score")
        wides[scale] = wide
        keys = pd.MultiIndex.from_arrays([wide.index.get_level_values("wave_quarter"),
                                          np.full(len(wide), scale), wide.index.get_level_values("team")])
        cells_of = sizes.index.get_indexer(keys)
        # -1: a response id also filed under a second team or wave with too few items there.
        in_cell = cells_of >= 0
        scale_cells = np.unique(cells_of[in_cell])
        local = np.searchsorted(scale_cells, cells_of[in_cell])
        rwg[scale_cells] = rwg_j_by_group(wide.to_numpy()[in_cell], local, len(scale_cells), scale_points)
    reasons, waves = {}, []
    for wave, wave_persons in persons.groupby("wave_quarter"):
        team_headcount = {team: count for (team, quarter), count in (headcount or {}).items() if quarter == wave}
        decision = wave_suppression(wave_persons, team_headcount, scale_points=scale_points)
        reasons.update({(wave, scale, team): reason for team, reason in decision.hidden.items()
                        for scale in wave_persons["scale"].unique()})
        for scale, scale_persons in wave_persons.groupby("scale"):
            waves.append(_wave_row(wave, scale, scale_points, scale_persons, decision, sizes, means, wides[scale]))
    suppression = sizes.index.map(reasons)
    shown = suppression.isna()
    cells = pd.DataFrame({
        "team": sizes.index.get_level_values("team"),
        "wave_quarter": sizes.index.get_level_values("wave_quarter"),
        "scale": sizes.index.get_level_values("scale"),
        "is_suppressed": ~shown,
        "suppression_reason": suppression,
        "n_respondents": sizes.to_numpy(),
        "score_mean": means,
        "score_sd": sds,
        "rwg_j": rwg,
    }, columns=[*CELL_COLUMNS])
    cell_types = {"n_respondents": "Int64", "score_mean": "Float64", "score_sd": "Float64", "rwg_j": "Float64"}
    wave_types = {"n_respondents": "Int64", "score_mean": "Float64"}
    cells = cells.astype(cell_types)
    cells.loc[~shown, ["n_respondents", "score_mean", "score_sd", "rwg_j"]] = pd.NA
    return cells, pd.DataFrame(waves, columns=[*WAVE_COLUMNS]).astype(wave_types)


def _wave_row(wave, scale: str, scale_points: int, persons: pd.DataFrame, decision: WaveDecision,
              sizes: pd.Series, means: np.ndarray, wide: pd.DataFrame) -> dict:
    """One wave and scale's row: totals (unless withheld) and what the published cells give."""
    published = persons[~persons["team"].isin(list(decision.hidden))]
    teams = sizes.xs((wave, scale), level=("wave_quarter", "scale"))
    shown = teams.drop(index=[t for t in decision.hidden if t in teams.index])
    positions = [sizes.index.get_loc((wave, scale, team)) for team in shown.index]
    org_mean, low, high = published_mean_with_ci(shown.astype(float), pd.Series(means[positions]))
    complete = wide.xs(wave, level="wave_quarter")
    complete = complete[complete.index.get_level_values("team").isin(list(shown.index))].dropna()
    reliability = group_reliability(published["person_score"], published["team"])
    withheld = scale in decision.totals_hidden
    return {
        "wave_quarter": wave,
        "scale": scale,
        "scale_points": scale_points,
        "n_respondents": None if withheld else len(persons),
        "score_mean": None if withheld else float(persons["person_score"].mean()),
        "n_teams": len(teams),
        "n_teams_published": len(shown),
        "n_respondents_published": len(published),
        "published_mean": org_mean,
        "published_mean_ci_low": low,
        "published_mean_ci_high": high,
        "cronbach_alpha": cronbach_alpha(complete.to_numpy()),
        "n_alpha_complete_responses": len(complete),
        "icc1": reliability["icc1"],
        "icc2": reliability["icc2"],
        "anova_f": reliability["f"],
        "anova_df_between": reliability["df_between"],
        "anova_df_within": reliability["df_within"],
        "anova_group_size_k": reliability["k"],
    }
