"""Closed forms of the random-intercept model: its REML team variance and the Satterthwaite
degrees of freedom of its fixed effects.

Model: y = X beta + b_team + e, b ~ N(0, tau2), e ~ N(0, sigma2). Per team, V = sigma2 I +
tau2 J (J = 11'), and V^-1 has a closed form: its eigenvalues are 1/sigma2 (on vectors summing
to zero) and d = 1/(sigma2 + n tau2) (on the constant vector), so W^k = V^-k = sigma2^-k I +
(d^k - sigma2^-k) J/n. Every term below is a sum over teams of the team's X'X, its column sums
s = X'1, its outcome sum t = y'1 and its size n, without forming any n x n matrix.

The REML criterion, profiled over beta and sigma2, depends on the ratio gamma = tau2 / sigma2
alone (Harville 1977):

    -2 l_R(gamma) = (N - p) log Q(gamma) + sum_j log(1 + n_j gamma) + log det A(gamma) + const,

A = X' W X and Q = y' W y - (X' W y)' A^-1 (X' W y) with W = sigma2 V^-1, so sigma2 = Q / (N - p).
One dimension, cheap to evaluate: ``reml_variances`` finds its minimum directly, which is how
the mixed model learns, before statsmodels' optimisers try, that the team variance is at its
boundary 0, where those optimisers stall.

Satterthwaite's approximation gives, for a coefficient k with C = (X' V^-1 X)^-1,

    df_k = 2 C_kk^2 / (g_k' A g_k),   g_k = dC_kk / d(sigma2, tau2),   A = Cov(sigma2^, tau2^),

with A the inverse of the expected REML information, I_ab = 1/2 tr(P V_a P V_b),
P = V^-1 - V^-1 X C X' V^-1 (Giesbrecht & Burns 1985; what R's lmerTest reports by default).
In a balanced design it is exact: G - (team-constant columns) for a team-constant term, and
the fixed-effects residual df for a term that varies only within teams.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize


def _team_sums(X: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each team's size n_j and column sums s_j = X_j' 1 (teams x columns)."""
    n_groups = int(groups.max()) + 1
    sizes = np.bincount(groups, minlength=n_groups).astype(float)
    sums = np.zeros((n_groups, X.shape[1]))
    np.add.at(sums, groups, X)
    return sizes, sums


# The profiled REML criterion is searched over log10(tau2 / sigma2) on a grid this fine across
# this range, then refined around the grid's best point, and compared with tau2 = 0 itself.
# Below the range a team variance is zero for every use here (the mixed model treats a share
# under 1e-6 as zero); above it, the residual variance would be 1e-8 of the team variance.
LOG10_RATIO_RANGE = (-10.0, 8.0)
LOG10_RATIO_GRID_STEP = 0.25


@dataclass(frozen=True)
class RemlVariances:
    """The random-intercept model's REML variances: residual ``sigma2``, team ``tau2``."""

    sigma2: float
    tau2: float


def reml_variances(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray) -> RemlVariances | None:
    """The variances at the minimum of the profiled REML criterion over tau2 >= 0 (module
    docstring), or None where the criterion is undefined (X' W X singular, or X fits y
    exactly), which only a full fit can judge."""
    x = X.to_numpy(dtype=float)
    observed = np.asarray(y, dtype=float)
    # The criterion is the same for y and y - X delta, so it is computed on the OLS residuals:
    # its sums of squares then lose no precision to a mean far larger than the spread.
    y = observed - x @ np.linalg.lstsq(x, observed, rcond=None)[0]
    # Residuals of an exact fit are rounding noise, each well within N eps times the largest |y|.
    rounding = len(y) * np.finfo(float).eps * float(np.abs(observed).max(initial=0.0))
    if not float(y @ y) > len(y) * rounding**2:
        return None  # X fits y exactly: no variance to split
    n, s = _team_sums(x, groups)
    t = np.bincount(groups, weights=y, minlength=len(n))
    xtx, xty, yty = x.T @ x, x.T @ y, float(y @ y)
    residual_df = x.shape[0] - x.shape[1]

    def profiled(ratio: float) -> tuple[float, float]:
        """(-2 REML log-likelihood less its constant, sigma2) at tau2 = ratio * sigma2."""
        c = ratio / (1.0 + n * ratio)  # W = I - c J per team
        a = xtx - (s * c[:, None]).T @ s
        b = xty - s.T @ (c * t)
        sign, log_det = np.linalg.slogdet(a)
        if sign <= 0:
            return np.inf, np.nan
        q = yty - float((c * t) @ t) - float(b @ np.linalg.solve(a, b))
        if not q > 0:
            return np.inf, np.nan
        return residual_df * np.log(q) + float(np.log1p(n * ratio).sum()) + log_det, q / residual_df

    grid = np.arange(LOG10_RATIO_RANGE[0], LOG10_RATIO_RANGE[1] + LOG10_RATIO_GRID_STEP / 2, LOG10_RATIO_GRID_STEP)
    values = [profiled(10.0**log_ratio)[0] for log_ratio in grid]
    at_zero, sigma2_at_zero = profiled(0.0)
    best = int(np.argmin(values))
    if not np.isfinite(values[best]) and not np.isfinite(at_zero):
        return None
    refined = optimize.minimize_scalar(
        lambda log_ratio: profiled(10.0**log_ratio)[0],
        bounds=(grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]),
        method="bounded",
        options={"xatol": 1e-9},
    )
    if at_zero <= refined.fun:
        return RemlVariances(float(sigma2_at_zero), 0.0)
    ratio = 10.0**refined.x
    sigma2 = profiled(ratio)[1]
    return RemlVariances(float(sigma2), float(ratio * sigma2))


def fixed_effect_covariance_and_df(
    X: pd.DataFrame, groups: np.ndarray, sigma2: float, tau2: float
) -> tuple[pd.DataFrame, pd.Series]:
    """(C, df): the fixed effects' covariance at the REML variances and each coefficient's
    Satterthwaite degrees of freedom, both indexed by X's columns."""
    x = X.to_numpy(dtype=float)
    n, s = _team_sums(x, groups)
    xtx = x.T @ x
    d = 1.0 / (sigma2 + n * tau2)

    def xwx(power: int) -> np.ndarray:
        """X' V^-power X = X'X / sigma2^power + sum_j (d_j^power - sigma2^-power) s_j s_j' / n_j."""
        weights = (d**power - sigma2**-power) / n
        return xtx / sigma2**power + (s * weights[:, None]).T @ s

    C = np.linalg.inv(xwx(1))
    # dC/dtheta = C (X' W dV W X) C: dV = I gives X'W^2 X; dV = J gives sum_j d_j^2 s_j s_j'.
    m_sigma = xwx(2)
    m_tau = (s * (d**2)[:, None]).T @ s
    # tr(P A P B) = tr(W A W B) - 2 tr(C X'W A W B W X) + tr(C X'WAWX C X'WBWX), per pair of
    # A, B in {I, J}: W^3 for (I, I), d^3 s s' for (I, J), n d^3 s s' for (J, J).
    m_sigma_sigma = xwx(3)
    m_sigma_tau = (s * (d**3)[:, None]).T @ s
    m_tau_tau = (s * (n * d**3)[:, None]).T @ s
    tr_ww = float(((n - 1) / sigma2**2 + d**2).sum())
    tr_wj = float((n * d**2).sum())
    tr_jj = float((n**2 * d**2).sum())

    def info(trace: float, cross: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
        return 0.5 * (trace - 2 * np.trace(C @ cross) + np.trace(C @ a @ C @ b))

    information = np.array([
        [info(tr_ww, m_sigma_sigma, m_sigma, m_sigma), info(tr_wj, m_sigma_tau, m_sigma, m_tau)],
        [info(tr_wj, m_sigma_tau, m_sigma, m_tau), info(tr_jj, m_tau_tau, m_tau, m_tau)],
    ])
    variance_cov = np.linalg.inv(information)
    grad_sigma = np.diag(C @ m_sigma @ C)
    grad_tau = np.diag(C @ m_tau @ C)
    gradients = np.column_stack([grad_sigma, grad_tau])
    spread = np.einsum("ka,ab,kb->k", gradients, variance_cov, gradients)
    df = 2 * np.diag(C) ** 2 / spread
    return pd.DataFrame(C, index=X.columns, columns=X.columns), pd.Series(df, index=X.columns)
