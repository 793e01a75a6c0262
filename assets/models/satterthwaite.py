"""Satterthwaite degrees of freedom for the fixed effects of a random-intercept model.

Model: y = X beta + b_team + e, b ~ N(0, tau2), e ~ N(0, sigma2), fitted by REML. The fixed
effects' covariance is C = (X' V^-1 X)^-1 with V = sigma2 I + tau2 J per team (J = 11'). For a
coefficient k, Satterthwaite's approximation gives

    df_k = 2 C_kk^2 / (g_k' A g_k),   g_k = dC_kk / d(sigma2, tau2),   A = Cov(sigma2^, tau2^),

with A the inverse of the expected REML information, I_ab = 1/2 tr(P V_a P V_b),
P = V^-1 - V^-1 X C X' V^-1 (Giesbrecht & Burns 1985; what R's lmerTest reports by default).
In a balanced design it is exact: G - (team-constant columns) for a team-constant term, and
the fixed-effects residual df for a term that varies only within teams.

Each team's V^-1 has a closed form: its eigenvalues are 1/sigma2 (on vectors summing to
zero) and d = 1/(sigma2 + n tau2) (on the constant vector), so W^k = V^-k =
sigma2^-k I + (d^k - sigma2^-k) J/n, and every term below is a sum over teams of the team's
X'X, its column sums s = X'1 and its size n, without forming any n x n matrix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _team_sums(X: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each team's size n_j and column sums s_j = X_j' 1 (teams x columns)."""
    n_groups = int(groups.max()) + 1
    sizes = np.bincount(groups, minlength=n_groups).astype(float)
    sums = np.zeros((n_groups, X.shape[1]))
    np.add.at(sums, groups, X)
    return sizes, sums


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
