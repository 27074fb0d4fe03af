"""Paired comparisons over seeds: two settings (or two trainers) run on the same seeds, compared by the ratio
of their medians with a paired bootstrap interval. The SB3 benchmarks (benchmarks/versus_sb3.py) and lesson
04's implementation-details ablation (``ablations.py``) both print them.

A run that never got there (``None``, or nan for a step count) counts as infinitely slow.
"""
from __future__ import annotations

import math
import statistics

import numpy as np


def never_as_inf(values: list) -> list[float]:
    """A run that never got there (None or nan) counted as infinitely slow."""
    return [float("inf") if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]


def median(values: list) -> float:
    """The median with a run that never got there counted as infinitely slow."""
    return statistics.median(never_as_inf(values))


def bootstrap_ratio(ours: list, theirs: list, level: float = 0.95, resamples: int = 10_000,
                    seed: int = 0) -> tuple[float, float]:
    """A paired percentile-bootstrap interval for median(ours) / median(theirs): resample the seeds with
    replacement, both sides' runs on a seed together. A run that never got there counts as infinitely
    slow, as in ``median``; a resample where neither median is finite counts against ours (ratio inf).
    It says how much the ratio could move with other seeds: with a few dozen seeds, a lot."""
    a, b = np.array(never_as_inf(ours), dtype=float), np.array(never_as_inf(theirs), dtype=float)
    picks = np.random.default_rng(seed).integers(0, len(a), size=(resamples, len(a)))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = np.median(a[picks], axis=1) / np.median(b[picks], axis=1)
    ratios[np.isnan(ratios)] = np.inf
    tail = (1 - level) / 2
    low, high = np.quantile(ratios, [tail, 1 - tail], method="inverted_cdf")
    return float(low), float(high)


def paired_counts(ours: list, theirs: list) -> tuple[int, int]:
    """On how many seeds ours is below theirs and on how many above (never = infinitely slow; ties in neither)."""
    pairs = list(zip(never_as_inf(ours), never_as_inf(theirs)))
    return sum(x < y for x, y in pairs), sum(x > y for x, y in pairs)
