"""Schema inference and data validation (TFX's SchemaGen + ExampleValidator, in small).

An anomaly is a plain dict so it travels through JSON, DynamoDB and Step Functions unchanged::

    {"code": "UNSEEN_CATEGORY", "severity": "error", "column": "color",
     "description": "12.0% of rows have values outside the schema's domain", "value": 0.12}
"""

from __future__ import annotations

from typing import Any, TypeAlias

import pandas as pd

from mlops.core.config import FeatureType, ProjectConfig, Task
from mlops.data.stats import column_drift, feature_kinds
from mlops.data.table import Table, as_table

Data: TypeAlias = Table | pd.DataFrame  # a frame is read through a FrameTable

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


def usability(data: Data, config: ProjectConfig, *, labelled: bool = True) -> list[Anomaly]:
    """What makes a batch unusable for training whatever the schema says — checked on every batch, the
    first one included: the target (present, two classes or more with enough rows each, numeric for
    regression) and the features (none entirely missing, no numbers mixed with text). ``labelled`` False
    (served traffic, which has no target): the features only."""
    df = as_table(data)
    out: list[Anomaly] = []
    target = config.target
    if not labelled:
        pass
    elif target not in df.columns:
        shown = ", ".join(map(str, list(df.columns)[:8])) + (", …" if len(df.columns) > 8 else "")
        out.append(anomaly("MISSING_COLUMN", "error", target, f"the target column is missing (the data has: {shown})"))
    else:
        distinct = df.distinct(target)
        if distinct < 2:
            labelled_rows = df.rows - df.missing(target)
            value = repr(df.first_present(target)) if labelled_rows else "none"
            out.append(
                anomaly(
                    "SINGLE_CLASS",
                    "error",
                    target,
                    f"the target has {distinct} distinct value(s) ({value}) in {labelled_rows} labelled rows; a "
                    "model needs at least two",
                    distinct,
                )
            )
        elif (config.task or df.task(target)) is Task.REGRESSION:
            if not df.is_number(target):
                out.append(
                    anomaly(
                        "WRONG_DTYPE",
                        "error",
                        target,
                        f"a regression target must be numeric (dtype {df.dtype(target)})",
                    )
                )
        else:
            counts = df.text_counts(target)
            for label, n in ((k, v) for k, v in counts.items() if v < MIN_ROWS_PER_CLASS):
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
        if df.missing(col) == df.rows:
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
            facts = df.text_numbers(col)
            share = facts.numeric / facts.present if facts.present else 0.0
            if facts.present and MOSTLY_NUMERIC <= share < 1:
                text = facts.present - facts.numeric
                out.append(
                    anomaly(
                        "WRONG_DTYPE",
                        "error",
                        col,
                        f"{share:.0%} of values are numbers but {text} are text (e.g. "
                        f"{facts.examples}); clean them, or declare features.overrides.{col}.type: categorical",
                        text / facts.present,
                    )
                )
    return out


def infer_schema(data: Data, config: ProjectConfig) -> dict[str, Any]:
    df = as_table(data)
    features: dict[str, Any] = {}
    for col, kind in feature_kinds(df, config).items():
        spec: dict[str, Any] = {"type": kind.value, "missing_rate": df.missing(col) / df.rows if df.rows else 0.0}
        if kind is FeatureType.NUMERIC:
            facts = df.numeric_facts(col, None, None)
            spec.update(min=facts.low, max=facts.high)
        else:
            domain = df.texts(col, MAX_DOMAIN) if config.compared(col) else []
            spec["domain"] = domain or None
        features[col] = spec
    target = config.target
    target_kind = df.kind(target)
    target_spec: dict[str, Any] = {"name": target, "type": target_kind.value}
    if target_kind is FeatureType.CATEGORICAL or df.distinct(target) <= 20:
        target_spec["domain"] = df.texts(target)
    return {"features": features, "target": target_spec, "columns": df.columns}


def _numeric_check(col: str, df: Table, spec: dict[str, Any], config: ProjectConfig) -> list[Anomaly]:
    out: list[Anomaly] = []
    lo, hi = spec.get("min"), spec.get("max")
    facts = df.numeric_facts(col, lo, hi)
    if df.is_bool(col) or (facts.bad and not df.is_number(col)):
        out.append(
            anomaly(
                "WRONG_DTYPE",
                "error",
                col,
                f"expected numeric values, found {facts.bad} non-numeric (dtype {df.dtype(col)}; e.g. "
                f"{facts.bad_examples})",
                facts.bad / df.rows if df.rows else 0.0,
            )
        )
        return out
    if facts.infinite:
        out.append(
            anomaly("NON_FINITE", "error", col, f"{facts.infinite} infinite values", facts.infinite / facts.values)
        )
    if lo is not None and hi is not None and facts.values:
        outside = facts.outside / facts.values
        if outside > 0:
            limit = config.validation.max_out_of_range_fraction
            out.append(
                anomaly(
                    "OUT_OF_RANGE",
                    "error" if outside > limit else "warning",
                    col,
                    f"{outside:.1%} of values outside the schema range [{lo:g}, {hi:g}] "
                    f"(observed [{facts.low:g}, {facts.high:g}]; limit {limit:.1%})",
                    outside,
                )
            )
    return out


def _categorical_check(col: str, df: Table, spec: dict[str, Any], config: ProjectConfig) -> list[Anomaly]:
    domain = spec.get("domain")
    if not domain:
        return []
    present, unseen, examples = df.unseen(col, domain)
    if not present or not unseen:
        return []
    frac = unseen / present
    limit = config.validation.max_unseen_category_fraction
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
    data: Data,
    schema: dict[str, Any] | None,
    config: ProjectConfig,
    baseline_stats: dict[str, Any] | None = None,
    *,
    labelled: bool = True,
) -> dict[str, Any]:
    """Check ``df`` for usability, against ``schema`` (none yet: a first batch that is not usable) and for
    drift against ``baseline_stats``; return anomalies + verdict. ``labelled`` False: served traffic (no
    target, and the monitor applies its own minimum sample count)."""
    df = as_table(data)
    anomalies: list[Anomaly] = usability(df, config, labelled=labelled)
    schema = schema or {"features": {}, "target": {}}
    features: dict[str, Any] = schema["features"]
    if labelled and df.rows < config.validation.min_rows:
        anomalies.append(
            anomaly(
                "LOW_ROW_COUNT",
                "error",
                "",
                f"{df.rows} rows, fewer than validation.min_rows={config.validation.min_rows}",
                df.rows,
            )
        )
    anomalies += _label_checks(df, schema, config)
    if labelled and baseline_stats:
        anomalies += label_set_check(df, config, baseline_stats)
    anomalies += _column_checks(df, features, config)
    for col, spec in features.items():
        if col in df.columns:
            anomalies += _feature_checks(col, df, spec, config)
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


def _label_checks(df: Table, schema: dict[str, Any], config: ProjectConfig) -> list[Anomaly]:
    """Missing labels, and (classification) labels the schema has not seen."""
    if config.target not in df.columns:
        return []
    out: list[Anomaly] = []
    tgt_missing = df.missing(config.target) / df.rows if df.rows else 0.0
    if tgt_missing > config.validation.max_missing_rate_increase:
        out.append(
            anomaly("MISSING_RATE_SPIKE", "error", config.target, f"{tgt_missing:.1%} of labels missing", tgt_missing)
        )
    domain = schema.get("target", {}).get("domain")
    if domain and schema["target"]["type"] == FeatureType.CATEGORICAL.value:
        new = sorted(set(df.texts(config.target) or []) - set(domain))
        if new:
            out.append(anomaly("UNSEEN_LABEL", "warning", config.target, f"labels not seen before: {new[:5]}"))
    return out


def _column_checks(df: Table, features: dict[str, Any], config: ProjectConfig) -> list[Anomaly]:
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


def _feature_checks(col: str, df: Table, spec: dict[str, Any], config: ProjectConfig) -> list[Anomaly]:
    """One feature against its schema entry: type, range or domain, and its missing rate."""
    if spec["type"] == FeatureType.NUMERIC.value:
        out = list(_numeric_check(col, df, spec, config))
    else:
        out = list(_categorical_check(col, df, spec, config))
    rate = df.missing(col) / df.rows if df.rows else 0.0
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
    df: Table,
    features: dict[str, Any],
    baseline_stats: dict[str, Any],
    config: ProjectConfig,
    broken: set[str],
) -> tuple[dict[str, Any], list[Anomaly]]:
    """Each usable feature's drift from the champion's training statistics; anomalies for those that drifted."""
    drift: dict[str, Any] = {}
    out: list[Anomaly] = []
    for col, base in baseline_stats.get("features", {}).items():
        if col not in df.columns or col not in features or col in broken or not config.compared(col):
            continue
        result = column_drift(base, df, col)
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


# -- labels the champion knows -------------------------------------------------------------------------------
def champion_labels(baseline_stats: dict[str, Any] | None) -> set[str] | None:
    """The labels the champion was trained on (its training statistics' target frequencies), or None: no
    champion, a regression target, or too many labels to have been recorded."""
    target = (baseline_stats or {}).get("target") or {}
    freqs = target.get("frequencies")
    return set(freqs) if target.get("type") == FeatureType.CATEGORICAL.value and freqs else None


def label_set_check(data: Data, config: ProjectConfig, baseline_stats: dict[str, Any]) -> list[Anomaly]:
    """LABEL_SET_CHANGED: the batch's labels differ from the champion's (labels appear or vanish). A candidate
    trained on other labels answers other values, and scoring the champion on labels it never knew compares
    nothing (a renamed label gives the champion an AUC of 0.5 and the candidate a win it did not earn). An
    error unless ``validation.label_changes`` is 'approve' or 'accept'."""
    df = as_table(data)
    known = champion_labels(baseline_stats)
    if known is None or config.target not in df.columns:
        return []
    if (config.task or df.task(config.target)) is Task.REGRESSION:
        return []
    seen = set(df.texts(config.target) or [])
    appeared, vanished = sorted(seen - known), sorted(known - seen)
    if not appeared and not vanished:
        return []
    policy = config.validation.label_changes
    parts = ([f"new {appeared[:8]}"] if appeared else []) + ([f"gone {vanished[:8]}"] if vanished else [])
    if policy == "reject":
        fix = (
            "if the change is intended, set validation.label_changes: approve (a person approves the new model) or "
            "accept; otherwise fix the labels"
        )
        return [
            anomaly(
                "LABEL_SET_CHANGED",
                "error",
                config.target,
                f"the labels differ from the champion's: {'; '.join(parts)}. {fix}",
                len(appeared) + len(vanished),
            )
        ]
    then = "a blessed candidate waits for approval" if policy == "approve" else "the candidate is not compared with it"
    return [
        anomaly(
            "LABEL_SET_CHANGED",
            "warning",
            config.target,
            f"the labels differ from the champion's: {'; '.join(parts)} (validation.label_changes: {policy}: {then})",
            len(appeared) + len(vanished),
        )
    ]


# -- one object at a time ------------------------------------------------------------------------------------
# What makes one object unusable whatever the others hold, checked on each object before the batch is put
# together (:func:`mlops.data.frames.read_table` has already refused what cannot be read). Rates (missing values,
# out of range, unseen values) are not judged per object: over a small file they are noise — a 20-row daily file
# with 3 missing values is at 15 % — so they are judged on the batch, and :func:`carriers` names the objects
# that carry a failing one.
OBJECT_CODES = frozenset({"MISSING_COLUMN", "WRONG_DTYPE", "NON_FINITE", "NO_FEATURES"})


def object_problems(data: Data, schema: dict[str, Any] | None, config: ProjectConfig) -> list[Anomaly]:
    """The structural problems of one object: the target or a schema column missing, numbers mixed with text
    (against the stored ``schema`` when there is one, else by the object's own columns), infinite values."""
    df = as_table(data)
    out = [a for a in usability(df, config) if a["code"] in OBJECT_CODES]
    if schema:
        features: dict[str, Any] = schema.get("features", {})
        out = [a for a in out if a["column"] == config.target or a["code"] == "NO_FEATURES"]
        out += [a for a in _column_checks(df, features, config) if a["code"] == "MISSING_COLUMN"]
        numeric = [c for c, spec in features.items() if spec["type"] == FeatureType.NUMERIC.value and c in df.columns]
    else:
        numeric = [c for c, kind in feature_kinds(df, config).items() if kind is FeatureType.NUMERIC]
    for col in numeric:
        out += [a for a in _numeric_check(col, df, {}, config) if a["code"] in OBJECT_CODES]
    return out


def consensus_problems(tables: dict[str, Data], config: ProjectConfig) -> dict[str, list[Anomaly]]:
    """Without a stored schema, what sets one object apart from most of the others (three objects or more): a
    column it lacks, or holds as text where the others hold numbers. By object key. (With a schema,
    :func:`object_problems` checks each object against it.)"""
    if len(tables) < 3:
        return {}
    frames = {key: as_table(t) for key, t in tables.items()}
    kinds = {key: feature_kinds(df, config) for key, df in frames.items()}
    having: dict[str, int] = {}
    numeric: dict[str, int] = {}
    for found in kinds.values():
        for col, kind in found.items():
            having[col] = having.get(col, 0) + 1
            numeric[col] = numeric.get(col, 0) + (kind is FeatureType.NUMERIC)
    expected = {c for c, n in having.items() if n > len(frames) / 2}
    out: dict[str, list[Anomaly]] = {}
    for key, found in kinds.items():
        for col in sorted(expected - set(found)):
            out.setdefault(key, []).append(
                anomaly(
                    "MISSING_COLUMN",
                    "error",
                    col,
                    f"the column is missing from this object but present in {having[col]} of {len(frames)} objects",
                )
            )
        for col, kind in found.items():
            if kind is FeatureType.CATEGORICAL and numeric.get(col, 0) > having[col] / 2:
                facts = frames[key].text_numbers(col)
                text = facts.present - facts.numeric
                out.setdefault(key, []).append(
                    anomaly(
                        "WRONG_DTYPE",
                        "error",
                        col,
                        f"{text} value(s) are text (e.g. {facts.examples}) where "
                        f"{numeric[col]} of {having[col]} objects hold numbers",
                        text / max(1, facts.present),
                    )
                )
    return out


# Anomalies of the whole batch that are not any one object's doing: they are named on no object.
BATCH_CODES = frozenset({"LOW_ROW_COUNT", "SINGLE_CLASS", "CLASS_TOO_RARE", "NO_FEATURES"})


def carriers(
    anomalies: list[Anomaly],
    data: Data,
    parts: list[tuple[str, int]],
    schema: dict[str, Any] | None,
    config: ProjectConfig,
    baseline_stats: dict[str, Any] | None = None,
) -> None:
    """Name, on each anomaly of the batch ``df`` (``objects``), the objects that carry it: each object's rows
    (``parts``: key and row count, in the order the snapshot holds them) checked alone, an object carrying an
    anomaly when its own check reports the same code on the same column. So a user told "MISSING_RATE_SPIKE
    on price" knows which file to replace."""
    named = [a for a in anomalies if a["code"] not in BATCH_CODES and a["code"] != "OBJECT_SET_ASIDE"]
    if not named or not parts:
        return
    if len(parts) == 1:
        for a in named:
            a["objects"] = [parts[0][0]]
        return
    df = as_table(data)
    drift = baseline_stats if any(a["code"] == "DRIFT" for a in named) else None
    known = champion_labels(baseline_stats) or set()
    found: dict[tuple[str, str], list[str]] = {}
    start = 0
    for key, rows in parts:
        piece = df.slice(start, start + rows)
        start += rows
        if not rows:
            continue
        pairs = {
            (a["code"], a["column"])
            for a in validate(piece, schema, config, drift)["anomalies"]
            if a["code"] not in ("EXTRA_COLUMN", "LABEL_SET_CHANGED")  # every piece has every column of the batch
        }
        for a in named:
            col = a["column"]
            if a["code"] == "EXTRA_COLUMN" and col in piece.columns and piece.missing(col) < piece.rows:
                pairs.add(("EXTRA_COLUMN", col))
            elif a["code"] == "LABEL_SET_CHANGED" and set(piece.texts(col) or []) - known:  # a piece with new labels
                pairs.add(("LABEL_SET_CHANGED", col))
        for pair in pairs:
            found.setdefault(pair, []).append(key)
    for a in named:
        a["objects"] = found.get((a["code"], a["column"]), [])
