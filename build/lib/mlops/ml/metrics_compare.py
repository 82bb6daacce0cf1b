"""Comparing metric values by direction (no numpy: imported by the serving-side validate_model)."""

from __future__ import annotations

from mlops.core.config import HIGHER_IS_BETTER


def better(metric: str, a: float, b: float) -> bool:
    """Is ``a`` strictly better than ``b`` on ``metric``?"""
    return a > b if HIGHER_IS_BETTER[metric] else a < b


def regression_of(metric: str, candidate: float, champion: float) -> float:
    """How much worse the candidate is than the champion (positive = worse)."""
    return champion - candidate if HIGHER_IS_BETTER[metric] else candidate - champion
