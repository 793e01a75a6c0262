"""The textbook CR2 sandwich and Bell-McCaffrey degrees of freedom, built from the full
matrices (Bell & McCaffrey 2002; Pustejovsky & Tipton 2018, section 3), as an independent
reference for ``assets.models.stats.cluster_covariance``, which takes shortcuts (the teams'
leverage through its rank, the df through a teams x teams Gram matrix) to stay linear in rows."""

import numpy as np
import pandas as pd
from scipy import linalg


def cr2_reference(X: np.ndarray, residuals: np.ndarray, groups: np.ndarray, bread: np.ndarray | None = None,
                  extra_scores: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(CR2 covariance of the columns of ``X``, Bell-McCaffrey df of each) of the linear model
    ``X`` with ``residuals`` (a GLM's working model: sqrt(w) X and u / sqrt(w)). ``bread``
    defaults to (X'X)^-1; a fit with more parameters than ``X`` (a NegativeBinomial's alpha, an
    AFT's log sigma) passes its whole inverse Hessian and the other parameters' ``extra_scores``
    per row, summed per team unadjusted."""
    n, k = X.shape
    inverse = np.linalg.inv(X.T @ X)
    bread = inverse if bread is None else bread
    residual_maker = np.eye(n) - X @ inverse @ X.T  # I - H, N x N
    blocks = list(pd.Series(np.arange(n)).groupby(groups).indices.values())
    # A_g = (I - H_gg)^-1/2 from the matrix square root of the whole block.
    adjustments = [np.linalg.inv(np.real(linalg.sqrtm(residual_maker[np.ix_(rows, rows)]))) for rows in blocks]
    extra_scores = np.empty((n, 0)) if extra_scores is None else extra_scores
    scores = np.array([np.r_[X[rows].T @ a @ residuals[rows], extra_scores[rows].sum(axis=0)]
                       for rows, a in zip(blocks, adjustments)])
    covariance = (bread @ scores.T @ scores @ bread)[:k, :k]
    df = np.empty(k)
    for j in range(k):
        # Column g of G: (I - H)_g' A_g X_g (X'X)^-1 e_j; df = (sum lambda)^2 / sum lambda^2 over G'G.
        columns = np.column_stack([residual_maker[rows].T @ a @ X[rows] @ inverse[:, j]
                                   for rows, a in zip(blocks, adjustments)])
        lam = np.linalg.eigvalsh(columns.T @ columns)
        df[j] = lam.sum() ** 2 / (lam**2).sum()
    return covariance, df
