"""Batch scoring S3 → S3: a job's start, its plan, its shards and its finish.

* :func:`start_job` (the trigger): an upload under a model's scoring prefix — a file directly under it, or a folder's
  ``_SUCCESS`` marker — pins the champion's version, records the job (``JOB#<job_id>`` beside the model's runs) and
  starts the scoring state machine, once per upload (a claim on the upload's key and ETag).
* :func:`plan_job`: the input's CSV, Parquet and JSON Lines objects, each one shard or, above
  ``scoring.shard_bytes``, several (row ranges of it); the list is an S3 object the Distributed Map reads.
* :func:`score_shards`: each shard scored with the pinned version through ``/predict``'s own checks
  (:mod:`mlops.serving.batch`) into ``scored/<model>/<job>/part-<index>.parquet``, a sample captured for the monitor.
* :func:`finish_job`: rows out = rows in for every shard, one part per planned shard, the error share within
  ``scoring.max_error_share``; then ``_manifest.json`` and ``_SUCCESS``, and the job's record.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from mlops.core.artifact_io import get_json, put_json
from mlops.core.clock import new_run_id, utcnow, utcnow_iso
from mlops.core.config import ModelSet, ProjectConfig
from mlops.core.constants import CHAMPION, SUCCESS_MARKER
from mlops.core.context import Stores
from mlops.core.errors import MlopsError
from mlops.core.ports import ExecutionExistsError, Executions, ObjectInfo, parse_s3_uri
from mlops.core.runs import safe_name
from mlops.core.scoring import (
    JOB_FAILED,
    JOB_RUNNING,
    JOB_SUCCEEDED,
    MANIFEST_FILE,
    SHARDS_FILE,
    FinishInput,
    JobOutcome,
    JobRef,
    PlanResult,
    ScoringJob,
    Shard,
    ShardInput,
    ShardResult,
    output_prefix,
    part_key,
    table_format,
)
from mlops.monitoring import capture


class ScoringJobFailed(MlopsError):
    """The job's parts are not a complete, trustworthy scoring of its input (the reason names why)."""


class NoChampionError(MlopsError):
    """A scoring job needs a champion to pin."""


# -- start (the trigger) -----------------------------------------------------------------------------------------
def scoring_target(config: ProjectConfig, key: str) -> str | None:
    """What an upload at ``key`` (under the model's scoring prefix) asks to score: the key itself (a file directly
    under the prefix), its folder (``<folder>/_SUCCESS``), or None (a file inside a folder waits for its marker)."""
    rest = key[len(config.scoring_prefix) :]
    name = rest.rsplit("/", 1)[-1]
    if name == SUCCESS_MARKER:
        return key[: -len(SUCCESS_MARKER)] if "/" in rest else None
    if "/" in rest or name.startswith(("_", ".")) or table_format(key) is None:
        return None
    return key


def start_job(
    stores: Stores,
    config: ProjectConfig,
    executions: Executions,
    *,
    bucket: str,
    key: str,
    etag: str,
    reason: str = "s3_upload",
) -> dict[str, Any]:
    """Start the job an upload asks for (see :func:`scoring_target`), once per upload; pin the champion."""
    target = scoring_target(config, key)
    if target is None:
        why = (
            "a file inside a folder waits for the folder's _SUCCESS" if "/" in key[len(config.scoring_prefix) :] else ""
        )
        return {"status": "ignored", "reason": why or f"not a CSV, Parquet or JSON Lines file: {key}"}
    name = safe_name(f"score-{_digest(bucket, key, etag)}")
    job_id = new_run_id()
    existing = stores.meta.claim(config.name, f"TRIGGER#{name}", {"run_id": job_id, "at": utcnow_iso()})
    if existing is not None:
        return {"status": "duplicate", "job_id": existing.get("run_id"), "execution_name": name}
    version = stores.meta.get_alias(config.name, CHAMPION)
    if version is None:
        stores.meta.release_claim(config.name, f"TRIGGER#{name}", job_id)
        raise NoChampionError(f"model '{config.name}' has no champion to score s3://{bucket}/{key} with")
    job = ScoringJob(job_id=job_id, model=config.name, version=version, bucket=bucket, keys=[target])
    stores.meta.put_job(
        {
            **job.as_state(),
            "status": JOB_RUNNING,
            "trigger": {"reason": reason, "key": key, "etag": etag, "execution_name": name},
            "output": stores.artifacts.uri(output_prefix(config.name, job_id)),
            "started_at": utcnow_iso(),
        }
    )
    try:
        arn = executions.start(name, job.as_state())
    except ExecutionExistsError as exists:
        stores.meta.update_job(config.name, job_id, {"status": JOB_FAILED, "reason": "duplicate execution"})
        return {"status": "duplicate", "execution_arn": exists.execution_arn, "execution_name": name}
    except Exception:
        stores.meta.release_claim(config.name, f"TRIGGER#{name}", job_id)
        stores.meta.update_job(config.name, job_id, {"status": JOB_FAILED, "reason": "the execution did not start"})
        raise
    stores.meta.update_job(config.name, job_id, {"execution_arn": arn})
    return {"status": "started", "job_id": job_id, "version": version, "execution_arn": arn, "execution_name": name}


def _hidden(key: str) -> bool:
    return key.rsplit("/", 1)[-1].startswith(("_", "."))


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:20]


# -- plan ----------------------------------------------------------------------------------------------------------
def plan_job(stores: Stores, config: ProjectConfig, job: ScoringJob) -> PlanResult:
    """The job's shards: every table under its keys (a folder's files at any depth, "_" and "." names skipped),
    each a shard, or ⌈size / scoring.shard_bytes⌉ shards of it (row ranges); written where the Map reads them."""
    objects: list[ObjectInfo] = []
    for key in job.keys:
        if key.endswith("/"):
            listed = stores.reader.list_objects(job.bucket, key)
            objects += [
                o for o in listed if table_format(o.key) and not o.key.rsplit("/", 1)[-1].startswith(("_", "."))
            ]
        else:
            objects.append(stores.reader.head(job.bucket, key))
    if not objects:
        raise ScoringJobFailed(f"no CSV, Parquet or JSON Lines file to score under s3://{job.bucket}/{job.keys[0]}")
    shards: list[Shard] = []
    for obj in sorted(objects, key=lambda o: o.key):
        parts = max(1, math.ceil(obj.size / config.scoring.shard_bytes))
        for part in range(parts):
            shards.append(
                Shard(
                    index=len(shards),
                    bucket=obj.bucket,
                    key=obj.key,
                    etag=obj.etag,
                    size=obj.size,
                    part=part,
                    parts=parts,
                )
            )
    ref = put_json(stores.artifacts, output_prefix(job.model, job.job_id) + SHARDS_FILE, [s.as_state() for s in shards])
    bucket, key = parse_s3_uri(ref.uri)
    stores.meta.update_job(job.model, job.job_id, {"shards": len(shards), "objects": len(objects)})
    return PlanResult(
        shards=ref.as_dict(),
        shards_bucket=bucket,
        shards_key=key,
        count=len(shards),
        objects=len(objects),
        bytes=sum(o.size for o in objects),
        tolerated_failure_percentage=config.scoring.tolerated_failed_shards,
    )


# -- shards ------------------------------------------------------------------------------------------------------
def score_shards(stores: Stores, config: ProjectConfig, request: ShardInput, loaded: Any) -> list[ShardResult]:
    """Score each shard of the batch with ``loaded`` (the job's pinned version, loaded once per environment)."""
    if loaded.version != request.job.version:
        raise ValueError(f"loaded v{loaded.version}, but job {request.job.job_id} pinned v{request.job.version}")
    return [score_shard(stores, config, request.job, shard, loaded) for shard in request.items]


def score_shard(stores: Stores, config: ProjectConfig, job: JobRef, shard: Shard, loaded: Any) -> ShardResult:
    from mlops.serving.batch import score_table

    t0 = time.perf_counter()
    fmt = table_format(shard.key)
    if fmt is None:
        raise ValueError(f"not a CSV, Parquet or JSON Lines file: {shard.key}")
    with tempfile.TemporaryDirectory(prefix="score-") as tmp:
        source = Path(tmp) / f"input.{fmt}"
        source.write_bytes(stores.reader.read(ObjectInfo(shard.bucket, shard.key, shard.size, shard.etag, None)))
        target = Path(tmp) / "part.parquet"
        scored = score_table(
            loaded.model,
            job.version,
            source,
            fmt,
            target,
            shard=shard.part,
            shards=shard.parts,
            capture_sample=config.scoring_capture_sample,
            seed=int(_digest(job.job_id, str(shard.index)), 16) % 2**32,
            temp_dir=tmp,
        )
        ref = stores.artifacts.put_bytes(
            part_key(job.model, job.job_id, shard.index), target.read_bytes(), "application/vnd.apache.parquet"
        )
    captured = _capture(stores, job, shard, scored.captured)
    return ShardResult(
        index=shard.index,
        key=shard.key,
        part=ref.as_dict(),
        rows_in=scored.rows_in,
        rows_out=scored.rows_out,
        errors=scored.errors,
        total_rows=scored.total_rows,
        first_row=scored.first_row,
        captured=captured,
        seconds=round(time.perf_counter() - t0, 3),
    )


def _capture(stores: Stores, job: JobRef, shard: Shard, answered: list[capture.Answered]) -> int:
    """The sampled rows, as served traffic is captured (``captures/<model>/date=…/``, one row per record), marked
    ``source: batch`` with the job; one object per shard, so a retried shard overwrites its own."""
    if not answered:
        return 0
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for part in answered:
        for line in capture.capture_lines(
            model=job.model,
            version=job.version,
            request_id=f"{job.job_id}/{shard.index}",
            answered=part,
            now=now,
            extra={"source": "batch", "job": job.job_id},
        ):
            rows += capture.flatten(json.loads(line))
    when = capture.iso(now)
    key = (
        f"{capture.partition(capture.CAPTURE_KIND, job.model, when)}{when[11:13]}-{job.job_id}-{shard.index:05d}.jsonl"
    )
    stores.artifacts.put_bytes(key, capture.to_jsonl(rows), "application/x-ndjson")
    return len(rows)


# -- finish -----------------------------------------------------------------------------------------------------
def finish_job(stores: Stores, config: ProjectConfig, req: FinishInput, models: ModelSet | None = None) -> JobOutcome:
    """Check the parts against the plan, write the manifest (and ``_SUCCESS`` when the job succeeded) and close the
    job's record. A job that is not a complete scoring of its input, or whose error share is over
    ``scoring.max_error_share``, fails with :class:`ScoringJobFailed` naming why (after it is recorded)."""
    prefix = output_prefix(req.model, req.job_id)
    record = stores.meta.get_job(req.model, req.job_id) or {}
    started = str(record.get("started_at") or utcnow_iso())
    planned: list[Shard] = []
    results: list[ShardResult] = []
    failed: list[dict[str, Any]] = []
    if req.failure is None and req.plan is not None and req.results is not None:
        planned = [Shard.model_validate(s) for s in get_json(stores.artifacts, req.plan.shards["uri"])]
        results, failed = _map_results(stores, req.results)
    reason = _failure_reason(req.failure) if req.failure is not None else _problems(stores, planned, results, failed)
    rows_in = sum(r.rows_in for r in results)
    rows_out = sum(r.rows_out for r in results)
    errors = sum(r.errors for r in results)
    share = errors / rows_in if rows_in else 0.0
    if reason is None and share > config.scoring.max_error_share:
        reason = (
            f"{errors:,} of {rows_in:,} rows ({share:.2%}) could not be scored, over scoring.max_error_share="
            f"{config.scoring.max_error_share:g}; each is in its part with the error /predict gives"
        )
    status = JOB_FAILED if reason else JOB_SUCCEEDED
    finished = utcnow_iso()
    duration = round((_parse(finished) - _parse(started)).total_seconds(), 3)
    manifest = {
        "job_id": req.job_id,
        "model": req.model,
        "version": req.version,
        "status": status,
        "reason": reason,
        "input": {"bucket": req.bucket, "keys": req.keys},
        "rows_in": rows_in,
        "rows_out": rows_out,
        "errors": errors,
        "error_share": round(share, 6),
        "started_at": started,
        "finished_at": finished,
        "duration_s": duration,
        "parts": [
            {
                "part": r.part["uri"],
                "index": r.index,
                "input": f"s3://{req.bucket}/{r.key}",
                "first_row": r.first_row,
                "rows_in": r.rows_in,
                "rows_out": r.rows_out,
                "errors": r.errors,
                "seconds": r.seconds,
            }
            for r in sorted(results, key=lambda r: r.index)
        ],
        "failed_shards": failed,
    }
    ref = put_json(stores.artifacts, prefix + MANIFEST_FILE, manifest)
    if status == JOB_SUCCEEDED:
        stores.artifacts.put_bytes(prefix + SUCCESS_MARKER, b"", "application/octet-stream")
    fields = {k: manifest[k] for k in ("status", "reason", "rows_in", "rows_out", "errors", "duration_s")}
    stores.meta.update_job(
        req.model,
        req.job_id,
        {**fields, "finished_at": finished, "manifest": ref.uri, "parts": len(results), "failed_shards": len(failed)},
    )
    outcome = JobOutcome(
        job_id=req.job_id,
        model=req.model,
        version=req.version,
        status=status,
        rows_in=rows_in,
        rows_out=rows_out,
        errors=errors,
        manifest=ref.as_dict(),
        output=stores.artifacts.uri(prefix),
        reason=reason,
    )
    from mlops.reports.site import publish_quietly

    publish_quietly(stores, req.model, models)  # the model's site, with this job on it
    if reason is not None and req.failure is None:
        raise ScoringJobFailed(f"job {req.job_id}: {reason}")
    return outcome


def _map_results(stores: Stores, results: dict[str, Any]) -> tuple[list[ShardResult], list[dict[str, Any]]]:
    """The children's outputs from the Map's ResultWriter files, and the tolerated failures (their shards)."""
    details = results.get("ResultWriterDetails") or {}
    manifest = json.loads(stores.artifacts.get_bytes(f"s3://{details['Bucket']}/{details['Key']}"))
    bucket = manifest.get("DestinationBucket") or details["Bucket"]
    done: list[ShardResult] = []
    failed: list[dict[str, Any]] = []
    for status, files in (manifest.get("ResultFiles") or {}).items():
        for file in files:
            body = stores.artifacts.get_bytes(f"s3://{bucket}/{file['Key']}").decode()
            records = (
                [json.loads(line) for line in body.splitlines() if line.strip()]
                if file["Key"].endswith(".jsonl")
                else json.loads(body)
            )
            for child in records:
                if status == "SUCCEEDED":
                    done += [ShardResult.model_validate(r) for r in json.loads(child["Output"])]
                else:
                    shards = json.loads(child.get("Input") or "{}").get("Items") or []
                    failed += [
                        {**s, "error": child.get("Error"), "cause": str(child.get("Cause") or "")[:500]} for s in shards
                    ]
    return done, failed


def _problems(
    stores: Stores, planned: list[Shard], results: list[ShardResult], failed: list[dict[str, Any]]
) -> str | None:
    """Why the parts are not a complete scoring of the plan (None: they are): every planned shard has a part or is a
    tolerated failure, every part exists, rows out = rows in, and an object's shards cover its rows exactly."""
    by_index = {r.index: r for r in results}
    tolerated = {int(s["index"]) for s in failed if "index" in s}
    covered = set(by_index) | tolerated
    problems = [f"shard {s.index} ({s.key}) has no part" for s in planned if s.index not in covered]
    for r in results:
        key = parse_s3_uri(r.part["uri"])[1]
        if not stores.artifacts.exists(key):
            problems.append(f"part {r.index} is missing ({r.part['uri']})")
        if r.rows_out != r.rows_in:
            problems.append(f"part {r.index}: {r.rows_out:,} rows out for {r.rows_in:,} rows in")
    per_object: dict[str, list[ShardResult]] = defaultdict(list)
    for r in results:
        per_object[r.key].append(r)
    planned_parts = {s.key: s.parts for s in planned}
    for key, shards in per_object.items():
        if len(shards) == planned_parts.get(key, len(shards)):
            totals = {r.total_rows for r in shards}
            if len(totals) != 1 or sum(r.rows_in for r in shards) != next(iter(totals)):
                problems.append(f"the shards of {key} do not cover its rows exactly")
    if not problems:
        return None
    shown = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
    return f"incomplete: {shown}"


def _failure_reason(failure: dict[str, Any]) -> str:
    error, cause = failure.get("Error") or "States.Runtime", str(failure.get("Cause") or "")
    with contextlib.suppress(ValueError, AttributeError):  # a Lambda's error arrives as its JSON payload
        cause = json.loads(cause).get("errorMessage") or cause
    return f"{error}: {cause[:500]}"


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
