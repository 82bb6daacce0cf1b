"""B2: plan the trials — the candidate configurations the tuning Map fans out over (no scikit-learn here) — once
the training split is known to fit the trials' memory."""

from __future__ import annotations

import os
from typing import Any, Literal

from mlops.core.artifact_io import get_json
from mlops.core.config import ProjectConfig
from mlops.core.constants import ENV_TRIAL_MEMORY, ONE_HOT_MAX_CATEGORIES
from mlops.core.context import StepContext
from mlops.core.errors import DataTooLargeError
from mlops.core.ports import ArtifactRefDict
from mlops.core.results import PlanResult, Trial
from mlops.core.runs import pipeline_step
from mlops.ml.search import expand_trials

# What a trial holds per value of the training split, estimated (not measured per family): the split's frame, the
# matrix the preprocessing makes of it, the estimator's working copy and a cross-validation fold's — four copies
# of 8 bytes. A trial may fill TRIAL_MEMORY_SHARE of its function; the rest is the interpreter and the bundle.
BYTES_PER_VALUE = 32
TRIAL_MEMORY_SHARE = 0.8


def encoded_width(dataset: dict[str, Any]) -> int:
    """The columns of the matrix a trial fits (and the label): a numeric feature is one, a categorical one its
    one-hot columns — its schema domain's size, capped at ``ONE_HOT_MAX_CATEGORIES`` (a domain too large to list
    is at the cap)."""
    specs = (dataset.get("schema") or {}).get("features") or {}
    width = 1
    for name, kind in (dataset.get("features") or {}).items():
        if kind != "categorical":
            width += 1
            continue
        domain = (specs.get(name) or {}).get("domain")
        width += min(len(domain), ONE_HOT_MAX_CATEGORIES) if domain else ONE_HOT_MAX_CATEGORIES
    return width


def rows_fitting(dataset: dict[str, Any], memory_mb: int) -> int:
    """How many rows of the dataset's encoded width a trial's (or the refit's) matrices hold in ``memory_mb``."""
    return int(memory_mb * 1024 * 1024 * TRIAL_MEMORY_SHARE) // (encoded_width(dataset) * BYTES_PER_VALUE)


def _too_large(
    rows: int, dataset: dict[str, Any], memory_mb: int, what: str, remedy: str, holder: str = "Lambda"
) -> DataTooLargeError:
    width = encoded_width(dataset)
    need = rows * width * BYTES_PER_VALUE
    return DataTooLargeError(
        f"{what} has {rows:,} rows x {width} columns (one-hot encoded): about {need / 1024**2:,.0f} MB as a trial's "
        f"matrices ({BYTES_PER_VALUE} bytes a value, estimated), more than the {memory_mb:,} MB {holder} holds "
        f"(at most ~{rows_fitting(dataset, memory_mb):,} rows of this width). The data steps and their artifacts are "
        f"complete: {remedy}"
    )


def choose_compute(
    dataset: dict[str, Any], config: ProjectConfig, trial_memory_mb: int | None
) -> tuple[Literal["lambda", "fargate"], bool]:
    """Where the chosen candidate is refit, and whether the trials fit the training split's sample: Lambda while
    the refit's rows (train + validation) fit its memory, else (``training.compute: auto`` or ``fargate``) an ECS
    Fargate task, the trials then fitting the sample prepare wrote. Refused before any trial starts where a trial,
    the Lambda refit or the configured Fargate task cannot hold its rows: a function or task killed for memory after
    the trials names nothing. Without a known memory (a
    run outside the stack) the Lambda path is taken unchecked, unless the config asks for Fargate."""
    rows = dataset.get("rows") or {}
    train, validation = int(rows.get("train") or 0), int(rows.get("validation") or 0)
    wanted = config.training.compute
    if not trial_memory_mb:
        return ("fargate" if wanted == "fargate" else "lambda"), False
    fits = rows_fitting(dataset, trial_memory_mb)
    compute: Literal["lambda", "fargate"] = "fargate" if wanted == "fargate" else "lambda"
    if wanted == "auto" and train + validation > fits:
        compute = "fargate"
    if compute == "lambda":
        if train + validation > fits:
            raise _too_large(
                train + validation,
                dataset,
                trial_memory_mb,
                "the training and validation splits the refit fits",
                "training.compute is lambda; set it to auto (or fargate) to refit on an ECS Fargate task, or train "
                "on less data (a narrower data.prefix)",
            )
        return compute, False
    size = config.training.fargate
    if train + validation > rows_fitting(dataset, size.memory_mb):
        raise _too_large(
            train + validation,
            dataset,
            size.memory_mb,
            "the training and validation splits the refit fits",
            f"training.fargate.memory_mb is {size.memory_mb:,}; raise it (Fargate runs tasks of up to 122,880 MiB, "
            "with cpu 16384), or train on less data (a narrower data.prefix)",
            holder="Fargate task",
        )
    sample = "train_sample" in (dataset.get("splits") or {})
    tuned = int(rows.get("train_sample") or 0) if sample else train
    if tuned + (int(rows.get("validation_sample") or 0) if sample else validation) > fits:
        raise _too_large(
            tuned,
            dataset,
            trial_memory_mb,
            "the training sample the trials fit" if sample else "the training split the trials fit",
            f"set training.tune_rows below {config.training.tune_rows:,} (prepare writes the sample of that many "
            "rows the trials fit on the Fargate path)",
        )
    return compute, sample


@pipeline_step("plan_trials")
def plan_trials(ctx: StepContext, *, dataset: ArtifactRefDict) -> PlanResult:
    memory = os.environ.get(ENV_TRIAL_MEMORY)
    spec = get_json(ctx.stores.artifacts, dataset["uri"])
    compute, sample = choose_compute(spec, ctx.config, int(memory) if memory else None)
    trials = [Trial.model_validate(t | {"sample": sample}) for t in expand_trials(ctx.config)]
    rows = spec.get("rows") or {}
    size = ctx.config.training.fargate
    fargate = (
        # cpu and memory as ECS's RunTask overrides take them (strings)
        {
            "cpu": str(size.cpu),
            "memory": str(size.memory_mb),
            "ephemeral_gb": size.ephemeral_gb,
            "timeout_s": size.timeout_s,
            "spot": size.spot,
        }
        if compute == "fargate"
        else None
    )
    return PlanResult(
        trials=trials,
        count=len(trials),
        max_concurrency=ctx.config.training.max_concurrency,
        compute=compute,
        fargate=fargate,
        tune_rows=int(rows.get("train_sample" if sample else "train") or 0),
    )
