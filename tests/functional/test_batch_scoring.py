"""Batch scoring, handler by handler, against a champion registered in moto: the shard scorer (the champion's ONNX
graph through /predict's own checks) and the finisher (rows out = rows in, one part per shard, the error share).

One champion for the module (the chain takes a few seconds); each test writes under its own job."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pandas as pd
import pytest
from functions.score_finish.handler import handler as finish_handler
from functions.score_shard.handler import handler as shard_handler
from moto import mock_aws

from mlops.core.registry import promote
from mlops.core.scoring import SHARDS_FILE, Shard, output_prefix
from mlops.local.apigw import call
from mlops.local.distributed_map import ChildRun, MapRun, MapSpec, result_files
from mlops.local.lambda_runtime import LocalContext, reset_caches
from mlops.local.provision import create_resources
from mlops.serving import api
from mlops.steps.score import ScoringJobFailed
from mlops.tools.samples import bundled, example_config_path
from mlops.wiring.runtime import make_stores
from tests.chain import run_chain
from tests.conftest import Account

pytestmark = pytest.mark.functional

DATA = bundled("breast-cancer")
FEATURES = DATA.drop(columns=["target"])
MODEL = "breast-cancer"


@pytest.fixture(scope="module")
def champion(quick_breast_cancer_config) -> Iterator[Account]:
    """One champion (v1) for the module, in a moto account of its own, with the functions' environment."""
    from mlops.core.constants import ENV_CONFIG_URI

    with mock_aws(), pytest.MonkeyPatch.context() as env:
        session = boto3.session.Session(region_name="us-east-1")
        resources = create_resources(session)
        account = Account(session, resources, make_stores(resources, session))
        for key, value in {**resources.as_env(), ENV_CONFIG_URI: str(example_config_path(MODEL))}.items():
            env.setenv(key, value)
        env.setenv("MLOPS_MODEL_CACHE_SECONDS", "0")
        reset_caches()
        body = DATA.to_csv(index=False).encode()
        out = run_chain(account.context(quick_breast_cancer_config), account.upload("breast-cancer/a.csv", body))
        assert out["status"] == "SUCCEEDED"
        api.model_cache.cache_clear()
        yield account
        api.model_cache.cache_clear()
        reset_caches()


def _upload(account: Any, key: str, frame: pd.DataFrame) -> dict[str, Any]:
    body = frame.to_csv(index=False).encode()
    account.session.client("s3").put_object(Bucket=account.resources.landing_bucket, Key=key, Body=body)
    return {"bucket": account.resources.landing_bucket, "key": key, "size": len(body)}


def _shard_event(job_id: str, version: int, shards: list[Shard]) -> dict[str, Any]:
    return {
        "Items": [s.as_state() for s in shards],
        "BatchInput": {"job_id": job_id, "model": MODEL, "version": version},
    }


def _read_part(account: Any, uri: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(account.stores.artifacts.get_bytes(uri)))


def _predict(records: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    status, _, body = call("POST", "/predict", json.dumps({"records": records}))
    return status, json.loads(body)


def _with_bad_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[int, str]]:
    """``frame`` (with its label column, carried through) where three rows are ones /predict refuses."""
    out = frame.astype({"mean_radius": object, "worst_area": object}).copy()
    out.loc[3, "mean_radius"] = "big"  # not a number
    out.loc[7, "worst_area"] = 1e30  # a unit error, far outside the training range
    out.loc[11, "mean_radius"] = "n/a"
    return out, {3: "mean_radius", 7: "worst_area", 11: "mean_radius"}


def test_given_good_and_bad_rows_when_a_shard_is_scored_then_good_rows_equal_predict_and_bad_rows_carry_its_message(
    champion,
):
    frame, bad = _with_bad_rows(DATA.head(40).reset_index(drop=True))
    upload = _upload(champion, "score/breast-cancer/day.csv", frame)
    shard = Shard(index=0, bucket=upload["bucket"], key=upload["key"], size=upload["size"])

    (result,) = shard_handler(_shard_event("20261206T000000Z-aaaaaa", 1, [shard]), LocalContext("test"))

    part = _read_part(champion, result["part"]["uri"])
    assert (result["rows_in"], result["rows_out"], result["errors"]) == (40, 40, 3)
    assert list(part.columns[: len(frame.columns)]) == list(frame.columns)  # the input's columns, label included
    assert {"prediction", "probability_0", "probability_1", "model_version", "status", "error"} <= set(part.columns)
    assert set(part["model_version"]) == {1}
    assert part.index[part["status"] == "error"].tolist() == sorted(bad)
    # The good rows: exactly /predict's answers for the same records.
    good = [i for i in range(40) if i not in bad]
    status, answer = _predict(FEATURES.iloc[good].to_dict("records"))
    assert status == 200, answer
    for i, p in zip(good, answer["predictions"], strict=True):
        assert part.loc[i, "prediction"] == p["prediction"]
        assert part.loc[i, "probability_1"] == pytest.approx(p["probabilities"]["1"], abs=1e-6)
    # Each bad row: the message /predict gives for it, the records sent as in the file (rows numbered as sent).
    records = frame.drop(columns=["target"]).to_dict("records")
    clean = FEATURES.head(40).to_dict("records")
    for i in bad:
        status, refused = _predict([records[j] if j == i else clean[j] for j in range(i + 1)])
        assert status == 400
        assert part.loc[i, "error"] == refused["message"], i
        assert bad[i] in refused["message"]
    assert part.loc[part["status"] == "error", "prediction"].isna().all()


def test_given_a_champion_changed_mid_job_then_a_shard_scores_with_the_version_its_job_pinned(champion):
    stores = champion.stores
    v1 = {k: v for k, v in stores.meta.get_model_version(MODEL, 1).items() if k not in ("pk", "sk")}
    stores.meta.put_model_version({**v1, "version": 2, "artifacts": {**v1["artifacts"], "onnx": {"uri": "x"}}})
    promote(stores, MODEL, 2, reason="a newer champion", actor="test")
    upload = _upload(champion, "score/breast-cancer/pinned.csv", FEATURES.head(5))
    shard = Shard(index=0, bucket=upload["bucket"], key=upload["key"], size=upload["size"])

    (result,) = shard_handler(_shard_event("20261206T000000Z-bbbbbb", 1, [shard]), LocalContext("test"))

    part = _read_part(champion, result["part"]["uri"])
    assert stores.meta.get_alias(MODEL, "champion") == 2
    assert set(part["model_version"]) == {1} and (part["status"] == "ok").all()
    promote(stores, MODEL, 1, reason="back, for the module's other tests", actor="test")


def test_given_a_large_object_in_row_ranges_then_its_shards_cover_its_rows_once(champion):
    upload = _upload(champion, "score/breast-cancer/big.csv", FEATURES.head(101))
    shards = [
        Shard(index=i, bucket=upload["bucket"], key=upload["key"], size=upload["size"], part=i, parts=3)
        for i in range(3)
    ]

    results = shard_handler(_shard_event("20261206T000000Z-cccccc", 1, shards), LocalContext("test"))

    assert [(r["first_row"], r["rows_in"], r["total_rows"]) for r in results] == [
        (0, 33, 101),
        (33, 34, 101),
        (67, 34, 101),
    ]
    parts = pd.concat([_read_part(champion, r["part"]["uri"]) for r in results], ignore_index=True)
    assert parts.drop(columns=[c for c in parts.columns if c not in FEATURES.columns]).equals(FEATURES.head(101))


# -- the finisher ---------------------------------------------------------------------------------------------
def _job(champion: Any, job_id: str, frames: list[pd.DataFrame]) -> dict[str, Any]:
    """A job scored shard by shard (as the Map's children would), its plan and ResultWriter files written as the
    state machine leaves them: the finisher's input."""
    stores = champion.stores
    keys = [_upload(champion, f"score/breast-cancer/{job_id}/f{i}.csv", f) for i, f in enumerate(frames)]
    shards = [Shard(index=i, bucket=k["bucket"], key=k["key"], size=k["size"]) for i, k in enumerate(keys)]
    stores.meta.put_job(
        {"job_id": job_id, "model": MODEL, "version": 1, "status": "RUNNING", "started_at": "2026-12-06T00:00:00.000Z"}
    )
    shards_ref = stores.artifacts.put_bytes(
        output_prefix(MODEL, job_id) + SHARDS_FILE, json.dumps([s.as_state() for s in shards]).encode()
    )
    children = []
    for shard in shards:
        event = _shard_event(job_id, 1, [shard])
        children.append(ChildRun(shard.index, event, 1, output=shard_handler(event, LocalContext("test"))))
    run = MapRun(f"arn:aws:states:us-east-1:123456789012:mapRun:scoring/Shards:{job_id}", MapSpec(), children)
    bucket = champion.resources.artifact_bucket
    files, details = result_files(run, bucket, output_prefix(MODEL, job_id) + "_results")
    for key, body in files.items():
        stores.artifacts.put_bytes(key, body)
    return {
        "job_id": job_id,
        "model": MODEL,
        "version": 1,
        "bucket": keys[0]["bucket"],
        "keys": [f"score/breast-cancer/{job_id}/"],
        "plan": {
            "shards": shards_ref.as_dict(),
            "shards_bucket": bucket,
            "shards_key": output_prefix(MODEL, job_id) + SHARDS_FILE,
            "count": len(shards),
            "objects": len(shards),
            "bytes": sum(k["size"] for k in keys),
        },
        "results": {"ResultWriterDetails": details},
    }


def test_given_every_part_with_its_rows_when_the_job_finishes_then_a_manifest_and_success_and_the_job_record(champion):
    event = _job(champion, "20261206T000000Z-dddddd", [FEATURES.head(20), FEATURES.iloc[20:50]])

    outcome = finish_handler(event, LocalContext("test"))

    stores, prefix = champion.stores, output_prefix(MODEL, event["job_id"])
    manifest = json.loads(stores.artifacts.get_bytes(prefix + "_manifest.json"))
    assert outcome["status"] == "SUCCEEDED" and (outcome["rows_in"], outcome["rows_out"]) == (50, 50)
    assert [(p["rows_in"], p["rows_out"], p["errors"]) for p in manifest["parts"]] == [(20, 20, 0), (30, 30, 0)]
    assert manifest["version"] == 1 and manifest["duration_s"] >= 0
    assert stores.artifacts.exists(prefix + "_SUCCESS")
    job = stores.meta.get_job(MODEL, event["job_id"])
    assert (job["status"], job["rows_out"], job["errors"]) == ("SUCCEEDED", 50, 0)
    site = stores.artifacts.get_bytes(f"sites/{MODEL}/index.html").decode()  # the model's site lists the job
    assert "Batch scoring jobs" in site and event["job_id"] in site


def test_given_a_missing_part_when_the_job_finishes_then_it_fails_incomplete_without_success(champion):
    event = _job(champion, "20261206T000000Z-eeeeee", [FEATURES.head(20), FEATURES.iloc[20:50]])
    champion.session.client("s3").delete_object(
        Bucket=champion.resources.artifact_bucket, Key=output_prefix(MODEL, event["job_id"]) + "part-00001.parquet"
    )

    with pytest.raises(ScoringJobFailed, match="incomplete: part 1 is missing"):
        finish_handler(event, LocalContext("test"))

    prefix = output_prefix(MODEL, event["job_id"])
    assert not champion.stores.artifacts.exists(prefix + "_SUCCESS")
    assert champion.stores.meta.get_job(MODEL, event["job_id"])["status"] == "FAILED"


def test_given_a_shard_with_no_result_when_the_job_finishes_then_it_fails_naming_the_shard(champion):
    event = _job(champion, "20261206T000000Z-ffffff", [FEATURES.head(20), FEATURES.iloc[20:50]])
    shards = json.loads(champion.stores.artifacts.get_bytes(event["plan"]["shards"]["uri"]))
    extra = {**shards[1], "index": 2}
    ref = champion.stores.artifacts.put_bytes(event["plan"]["shards_key"], json.dumps([*shards, extra]).encode())
    event["plan"]["shards"] = ref.as_dict()

    with pytest.raises(ScoringJobFailed, match=r"shard 2 .* has no part"):
        finish_handler(event, LocalContext("test"))


def test_given_bad_rows_over_the_configured_share_when_the_job_finishes_then_it_fails_naming_the_share(champion):
    bad = FEATURES.head(20).astype({"mean_radius": object}).copy()
    bad.loc[:4, "mean_radius"] = "big"  # 5 of 20 rows: 25 %, over the default 5 %
    event = _job(champion, "20261206T000000Z-gggggg", [bad])

    with pytest.raises(ScoringJobFailed, match=r"5 of 20 rows \(25.00%\).*max_error_share=0.05"):
        finish_handler(event, LocalContext("test"))

    assert champion.stores.meta.get_job(MODEL, event["job_id"])["errors"] == 5


def test_given_a_map_that_failed_when_the_failure_is_recorded_then_the_job_is_failed_with_its_cause_and_no_success(
    champion,
):
    event = _job(champion, "20261206T000000Z-hhhhhh", [FEATURES.head(10)])
    failure = {"Error": "States.ExceedToleratedFailureThreshold", "Cause": "1 of 1 items failed."}

    outcome = finish_handler({**event, "results": None, "failure": failure}, LocalContext("test"))

    assert outcome["status"] == "FAILED" and outcome["reason"].startswith("States.ExceedToleratedFailureThreshold")
    prefix = output_prefix(MODEL, event["job_id"])
    assert not champion.stores.artifacts.exists(prefix + "_SUCCESS")
    manifest = json.loads(champion.stores.artifacts.get_bytes(prefix + "_manifest.json"))
    assert manifest["status"] == "FAILED" and "1 of 1 items failed" in manifest["reason"]


def test_given_a_tolerated_failed_shard_when_the_job_finishes_then_the_manifest_names_it_and_its_input(champion):
    event = _job(champion, "20261206T000000Z-iiiiii", [FEATURES.head(10), FEATURES.iloc[10:30]])
    stores = champion.stores
    details = event["results"]["ResultWriterDetails"]
    written = json.loads(stores.artifacts.get_bytes(f"s3://{details['Bucket']}/{details['Key']}"))
    key = written["ResultFiles"]["SUCCEEDED"][0]["Key"]
    children = json.loads(stores.artifacts.get_bytes(f"s3://{details['Bucket']}/{key}"))
    failed = {**children[1], "Status": "FAILED", "Error": "Lambda.Unknown", "Cause": "out of memory"}
    del failed["Output"]
    run = MapRun(
        f"arn:aws:states:us-east-1:123456789012:mapRun:scoring/Shards:{event['job_id']}-2",
        MapSpec(),
        [
            ChildRun(0, json.loads(children[0]["Input"]), 1, output=json.loads(children[0]["Output"])),
            ChildRun(1, json.loads(failed["Input"]), 1, error="Lambda.Unknown", cause="out of memory"),
        ],
    )
    files, new_details = result_files(run, details["Bucket"], output_prefix(MODEL, event["job_id"]) + "_results")
    for k, body in files.items():
        stores.artifacts.put_bytes(k, body)

    outcome = finish_handler({**event, "results": {"ResultWriterDetails": new_details}}, LocalContext("test"))

    manifest = json.loads(stores.artifacts.get_bytes(outcome["manifest"]["uri"]))
    assert outcome["status"] == "SUCCEEDED" and (outcome["rows_in"], outcome["rows_out"]) == (10, 10)
    assert [(s["index"], s["key"], s["error"]) for s in manifest["failed_shards"]] == [
        (1, f"score/breast-cancer/{event['job_id']}/f1.csv", "Lambda.Unknown")
    ]


class _Executions:
    state_machine_arn = "arn:aws:states:us-east-1:123456789012:stateMachine:scoring"

    def __init__(self) -> None:
        self.started: list[tuple[str, dict[str, Any]]] = []

    def arn_of(self, name: str) -> str:
        return f"{self.state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}"

    def start(self, name: str, payload: dict[str, Any]) -> str:
        self.started.append((name, payload))
        return self.arn_of(name)


def _upload_event(account: Any, key: str, etag: str = "e1") -> dict[str, Any]:
    from tests.conftest import load_event

    event = load_event("s3_object_created")
    event["detail"]["bucket"]["name"] = account.resources.landing_bucket
    event["detail"]["object"].update({"key": key, "etag": etag})
    return event


def test_given_uploads_under_the_scoring_prefix_then_the_trigger_starts_one_job_per_file_or_folder_pinning_the_champion(
    champion,
):
    from mlops.steps.trigger import dispatch
    from mlops.wiring.runtime import models_from_env

    jobs, training = _Executions(), _Executions()

    def trigger(key: str, etag: str = "e1") -> dict[str, Any]:
        return dispatch(_upload_event(champion, key, etag), models_from_env(), champion.stores, training, None, jobs)

    one = trigger("score/breast-cancer/today.csv")
    again = trigger("score/breast-cancer/today.csv")  # EventBridge delivers at least once
    waiting = trigger("score/breast-cancer/nightly/a.parquet")  # a folder's file waits for the folder's marker
    folder = trigger("score/breast-cancer/nightly/_SUCCESS")

    assert (one["status"], again["status"], waiting["status"], folder["status"]) == (
        "started",
        "duplicate",
        "ignored",
        "started",
    )
    assert [payload["keys"] for _, payload in jobs.started] == [
        ["score/breast-cancer/today.csv"],
        ["score/breast-cancer/nightly/"],
    ]
    assert {payload["version"] for _, payload in jobs.started} == {1} and training.started == []
    record = champion.stores.meta.get_job(MODEL, one["job_id"])
    assert (record["status"], record["version"], record["trigger"]["key"]) == (
        "RUNNING",
        1,
        "score/breast-cancer/today.csv",
    )
