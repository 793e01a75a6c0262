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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

SAFETY = "safety_z"
# Time-varying adjustments: (derived column, how it is made from the mart). Split like safety.
ADJUSTMENTS = {"log_headcount": ("headcount", np.log)}
CONSTRUCTS = {"safety_within": "safety within team", "safety_between": "safety between teams"}
TOTAL_TERM = "safety_z"
TOTAL_CONSTRUCT = "safety (total)"  # incident-level models: safety not split into within and between
ERROR_VARIANCE = "safety_error_var"
WAVE = "safety_wave"


@dataclass
class Design:
    """The rows of one fit (canonical order) and its design matrix ``X`` (with a constant).
    ``terms`` are the safety columns in ``X``; ``unidentified`` the safety parts that do not
    vary; ``left_out`` the adjustment columns that added nothing."""

    data: pd.DataFrame
    X: pd.DataFrame
    terms: list[str]
    unidentified: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)

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


def model_rows(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Canonical rows with safety, a positive headcount and ``columns``; the adjustments and
    measurement-error columns derived (error variance 0 where the frame carries none)."""
    data = frame.copy()
    if ERROR_VARIANCE not in data:
        data[ERROR_VARIANCE] = 0.0
    if WAVE not in data:
        data[WAVE] = data["period_month"]
    data = canonical(data, [*columns, SAFETY, "headcount", ERROR_VARIANCE, WAVE])
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


def _adds_rank(base: np.ndarray, column: np.ndarray) -> bool:
    scaled = column / (np.abs(column).max() or 1.0)
    rank = np.linalg.matrix_rank(base) if base.shape[1] else 0
    return np.linalg.matrix_rank(np.column_stack([base, scaled])) > rank


def design(data: pd.DataFrame, split: bool) -> Design:
    """The design matrix: constant, safety (within and between when ``split``, else total),
    the adjustments (split the same way), quarter dummies (first quarter as reference)."""
    if split:
        data = split_within_between(data, SAFETY).rename(columns={
            f"{SAFETY}_within": "safety_within", f"{SAFETY}_between": "safety_between"})
        for name in ADJUSTMENTS:
            data = split_within_between(data, name)
        terms = list(CONSTRUCTS)
        adjustments = [f"{name}_{part}" for name in ADJUSTMENTS for part in ("within", "between")]
    else:
        terms, adjustments = [TOTAL_TERM], list(ADJUSTMENTS)
    quarters = pd.get_dummies(data["quarter"], prefix="quarter", prefix_sep="[", dtype=float)
    quarters = quarters.rename(columns=lambda c: c + "]").iloc[:, 1:]
    columns = {"const": np.ones(len(data))}
    unidentified = [term for term in terms if not data[term].std() >= 1e-9]  # NaN: one row
    columns.update({term: data[term].to_numpy(dtype=float) for term in terms if term not in unidentified})
    left_out = []
    candidates = {**{a: data[a].to_numpy(dtype=float) for a in adjustments},
                  **{q: quarters[q].to_numpy() for q in quarters.columns}}
    for name, values in candidates.items():
        if len(data) and _adds_rank(np.column_stack(list(columns.values())), values):
            columns[name] = values
        elif not name.startswith("quarter["):
            left_out.append(name)
    X = pd.DataFrame(columns, index=data.index)
    return Design(data, X, [t for t in terms if t not in unidentified], unidentified, left_out)


def error_moments(design: Design) -> pd.Series:
    """Expected error sums of squares of the safety columns in ``design.X`` (index: term).

    A row's safety is its team-wave mean m = true + e, Var(e) = ``safety_error_var``, and rows
    that carry the same wave share its e. For a team with K rows, k_w of them from wave w, the
    team mean's error has variance v = sum_w (k_w/K)^2 var_w; so the between column's errors
    sum to K v per team in squares and the within column's to sum(var_row) - K v. Total safety:
    sum(var_row). The cross terms sum to zero within each team."""
    data = design.data
    variance = data[ERROR_VARIANCE].astype(float)
    if TOTAL_TERM in design.terms:
        return pd.Series({TOTAL_TERM: float(variance.sum())})
    rows = data.groupby("team")[ERROR_VARIANCE].transform("size")
    per_wave = data.groupby(["team", WAVE])[ERROR_VARIANCE].transform("size")
    share_squared = (per_wave / rows) ** 2 * variance / per_wave  # each row's part of v, summed by team
    mean_error = share_squared.groupby(data["team"]).transform("sum")
    moments = {"safety_between": float(mean_error.sum()), "safety_within": float(variance.sum() - mean_error.sum())}
    return pd.Series({term: moments[term] for term in design.terms})
