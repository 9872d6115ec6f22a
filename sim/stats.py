"""Uncertainty for every reported metric: bootstrap confidence intervals (SciPy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0
# Resamples drawn at once: bounds memory to BATCH x n values for corpora of 100k annotations.
BATCH = 50


@dataclass(frozen=True)
class Estimate:
    """A mean over n values with a bootstrap confidence interval (None when n < 2)."""

    n: int
    mean: float
    ci_low: Optional[float]
    ci_high: Optional[float]


def estimate(values: Sequence[float], confidence: float = CONFIDENCE, seed: int = SEED) -> Estimate:
    """The mean of `values` with a percentile-bootstrap confidence interval, repeatable for a given seed."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("no values to estimate from")
    mean = float(data.mean())
    if data.size < 2:
        return Estimate(int(data.size), mean, None, None)
    if np.all(data == data[0]):
        return Estimate(int(data.size), mean, mean, mean)  # every resample has the same mean
    result = stats.bootstrap(
        (data,),
        np.mean,
        confidence_level=confidence,
        n_resamples=RESAMPLES,
        method="percentile",
        batch=BATCH,
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return Estimate(int(data.size), mean, float(interval.low), float(interval.high))
