"""The hyperparameter search space expanded into trials — standard library only: the plan_trials function
imports this without scikit-learn (its cold start is the base bundle's, not the train bundle's)."""

from __future__ import annotations

import itertools
import json
import math
import random
from typing import Any

from mlops.core.config import Candidate, ProjectConfig, RandomRange


def _sample(space: RandomRange, rng: random.Random) -> float | int:
    if space.log:
        value = math.exp(rng.uniform(math.log(space.low), math.log(space.high)))
    else:
        value = rng.uniform(space.low, space.high)
    return round(value) if space.integer else round(value, 6)


def expand_trials(config: ProjectConfig) -> list[dict[str, Any]]:
    """The candidate configurations to try: a grid per family, or random samples, capped at max_trials."""
    search = config.training.search
    rng = random.Random(config.split.seed)
    trials: list[dict[str, Any]] = []
    per_family = max(1, search.max_trials // len(config.training.candidates))
    for cand in config.training.candidates:
        trials.extend(_expand_candidate(cand, search.strategy, per_family, rng))
    trials = trials[: search.max_trials]
    for i, t in enumerate(trials):
        t["trial_id"] = f"t{i:03d}"
    return trials


def _expand_candidate(cand: Candidate, strategy: str, limit: int, rng: random.Random) -> list[dict[str, Any]]:
    names = sorted(cand.params)
    if strategy == "grid" and all(isinstance(cand.params[n], list) for n in names):
        grids = [cand.params[n] for n in names]
        combos = [dict(zip(names, values, strict=True)) for values in itertools.product(*grids)]
        if len(combos) > limit:
            combos = rng.sample(combos, limit)
    else:
        combos = []
        seen: set[str] = set()
        for _ in range(limit * 10):
            combo: dict[str, Any] = {}
            for n in names:
                space = cand.params[n]
                combo[n] = rng.choice(space) if isinstance(space, list) else _sample(space, rng)
            key = json.dumps(combo, sort_keys=True)
            if key not in seen:
                seen.add(key)
                combos.append(combo)
            if len(combos) >= limit:
                break
    return [{"family": cand.family, "params": c} for c in (combos or [{}])]
