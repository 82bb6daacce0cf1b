"""B5: bless or reject the candidate.

Runs in the serving bundle (onnxruntime + numpy, no pandas or scikit-learn), so the parity and infra
checks exercise exactly the runtime that will serve the model: it loads, answers the test split like
scikit-learn did, and answers one row within the latency budget. Then the absolute gates and the
no-regression check against the champion re-scored by evaluate on the same split.
"""

from __future__ import annotations

from typing import Any

from mlops.core.artifact_io import get_json, get_verified, put_json
from mlops.core.context import StepContext
from mlops.core.ports import ArtifactRefDict
from mlops.core.results import ValidateModelResult
from mlops.core.runs import pipeline_step
from mlops.ml.metrics_compare import regression_of
from mlops.serving.onnx_model import OnnxModel, single_row_latency_ms
from mlops.serving.parity import compare, component_parity


def _f(v: float | None) -> str:
    return "undefined" if v is None else f"{v:.4f}"


def _check(name: str, passed: bool, detail: str, **values: Any) -> dict[str, Any]:
    return {"name": name, "passed": bool(passed), "detail": detail, **values}


def serving_checks(ctx: StepContext, onnx_bytes: bytes, reference: dict[str, Any]) -> list[dict[str, Any]]:
    cfg = ctx.config.evaluation
    try:
        model = OnnxModel(onnx_bytes)
    except Exception as err:  # noqa: BLE001 — any load failure is the infra check's failed gate
        return [_check("infra_load", False, f"the serving runtime could not load the model: {err}")]
    checks = [_check("infra_load", True, f"loaded in the serving runtime ({model.size:,} bytes)")]
    p = compare(model, reference, cfg.parity.atol)
    checks.append(
        _check(
            "parity",
            p["mismatch_rate"] <= cfg.parity.max_mismatch_rate,
            f"ONNX vs scikit-learn: {p['mismatches']}/{p['rows']} test rows differ by more than {cfg.parity.atol:g} "
            f"(rate {p['mismatch_rate']:.4f}, allowed {cfg.parity.max_mismatch_rate:g}; "
            f"largest gap {p['max_abs_diff']:.2e})",
            candidate=p["mismatch_rate"],
            against_label="scikit-learn",
            threshold=cfg.parity.max_mismatch_rate,
            threshold_label="max mismatch rate",
            **{k: v for k, v in p.items() if k != "atol"},
        )
    )
    records = reference["records"]
    if records:
        lat = single_row_latency_ms(model, records[0])
        checks.append(
            _check(
                "infra_latency",
                lat["p50_ms"] <= cfg.infra.latency_budget_ms,
                f"single-row p50 {lat['p50_ms']:.3f} ms, p99 {lat['p99_ms']:.3f} ms "
                f"(budget {cfg.infra.latency_budget_ms:g} ms)",
                candidate=lat["p50_ms"],
                threshold=cfg.infra.latency_budget_ms,
                threshold_label="budget (ms, p50)",
                **lat,
            )
        )
    return checks


def component_checks(ctx: StepContext, probe: bytes, reference: dict[str, Any]) -> list[dict[str, Any]]:
    """Each feature component's columns in the serving runtime against scikit-learn's, on the reference rows: a
    mismatch is named with its component and column, where the model's parity check could only say that answers
    differ."""
    cfg = ctx.config.evaluation.parity
    by_component: dict[str, list[dict[str, Any]]] = {}
    for column in component_parity(probe, reference, cfg.atol):
        by_component.setdefault(column["component"], []).append(column)
    checks = []
    for component, columns in by_component.items():
        worst = max(columns, key=lambda c: c["mismatch_rate"])
        ok = worst["mismatch_rate"] <= cfg.max_mismatch_rate
        detail = (
            f"{component}: ONNX computes its columns as scikit-learn does on {worst['rows']} test rows"
            if ok
            else f"{component}: its column {worst['name']!r} differs between ONNX and scikit-learn on "
            f"{worst['mismatches']}/{worst['rows']} test rows (rule: ONNX parity; allowed rate "
            f"{cfg.max_mismatch_rate:g}; fix: make onnx() compute what compute() does — `mlops component check` "
            "shows the rows)"
        )
        checks.append(
            _check(
                "component_parity",
                ok,
                detail,
                component=component,
                candidate=worst["mismatch_rate"],
                against_label="scikit-learn",
                threshold=cfg.max_mismatch_rate,
                threshold_label="max mismatch rate",
            )
        )
    return checks


@pipeline_step("validate_model")
def validate_model(
    ctx: StepContext,
    *,
    evaluation: ArtifactRefDict,
    onnx: ArtifactRefDict,
    reference: ArtifactRefDict,
    features: ArtifactRefDict | None = None,
) -> ValidateModelResult:
    store = ctx.stores.artifacts
    ev = get_json(store, evaluation["uri"])
    metric, metrics = ev["metric"], ev["metrics"]
    value = metrics.get(metric)
    gates = ctx.config.evaluation.gates
    checks = [
        _check(
            "metric_defined",
            value is not None,
            f"{metric} = {_f(value)}" if value is not None else f"{metric} is undefined on the test split",
            candidate=value,
        )
    ]
    for m, floor in gates.min.items():
        v = metrics.get(m)
        ok = v is not None and v >= floor
        detail = f"{m} {_f(v)} {'meets' if ok else 'is below'} the floor {floor:g}"
        checks.append(_check(f"min_{m}", ok, detail, candidate=v, threshold=floor, threshold_label="floor"))
    for m, ceil in gates.max.items():
        v = metrics.get(m)
        ok = v is not None and v <= ceil
        detail = f"{m} {_f(v)} {'meets' if ok else 'is above'} the ceiling {ceil:g}"
        checks.append(_check(f"max_{m}", ok, detail, candidate=v, threshold=ceil, threshold_label="ceiling"))

    base = ev.get("baseline") or {}
    if value is not None and base.get("lift") is not None:
        margin, low = gates.baseline_margin, base.get("lift_low")
        checks.append(
            _check(
                "baseline",
                base["lift"] >= margin and (low is None or low > 0),
                f"{metric} {value:.4f} vs {base['value']:.4f} for a trivial model ({base['model']}) on the same "
                f"test split: lift {base['lift']:+.4f} (needs at least {margin:g})"
                + (f", 95% bootstrap lower bound {low:+.4f} (needs > 0)" if low is not None else ""),
                baseline_value=base["value"],
                lift=base["lift"],
                lift_low=low,
                candidate=value,
                against=base["value"],
                against_label=f"trivial model ({base['model']})",
                threshold=margin,
                threshold_label="min lift",
            )
        )

    champ = ev.get("champion") or {}
    requires_approval = False
    if champ.get("comparable") is False:
        policy = ctx.config.validation.label_changes
        requires_approval = policy == "approve"
        checks.append(
            _check(
                "label_set",
                policy != "reject",
                f"not compared with champion v{champ['version']}: {champ.get('note')}; "
                + {
                    "reject": "validation.label_changes: reject refuses a change of labels",
                    "approve": "validation.label_changes: approve — a person approves it (mlops models approve)",
                    "accept": "validation.label_changes: accept",
                }[policy],
                labels=champ.get("labels"),
            )
        )
    elif champ.get("version") is not None:
        if champ.get("value") is None or value is None:
            checks.append(_check("no_regression", False, f"cannot compare with the champion: {champ.get('note')}"))
        else:
            loss = regression_of(metric, value, champ["value"])
            checks.append(
                _check(
                    "no_regression",
                    loss <= gates.max_regression,
                    f"{metric} {value:.4f} vs champion v{champ['version']} {champ['value']:.4f} on the same test "
                    f"split (loss {loss:+.4f}, allowed {gates.max_regression:g})",
                    champion_value=champ["value"],
                    loss=loss,
                    candidate=value,
                    against=champ["value"],
                    against_label=f"champion v{champ['version']}",
                    threshold=gates.max_regression,
                    threshold_label="max loss",
                )
            )

    if champ.get("unchanged"):
        checks.append(
            _check(
                "changed",
                False,
                f"trained on the same data, config and code as champion v{champ['version']}: nothing new to promote "
                "(a tie on the same inputs is training noise; new data, a config change or new code is a new model)",
            )
        )

    answers = get_json(store, reference["uri"])
    if features is not None:
        checks.extend(component_checks(ctx, get_verified(store, features), answers))
    checks.extend(serving_checks(ctx, get_verified(store, onnx), answers))
    reasons = [c["detail"] for c in checks if not c["passed"]]
    blessed = not reasons
    report = put_json(
        store,
        ctx.key("validate_model", "blessing.json"),
        {"blessed": blessed, "checks": checks, "reasons": reasons, "requires_approval": requires_approval},
    )
    return ValidateModelResult(
        blessed=blessed,
        reasons=reasons,
        report=report.as_dict(),
        metric=metric,
        value=value,
        champion_version=champ.get("version"),
        champion_value=champ.get("value"),
    )
