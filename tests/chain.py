"""The steps composed in-process, in the state machine's order — a test fixture, not a runtime.

Tests of the ML core use it to exercise every step against moto quickly. Deployed and offline runs
(``mlops demo``, ``mlops local up``) execute the CDK-synthesized state machine; nothing in the
product imports this module.
"""

from __future__ import annotations

from typing import Any, TypeVar

from mlops.core.context import StepContext
from mlops.core.errors import DataValidationError, MlopsError
from mlops.core.results import StepResult
from mlops.core.runs import FAILED, REJECTED, SUCCEEDED, WAITING, finish_run
from mlops.steps.analyze import analyze
from mlops.steps.evaluate import evaluate
from mlops.steps.export import export
from mlops.steps.extract import extract
from mlops.steps.plan import plan_trials
from mlops.steps.prepare import prepare
from mlops.steps.register import register
from mlops.steps.train import run_trial, select_and_refit
from mlops.steps.validate_data import validate_data
from mlops.steps.validate_model import validate_model

R = TypeVar("R", bound=StepResult)


def run_chain(ctx: StepContext, source: dict[str, Any]) -> dict[str, Any]:
    """Run every step for ``ctx.run_id`` (whose run record must exist); return the outcome, each step's result
    as the state machine would carry it."""
    out: dict[str, Any] = {"run_id": ctx.run_id}

    def keep(name: str, result: R) -> R:
        out[name] = result.as_state()
        return result

    try:
        ex = keep("extract", extract(ctx, source=source))
        an = keep("analyze", analyze(ctx, snapshot=ex.snapshot))
        vd = keep(
            "validate_data", validate_data(ctx, snapshot=ex.snapshot, statistics=an.statistics, manifest=ex.manifest)
        )
        if not vd.passed:
            finish_run(
                ctx.stores,
                ctx.model,
                ctx.run_id,
                FAILED,
                error={"type": "DataValidationFailed", "message": f"{vd.num_errors} data anomalies"},
            )
            return {**out, "status": FAILED}
        pr = keep("prepare", prepare(ctx, snapshot=ex.snapshot, schema=vd.usable_schema))
        plan = plan_trials(ctx, dataset=pr.dataset)
        trials = [run_trial(ctx, dataset=pr.dataset, trial=t) for t in plan.trials]
        tr = keep("train", select_and_refit(ctx, dataset=pr.dataset, trials=trials))
        xp = keep("export", export(ctx, dataset=pr.dataset, model=tr.model))
        ev = keep("evaluate", evaluate(ctx, dataset=pr.dataset, model=tr.model))
        vm = keep(
            "validate_model",
            validate_model(ctx, evaluation=ev.evaluation, onnx=xp.onnx, reference=ev.reference, features=xp.features),
        )
        if not vm.blessed:
            finish_run(ctx.stores, ctx.model, ctx.run_id, REJECTED, reasons=vm.reasons, metrics=ev.metrics)
            return {**out, "status": REJECTED}
        rg = keep(
            "register",
            register(
                ctx,
                snapshot=ex.snapshot,
                manifest=ex.manifest,
                statistics=an.statistics,
                schema=vd.usable_schema,
                schema_version=vd.schema_version,
                dataset=pr.dataset,
                onnx=xp.onnx,
                evaluation=ev.evaluation,
                report=ev.report,
                blessing=vm.report,
                train=tr,
            ),
        )
    except (DataValidationError, MlopsError, ValueError) as err:  # a step's failure: recorded, as finalize would
        finish_run(ctx.stores, ctx.model, ctx.run_id, FAILED, error={"type": type(err).__name__, "message": str(err)})
        return {**out, "status": FAILED, "error": str(err)}
    status = SUCCEEDED if rg.promoted else WAITING
    finish_run(ctx.stores, ctx.model, ctx.run_id, status, model_version=rg.version, metrics=ev.metrics)
    return {**out, "status": status}
