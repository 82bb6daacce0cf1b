"""Check a component before it reaches a pipeline (public API): what ``mlops component check`` runs, for a project's
own tests too::

    from mlops.testing import assert_component_ok

    def test_ratio_is_servable():
        assert_component_ok("components.features:Ratio", pd.read_csv("data/sample.csv"),
                            params={"num": "amount", "den": "income", "name": "ratio"})

Built on scikit-learn's own estimator checks (parameters set in ``__init__`` only, ``get_params``/``set_params``),
then ours: it fits and transforms a sample; it survives missing values; it pickles; it is deterministic; it
converts to ONNX; the graph computes what it computes on rows it was not fitted on; one row takes little time in
onnxruntime. A model component (an estimator) is checked the same way inside the pipeline, given the target
column. Each failure names its rule and the fix.
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlops.components import ComponentError, FeatureComponent, load

__all__ = ["ComponentReport", "Finding", "assert_component_ok", "check_component"]

HOLDOUT_SHARE = 0.3
LATENCY_BUDGET_MS = 5.0


@dataclass(frozen=True)
class Finding:
    rule: str
    passed: bool
    detail: str
    fix: str = ""


@dataclass
class ComponentReport:
    component: str
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(f.passed for f in self.findings)

    def add(self, rule: str, passed: bool, detail: str, fix: str = "") -> bool:
        self.findings.append(Finding(rule, passed, detail, "" if passed else fix))
        return passed

    def __str__(self) -> str:
        lines = [f"{self.component}: {'ok' if self.ok else 'NOT servable'} ({self.seconds:.1f} s)"]
        for f in self.findings:
            lines.append(
                f"  {'✓' if f.passed else '✗'} {f.rule}: {f.detail}" + (f"\n      fix: {f.fix}" if f.fix else "")
            )
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "findings": [f.__dict__ for f in self.findings],
        }


def assert_component_ok(component: str | type, data: pd.DataFrame, **kwargs: Any) -> ComponentReport:
    """:func:`check_component`, raising ``AssertionError`` with the whole report when a rule fails."""
    report = check_component(component, data, **kwargs)
    if not report.ok:
        raise AssertionError(str(report))
    return report


def check_component(
    component: str | type,
    data: pd.DataFrame,
    *,
    params: dict[str, Any] | None = None,
    target: str | None = None,
    latency_budget_ms: float = LATENCY_BUDGET_MS,
    seed: int = 0,
) -> ComponentReport:
    """Run every rule on ``component`` (an import path or the class) with ``params``, over ``data`` (a sample of the
    raw table; ``target`` names its label column, needed for a model component)."""
    t0 = time.perf_counter()
    path = component if isinstance(component, str) else f"{component.__module__}:{component.__qualname__}"
    report = ComponentReport(path)
    try:
        cls = load(component) if isinstance(component, str) else component
        instance = cls(**(params or {}))
    except (ComponentError, TypeError) as err:
        report.add("builds", False, str(err), "give an import path 'package.module:Class' and its keyword arguments")
        report.seconds = time.perf_counter() - t0
        return report
    _sklearn_conventions(report, instance)
    if isinstance(instance, FeatureComponent):
        _feature_rules(report, instance, data, target, latency_budget_ms, seed)
    else:
        _model_rules(report, path, params or {}, data, target, latency_budget_ms, seed)
    report.seconds = time.perf_counter() - t0
    return report


def _sklearn_conventions(report: ComponentReport, instance: Any) -> None:
    from sklearn.utils.estimator_checks import (
        check_get_params_invariance,
        check_no_attributes_set_in_init,
        check_parameters_default_constructible,
        check_set_params,
    )

    name = type(instance).__name__
    for check in (
        check_no_attributes_set_in_init,
        check_parameters_default_constructible,
        check_get_params_invariance,
        check_set_params,
    ):
        try:
            check(name, instance)
        except Exception as err:  # noqa: BLE001 — scikit-learn's checks raise AssertionError and others
            report.add(
                "scikit-learn conventions",
                False,
                f"{check.__name__}: {err}",
                "set each parameter in __init__ as given, under its own name, with a default; compute nothing there "
                "(learned state goes in attributes ending in '_', set in fit)",
            )
            return
    report.add("scikit-learn conventions", True, "parameters, get_params and set_params as scikit-learn expects")


def _kinds(data: pd.DataFrame, skip: set[str]) -> dict[str, Any]:
    from mlops.data.stats import column_kind

    return {c: column_kind(data[c]) for c in data.columns if c not in skip}


def _split(data: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    held = rng.random(len(data)) < HOLDOUT_SHARE
    return data[~held].reset_index(drop=True), data[held].reset_index(drop=True)


def _with_missing(frame: pd.DataFrame, columns: list[str], kinds: dict[str, Any]) -> pd.DataFrame:
    """Rows with each input missing in turn (NaN for numbers, "" for text: what the graph receives)."""
    from mlops.core.config import FeatureType

    rows = []
    for col in columns:
        row = frame.head(1).copy()
        row[col] = np.nan if kinds[col] is FeatureType.NUMERIC else ""
        rows.append(row)
    return pd.concat(rows, ignore_index=True) if rows else frame.head(0)


def _feature_rules(
    report: ComponentReport,
    step: FeatureComponent,
    data: pd.DataFrame,
    target: str | None,
    budget_ms: float,
    seed: int,
) -> None:
    from sklearn.base import clone

    from mlops.ml.features import FeatureSteps, check_deterministic, probe_graph
    from mlops.ml.models import model_frame

    try:
        inputs, outputs = list(step.input_columns()), dict(step.output_columns())
    except NotImplementedError as err:
        report.add("declares its columns", False, str(err), "define input_columns() and output_columns()")
        return
    missing = [c for c in inputs if c not in data.columns]
    bad_kinds = {c: k for c, k in outputs.items() if k not in ("numeric", "categorical")}
    if not report.add(
        "declares its columns",
        not missing and not bad_kinds and bool(outputs),
        f"reads {inputs}, adds {outputs}"
        + (f"; the data has no {missing}" if missing else "")
        + (f"; kinds must be 'numeric' or 'categorical', not {bad_kinds}" if bad_kinds else ""),
        "read columns the data has; say each output's kind; add at least one column",
    ):
        return
    kinds = _kinds(data, {target} if target else set())
    train, held = _split(data, seed)
    X_train, X_held = model_frame(train, kinds), model_frame(held, kinds)
    y = train[target].to_numpy() if target else None
    steps = FeatureSteps([step])
    try:
        steps.fit(X_train, y)
        added = steps.transform(X_held)
    except Exception as err:  # noqa: BLE001 — the user's code: any error is the finding
        report.add(
            "fits and transforms", False, f"{type(err).__name__}: {err}", "make fit and compute work on the sample"
        )
        return
    numeric = [c for c, k in outputs.items() if k == "numeric"]
    infinite = [c for c in numeric if np.isinf(added[c].to_numpy(dtype=float)).any()]
    report.add(
        "fits and transforms",
        not infinite,
        f"{len(X_train)} rows to fit, {len(X_held)} held out; adds {list(outputs)}"
        + (f"; infinite values in {infinite}" if infinite else ""),
        "return NaN, not ±inf, where a value is undefined (a division by 0): the imputer cannot take infinities",
    )
    probe_rows = pd.concat([X_held, model_frame(_with_missing(held, inputs, kinds), kinds)], ignore_index=True)
    try:
        steps.transform(probe_rows)
        report.add("missing values", True, f"each of {inputs} missing in turn: answered")
    except Exception as err:  # noqa: BLE001
        report.add(
            "missing values",
            False,
            f"an input missing made it fail: {type(err).__name__}: {err}",
            "treat NaN (numbers) and '' (text) as missing and answer NaN or a value",
        )
    try:
        again = pickle.loads(pickle.dumps(steps))
        same = again.transform(X_held).equals(added)
        report.add("pickles", same, "a pickled copy answers the same" if same else "a pickled copy answers otherwise")
    except Exception as err:  # noqa: BLE001
        report.add("pickles", False, f"{type(err).__name__}: {err}", "keep state picklable (no lambdas, no handles)")
    try:
        check_deterministic(steps, X_train, y, X_held)
        report.add("deterministic", True, "two fits on the same rows, and two transforms, answer the same")
    except ComponentError as err:
        report.add("deterministic", False, str(err), "seed any randomness from a parameter; keep compute free of it")
    try:
        probe = probe_graph(steps, kinds)
    except Exception as err:  # noqa: BLE001
        report.add("converts to ONNX", False, str(err), "build each output column from op's operators in onnx()")
        return
    report.add("converts to ONNX", True, f"{len(probe):,} bytes at opset {max(17, step.min_opset)}")
    _probe_parity(report, probe, clone(steps).fit(X_train, y), probe_rows, inputs, budget_ms)


def _probe_parity(
    report: ComponentReport, probe: bytes, steps: Any, rows: pd.DataFrame, inputs: list[str], budget_ms: float
) -> None:
    from mlops.serving.parity import component_parity, probe_model

    added = steps.transform(rows)
    records = [{c: _missing_as_none(v) for c, v in r.items()} for r in rows[inputs].to_dict("records")]
    columns = [c for step in steps.steps for c in step.output_columns()]
    reference = {"records": records, "features": {c: [_missing_as_none(v) for v in added[c]] for c in columns}}
    try:
        found = component_parity(probe, reference, atol=1e-5)
    except Exception as err:  # noqa: BLE001 — the graph does not run
        report.add("ONNX parity", False, f"the graph failed in onnxruntime: {err}", "check onnx() on these rows")
        return
    bad = [c for c in found if c["mismatches"]]
    report.add(
        "ONNX parity",
        not bad,
        f"{len(rows)} rows it was not fitted on (with missing inputs): "
        + (", ".join(f"{c['name']!r} differs on {c['mismatches']} rows" for c in bad) if bad else "every column equal"),
        "make onnx() compute exactly what compute() does (float32 numbers, '' for missing text)",
    )
    model = probe_model(probe)
    _latency(report, lambda: model.session.run(None, model.feeds_from_records(records[:1])), budget_ms)


def _missing_as_none(v: Any) -> Any:
    return None if v is None or (isinstance(v, float) and v != v) or v == "" else v


def _latency(report: ComponentReport, one_row: Any, budget_ms: float) -> None:
    """p50/p99 of ``one_row()`` (a one-row answer in onnxruntime) over 200 calls after 10 warm ones."""
    samples = []
    for i in range(210):
        t = time.perf_counter()
        one_row()
        if i >= 10:
            samples.append((time.perf_counter() - t) * 1000)
    p50, p99 = float(np.percentile(samples, 50)), float(np.percentile(samples, 99))
    report.add(
        "single-row latency",
        p50 <= budget_ms,
        f"p50 {p50:.3f} ms, p99 {p99:.3f} ms in onnxruntime (budget {budget_ms:g} ms)",
        "compute less per row",
    )


def _model_rules(
    report: ComponentReport,
    path: str,
    params: dict[str, Any],
    data: pd.DataFrame,
    target: str | None,
    budget_ms: float,
    seed: int,
) -> None:
    from mlops.data.stats import infer_task
    from mlops.ml.export import to_onnx
    from mlops.ml.models import build_pipeline, model_frame, predict
    from mlops.serving.onnx_model import OnnxModel
    from mlops.serving.signature import Signature

    if not target or target not in data.columns:
        report.add("fits", False, f"a model component needs the target column (got {target!r})", "give --target")
        return
    data = data[data[target].notna()].reset_index(drop=True)
    task = infer_task(data[target])
    kinds = _kinds(data, {target})
    train, held = _split(data, seed)
    X_train, X_held = model_frame(train, kinds), model_frame(held, kinds)
    classes = sorted(data[target].unique().tolist()) if task.value != "regression" else None
    try:
        pipe = build_pipeline(path, params, task, kinds, seed).fit(X_train, train[target].to_numpy())
        pred, proba = predict(pipe, X_held, task, classes)
    except Exception as err:  # noqa: BLE001
        report.add("fits", False, f"{type(err).__name__}: {err}", "make it fit and predict on the sample")
        return
    report.add("fits", True, f"a {task.value} model on {len(X_train)} rows, {len(X_held)} held out")
    try:
        again = pickle.loads(pickle.dumps(pipe))
        same = np.array_equal(predict(again, X_held, task, classes)[0], pred)
        report.add("pickles", same, "a pickled copy answers the same" if same else "a pickled copy answers otherwise")
    except Exception as err:  # noqa: BLE001
        report.add("pickles", False, f"{type(err).__name__}: {err}", "keep state picklable")
    twin = build_pipeline(path, params, task, kinds, seed).fit(X_train, train[target].to_numpy())
    same = np.array_equal(predict(twin, X_held, task, classes)[0], pred)
    report.add(
        "deterministic",
        same,
        "two fits with the same seed answer the same" if same else "two fits with the same seed answer otherwise",
        "take random_state as a parameter and use it",
    )
    inputs = [{"name": c, "type": k.value} for c, k in kinds.items()]
    try:
        model = OnnxModel(to_onnx(pipe, kinds, Signature(task.value, target, inputs, classes)))
    except Exception as err:  # noqa: BLE001
        report.add(
            "converts to ONNX", False, str(err), "derive from a scikit-learn estimator or register_model_converter"
        )
        return
    report.add("converts to ONNX", True, f"{model.size:,} bytes")
    records = [{c: _missing_as_none(v) for c, v in r.items()} for r in X_held.to_dict("records")]
    labels, got = model.run(model.feeds_from_records(records))
    if proba is not None:
        gap = np.abs(got - proba).max(axis=1)
    else:
        gap = np.abs(labels - pred.astype(float)) / np.maximum(1.0, np.abs(pred.astype(float)))
    bad = int((gap > 1e-4).sum())
    report.add(
        "ONNX parity",
        bad <= 0.01 * len(records),
        f"{bad} of {len(records)} held-out rows differ by more than 1e-4 (largest {gap.max() if len(gap) else 0:.2e})",
        "its converter must compute what predict/predict_proba do",
    )
    feeds = model.feeds_from_records(records[:1])
    _latency(report, lambda: model.run(feeds), budget_ms)
