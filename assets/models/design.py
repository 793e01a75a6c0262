"""The design every KPI model shares: which rows, in which order, and which columns.

- Rows are put in one canonical order (team, period, then every column used) before any fit,
  so a model gives the same answer whatever order the warehouse returned them in (an
  optimiser near a boundary can otherwise land elsewhere).
- Team-month models split lagged safety into its team mean over the rows used (between) and
  each row's deviation from it (within), and split every time-varying adjustment (log
  headcount) the same way (Mundlak): with every time-varying term's team mean in the model,
  the within estimate is the team fixed-effects estimate even where headcount moves.
- Quarter fixed effects absorb what moves every team at once (a new tool, a season, an
  organisation-wide drift in survey answers), so a common time trend is not read as safety.
- An adjustment or quarter column that adds nothing to the columns before it (log headcount
  that never moves within a team; a single quarter) is left out and the model string says so.
  A part of safety that does not vary is not estimable and is reported as such.
- Measurement error: each row's lagged safety is a team-wave mean with a known error variance
  (``safety_error_var``, in squared SDs of safety); ``error_moments`` turns it into the error
  sums of squares of the safety columns the reliability correction needs.
- Other survey scales (accountability, Clark's stages) enter the same way, each a ``Score``
  with its own lagged column, error variance and wave. A ``ScoreModel`` names the scores of one
  fit and whether their product (the interaction) is in it: split within and between, the
  product of the within parts is the within-team interaction, of the between parts the
  between-team one; the two cross-level products are in the design as adjustments, so a true
  interaction of the whole scores is recovered in both parts. Products carry no measurement
  error correction.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from assets.landing.item_sets import ACCOUNTABILITY, ITEM_SETS, PSYCHOLOGICAL_SAFETY


@dataclass(frozen=True)
class Score:
    """A survey scale as a model term. Columns: ``<prefix>_z`` (the lagged team-wave mean in SDs
    of its published team-wave means), ``<prefix>_error_var`` (that mean's error variance in
    squared SDs) and ``<prefix>_wave`` (which wave it comes from). Terms: ``<prefix>_within``,
    ``<prefix>_between``, or ``<prefix>_z`` when not split; ``label`` names them in the results."""

    prefix: str
    label: str
    scale: str  # the item set key (marts.fct_team_survey_waves.scale)

    @property
    def z(self) -> str:
        return f"{self.prefix}_z"

    @property
    def error_var(self) -> str:
        return f"{self.prefix}_error_var"

    @property
    def wave(self) -> str:
        return f"{self.prefix}_wave"

    @property
    def within(self) -> str:
        return f"{self.prefix}_within"

    @property
    def between(self) -> str:
        return f"{self.prefix}_between"

    @property
    def constructs(self) -> dict[str, str]:
        return {self.within: f"{self.label} within team", self.between: f"{self.label} between teams",
                self.z: f"{self.label} (total)"}


SAFETY_SCORE = Score("safety", "safety", PSYCHOLOGICAL_SAFETY.key)
ACCOUNTABILITY_SCORE = Score("accountability", "accountability", ACCOUNTABILITY.key)
# Every scale the models know, by item set key.
SCORES: dict[str, Score] = {key: SAFETY_SCORE if key == SAFETY_SCORE.scale else
                            ACCOUNTABILITY_SCORE if key == ACCOUNTABILITY_SCORE.scale else
                            Score(key, item_set.name, key) for key, item_set in ITEM_SETS.items()}


@dataclass(frozen=True)
class ScoreModel:
    """The survey scores of one fit. ``reported``: the scores whose terms become rows of the
    results table (the others adjust); ``interaction``: the product of the first two is in."""

    scores: tuple[Score, ...]
    reported: tuple[Score, ...]
    interaction: bool = False

    @property
    def product(self) -> str:
        return "_x_".join(s.prefix for s in self.scores[:2])

    @property
    def product_label(self) -> str:
        return " \u00d7 ".join(s.label for s in self.scores[:2])

    def terms(self, split: bool) -> list[str]:
        """The score columns of the design, reported ones first."""
        if not split:
            return [s.z for s in self.scores] + ([f"{self.product}_z"] if self.interaction else [])
        terms = [t for s in self.scores for t in (s.within, s.between)]
        if self.interaction:
            first, second = self.scores[:2]
            terms += [f"{self.product}_within", f"{self.product}_between",
                      f"{first.within}_x_{second.between}", f"{first.between}_x_{second.within}"]
        return terms

    def reported_terms(self, split: bool) -> list[str]:
        parts = ("within", "between") if split else ("z",)
        terms = [getattr(s, part) for s in self.reported for part in parts]
        if self.interaction:
            terms += [f"{self.product}_{part}" for part in parts]
        return terms

    def constructs(self) -> dict[str, str]:
        names = {term: label for s in self.scores for term, label in s.constructs.items()}
        if self.interaction:
            names.update({f"{self.product}_within": f"{self.product_label} within team",
                          f"{self.product}_between": f"{self.product_label} between teams",
                          f"{self.product}_z": f"{self.product_label} (total)"})
        return names


SAFETY_MODEL = ScoreModel((SAFETY_SCORE,), (SAFETY_SCORE,))
# Does accountability change the safety-KPI association? Safety and accountability split
# within and between, and their products; rows for accountability and the interaction.
INTERACTION_MODEL = ScoreModel((SAFETY_SCORE, ACCOUNTABILITY_SCORE), (ACCOUNTABILITY_SCORE,), interaction=True)

# Values closer to one another than this share of their size are one value: floating-point
# noise (the weighted mean of log(3600) over a team's months, a team mean that differs from its
# rows in the last bit) is not variation a fit or a correlation may read.
SAME_VALUE_TOLERANCE = 1e-9


def does_not_vary(values) -> bool:
    """Whether the finite ``values`` are all the same value, up to SAME_VALUE_TOLERANCE of their
    size (also when there are none)."""
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    return not len(array) or bool(np.ptp(array) <= SAME_VALUE_TOLERANCE * np.abs(array).max())


SAFETY = SAFETY_SCORE.z
# Time-varying adjustments: (derived column, how it is made from the mart). Split like safety.
ADJUSTMENTS = {"log_headcount": ("headcount", np.log)}
CONSTRUCTS = {SAFETY_SCORE.within: "safety within team", SAFETY_SCORE.between: "safety between teams"}
TOTAL_TERM = SAFETY_SCORE.z
TOTAL_CONSTRUCT = SAFETY_SCORE.constructs[TOTAL_TERM]  # incident-level models: safety not split
ERROR_VARIANCE = SAFETY_SCORE.error_var
WAVE = SAFETY_SCORE.wave


@dataclass
class Design:
    """The rows of one fit (canonical order) and its design matrix ``X`` (with a constant).
    ``terms`` are the score columns in ``X``; ``reported`` the terms that become rows of the
    results table, whether estimable or not; ``unidentified`` the score columns that do not
    vary; ``left_out`` the adjustment columns that added nothing."""

    data: pd.DataFrame
    X: pd.DataFrame
    terms: list[str]
    unidentified: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    model: ScoreModel = SAFETY_MODEL
    reported: list[str] = field(default_factory=list)
    split: bool = True  # scores split within and between teams (team-month models)
    collinear: list[str] = field(default_factory=list)  # unidentified score terms that vary, but not beyond the others
    team_level: list[str] = field(default_factory=list)  # columns of X constant within every team

    @functools.cached_property
    def team_level_rank(self) -> int:
        """How many independent team-level coefficients X holds (constant, between parts...);
        computed once (a pass over every row)."""
        if not self.team_level or not len(self.data):
            return 0
        means = self.X[self.team_level].groupby(self.groups).first().to_numpy(dtype=float)
        return _rank(means, len(means))

    @property
    def between_df(self) -> int:
        """Teams left over after the team-level coefficients: a team-level term's uncertainty is
        measured from these (0: the team means are fitted exactly, and no interval exists)."""
        return self.n_teams - self.team_level_rank

    @property
    def groups(self) -> np.ndarray:
        return pd.factorize(self.data["team"])[0]

    @property
    def n_teams(self) -> int:
        return int(self.data["team"].nunique())

    @property
    def n_periods(self) -> int:
        return int(self.data["period_month"].nunique())

    @property
    def n_coefficients(self) -> int:
        """Coefficients besides the constant (the minimum-events rule counts these)."""
        return self.X.shape[1] - 1

    def formula(self, outcome: str) -> str:
        """The fitted terms in words, e.g. ``log(ttr) ~ safety_within + ... + quarter FE``."""
        if not len(self.data):
            # Nothing was fitted: name the terms the model would have had.
            adjustments = [f"{a}_{part}" for a in ADJUSTMENTS for part in ("within", "between")] if self.split \
                else list(ADJUSTMENTS)
            return f"{outcome} ~ {' + '.join([*self.model.terms(self.split), *adjustments, 'quarter FE'])} (no rows)"
        quarters = [c for c in self.X.columns if c.startswith("quarter[")]
        named = [c for c in self.X.columns if c != "const" and not c.startswith("quarter[")]
        text = f"{outcome} ~ " + " + ".join(named + (["quarter FE"] if quarters else []))
        if self.left_out:
            text += f" ({', '.join(self.left_out)} left out: no variation beyond the other terms)"
        return text


def quarter_of(period_month: pd.Series) -> pd.Series:
    """The calendar quarter of each period: month dates as '2024Q3'; integer month indexes
    (generated frames, month 0 = the first quarter's first month) as their quarter index."""
    if pd.api.types.is_numeric_dtype(period_month):
        return (period_month // 3).astype(int).astype(str)
    return pd.to_datetime(period_month).dt.to_period("Q").astype(str)


def canonical(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The rows with every column in ``columns`` present, in one order that depends on their
    values only: team, period, then the columns themselves."""
    present = frame.dropna(subset=columns)
    key = list(dict.fromkeys(["team", "period_month", *columns]))
    return present.sort_values(key, kind="mergesort").reset_index(drop=True)


def model_rows(frame: pd.DataFrame, columns: list[str], model: ScoreModel = SAFETY_MODEL) -> pd.DataFrame:
    """Canonical rows with every score of ``model``, a positive headcount and ``columns``; the
    adjustments and measurement-error columns derived (error variance 0 where the frame
    carries none)."""
    data = frame.copy()
    for score in model.scores:
        if score.error_var not in data:
            data[score.error_var] = 0.0
        if score.wave not in data:
            data[score.wave] = data["period_month"]
    scores = [c for score in model.scores for c in (score.z, score.error_var, score.wave)]
    data = canonical(data, [*columns, *scores, "headcount"])
    data = data[data["headcount"] > 0].reset_index(drop=True)
    for name, (source, transform) in ADJUSTMENTS.items():
        data[name] = transform(data[source].astype(float))
    data["quarter"] = quarter_of(data["period_month"])
    return data


def split_within_between(data: pd.DataFrame, column: str) -> pd.DataFrame:
    """Add ``<column>_between`` (team mean over the rows) and ``<column>_within`` (deviation)."""
    between = data.groupby("team")[column].transform("mean")
    # A team whose value never moves has a mean that can differ from it in the last bit: its
    # deviations are exactly zero, not rounding noise a fit would read as variation.
    within = (data[column] - between).where(~np.isclose(data[column], between, rtol=1e-12, atol=0), 0.0)
    return data.assign(**{f"{column}_between": between, f"{column}_within": within})


def _with_score_terms(data: pd.DataFrame, model: ScoreModel, split: bool) -> pd.DataFrame:
    """``data`` with the columns of ``model.terms(split)``."""
    if split:
        for score in model.scores:
            data = split_within_between(data, score.z).rename(columns={
                f"{score.z}_within": score.within, f"{score.z}_between": score.between})
    if model.interaction:
        first, second = model.scores[:2]
        if split:
            data = data.assign(**{
                f"{model.product}_within": data[first.within] * data[second.within],
                f"{model.product}_between": data[first.between] * data[second.between],
                f"{first.within}_x_{second.between}": data[first.within] * data[second.between],
                f"{first.between}_x_{second.within}": data[first.between] * data[second.within]})
        else:
            data = data.assign(**{f"{model.product}_z": data[first.z] * data[second.z]})
    return data


def _rank(matrix: np.ndarray, rows: int) -> int:
    """numpy's ``matrix_rank`` of a matrix with ``rows`` rows whose columns have the singular
    values of ``matrix``'s: its tolerance is the largest singular value times max(rows,
    columns) times the machine epsilon."""
    singular = np.linalg.svd(matrix, compute_uv=False)
    return int((singular > singular.max() * max(rows, matrix.shape[1]) * np.finfo(float).eps).sum())


def _adds_rank(r: np.ndarray, base: list[int], candidate: int, scale: float, rows: int) -> bool:
    """Whether column ``candidate`` of a matrix A, divided by ``scale``, raises the rank of A's
    columns ``base``, from A's triangular factor ``r`` (A = QR with orthonormal Q, so any set of
    A's columns has the singular values of the same columns of ``r``): an SVD of a few rows
    instead of one of every row, for each candidate."""
    extended = np.column_stack([r[:, base], r[:, candidate] / scale])
    return _rank(extended, rows) > _rank(r[:, base], rows)


def design(data: pd.DataFrame, split: bool, model: ScoreModel = SAFETY_MODEL) -> Design:
    """The design matrix: constant, the scores of ``model`` (within and between when ``split``,
    else total) and their products when it has an interaction, the adjustments (split the same
    way), quarter dummies (first quarter as reference)."""
    data = _with_score_terms(data, model, split)
    terms = model.terms(split)
    if split:
        for name in ADJUSTMENTS:
            data = split_within_between(data, name)
        adjustments = [f"{name}_{part}" for name in ADJUSTMENTS for part in ("within", "between")]
    else:
        adjustments = list(ADJUSTMENTS)
    quarters = pd.get_dummies(data["quarter"], prefix="quarter", prefix_sep="[", dtype=float)
    quarters = quarters.rename(columns=lambda c: c + "]").iloc[:, 1:]
    columns = {"const": np.ones(len(data))}
    unidentified = [term for term in terms if not data[term].std() >= 1e-9]  # NaN: one row
    # Score terms first, then adjustments and quarters: each kept only if it adds to the columns
    # before it. A score term that varies but not beyond the others (few teams, each surveyed
    # once, with more team-level terms than teams) is not estimable; an adjustment is left out.
    candidates = {**{term: data[term].to_numpy(dtype=float) for term in terms if term not in unidentified},
                  **{a: data[a].to_numpy(dtype=float) for a in adjustments},
                  **{q: quarters[q].to_numpy(dtype=float) for q in quarters.columns}}
    left_out, collinear = [], []
    kept = list(range(len(columns)))
    r = np.linalg.qr(np.column_stack([*columns.values(), *candidates.values()]), mode="r") if len(data) else None
    for position, (name, values) in enumerate(candidates.items(), start=len(columns)):
        if r is not None and _adds_rank(r, kept, position, np.abs(values).max() or 1.0, len(data)):
            columns[name] = values
            kept.append(position)
        elif name in terms:
            collinear.append(name)
        elif r is not None and not name.startswith("quarter["):
            left_out.append(name)
    X = pd.DataFrame(columns, index=data.index)
    unidentified += collinear
    # Team-level columns: every team's values one value (does_not_vary, per team at once).
    by_team = X.groupby(pd.factorize(data["team"])[0])
    highest, lowest = by_team.max(), by_team.min()
    same = (highest - lowest) <= SAME_VALUE_TOLERANCE * np.maximum(highest.abs(), lowest.abs())
    team_level = [c for c in X.columns if len(data) and bool(same[c].all())]
    return Design(data, X, [t for t in terms if t not in unidentified], unidentified, left_out, model,
                  model.reported_terms(split), split, collinear, team_level)


def _score_moments(data: pd.DataFrame, score: Score, split: bool) -> dict[str, float]:
    """One score's expected error sums of squares (see ``error_moments``)."""
    variance = data[score.error_var].astype(float)
    if not split:
        return {score.z: float(variance.sum())}
    rows = data.groupby("team")[score.error_var].transform("size")
    per_wave = data.groupby(["team", score.wave])[score.error_var].transform("size")
    share_squared = (per_wave / rows) ** 2 * variance / per_wave  # each row's part of v, summed by team
    mean_error = share_squared.groupby(data["team"]).transform("sum")
    return {score.between: float(mean_error.sum()), score.within: float(variance.sum() - mean_error.sum())}


def error_moments(design: Design) -> pd.Series:
    """Expected error sums of squares of the score columns in ``design.X`` (index: term);
    products of scores have none here (they are left uncorrected).

    A row's score is its team-wave mean m = true + e, Var(e) = the score's error variance, and
    rows that carry the same wave share its e. For a team with K rows, k_w of them from wave w,
    the team mean's error has variance v = sum_w (k_w/K)^2 var_w; so the between column's
    errors sum to K v per team in squares and the within column's to sum(var_row) - K v. Total
    score: sum(var_row). The cross terms sum to zero within each team."""
    moments = {}
    for score in design.model.scores:
        moments.update(_score_moments(design.data, score, design.split))
    return pd.Series({term: moments[term] for term in design.terms if term in moments})
