"""Model families, the hyperparameter search space and the scikit-learn pipeline built from config.

Imputation, scaling and one-hot encoding live inside the pipeline so they ship in the ONNX graph.
Numeric inputs are float32 (onnxruntime has no float64 Imputer kernel); categorical inputs are
strings with ``""`` for missing (ONNX string tensors cannot hold None), one-hot encoded densely
(HistGradientBoosting rejects sparse input) with unknown categories ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlops.core.config import Family, FeatureType, Task
from mlops.core.constants import ONE_HOT_MAX_CATEGORIES
from mlops.ml.features import feature_steps

if TYPE_CHECKING:
    from mlops.core.config import FeatureStep

# Bounded by default: an unlimited-depth forest on 100k rows exported to a 172 MB ONNX file
# that took 5 s to load; depth 12 gave 7.5 MB and 0.15 s.
DEFAULTS: dict[str, dict[str, Any]] = {
    Family.LOGISTIC_REGRESSION: {"max_iter": 2000},
    Family.LINEAR: {},
    Family.RANDOM_FOREST: {"n_estimators": 100, "max_depth": 12, "min_samples_leaf": 2, "n_jobs": 1},
    Family.EXTRA_TREES: {"n_estimators": 100, "max_depth": 12, "min_samples_leaf": 2, "n_jobs": 1},
    Family.GRADIENT_BOOSTING: {"max_iter": 200, "max_depth": 6, "early_stopping": False},
    # One thread: a trial has its own Lambda (and the tests share two cores); quiet, and deterministic so.
    Family.LIGHTGBM: {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 31, "n_jobs": 1, "verbose": -1},
}


def estimator_class(family: str, task: Task) -> type[BaseEstimator]:
    """The estimator a candidate's ``family`` names for ``task``: a built-in family, or a model component by its
    import path (which must be a classifier for a classification task, a regressor for regression)."""
    classification = task is not Task.REGRESSION
    if family == Family.LIGHTGBM:
        from lightgbm import LGBMClassifier, LGBMRegressor

        return LGBMClassifier if classification else LGBMRegressor
    table: dict[str, tuple[type[BaseEstimator], type[BaseEstimator]]] = {
        Family.LOGISTIC_REGRESSION: (LogisticRegression, Ridge),
        Family.LINEAR: (LogisticRegression, Ridge),
        Family.RANDOM_FOREST: (RandomForestClassifier, RandomForestRegressor),
        Family.EXTRA_TREES: (ExtraTreesClassifier, ExtraTreesRegressor),
        Family.GRADIENT_BOOSTING: (HistGradientBoostingClassifier, HistGradientBoostingRegressor),
    }
    if family in table:
        cls, reg = table[family]
        return cls if classification else reg
    from sklearn.base import is_classifier, is_regressor

    from mlops.components import ComponentError, load

    component = load(family)
    try:
        sample = component()
    except TypeError as err:
        raise ComponentError(f"{family} cannot be built without arguments (scikit-learn's rule): {err}") from None
    if (classification and not is_classifier(sample)) or (not classification and not is_regressor(sample)):
        wanted = "a classifier" if classification else "a regressor"
        raise ComponentError(
            f"{family} is not {wanted} (scikit-learn's is_classifier/is_regressor); the task is {task}"
        )
    return component


def _scaled(cls: type) -> bool:
    """Linear models want scaled inputs; trees must not have them: a float32 scaler in the graph against float64 in
    scikit-learn moves values across split thresholds near ties."""
    from sklearn.linear_model._base import LinearClassifierMixin, LinearModel

    return issubclass(cls, LinearModel | LinearClassifierMixin)


def build_pipeline(
    family: str,
    params: dict[str, Any],
    task: Task,
    kinds: dict[str, FeatureType],
    seed: int,
    steps: Sequence[FeatureStep] = (),
) -> Pipeline:
    """The candidate's whole pipeline on raw columns ``kinds``: its feature components (``steps``), then imputation
    (and scaling for linear models) and one-hot encoding, then the estimator."""
    features = feature_steps(steps, kinds) if steps else None
    columns = features.kinds(kinds) if features else kinds
    cls = estimator_class(family, task)
    numeric = [c for c, k in columns.items() if k is FeatureType.NUMERIC]
    categorical = [c for c, k in columns.items() if k is FeatureType.CATEGORICAL]
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
        if _scaled(cls):
            numeric_steps.append(("scale", StandardScaler()))
        transformers.append(("num", Pipeline(numeric_steps), numeric))
    if categorical:
        encoder = OneHotEncoder(handle_unknown="ignore", max_categories=ONE_HOT_MAX_CATEGORIES, sparse_output=False)
        transformers.append(("cat", encoder, categorical))
    merged = {**DEFAULTS.get(family, {}), **params}
    accepted = cls(**DEFAULTS.get(family, {})).get_params()  # LightGBM takes some of its parameters as **kwargs
    unknown = sorted(set(merged) - set(accepted))
    if unknown:
        raise ValueError(f"{cls.__name__} has no parameter(s) {unknown}; check training.candidates for {family}")
    merged = {k: v for k, v in merged.items() if k in accepted}
    if "random_state" in accepted:
        merged["random_state"] = seed
    stages: list[tuple[str, Any]] = [("features", features)] if features else []
    stages += [("preprocess", ColumnTransformer(transformers)), ("model", cls(**merged))]
    return Pipeline(stages)


def model_frame(df: pd.DataFrame, kinds: dict[str, FeatureType]) -> pd.DataFrame:
    """The columns the model consumes, in the dtypes the ONNX graph expects (float32 / str)."""
    out = {}
    for col, kind in kinds.items():
        s = df[col] if col in df.columns else pd.Series([None] * len(df), index=df.index)
        if kind is FeatureType.NUMERIC:
            out[col] = pd.to_numeric(s, errors="coerce").astype("float32")
        else:
            out[col] = _as_text(s)
    return pd.DataFrame(out, index=df.index)


def _as_text(s: pd.Series) -> pd.Series:
    """A categorical input as the graph takes it: missing → "", anything else its text (``str(v)``). One array of
    references to the column's own strings; a Python call per value only for values that are not text yet."""
    values = s.to_numpy(dtype=object, copy=True)
    values[s.isna().to_numpy()] = ""
    if not set(map(type, values)) <= {str}:
        values = np.array([v if isinstance(v, str) else str(v) for v in values], dtype=object)
    return pd.Series(values, index=s.index, dtype=object)


def predict(pipe: Any, X: pd.DataFrame, task: Task, classes: list[Any] | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions, and for a classifier its probabilities with columns in ``classes`` order (absent classes get
    zeros). A classifier predicts once: its labels are the arg-max of the probabilities it computed (what every
    family's own ``predict`` does), not a second pass over ``X``."""
    if task is Task.REGRESSION:
        return np.asarray(pipe.predict(X)).astype(float), None
    raw = pipe.predict_proba(X)
    known = list(pipe.classes_)
    pred = np.asarray(pipe.classes_)[np.argmax(raw, axis=1)]
    cols = [raw[:, known.index(c)] if c in known else np.zeros(len(X)) for c in classes or known]
    return pred, np.column_stack(cols)
