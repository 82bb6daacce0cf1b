"""The steps composed in-process, in the state machine's order — a test fixture, not a runtime.

Tests of the ML core use it to exercise every step against moto quickly. Deployed and offline runs
(``mlops demo``, ``mlops local up``) execute the CDK-synthesized state machine; nothing in the
product imports this module.
"""

from __future__ import annotations

from typing import Any

from mlops.context import StepContext
from mlops.errors import DataValidationError
from mlops.runs import FAILED, REJECTED, SUCCEEDED, WAITING, finish_run
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


def run_chain(ctx: StepContext, source: dict[str, Any]) -> dict[str, Any]:
    """Run every step for ``ctx.run_id`` (whose run record must exist); return the outcome."""
    out: dict[str, Any] = {"run_id": ctx.run_id}
    try:
        ex = out["extract"] = extract(ctx, source=source)
        an = out["analyze"] = analyze(ctx, snapshot=ex["snapshot"])
        vd = out["validate_data"] = validate_data(ctx, snapshot=ex["snapshot"], statistics=an["statistics"])
        if not vd["passed"]:
            finish_run(
                ctx.stores,
                ctx.model,
                ctx.run_id,
                FAILED,
                error={"type": "DataValidationFailed", "message": f"{vd['num_errors']} data anomalies"},
            )
            return {**out, "status": FAILED}
        pr = out["prepare"] = prepare(ctx, snapshot=ex["snapshot"], schema=vd["schema"])
        plan = plan_trials(ctx, dataset=pr["dataset"])
        trials = [run_trial(ctx, dataset=pr["dataset"], trial=t) for t in plan["trials"]]
        tr = out["train"] = select_and_refit(ctx, dataset=pr["dataset"], trials=trials)
        xp = out["export"] = export(ctx, dataset=pr["dataset"], model=tr["model"])
        ev = out["evaluate"] = evaluate(ctx, dataset=pr["dataset"], model=tr["model"])
        vm = out["validate_model"] = validate_model(
            ctx, evaluation=ev["evaluation"], onnx=xp["onnx"], reference=ev["reference"]
        )
        if not vm["blessed"]:
            finish_run(ctx.stores, ctx.model, ctx.run_id, REJECTED, reasons=vm["reasons"], metrics=ev["metrics"])
            return {**out, "status": REJECTED}
        rg = out["register"] = register(
            ctx,
            snapshot=ex["snapshot"],
            manifest=ex["manifest"],
            statistics=an["statistics"],
            schema=vd["schema"],
            schema_version=vd["schema_version"],
            dataset=pr["dataset"],
            model=tr["model"],
            onnx=xp["onnx"],
            evaluation=ev["evaluation"],
            report=ev["report"],
            blessing=vm["report"],
            train=tr,
        )
    except DataValidationError as err:
        finish_run(ctx.stores, ctx.model, ctx.run_id, FAILED, error={"type": type(err).__name__, "message": str(err)})
        return {**out, "status": FAILED, "error": str(err)}
    status = SUCCEEDED if rg["promoted"] else WAITING
    finish_run(ctx.stores, ctx.model, ctx.run_id, status, model_version=rg["version"], metrics=ev["metrics"])
    return {**out, "status": status}
