"""Many models on one emulator: a classifier and a regressor share the state machine, the trigger, the serve
function and the API; each trains to its own champion, and one model's bad batch leaves the other alone. On the same
emulator (one start, champions trained through the state machine): the regressor's statistics go through the
sharded path (#29), the classifier scores a folder of files in bulk (#32), and a third model trained on a feature
set's values joined point-in-time answers by customer id over HTTP as for the same features sent in full (#31)."""

from __future__ import annotations

import io
import json
import time
from datetime import datetime
from unittest.mock import ANY

import pandas as pd
import pytest
from typer.testing import CliRunner

from mlops.local import seams
from mlops.local.emulator import LocalCloud
from mlops.tools.demo import FEATURE_MODEL_PATH, serve_by_entity, start_feature_store_run
from mlops.tools.platform import Platform, PlatformError
from mlops.tools.samples import bundled, corrupt
from tests.conftest import quick_config_file

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_given_two_models_when_both_upload_in_one_second_then_both_train_concurrently_and_serve_on_their_routes(
    tmp_path,
):
    # One candidate each: this is about two models side by side, not their tuning. The regressor's statistics
    # are forced past one function (#29): a Distributed Map over three shards of its snapshot, then the merge.
    one_ridge = {"candidates": [{"family": "linear", "params": {"alpha": [1.0]}}]}
    # The regressor is refit on ECS Fargate (#30), as a split past one Lambda would be: the emulator's task.
    on_fargate = one_ridge | {"compute": "fargate", "fargate": {"cpu": 256, "memory_mb": 1024}}
    sharded = {"prefix": "diabetes/", "format": "auto", "scope": "object", "shards": 3}
    # The classifier also scores in bulk (#32): small shards, so a file above 20 kB is scored as row ranges of it.
    scoring = {"shard_bytes": 20_000, "max_error_share": 0.05}
    # The third: the demo's feature store chapter (models/examples/churn.yaml, one candidate already).
    models = [
        quick_config_file(tmp_path, scoring=scoring),
        quick_config_file(tmp_path, "diabetes", training=on_fargate, data=sharded),
        FEATURE_MODEL_PATH,
    ]
    with LocalCloud(models, port=0) as cloud:
        p = Platform.connect("dev", cloud.endpoint)
        assert p.models() == ["breast-cancer", "diabetes", "churn"]
        with pytest.raises(PlatformError, match="3 models"):
            p.for_model(None)  # a command about one model needs --model here
        bc, db, ch = p.for_model("breast-cancer"), p.for_model("diabetes"), p.for_model("churn")
        cancer, diabetes = bundled("breast-cancer"), bundled("diabetes")

        # Both uploads within one second: one run per model, side by side (locks are per model).
        t0 = time.monotonic()
        up_bc = bc.upload(cancer.to_csv(index=False).encode(), "breast-cancer/day1.csv")
        up_db = db.upload(diabetes.to_csv(index=False).encode(), "diabetes/day1.csv")
        assert time.monotonic() - t0 < 1.0
        run_bc = bc.run_for_upload(up_bc["key"], up_bc["etag"])
        run_db = db.run_for_upload(up_db["key"], up_db["etag"])
        # Meanwhile: the customers feature set ingested, then churn's labelled events (their run joins the two).
        receipt, run_ch = start_feature_store_run(ch)
        assert (receipt["status"], receipt["rows"], receipt["online_written"]) == ("ingested", 320, 80)
        first_bc, first_db = bc.wait(run_bc, timeout=600), db.wait(run_db, timeout=600)
        first_ch = ch.wait(run_ch, timeout=600)
        assert first_ch["status"] == "SUCCEEDED", first_ch.get("error")
        assert first_bc["status"] == "SUCCEEDED", first_bc.get("error")
        assert first_db["status"] == "SUCCEEDED", first_db.get("error")
        assert _t(first_bc["started_at"]) < _t(first_db["finished_at"])  # concurrently, not one behind the other
        assert _t(first_db["started_at"]) < _t(first_bc["finished_at"])
        assert (first_bc["model"], first_db["model"]) == ("breast-cancer", "diabetes")
        assert bc.champion() == 1 and db.champion() == 1
        assert db.version(1)["metric"] == "rmse" and bc.version(1)["metric"] == "roc_auc"
        _assert_statistics_sharded(db, run_db, shards=3, rows=len(diabetes))
        _assert_refit_on_fargate(db, run_db, memory="1024")
        assert bc.stores.meta.get_run("breast-cancer", run_bc)["steps"]["analyze"]["outputs"]["shards"] == 0

        # Predictions for both over HTTP, each on its own route and with its own record schema.
        status, body = p.api_request("GET", "/models")
        assert status == 200 and body["models"] == [
            {"model": "breast-cancer", "version": 1},
            {"model": "churn", "version": 1},
            {"model": "diabetes", "version": 1},
        ]
        rows_bc = cancer.drop(columns=["target"]).iloc[:3].to_dict("records")
        rows_db = diabetes.drop(columns=["target"]).iloc[:3].to_dict("records")
        answer_bc, answer_db = bc.predict(rows_bc), db.predict(rows_db)
        assert answer_bc["model"] == "breast-cancer" and answer_bc["predictions"][0]["probabilities"]
        assert answer_db["model"] == "diabetes" and isinstance(answer_db["predictions"][0]["prediction"], float)
        status, body = p.api_request("POST", "/models/diabetes/predict", {"records": rows_bc})
        assert status == 400 and "field" in body["message"]  # the other model's records do not fit this one
        status, body = p.api_request("POST", "/predict", {"records": rows_bc})
        assert status == 400 and "3 models" in body["message"]  # which one? the answer says how
        status, body = p.api_request("POST", "/models/nope/predict", {"records": rows_bc})
        assert status == 404 and "unknown model 'nope'" in body["message"]
        status, doc = p.api_request("GET", "/openapi.json")
        schemas = doc["components"]["schemas"]
        assert "bmi" in json.dumps(schemas["PredictRequest-diabetes"]) and "bmi" not in json.dumps(
            schemas["PredictRequest-breast-cancer"]
        )
        status, health = p.api_request("GET", "/health")
        assert status == 200 and health["models"] == {"breast-cancer": 1, "churn": 1, "diabetes": 1}

        # By entity over HTTP: churn's champion, trained on the features as of each label's time, answers a record
        # that carries only the customer id (the rest from the online table) as for the features sent in full.
        assert [f["name"] for f in ch.version(1)["lineage"]["feature_sets"]] == ["customers"]
        answer = serve_by_entity(ch, "c001")
        by_entity, full = answer["by_entity"], answer["full"]
        assert by_entity["lookups"] == [{"customers": {"entity": "c001", "status": "found", "event_time": ANY}}]
        assert full["lookups"] == [{}]  # sent in full: nothing looked up
        assert by_entity["predictions"] == full["predictions"] and by_entity["predictions"][0]["id"] == "c001"
        assert set(answer["online"]["values"]) == {"tenure_months", "monthly_spend", "support_calls", "plan"}

        _assert_batch_scoring(bc, cloud.endpoint, cancer)

        # A bad batch for the regressor fails its run, naming the problem; the classifier is untouched.
        runs_before = [r["run_id"] for r in bc.runs()]
        bad = corrupt(diabetes, "drop", "bmi").to_csv(index=False).encode()
        up_bad = db.upload(bad, "diabetes/day2.csv")
        failed = db.wait(db.run_for_upload(up_bad["key"], up_bad["etag"]), timeout=600)
        assert failed["status"] == "FAILED", failed.get("status")
        assert "bmi" in json.dumps(failed.get("anomalies") or failed.get("error")), failed
        assert db.champion() == 1 and bc.champion() == 1
        assert [r["run_id"] for r in bc.runs()] == runs_before
        assert bc.predict(rows_bc)["model_version"] == 1

        _assert_a_killed_task_fails_the_run(db, diabetes, rows_db, answer_db)


def _assert_a_killed_task_fails_the_run(db: Platform, diabetes: pd.DataFrame, rows: list[dict], answer: dict) -> None:
    """#30: the regressor's refit task is killed for memory (the emulator's worker allocates past the run's 1 GiB
    and is killed as ECS kills a container): the run fails naming the stop reason and the exit code, and the
    champion and its answers are untouched."""
    before = len(seams.tasks_run)
    seams.inject_task_fault("oom")
    up = db.upload(diabetes.sample(frac=0.95, random_state=3).to_csv(index=False).encode(), "diabetes/day3.csv")
    died = db.wait(db.run_for_upload(up["key"], up["etag"]), timeout=600)
    assert died["status"] == "FAILED", died.get("status")
    assert died["steps"]["plan_trials"]["status"] == "SUCCEEDED"  # it got as far as the refit
    message = died["error"]["message"]
    assert "OutOfMemoryError: Container killed due to memory usage" in message, message
    assert "exit code 137" in message and "stopped:" in message, message
    (killed,) = seams.tasks_run[before:]
    assert killed["Containers"][0]["ExitCode"] == 137 and killed["PeakRssMb"] <= 1024 + 64
    assert db.champion() == 1
    again = db.predict(rows)
    assert again["model_version"] == 1 and again["predictions"] == answer["predictions"]


def _assert_refit_on_fargate(platform: Platform, run_id: str, *, memory: str) -> None:
    """The run's refit was an ECS task (the emulator's process, at the run's memory), recorded as the train
    function's would be; the classifier's stayed on Lambda."""
    record = platform.stores.meta.get_run("diabetes", run_id)
    assert record["steps"]["plan_trials"]["outputs"]["compute"] == "fargate"
    assert record["steps"]["train"]["status"] == "SUCCEEDED"
    (task,) = [t for t in seams.tasks_run if run_id in json.dumps(t["Overrides"])]
    assert (task["Containers"][0]["ExitCode"], task["Memory"], task["Cpu"]) == (0, memory, "256")
    assert task["PeakRssMb"] < int(memory)
    assert len(seams.tasks_run) == 1  # breast-cancer's refit ran in its Lambda


def _assert_statistics_sharded(platform: Platform, run_id: str, *, shards: int, rows: int) -> None:
    """The run's statistics came from ``shards`` children of the Distributed Map: a partial each, the Map Run's
    results written by its ResultWriter (one SUCCEEDED record per child), and the merge's artifact over every row."""
    from mlops.core.artifact_io import get_json

    store, model = platform.stores.artifacts, platform.model
    analyzed = platform.stores.meta.get_run(model, run_id)["steps"]["analyze"]
    assert analyzed["status"] == "SUCCEEDED" and analyzed["outputs"]["shards"] == shards
    assert analyzed["outputs"]["rows"] == rows
    assert len(store.keys(f"runs/{run_id}/extract/shards/")) == shards
    assert len(store.keys(f"runs/{run_id}/analyze/partials/")) == shards
    (manifest_key,) = [k for k in store.keys(f"runs/{run_id}/analyze/map/") if k.endswith("manifest.json")]
    manifest = get_json(store, manifest_key)
    (succeeded,) = manifest["ResultFiles"]["SUCCEEDED"]
    assert not manifest["ResultFiles"]["FAILED"]
    assert len(get_json(store, succeeded["Key"])) == shards
    stats = get_json(store, analyzed["outputs"]["statistics"])
    assert stats["num_rows"] == rows and all(f["count"] == rows for f in stats["features"].values())


def _assert_batch_scoring(p: Platform, endpoint: str, data: pd.DataFrame) -> None:
    """#32: files under the classifier's scoring prefix → the trigger → the scoring state machine (a Distributed Map
    the CDK app synthesizes, run by the emulator) → scored Parquet with every row (bad rows marked with /predict's
    message, good rows equal to /predict), a manifest and _SUCCESS, captured rows, the job in `mlops jobs`."""
    data = data.sample(frac=1.0, random_state=5).reset_index(drop=True)
    features = data.drop(columns=["target"])
    scored = data.iloc[400:560].reset_index(drop=True)  # with its label column: carried through
    a = scored.iloc[:80].astype({"mean_radius": object}).copy()
    a.loc[5, "mean_radius"] = "big"
    a.loc[61, "mean_radius"] = "?"
    parquet = io.BytesIO()
    scored.iloc[80:130].to_parquet(parquet, index=False)
    files = {
        "exports/day/a.csv": a.to_csv(index=False).encode(),
        "exports/day/b.parquet": parquet.getvalue(),
        "exports/day/c.jsonl": scored.iloc[130:].to_json(orient="records", lines=True).encode(),
    }
    for key, body in files.items():
        p.upload(body, key)
    # What `mlops score s3://…/exports/day/` does: the folder's tables copied under the scoring prefix, then its
    # _SUCCESS marker, whose upload starts the job.
    marker = p.score(f"s3://{p.output('LandingBucket')}/exports/day/")
    assert marker["key"] == "score/breast-cancer/day/_SUCCESS"

    job = p.wait_job(p.job_for_upload(marker["key"], marker["etag"]), timeout=300)

    assert job["status"] == "SUCCEEDED", job.get("reason")
    assert (job["version"], job["rows_in"], job["rows_out"], job["errors"]) == (1, 160, 160, 2)
    s3, bucket = p.client("s3"), p.output("ArtifactBucket")
    folder = f"scored/breast-cancer/{job['job_id']}/"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=folder)["Contents"]]
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=folder + "_manifest.json")["Body"].read())
    parts = sorted(k for k in keys if k.rsplit("/", 1)[-1].startswith("part-"))
    assert folder + "_SUCCESS" in keys
    assert len(parts) == len(manifest["parts"]) > 3  # at least one file scored as row ranges
    assert all(p_["rows_in"] == p_["rows_out"] for p_ in manifest["parts"])
    out = pd.concat(
        [pd.read_parquet(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read())) for k in parts],
        ignore_index=True,
    )
    assert len(out) == 160 and set(out["model_version"]) == {1}
    # Bad rows are marked, with /predict's message, not dropped.
    bad = out[out["status"] == "error"]
    assert len(bad) == 2 and bad["error"].str.contains("field 'mean_radius': expected a number, got str").all()
    # A sample of the good rows: what /predict answers for the same records.
    good = out[out["status"] == "ok"].sample(20, random_state=1)
    answer = p.predict(good[features.columns].apply(pd.to_numeric).to_dict("records"))  # a.csv's column is text
    assert [a_["prediction"] for a_ in answer["predictions"]] == good["prediction"].tolist()
    for (_, row), a_ in zip(good.iterrows(), answer["predictions"], strict=True):
        assert row["probability_1"] == pytest.approx(a_["probabilities"]["1"], abs=1e-6)
    # Scored rows are captured for the monitor, as served ones are (capture_sample 1.0: every scored row).
    captured = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=bucket, Prefix="captures/breast-cancer/")["Contents"]
        if job["job_id"] in o["Key"]
    ]
    rows = sum(len(s3.get_object(Bucket=bucket, Key=k)["Body"].read().splitlines()) for k in captured)
    assert rows == 158
    # The job is listed with its figures (`mlops jobs`).
    from mlops.tools.cli import app

    listed = CliRunner().invoke(app, ["jobs", "--model", "breast-cancer", "--endpoint", endpoint, "--json"])
    assert listed.exit_code == 0, listed.output
    (mine,) = [j for j in json.loads(listed.output) if j["job_id"] == job["job_id"]]
    assert (mine["status"], mine["rows_out"], mine["errors"], mine["version"]) == ("SUCCEEDED", 160, 2, 1)
