"""Schema inference and data validation (TFX's SchemaGen + ExampleValidator, in small).

An anomaly is a plain dict so it travels through JSON, DynamoDB and Step Functions unchanged::

    {"code": "UNSEEN_CATEGORY", "severity": "error", "column": "color",
     "description": "12.0% of rows have values outside the schema's domain", "value": 0.12}
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlops.config import FeatureType, ProjectConfig, Task
from mlops.stats import column_kind, feature_drift, feature_kinds, infer_task, text_counts, text_values

MAX_DOMAIN = 200
# Each class must be able to land in the train, validation and test splits.
MIN_ROWS_PER_CLASS = 3
# A text column at least this numeric is a numeric column with bad values, not a categorical one.
MOSTLY_NUMERIC = 0.8

Anomaly = dict[str, Any]


def anomaly(code: str, severity: str, column: str, description: str, value: float | None = None) -> Anomaly:
    out: Anomaly = {"code": code, "severity": severity, "column": column, "description": description}
    if value is not None:
        out["value"] = round(float(value), 6)
    return out


def usability(df: pd.DataFrame, config: ProjectConfig, *, labelled: bool = True) -> list[Anomaly]:
    """What makes a batch unusable for training whatever the schema says — checked on every batch, the
    first one included: the target (present, two classes or more with enough rows each, numeric for
    regression) and the features (none entirely missing, no numbers mixed with text). ``labelled`` False
    (served traffic, which has no target): the features only."""
    out: list[Anomaly] = []
    target = config.target
    if not labelled:
        pass
    elif target not in df.columns:
        shown = ", ".join(map(str, list(df.columns)[:8])) + (", …" if len(df.columns) > 8 else "")
        out.append(anomaly("MISSING_COLUMN", "error", target, f"the target column is missing (the data has: {shown})"))
    else:
        y = df[target].dropna()
        distinct = y.nunique()
        if distinct < 2:
            value = repr(y.iloc[0]) if len(y) else "none"
            out.append(
                anomaly(
                    "SINGLE_CLASS",
                    "error",
                    target,
                    f"the target has {distinct} distinct value(s) ({value}) in {len(y)} labelled rows; a model "
                    "needs at least two",
                    distinct,
                )
            )
        elif (config.task or infer_task(y)) is Task.REGRESSION:
            if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
                out.append(
                    anomaly("WRONG_DTYPE", "error", target, f"a regression target must be numeric (dtype {y.dtype})")
                )
        else:
            counts = text_counts(y)
            for label, n in counts[counts < MIN_ROWS_PER_CLASS].items():
                out.append(
                    anomaly(
                        "CLASS_TOO_RARE",
                        "error",
                        target,
                        f"class {label!r} has {n} row(s); each class needs at least {MIN_ROWS_PER_CLASS} to appear in "
                        "the train, validation and test splits",
                        n,
                    )
                )
    kinds = feature_kinds(df, config)
    if not kinds:
        out.append(anomaly("NO_FEATURES", "error", "", "no feature columns besides the target, id and time columns"))
    for col, kind in kinds.items():
        s = df[col]
        if s.isna().all():
            out.append(
                anomaly(
                    "ALL_MISSING",
                    "error",
                    col,
                    "every value is missing; fix the export, or drop the column with "
                    f"features.overrides.{col}.drop: true",
                    1.0,
                )
            )
        elif kind is FeatureType.CATEGORICAL and col not in config.features.overrides:
            present = s.dropna().astype(str)
            numeric = pd.to_numeric(present, errors="coerce").notna()
            if len(present) and MOSTLY_NUMERIC <= numeric.mean() < 1:
                examples = sorted(present[~numeric].unique().tolist())[:3]
                out.append(
                    anomaly(
                        "WRONG_DTYPE",
                        "error",
                        col,
                        f"{numeric.mean():.0%} of values are numbers but {int((~numeric).sum())} are text (e.g. "
                        f"{examples}); clean them, or declare features.overrides.{col}.type: categorical",
                        float((~numeric).mean()),
                    )
                )
    return out


def infer_schema(df: pd.DataFrame, config: ProjectConfig) -> dict[str, Any]:
    features: dict[str, Any] = {}
    for col, kind in feature_kinds(df, config).items():
        s = df[col]
        spec: dict[str, Any] = {"type": kind.value, "missing_rate": float(s.isna().mean())}
        if kind is FeatureType.NUMERIC:
            vals = pd.to_numeric(s, errors="coerce").dropna()
            spec.update(min=float(vals.min()) if len(vals) else None, max=float(vals.max()) if len(vals) else None)
        else:
            domain = sorted(text_values(s))
            spec["domain"] = domain if len(domain) <= MAX_DOMAIN else None
        features[col] = spec
    target = df[config.target]
    target_kind = column_kind(target)
    target_spec: dict[str, Any] = {"name": config.target, "type": target_kind.value}
    if target_kind is FeatureType.CATEGORICAL or target.nunique() <= 20:
        target_spec["domain"] = sorted(map(str, target.dropna().unique().tolist()))
    return {"features": features, "target": target_spec, "columns": list(df.columns)}


def _numeric_check(col: str, s: pd.Series, spec: dict[str, Any], config: ProjectConfig) -> list[Anomaly]:
    out: list[Anomaly] = []
    coerced = pd.to_numeric(s, errors="coerce")
    present = s.notna()
    bad = present & coerced.isna()
    if pd.api.types.is_bool_dtype(s) or (bad.any() and not pd.api.types.is_numeric_dtype(s)):
        sample = s[bad].astype(str).head(3).tolist()
        out.append(
            anomaly(
                "WRONG_DTYPE",
                "error",
                col,
                f"expected numeric values, found {int(bad.sum())} non-numeric (dtype {s.dtype}; e.g. {sample})",
                bad.mean(),
            )
        )
        return out
    vals = coerced.dropna()
    inf = ~np.isfinite(vals.to_numpy(dtype=float))
    if inf.any():
        out.append(anomaly("NON_FINITE", "error", col, f"{int(inf.sum())} infinite values", inf.mean()))
    lo, hi = spec.get("min"), spec.get("max")
    if lo is not None and hi is not None and len(vals):
        outside = ((vals < lo) | (vals > hi)).mean()
        if outside > 0:
            limit = config.validation.max_out_of_range_fraction
            out.append(
                anomaly(
                    "OUT_OF_RANGE",
                    "error" if outside > limit else "warning",
                    col,
                    f"{outside:.1%} of values outside the schema range [{lo:g}, {hi:g}] "
                    f"(observed [{vals.min():g}, {vals.max():g}]; limit {limit:.1%})",
                    outside,
                )
            )
    return out


def _categorical_check(col: str, s: pd.Series, spec: dict[str, Any], config: ProjectConfig) -> list[Anomaly]:
    domain = spec.get("domain")
    if not domain:
        return []
    present = s.dropna().astype(str)
    if present.empty:
        return []
    unseen_mask = ~present.isin(set(domain))
    frac = float(unseen_mask.mean())
    if frac == 0:
        return []
    limit = config.validation.max_unseen_category_fraction
    examples = sorted(present[unseen_mask].unique().tolist())[:5]
    return [
        anomaly(
            "UNSEEN_CATEGORY",
            "error" if frac > limit else "warning",
            col,
            f"{frac:.1%} of values not in the schema's domain, e.g. {examples} (limit {limit:.1%})",
            frac,
        )
    ]


def validate(
    df: pd.DataFrame,
    schema: dict[str, Any] | None,
    config: ProjectConfig,
    baseline_stats: dict[str, Any] | None = None,
    *,
    labelled: bool = True,
) -> dict[str, Any]:
    """Check ``df`` for usability, against ``schema`` (none yet: a first batch that is not usable) and for
    drift against ``baseline_stats``; return anomalies + verdict. ``labelled`` False: served traffic (no
    target, and the monitor applies its own minimum sample count)."""
    anomalies: list[Anomaly] = usability(df, config, labelled=labelled)
    schema = schema or {"features": {}, "target": {}}
    features: dict[str, Any] = schema["features"]
    if labelled and len(df) < config.validation.min_rows:
        anomalies.append(
            anomaly(
                "LOW_ROW_COUNT",
                "error",
                "",
                f"{len(df)} rows, fewer than validation.min_rows={config.validation.min_rows}",
                len(df),
            )
        )
    anomalies += _label_checks(df, schema, config)
    anomalies += _column_checks(df, features, config)
    for col, spec in features.items():
        if col in df.columns:
            anomalies += _feature_checks(col, df[col], spec, config)
    drift: dict[str, Any] = {}
    if baseline_stats:
        broken = {a["column"] for a in anomalies if a["code"] in {"WRONG_DTYPE", "MISSING_COLUMN", "ALL_MISSING"}}
        drift, drifted = _drift_checks(df, features, baseline_stats, config, broken)
        anomalies += drifted

    errors = [a for a in anomalies if a["severity"] == "error"]
    return {
        "passed": not errors,
        "num_errors": len(errors),
        "num_warnings": len(anomalies) - len(errors),
        "anomalies": anomalies,
        "drift": drift,
    }


def _label_checks(df: pd.DataFrame, schema: dict[str, Any], config: ProjectConfig) -> list[Anomaly]:
    """Missing labels, and (classification) labels the schema has not seen."""
    if config.target not in df.columns:
        return []
    out: list[Anomaly] = []
    tgt_missing = float(df[config.target].isna().mean())
    if tgt_missing > config.validation.max_missing_rate_increase:
        out.append(
            anomaly("MISSING_RATE_SPIKE", "error", config.target, f"{tgt_missing:.1%} of labels missing", tgt_missing)
        )
    domain = schema.get("target", {}).get("domain")
    if domain and schema["target"]["type"] == FeatureType.CATEGORICAL.value:
        new = sorted(text_values(df[config.target]) - set(domain))
        if new:
            out.append(anomaly("UNSEEN_LABEL", "warning", config.target, f"labels not seen before: {new[:5]}"))
    return out


def _column_checks(df: pd.DataFrame, features: dict[str, Any], config: ProjectConfig) -> list[Anomaly]:
    """Schema columns missing from the data, and data columns the schema does not know."""
    known = set(features) | {config.target, config.id_column, config.time_column}
    known |= {c for c, o in config.features.overrides.items() if o.drop}
    out = [
        anomaly("MISSING_COLUMN", "error", col, "column in the schema is missing from the data")
        for col in features
        if col not in df.columns
    ]
    out += [
        anomaly("EXTRA_COLUMN", "warning", str(col), "column not in the schema; it will be ignored")
        for col in df.columns
        if col not in known
    ]
    return out


def _feature_checks(col: str, s: pd.Series, spec: dict[str, Any], config: ProjectConfig) -> list[Anomaly]:
    """One feature against its schema entry: type, range or domain, and its missing rate."""
    if spec["type"] == FeatureType.NUMERIC.value:
        out = list(_numeric_check(col, s, spec, config))
    else:
        out = list(_categorical_check(col, s, spec, config))
    rate = float(s.isna().mean())
    allowed = float(spec.get("missing_rate", 0.0)) + config.validation.max_missing_rate_increase
    if rate > allowed:
        out.append(
            anomaly(
                "MISSING_RATE_SPIKE",
                "error",
                col,
                f"{rate:.1%} missing, above the allowed {allowed:.1%} (schema rate + "
                f"validation.max_missing_rate_increase)",
                rate,
            )
        )
    return out


def _drift_checks(
    df: pd.DataFrame,
    features: dict[str, Any],
    baseline_stats: dict[str, Any],
    config: ProjectConfig,
    broken: set[str],
) -> tuple[dict[str, Any], list[Anomaly]]:
    """Each usable feature's drift from the champion's training statistics; anomalies for those that drifted."""
    drift: dict[str, Any] = {}
    out: list[Anomaly] = []
    for col, base in baseline_stats.get("features", {}).items():
        if col not in df.columns or col not in features or col in broken:
            continue
        result = feature_drift(base, df[col])
        if result is None:
            continue
        measure, value, picture = result
        threshold = config.drift_threshold(col)
        drifted = value > threshold
        drift[col] = {
            "measure": measure,
            "value": round(value, 6),
            "threshold": threshold,
            "drifted": drifted,
            "picture": picture,
        }
        if drifted:
            out.append(
                anomaly(
                    "DRIFT",
                    config.validation.drift.severity,
                    col,
                    f"{measure.upper()} {value:.3f} above threshold {threshold:g} against the champion's training data",
                    value,
                )
            )
    return drift, out
