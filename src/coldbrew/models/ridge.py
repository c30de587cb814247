"""Ridge regression in closed form: the linear maps the cheap heads learn on frozen vectors."""

from __future__ import annotations

import numpy as np


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """Ridge regression with an unpenalised bias: ``W`` of shape ``(d_in + 1, d_out)``.

    Predict with :func:`apply_ridge`. Solved in the dual when there are fewer rows than features.
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"need the same positive number of rows, got {len(x)} and {len(y)}")
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - x_mean, y - y_mean
    if xc.shape[0] < xc.shape[1]:
        gram = xc @ xc.T + alpha * np.eye(len(xc))
        coef = xc.T @ np.linalg.solve(gram, yc)
    else:
        gram = xc.T @ xc + alpha * np.eye(xc.shape[1])
        coef = np.linalg.solve(gram, xc.T @ yc)
    bias = y_mean - x_mean @ coef
    return np.vstack([coef, bias[None, :]]).astype(np.float32)


def apply_ridge(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.asarray(x, dtype=np.float32) @ weights[:-1] + weights[-1]
    return out
