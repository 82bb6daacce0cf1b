"""B5: bless or reject the candidate — absolute gates, parity, no regression against the champion
re-scored on the same test split, and an infra check in the serving runtime."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlops.adapters.artifacts import get_json, put_json
from mlops.config import FeatureType, Task
from mlops.constants import CHAMPION
from mlops.context import StepContext
from mlops.dataset import load_dataset
from mlops.frames import from_parquet_bytes
from mlops.ml.metrics import regression_of, task_metrics
from mlops.ml.models import model_frame
from mlops.runs import pipeline_step
from mlops.serving.onnx_model import OnnxModel, single_row_latency_ms


def _f(v: float | None) -> str:
    return "undefined" if v is None else f"{v:.4f}"


def _check(name: str, passed: bool, detail: str, **values: Any) -> dict[str, Any]:
    return {"name": name, "passed": bool(passed), "detail": detail, **values}


def infra_check(ctx: StepContext, onnx_bytes: bytes, sample: dict[str, Any]) -> list[dict[str, Any]]:
    """Load in the serving runtime, replay the saved test sample through the records path, time one row."""
    cfg = ctx.config.evaluation.infra
    try:
        model = OnnxModel(onnx_bytes)
    except Exception as err:
        return [_check("infra_load", False, f"the serving runtime could not load the model: {err}")]
    frame = from_parquet_bytes(ctx.stores.artifacts.get_bytes(sample["uri"]))
    names = [s["name"] for s in model.signature.inputs]
    records = [
        {n: (None if (v is None or v == "" or (isinstance(v, float) and np.isnan(v))) else v) for n, v in row.items()}
        for row in frame[names].to_dict(orient="records")
    ]
    rows = model.predict_records(records)
    checks = [_check("infra_load", True, f"loaded ({model.size:,} bytes)")]
    if model.is_classifier:
        got = np.array([[r["probabilities"][str(c)] for c in (model.signature.classes or [])] for r in rows])
        want = frame[[c for c in frame.columns if c.startswith("__proba_")]].to_numpy()
        gap = float(np.max(np.abs(got - want))) if len(rows) else 0.0
    else:
        got = np.array([r["prediction"] for r in rows], dtype=float)
        want = frame["__prediction"].to_numpy(dtype=float)
        gap = float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want)))) if len(rows) else 0.0
    checks.append(
        _check(
            "infra_predictions",
            gap <= cfg.atol,
            f"max gap {gap:.2e} vs evaluation on {len(rows)} rows (tolerance {cfg.atol:g})",
            gap=gap,
        )
    )
    latency = single_row_latency_ms(model, records[0]) if records else {"p50_ms": 0.0, "p99_ms": 0.0}
    checks.append(
        _check(
            "infra_latency",
            latency["p50_ms"] <= cfg.latency_budget_ms,
            f"single-row p50 {latency['p50_ms']:.3f} ms (budget {cfg.latency_budget_ms:g} ms)",
            **latency,
        )
    )
    return checks


def champion_score(ctx: StepContext, dataset: dict[str, Any], metric: str) -> tuple[int | None, float | None, str]:
    stores = ctx.stores
    version = stores.meta.get_alias(ctx.model, CHAMPION)
    if version is None:
        return None, None, "no champion yet"
    record = stores.meta.get_model_version(ctx.model, version) or {}
    onnx_ref = record.get("artifacts", {}).get("onnx")
    if not onnx_ref:
        return version, None, f"champion v{version} has no ONNX artifact"
    ds = load_dataset(stores.artifacts, dataset)
    champ = OnnxModel(stores.artifacts.get_bytes(onnx_ref["uri"]))
    raw, _, y = ds.load(stores.artifacts, "test")
    kinds = {s["name"]: FeatureType(s["type"]) for s in champ.signature.inputs}
    X = model_frame(raw, kinds)
    pred, proba = champ.run({c: X[c].to_numpy().reshape(-1, 1) for c in kinds})
    classes = champ.signature.classes
    if ds.task is not Task.REGRESSION and classes != ds.classes:
        return version, None, f"champion v{version} predicts classes {classes}, the data has {ds.classes}"
    value = task_metrics(ds.task, y, pred, proba, classes).get(metric)
    return version, value, f"champion v{version} re-scored on this test split"


@pipeline_step("validate_model")
def validate_model(
    ctx: StepContext,
    *,
    dataset: dict[str, Any],
    onnx: dict[str, Any],
    evaluation: dict[str, Any],
    test_sample: dict[str, Any],
    parity: dict[str, Any],
) -> dict[str, Any]:
    ev = get_json(ctx.stores.artifacts, evaluation["uri"])
    metric, metrics = ev["metric"], ev["metrics"]
    value = metrics.get(metric)
    gates = ctx.config.evaluation.gates
    checks: list[dict[str, Any]] = [
        _check(
            "metric_defined",
            value is not None,
            f"{metric} = {value}" if value is not None else f"{metric} is undefined on the test split",
        )
    ]
    for m, floor in gates.min.items():
        v = metrics.get(m)
        ok = v is not None and v >= floor
        checks.append(_check(f"min_{m}", ok, f"{m} {_f(v)} {'meets' if ok else 'is below'} the floor {floor:g}"))
    for m, ceil in gates.max.items():
        v = metrics.get(m)
        ok = v is not None and v <= ceil
        checks.append(_check(f"max_{m}", ok, f"{m} {_f(v)} {'meets' if ok else 'is above'} the ceiling {ceil:g}"))

    pcfg = ctx.config.evaluation.parity
    checks.append(
        _check(
            "parity",
            parity["mismatch_rate"] <= pcfg.max_mismatch_rate,
            f"ONNX vs scikit-learn: {parity['mismatches']}/{parity['rows']} rows differ by more than "
            f"{pcfg.atol:g} (rate {parity['mismatch_rate']:.4f}, allowed {pcfg.max_mismatch_rate:g}; "
            f"largest gap {parity['max_abs_diff']:.2e})",
        )
    )

    champ_version, champ_value, note = champion_score(ctx, dataset, metric)
    if champ_version is not None:
        if champ_value is None or value is None:
            checks.append(_check("no_regression", False, f"cannot compare: {note}"))
        else:
            loss = regression_of(metric, value, champ_value)
            checks.append(
                _check(
                    "no_regression",
                    loss <= gates.max_regression,
                    f"{metric} {value:.4f} vs champion v{champ_version} {champ_value:.4f} "
                    f"(loss {loss:+.4f}, allowed {gates.max_regression:g})",
                    champion_value=champ_value,
                    loss=loss,
                )
            )

    checks.extend(infra_check(ctx, ctx.stores.artifacts.get_bytes(onnx["uri"]), test_sample))
    reasons = [c["detail"] for c in checks if not c["passed"]]
    blessed = not reasons
    report = put_json(
        ctx.stores.artifacts,
        ctx.key("validate_model", "blessing.json"),
        {"blessed": blessed, "checks": checks, "reasons": reasons},
    )
    return {
        "blessed": blessed,
        "reasons": reasons,
        "report": report.as_dict(),
        "metric": metric,
        "value": value,
        "champion_version": champ_version,
        "champion_value": champ_value,
    }
